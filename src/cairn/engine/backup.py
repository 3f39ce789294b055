"""Backup: a source disk in, a committed manifest out.

The pipeline is one reader thread (fills reused chunk buffers from the source, only the
data extents), N worker threads (zero test, BLAKE3 id, dedup lookup, zstd, AES-GCM) and
the calling thread as the single writer (appends blobs to packs, rotates packs). Queues
are bounded and buffers are recycled, so memory is O(workers × chunk size + pack
bookkeeping), whatever the disk size.

Commit order: packs (each published atomically as it fills) → one index segment naming
every new blob → the manifest (created only if its key is free). A crash or
cancellation before the manifest leaves only unreferenced packs/segments: garbage.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from cairn.engine import pipeline
from cairn.engine.chunks import DEFAULT_ZSTD_LEVEL, ID_SIZE, ZERO_ID, encode_chunk, is_zero
from cairn.engine.config import RepositoryConfig
from cairn.engine.crypto import Sealer
from cairn.engine.errors import Cancelled, ManifestExists
from cairn.engine.index import IndexEntry, load_index, write_segment
from cairn.engine.locks import Lock, LockTiming, read_plan
from cairn.engine.manifest import Manifest, encode_manifest, manifest_object_key, new_manifest
from cairn.engine.packs import PackWriter
from cairn.engine.sources import Extent, Source
from cairn.errors import InvalidInput
from cairn.targets.base import Target

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class BackupResult:
    """What one backup did; `bytes_added` counts every byte it stored on the target."""

    manifest_key: str
    disk_size: int
    bytes_read: int
    bytes_added: int
    chunks_total: int
    chunks_new: int
    chunks_zero: int
    seconds: float


def chunk_reads(extents: Iterable[Extent], disk_size: int, chunk_size: int,
                wanted: set[int] | None) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """Yield (chunk index, data ranges inside it) for chunks holding data, in disk order."""
    current = -1
    ranges: list[tuple[int, int]] = []
    for ext in extents:
        pos, end = ext.offset, min(ext.offset + ext.length, disk_size)
        while pos < end:
            idx = pos // chunk_size
            stop = min(end, (idx + 1) * chunk_size)
            if idx != current:
                if ranges and (wanted is None or current in wanted):
                    yield current, ranges
                current, ranges = idx, []
            if ranges and ranges[-1][0] + ranges[-1][1] == pos:
                ranges[-1] = (ranges[-1][0], ranges[-1][1] + stop - pos)
            else:
                ranges.append((pos, stop - pos))
            pos = stop
    if ranges and (wanted is None or current in wanted):
        yield current, ranges


def read_chunk(source: Source, buf: bytearray, start: int, length: int, ranges: list[tuple[int, int]],
               zeros: memoryview) -> None:
    """Fill `buf[:length]` with the disk's bytes from `start`: its data `ranges` (one
    chunk's, from `chunk_reads`) read from `source`, the holes between them zeros."""
    view = memoryview(buf)
    # Bytes past the old end of the disk, or in holes, read as zeros.
    if len(ranges) != 1 or ranges[0] != (start, length):
        view[:length] = zeros[:length]
    for off, n in ranges:
        source.read_into(view[off - start:off - start + n], off)


def changed_chunks(changed: Iterable[tuple[int, int]], disk_size: int, chunk_size: int) -> set[int]:
    found: set[int] = set()
    for off, length in changed:
        if off < 0 or length < 0:
            raise InvalidInput(f"changed range ({off}, {length}) is negative", "changed_ranges")
        if length == 0 or off >= disk_size:
            continue
        end = min(off + length, disk_size)
        found.update(range(off // chunk_size, (end - 1) // chunk_size + 1))
    return found


@dataclass
class _Counters:
    bytes_read: int = 0
    bytes_added: int = 0
    chunks_new: int = 0


def run_backup(target: Target, config: RepositoryConfig, sealer: Sealer, timing: LockTiming, source: Source,
               manifest_key: str, parent: Manifest | None, changed_ranges: list[tuple[int, int]] | None,
               progress: ProgressFn | None, cancel: CancelFn | None, workers: int,
               zstd_level: int = DEFAULT_ZSTD_LEVEL) -> BackupResult:
    started = time.monotonic()
    object_key = manifest_object_key(manifest_key)
    if target.exists(object_key):
        raise ManifestExists(f"a manifest named {manifest_key!r} already exists")
    if changed_ranges is not None and parent is None:
        raise InvalidInput("a changed-range map needs the parent it is relative to", "changed_ranges")
    cs = config.chunk_size
    size = source.size
    lock = Lock(target, "backup", timing).acquire()
    try:
        # Plan first, then the index: a chunk that is only in a pack a published GC plan
        # will delete counts as absent and is stored again (docs/format.md, Concurrency).
        plan = read_plan(target)
        doomed = plan.doomed_ids() if plan else frozenset()
        index = load_index(target, sealer, avoid=doomed)
        locations = index.locations

        def stored(cid: bytes) -> bool:
            loc = locations.get(cid)
            return loc is not None and loc.pack_id not in doomed

        manifest = new_manifest(cs, size, config.repo_id)
        wanted: set[int] | None = None
        if parent is not None and changed_ranges is not None:
            wanted = _inherit(manifest, parent, changed_ranges, stored)
        counters = _Counters()
        _pipeline(target, config, sealer, source, manifest, wanted, stored, counters, progress, cancel,
                  workers, zstd_level, lock)
        ids = manifest.ids
        zero = sum(1 for i in range(0, len(ids), ID_SIZE) if ids[i:i + ID_SIZE] == ZERO_ID)
        lock.check()
        data = encode_manifest(manifest, sealer)
        if not target.create_exclusive(object_key, data):
            raise ManifestExists(f"a manifest named {manifest_key!r} was created concurrently")
        counters.bytes_added += len(data)
    finally:
        lock.release()
    return BackupResult(manifest_key, size, counters.bytes_read, counters.bytes_added, manifest.chunk_count,
                        counters.chunks_new, zero, time.monotonic() - started)


def _inherit(manifest: Manifest, parent: Manifest, changed_ranges: list[tuple[int, int]],
             stored: Callable[[bytes], bool]) -> set[int]:
    """Copy the parent's ids into `manifest`; return the chunk indices that must be read."""
    cs = manifest.chunk_size
    count = manifest.chunk_count
    common = min(count, parent.chunk_count)
    manifest.ids[:common * ID_SIZE] = parent.ids[:common * ID_SIZE]
    wanted = changed_chunks(changed_ranges, manifest.disk_size, cs)
    wanted.update(range(common, count))
    if parent.disk_size != manifest.disk_size and common:
        # The parent's last chunk was short (or is now), so its id cannot be reused.
        wanted.add(common - 1)
    ids = manifest.ids
    for i in range(common):
        cid = bytes(ids[i * ID_SIZE:(i + 1) * ID_SIZE])
        if cid != ZERO_ID and not stored(cid):
            wanted.add(i)
    for i in wanted:
        ids[i * ID_SIZE:(i + 1) * ID_SIZE] = ZERO_ID
    return wanted


def _pipeline(target: Target, config: RepositoryConfig, sealer: Sealer, source: Source, manifest: Manifest,
              wanted: set[int] | None, stored: Callable[[bytes], bool], counters: _Counters,
              progress: ProgressFn | None, cancel: CancelFn | None, workers: int, zstd_level: int,
              lock: Lock) -> None:
    cs = config.chunk_size
    size = manifest.disk_size
    workers = max(1, workers)
    crew = pipeline.Crew()
    stop = crew.stop
    pool: queue.Queue[bytearray] = queue.Queue()
    for _ in range(2 * workers + 2):
        pool.put(bytearray(cs))
    work_q: queue.Queue[tuple[int, bytearray, int] | None] = queue.Queue(maxsize=2 * workers)
    out_q: queue.Queue[tuple[int, bytes, bytes | None, bytes | None, int] | None] = queue.Queue(maxsize=4 * workers)
    inflight: set[bytes] = set()
    zero_block = memoryview(bytes(cs))
    reads = chunk_reads(source.data_extents(), size, cs, wanted)
    if wanted is None:
        total_bytes = size
    else:
        total_bytes = sum(min(cs, size - i * cs) for i in wanted)

    def reader() -> None:
        try:
            for idx, ranges in reads:
                if cancel is not None and cancel():
                    raise Cancelled("backup cancelled by the caller; nothing was committed")
                buf = pipeline.get(pool, stop)
                n = min(cs, size - idx * cs)
                read_chunk(source, buf, idx * cs, n, ranges, zero_block)
                counters.bytes_read += sum(length for _, length in ranges)
                pipeline.put(work_q, (idx, buf, n), stop)
        finally:
            pipeline.end(work_q, stop, workers)

    def worker() -> None:
        while True:
            item = pipeline.get(work_q, stop)
            if item is None:
                pipeline.put(out_q, None, stop)
                return
            idx, buf, n = item
            result: tuple[int, bytes, bytes | None, bytes | None, int]
            try:
                data: bytes | bytearray | memoryview = buf if n == cs else memoryview(buf)[:n]
                if is_zero(buf if n == cs else bytes(data)):
                    result = (idx, ZERO_ID, None, None, n)
                else:
                    cid = sealer.chunk_id(data)
                    if cid in inflight or stored(cid):
                        result = (idx, cid, None, None, n)
                    else:
                        inflight.add(cid)
                        header, payload = encode_chunk(data, cid, sealer, zstd_level)
                        result = (idx, cid, header, payload, n)
            finally:
                pool.put(buf)
            pipeline.put(out_q, result, stop)

    crew.start("cairn-reader", reader)
    for i in range(workers):
        crew.start(f"cairn-worker-{i}", worker)

    pack: PackWriter | None = None
    entries: list[IndexEntry] = []
    written: set[bytes] = set()
    ids = manifest.ids
    done_bytes = 0
    last_report = 0.0
    finished = 0
    try:
        while finished < workers:
            item = pipeline.get(out_q, stop)
            if item is None:
                finished += 1
                continue
            idx, cid, header, payload, n = item
            ids[idx * ID_SIZE:(idx + 1) * ID_SIZE] = cid
            if header is not None and payload is not None and cid not in written:
                if pack is None:
                    pack = PackWriter(target)
                loc = pack.add(header, payload)
                entries.append(IndexEntry(cid, loc, n))
                written.add(cid)
                counters.chunks_new += 1
                if pack.size >= config.pack_size:
                    pack.commit()
                    counters.bytes_added += pack.size
                    pack = None
            done_bytes += n
            if progress is not None:
                now = time.monotonic()
                if now - last_report >= 0.2:
                    last_report = now
                    progress(done_bytes, total_bytes)
        crew.join()
        crew.raise_first()
        if pack is not None:
            pack.commit()
            counters.bytes_added += pack.size
            pack = None
        lock.check()
        if entries:
            key = write_segment(target, entries, sealer)
            counters.bytes_added += target.size(key)
        if progress is not None:
            progress(total_bytes, total_bytes)
    except pipeline.Stopped:
        crew.join()
        crew.raise_first()
        raise
    except BaseException:
        crew.stop.set()
        crew.join()
        raise
    finally:
        if pack is not None:
            pack.abort()
