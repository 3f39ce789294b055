"""Random-access reads of a snapshot's disk, straight from the repository.

An instant restore serves the snapshot to a running VM (over NBD) before its data is
copied: the VM and the background copy read arbitrary ranges, so this is the restore
path turned inside out. Each read maps to the chunks it overlaps; a zero chunk is
zeros without a fetch (and `extents` says which ranges are zero chunks without reading
anything: the export's holes), any other chunk is fetched and decoded (authenticated,
decompressed, re-hashed: `ChunkFetcher.fetch`) and kept in a small cache, because
readers ask for a chunk in pieces (QEMU's copy job reads 512 KiB or less at a time);
the next few chunks after each one read are fetched ahead by two threads, since the
copy job goes through the disk in order, one request after the other.

A read never returns bytes it could not verify: a chunk that cannot be fetched or
decoded raises (MissingChunk, CorruptChunk, a target error), and the server turns that
into an I/O error for the VM rather than into zeros.

The reader holds a restore lock on the repository while it is open, so a GC cannot
delete the packs it still reads.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from cairn.engine.chunks import ID_SIZE, ZERO_ID
from cairn.engine.crypto import Sealer
from cairn.engine.index import load_index
from cairn.engine.locks import Lock, LockTiming
from cairn.engine.manifest import Manifest
from cairn.engine.restore import ChunkFetcher
from cairn.targets.base import Target

log = logging.getLogger(__name__)

# Chunks fetched ahead of a reader, by threads of their own (decoding releases the GIL).
READ_AHEAD = 4
READ_AHEAD_THREADS = 2
# Decoded chunks kept: the read-ahead, and a few readers each part-way through a chunk.
CACHE_CHUNKS = 12


class SnapshotReader:
    """The disk of one manifest, readable at any offset by several threads at once."""

    def __init__(self, target: Target, sealer: Sealer, manifest: Manifest, timing: LockTiming) -> None:
        self.manifest = manifest
        self.size = manifest.disk_size
        self._lock = Lock(target, "restore", timing).acquire()
        try:
            self._fetcher = ChunkFetcher(target, sealer, load_index(target, sealer))
        except BaseException:
            self._lock.release()
            raise
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._guard = threading.Lock()
        # one fetch per chunk at a time: a second reader of the same chunk waits for it
        self._fetching: dict[int, threading.Lock] = {}
        self._ahead: set[int] = set()
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=READ_AHEAD_THREADS, thread_name_prefix="cairn-read-ahead")
        self.bytes_fetched = 0

    def _read_ahead(self, index: int) -> None:
        """Fetch the next chunks in the background: readers that go through the disk in
        order (QEMU's copy job) then find them decoded."""
        with self._guard:
            if self._closed:
                return
            ahead = [j for j in range(index + 1, min(index + 1 + READ_AHEAD, self.manifest.chunk_count))
                     if j not in self._cache and j not in self._fetching and j not in self._ahead]
            self._ahead.update(ahead)
        for j in ahead:
            self._pool.submit(self._prefetch, j)

    def _prefetch(self, index: int) -> None:
        try:
            self._chunk(index, ahead=False)
        except Exception:  # noqa: BLE001 - the reader's own read of this chunk raises it again
            pass
        finally:
            with self._guard:
                self._ahead.discard(index)

    def _chunk(self, index: int, ahead: bool = True) -> bytes | None:
        """The plaintext of chunk `index`, or None for a zero chunk."""
        if ahead:
            self._read_ahead(index)
        cid = bytes(self.manifest.ids[index * ID_SIZE:(index + 1) * ID_SIZE])
        if cid == ZERO_ID:
            return None
        with self._guard:
            data = self._cache.get(index)
            if data is not None:
                self._cache.move_to_end(index)
                return data
            gate = self._fetching.setdefault(index, threading.Lock())
        with gate:
            with self._guard:
                data = self._cache.get(index)
            if data is None:
                data = self._fetcher.fetch(cid)
                with self._guard:
                    self._cache[index] = data
                    self.bytes_fetched += len(data)
                    while len(self._cache) > CACHE_CHUNKS:
                        self._cache.popitem(last=False)
            with self._guard:
                self._fetching.pop(index, None)
        return data

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        """The range as consecutive runs (length, zero), from the manifest alone: a run of
        zero chunks reads as zeros (no fetch), any other run is data."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"{length} bytes at {offset} are outside the disk ({self.size} bytes)")
        cs = self.manifest.chunk_size
        runs: list[tuple[int, bool]] = []
        pos, end = offset, offset + length
        while pos < end:
            index = pos // cs
            n = min(end, (index + 1) * cs) - pos
            zero = self.manifest.chunk_id(index) == ZERO_ID
            if runs and runs[-1][1] == zero:
                runs[-1] = (runs[-1][0] + n, zero)
            else:
                runs.append((n, zero))
            pos += n
        return runs

    def read_into(self, buf: memoryview, offset: int) -> None:
        """Fill `buf` with the disk's bytes from `offset`; raises if any of them cannot be
        read and verified (then `buf` holds nothing to rely on)."""
        if offset < 0 or offset + len(buf) > self.size:
            raise ValueError(f"read of {len(buf)} bytes at {offset} is outside the disk ({self.size} bytes)")
        cs = self.manifest.chunk_size
        done = 0
        while done < len(buf):
            pos = offset + done
            index, within = divmod(pos, cs)
            n = min(len(buf) - done, cs - within, self.size - pos)
            data = self._chunk(index)
            if data is None:
                buf[done:done + n] = bytes(n)
            else:
                buf[done:done + n] = data[within:within + n]
            done += n

    def close(self) -> None:
        """Release the lock; a target that went away meanwhile is logged, not raised (the
        caller is reporting why its reads failed)."""
        with self._guard:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            self._lock.release()
        except Exception:  # noqa: BLE001 - the lock file may be gone with the target
            log.warning("could not release the restore lock of a snapshot reader", exc_info=True)
