"""The read plan of a restore: which byte ranges of which packs to read, in what order.

Reading blob by blob in disk order costs one request per chunk and jumps between packs.
A restore instead takes the manifest a window of chunks at a time, groups the window's
distinct non-zero chunks by pack, sorts them by offset and merges neighbours into
**runs**: one ranged read each, at most `max_run` bytes, skipping at most `max_gap`
bytes that no chunk of the window needs. A chunk that occurs several times in a window
is read once and written to each of its places.

Windows bound the plan's memory (a few hundred bytes per chunk of one window), so it
does not grow with the disk; a chunk repeated in two windows is read once per window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cairn.engine.chunks import ID_SIZE, ZERO_ID
from cairn.engine.manifest import Manifest
from cairn.engine.packs import BlobLocation

# 8192 chunks are 8 GiB of disk at the default chunk size: long enough that a run
# spans what one backup wrote in a row, short enough for a plan of about 2 MiB.
WINDOW_CHUNKS = 8192
DEFAULT_MAX_RUN = 4 << 20
DEFAULT_MAX_GAP = 256 << 10

LocateFn = Callable[[bytes], BlobLocation]


@dataclass(frozen=True)
class PlannedBlob:
    """One blob to read, and the disk chunks (by index) that receive its plaintext."""

    chunk_id: bytes
    offset: int  # of the blob's header in its pack
    length: int
    chunks: tuple[int, ...]


@dataclass(frozen=True)
class PackRun:
    """One ranged read of a pack, covering one or more planned blobs."""

    pack_id: bytes
    offset: int
    length: int
    blobs: tuple[PlannedBlob, ...]


def plan_runs(manifest: Manifest, locate: LocateFn, max_run: int = DEFAULT_MAX_RUN,
              max_gap: int = DEFAULT_MAX_GAP, window: int = WINDOW_CHUNKS,
              wanted: bytes | bytearray | None = None) -> Iterator[PackRun]:
    """Yield the runs that read every non-zero chunk of `manifest`, window by window;
    with `wanted` (one byte per chunk), only the chunks whose byte is non-zero.

    Within a window, packs come in the order the disk first needs them and runs in pack
    order, so reads are sequential and writes progress roughly front to back.
    """
    ids = manifest.ids
    for first in range(0, manifest.chunk_count, window):
        places: dict[bytes, list[int]] = {}
        for i in range(first, min(first + window, manifest.chunk_count)):
            if wanted is not None and not wanted[i]:
                continue
            cid = bytes(ids[i * ID_SIZE:(i + 1) * ID_SIZE])
            if cid != ZERO_ID:
                places.setdefault(cid, []).append(i)
        by_pack: dict[bytes, list[PlannedBlob]] = {}
        for cid, chunks in places.items():  # insertion order: first use on the disk
            loc = locate(cid)
            by_pack.setdefault(loc.pack_id, []).append(PlannedBlob(cid, loc.offset, loc.length, tuple(chunks)))
        for pack_id, blobs in by_pack.items():
            blobs.sort(key=lambda b: b.offset)
            yield from merge_runs(pack_id, blobs, max_run, max_gap)


def merge_runs(pack_id: bytes, blobs: list[PlannedBlob], max_run: int, max_gap: int) -> Iterator[PackRun]:
    """Cut `blobs` (sorted by offset, one pack) into runs; a blob longer than `max_run`
    is a run of its own."""
    group: list[PlannedBlob] = []
    start = end = 0
    for blob in blobs:
        if group and (blob.offset - end > max_gap or blob.offset + blob.length - start > max_run
                      or blob.offset < end):
            yield PackRun(pack_id, start, end - start, tuple(group))
            group = []
        if not group:
            start = blob.offset
        group.append(blob)
        end = blob.offset + blob.length
    if group:
        yield PackRun(pack_id, start, end - start, tuple(group))
