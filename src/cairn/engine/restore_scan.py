"""Which chunks of a disk as it is already hold what a manifest wants there.

An in-place restore of a mostly unchanged disk should cost reads of that disk, not
reads of the target, decoding and writes. `chunks_to_write` reads the disk's data
extents (holes read as zeros and are never read), hashes each chunk with the
repository's chunk-id function and compares it with the manifest's id; a chunk the
manifest says is zero is compared with zeros. The result is a mask with one byte per
chunk: 1 where the restore must write, 0 where the disk already holds the content.

One reader thread reads chunks in disk order into a pool of reused buffers; `workers`
threads hash them (BLAKE3 releases the GIL), so the scan runs at the disk's read speed
on two cores. The ids are keyed by the repository's id key, so an equal id means equal
content with the same certainty as deduplication relies on.
"""

from __future__ import annotations

import queue
from collections.abc import Callable

from cairn.engine import pipeline
from cairn.engine.backup import chunk_reads, read_chunk
from cairn.engine.chunks import ID_SIZE, ZERO_ID, is_zero
from cairn.engine.crypto import Sealer
from cairn.engine.errors import Cancelled
from cairn.engine.manifest import Manifest
from cairn.engine.sources import Source

CancelFn = Callable[[], bool]


def chunks_to_write(source: Source, manifest: Manifest, sealer: Sealer, workers: int,
                    cancel: CancelFn | None = None) -> bytearray:
    """One byte per chunk of `manifest`: 1 where `source` differs from it (write it), 0
    where `source` already holds that chunk. Chunks past the end of `source` differ
    unless the manifest has zeros there."""
    cs = manifest.chunk_size
    size = manifest.disk_size
    ids = manifest.ids
    count = manifest.chunk_count
    readable = min(size, source.size)
    # Until read: a chunk differs if the manifest has data there (the disk reads zeros
    # outside its extents); a chunk the disk holds data in is decided by its hasher.
    mask = bytearray(count)
    for i in range(count):
        mask[i] = ids[i * ID_SIZE:(i + 1) * ID_SIZE] != ZERO_ID
    reads = list(chunk_reads(source.data_extents(), readable, cs, None))
    if not reads:
        return mask
    workers = max(1, workers)
    crew = pipeline.Crew()
    stop = crew.stop
    pool: queue.Queue[bytearray] = queue.Queue()
    for _ in range(2 * workers + 2):
        pool.put(bytearray(cs))
    work_q: queue.Queue[tuple[int, bytearray, int] | None] = queue.Queue(maxsize=2 * workers)
    zero_block = memoryview(bytes(cs))

    def reader() -> None:
        try:
            for idx, ranges in reads:
                if cancel is not None and cancel():
                    raise Cancelled("restore cancelled by the caller")
                buf = pipeline.get(pool, stop)
                n = min(cs, size - idx * cs)
                read_chunk(source, buf, idx * cs, n, ranges, zero_block)
                pipeline.put(work_q, (idx, buf, n), stop)
        finally:
            pipeline.end(work_q, stop, workers)

    def hasher() -> None:
        while (item := pipeline.get(work_q, stop)) is not None:
            idx, buf, n = item
            try:
                want = bytes(ids[idx * ID_SIZE:(idx + 1) * ID_SIZE])
                data = buf if n == cs else bytes(memoryview(buf)[:n])
                if want == ZERO_ID:
                    mask[idx] = not is_zero(data)
                else:
                    mask[idx] = sealer.chunk_id(data) != want
            finally:
                pool.put(buf)

    crew.start("cairn-scan-read", reader)
    for w in range(workers):
        crew.start(f"cairn-scan-hash-{w}", hasher)
    crew.join()
    crew.raise_first()
    return mask
