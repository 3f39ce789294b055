"""Restore: a manifest back into a disk image (raw file, qcow2 file or block device).

The manifest's non-zero chunks are read pack by pack in large sequential runs
(restore_plan.py) rather than blob by blob, and four kinds of threads overlap the work:

- a **planner** walks the manifest, counts zero chunks as done (files keep them as
  holes; block devices get zeros written) and queues the runs;
- **readers** read runs ahead into pooled page-aligned buffers (`read_range`, which
  bypasses the page cache where it can);
- **decoders** decode each blob of a run (authenticate, decompress, re-hash:
  chunks.decode_blob_into) straight into a pooled output buffer;
- **writers** write each output buffer at every offset that holds its chunk (O_DIRECT
  where the kernel allows, NBD for qcow2) and hand it back to its pool.

The buffers are allocated once and bound every queue, so memory is
`O(threads × (run + chunk size))` whatever the disk size, and no chunk costs a fresh
allocation, a page fault or a copy. A regular-file destination is built under a
temporary name and renamed into place only when every chunk has been verified and
written, after one fsync: a failed restore raises and leaves no file that looks complete.

If a blob's pack has vanished (a concurrent GC repacked it) the index is re-read once
and the chunk fetched from its new place.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cairn.engine import pipeline
from cairn.engine.chunks import BLOB_HEADER_SIZE, ID_SIZE, SEAL_OVERHEAD, ZERO_ID, decode_blob, decode_blob_into
from cairn.engine.crypto import Sealer
from cairn.engine.errors import Cancelled, MissingChunk
from cairn.engine.index import Index, load_index
from cairn.engine.manifest import Manifest
from cairn.engine.packs import PACK_HEADER_SIZE, BlobLocation, check_pack_header, pack_key
from cairn.engine.qemu import NbdClient, NbdExport, create_qcow2
from cairn.engine.restore_plan import DEFAULT_MAX_RUN, PackRun, PlannedBlob, plan_runs
from cairn.engine.restore_scan import chunks_to_write
from cairn.engine.sources import open_source
from cairn.errors import InvalidInput
from cairn.targets.base import READ_SLACK, Target
from cairn.targets.errors import ObjectNotFound, map_os_error

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
FORMATS = ("raw", "qcow2")


class _Output:
    """Where restored chunks go; subclasses know how to write and how to finish."""

    writes_zeros = False

    def buffer(self, size: int) -> memoryview:
        """A buffer of `size` bytes that `write` takes without copying it."""
        return memoryview(bytearray(size))

    def write(self, data: memoryview, offset: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


_DIRECT_ALIGN = 4096
# O_DIRECT writes are synchronous: for small chunks their latency costs more than the
# page cache does (64 KiB chunks restored 40 % slower with it, 1 MiB chunks faster).
_DIRECT_MIN_CHUNK = 512 * 1024


class _RawFile(_Output):
    """A raw image file or block device, written with O_DIRECT where the kernel allows.

    Measured here: buffered writes of fresh file pages ran at 200-580 MB/s, O_DIRECT at
    0.7-1.4 GB/s (docs/engine.md), and restore is write-bound. Chunks are decoded
    straight into page-aligned buffers from `buffer` (O_DIRECT needs aligned memory), so
    nothing is copied on the way out; the unaligned tail of a disk goes through the page
    cache.
    """

    def __init__(self, dest: str, size: int, chunk_size: int, inplace: bool = False) -> None:
        """`inplace`: write into the existing file itself (only the chunks that differ
        are written, zeros included), not into a new file renamed over it."""
        self.dest = dest
        self.is_block = os.path.exists(dest) and stat.S_ISBLK(os.stat(dest).st_mode)
        self.inplace = inplace or self.is_block
        self.writes_zeros = self.inplace
        self.path = dest if self.inplace else _temp_name(dest)
        try:
            if self.is_block:
                self.fd = os.open(dest, os.O_WRONLY)
                if os.lseek(self.fd, 0, os.SEEK_END) < size:
                    os.close(self.fd)
                    raise InvalidInput(f"block device {dest} is smaller than the disk ({size} bytes)", "destination")
            elif self.inplace:
                self.fd = os.open(self.path, os.O_WRONLY)
                if os.fstat(self.fd).st_size != size:
                    os.ftruncate(self.fd, size)
            else:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.ftruncate(self.fd, size)
        except OSError as exc:
            raise map_os_error(exc, f"creating {dest}") from exc
        self.dfd = -1
        if chunk_size >= _DIRECT_MIN_CHUNK:
            try:
                self.dfd = os.open(self.path, os.O_WRONLY | getattr(os, "O_DIRECT", 0))
            except OSError:
                pass  # tmpfs and some network filesystems refuse O_DIRECT: buffered it is
        # Cleared (never the descriptor closed) when a write shows O_DIRECT is refused:
        # writers run concurrently, and a closed number could be reused by another file.
        self.direct = self.dfd >= 0

    def buffer(self, size: int) -> memoryview:
        return memoryview(mmap.mmap(-1, size))  # page-aligned, as O_DIRECT requires

    def write(self, data: memoryview, offset: int) -> None:
        n = len(data)
        if self.direct and n and n % _DIRECT_ALIGN == 0 and offset % _DIRECT_ALIGN == 0:
            view = data
            try:
                while view:
                    written = os.pwrite(self.dfd, view, offset)
                    view = view[written:]
                    offset += written
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL or len(view) != n:
                    raise map_os_error(exc, f"writing {self.dest}") from exc
                self.direct = False
        view = data
        while view:
            try:
                n = os.pwrite(self.fd, view, offset)
            except OSError as exc:
                raise map_os_error(exc, f"writing {self.dest}") from exc
            view = view[n:]
            offset += n

    def _close_direct(self) -> None:
        self.direct = False
        if self.dfd >= 0:
            os.close(self.dfd)
            self.dfd = -1

    def finish(self) -> None:
        try:
            self._close_direct()
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            if not self.inplace:
                os.rename(self.path, self.dest)
        except OSError as exc:
            raise map_os_error(exc, f"finishing {self.dest}") from exc

    def abort(self) -> None:
        self._close_direct()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.inplace:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class _Qcow2File(_Output):
    """A qcow2 image written through a private qemu-nbd: a new image renamed into place
    at the end, or (`inplace`) the existing image itself, backing chain and all."""

    def __init__(self, dest: str, size: int, inplace: bool = False) -> None:
        self.dest = dest
        self.inplace = self.writes_zeros = inplace
        self.path = dest if inplace else _temp_name(dest)
        if not inplace:
            create_qcow2(self.path, size)
        try:
            self.export = NbdExport(self.path, "qcow2", readonly=False, clients=WRITERS + 1)
        except BaseException:
            if not inplace:
                os.unlink(self.path)
            raise
        if self.export.client.size != size:
            self.export.close()
            raise InvalidInput(f"{dest} holds a disk of {self.export.client.size} bytes, the snapshot's has "
                               f"{size}; restore it to a new disk instead", "destination")
        # One NBD connection per writer thread: a libnbd handle runs one synchronous
        # command at a time, so a shared one would serialise the writers.
        self._local = threading.local()
        self._clients: list[NbdClient] = []
        self._clients_lock = threading.Lock()

    def _client(self) -> NbdClient:
        client: NbdClient | None = getattr(self._local, "client", None)
        if client is None:
            client = NbdClient(self.path, self.export.socket)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def write(self, data: memoryview, offset: int) -> None:
        self._client().pwrite(bytes(data), offset)

    def _close_clients(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def finish(self) -> None:
        for client in self._clients:
            client.flush()
        self._close_clients()
        self.export.client.flush()
        self.export.close()
        if self.inplace:
            return
        try:
            os.rename(self.path, self.dest)
        except OSError as exc:
            raise map_os_error(exc, f"finishing {self.dest}") from exc

    def abort(self) -> None:
        self._close_clients()
        self.export.close()
        if self.inplace:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _temp_name(dest: str) -> str:
    head, tail = os.path.split(os.path.abspath(dest))
    return os.path.join(head, f".{tail}.cairn-partial-{os.urandom(4).hex()}")


class ChunkFetcher:
    """Reads and decodes chunks by id; re-reads the index once if a pack moved."""

    def __init__(self, target: Target, sealer: Sealer, index: Index) -> None:
        self.target = target
        self.sealer = sealer
        self.index = index
        self._reloaded = False
        self._lock = threading.Lock()
        self._checked_packs: set[bytes] = set()

    def reload(self) -> bool:
        """Re-read the index, once per fetcher; False if that was already done."""
        with self._lock:
            if self._reloaded:
                return False
            self.index = load_index(self.target, self.sealer)
            self._reloaded = True
            return True

    def locate(self, cid: bytes) -> BlobLocation:
        loc = self.index.get(cid)
        if loc is None and self.reload():
            loc = self.index.get(cid)
        if loc is None:
            raise MissingChunk(f"chunk {cid.hex()} is in no index segment", chunk_id=cid.hex())
        return loc

    def check_header(self, pack_id: bytes, key: str) -> None:
        # Blobs carry their own checks, but a damaged pack header means the pack is not
        # what the index thinks it is: refuse it rather than trust the rest.
        if pack_id not in self._checked_packs:
            check_pack_header(self.target.get_range(key, 0, PACK_HEADER_SIZE), key)
            self._checked_packs.add(pack_id)

    def fetch(self, cid: bytes) -> bytes:
        failed: BlobLocation | None = None
        while True:
            loc = self.locate(cid)
            key = pack_key(loc.pack_id)
            if loc == failed:
                raise MissingChunk(f"chunk {cid.hex()}: pack {key} is missing", file=key, chunk_id=cid.hex())
            try:
                self.check_header(loc.pack_id, key)
                blob = self.target.get_range(key, loc.offset, loc.length)
                break
            except ObjectNotFound:
                # GC may have moved the chunk since the index was read: look once more.
                failed = loc
                self.reload()
        if len(blob) != loc.length:
            raise MissingChunk(f"chunk {cid.hex()}: pack {key} is truncated", file=key, chunk_id=cid.hex())
        return decode_blob(blob, self.sealer, f"{key}@{loc.offset}", cid)


# Decoders are CPU-bound (their codecs release the GIL): one per core. Two readers keep
# a few runs read ahead, so the disk always has reads queued while decoders work;
# writers mostly wait in synchronous O_DIRECT writes, and four of them keep the disk's
# write queue full (docs/engine.md has the figures).
READERS = 2
READ_AHEAD = 4
# indices into run_restore's counters
READ, WRITTEN, CHUNKS, UNCHANGED = range(4)
WRITERS = 4
OUTPUT_AHEAD = 2

# One read run, ready to decode: its blobs as views of `buffer`, and `buffer` itself
# (a page-aligned run buffer, returned to its pool once every blob is decoded).
_ReadRun = tuple[list[tuple[PlannedBlob, memoryview, str]], memoryview]


@dataclass(frozen=True)
class RestoreResult:
    """What one restore did. `bytes_written` counts every byte written to the
    destination (zeros included); an in-place restore leaves `chunks_unchanged` chunks
    as the disk held them, read but neither fetched nor written."""

    disk_size: int
    inplace: bool
    bytes_read: int  # of packs, from the target
    bytes_written: int
    chunks_written: int
    chunks_unchanged: int
    seconds: float


def _scan_existing(destination: str, fmt: str, manifest: Manifest, sealer: Sealer, workers: int,
                   cancel: CancelFn | None) -> bytearray | None:
    """The chunks an in-place restore must write into `destination` as it is, or None
    when it cannot be restored in place (absent, another format, a qcow2 of another
    size): then it is restored whole, into a new file renamed over it."""
    if not os.path.exists(destination):
        return None
    with open_source(destination) as source:
        if (fmt == "raw") != (source.kind in ("raw", "block")):
            return None
        if source.kind in ("qcow2", "block") and source.size < manifest.disk_size:
            return None
        if source.kind == "qcow2" and source.size != manifest.disk_size:
            return None
        return chunks_to_write(source, manifest, sealer, workers, cancel)


def run_restore(target: Target, sealer: Sealer, manifest: Manifest, destination: str, fmt: str,
                progress: ProgressFn | None, cancel: CancelFn | None, workers: int,
                inplace: bool = False) -> RestoreResult:
    """Write `manifest`'s disk to `destination`; `workers` is the number of cores to use.

    With `inplace`, an existing `destination` of the same format is first read and
    compared chunk by chunk with the manifest (restore_scan.py), and only the chunks
    that differ are fetched and written into it; a failure then leaves it partly
    written, as any in-place restore would.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"restore format must be one of {', '.join(FORMATS)}", "format")
    started = time.monotonic()
    wanted = _scan_existing(destination, fmt, manifest, sealer, workers, cancel) if inplace else None
    fetcher = ChunkFetcher(target, sealer, load_index(target, sealer))
    in_place = wanted is not None
    out: _Output = (_RawFile(destination, manifest.disk_size, manifest.chunk_size, in_place) if fmt == "raw"
                    else _Qcow2File(destination, manifest.disk_size, in_place))
    cs = manifest.chunk_size
    size = manifest.disk_size
    decoders, readers, writers = workers, READERS, WRITERS
    max_blob = BLOB_HEADER_SIZE + cs + SEAL_OVERHEAD
    max_run = max(DEFAULT_MAX_RUN, max_blob)
    group_chunks = max(1, DEFAULT_MAX_RUN // cs)  # chunks per output buffer: one write of up to 4 MiB
    crew = pipeline.Crew()
    stop = crew.stop
    run_q: queue.Queue[PackRun | None] = queue.Queue(maxsize=2 * readers)
    decode_q: queue.Queue[_ReadRun | None] = queue.Queue()  # bounded by the run buffers
    # (buffer, plaintext length, chunk indices, back to the pool afterwards)
    write_q: queue.Queue[tuple[memoryview, int, tuple[int, ...], bool] | None] = queue.Queue(maxsize=2 * writers)
    # Bytes restored so far; a counter, not a queue, so writers never wake the caller.
    done = [0]
    done_lock = threading.Lock()
    counts = [0, 0, 0, 0]  # pack bytes read, bytes written, chunks written, chunks unchanged
    # Page-aligned run buffers (see read_range) and output buffers (see _Output.buffer),
    # allocated once: every queue is bounded by them, and no chunk costs a fresh page.
    run_pool: queue.Queue[memoryview] = queue.Queue()
    for _ in range(readers + decoders + READ_AHEAD):
        run_pool.put(memoryview(mmap.mmap(-1, max_run + READ_SLACK)))
    out_pool: queue.Queue[memoryview] = queue.Queue()
    for _ in range(decoders + writers + OUTPUT_AHEAD):
        out_pool.put(out.buffer(group_chunks * cs))
    reading = pipeline.LastOut(readers, decode_q, stop, decoders)
    decoding = pipeline.LastOut(decoders, write_q, stop, writers)

    def planner() -> None:
        try:
            ids = manifest.ids
            zero = out.buffer(cs) if out.writes_zeros else None
            settled = 0  # bytes that need no write: holes of a new file, unchanged chunks
            for i in range(manifest.chunk_count):
                n = min(cs, size - i * cs)
                if wanted is not None and not wanted[i]:
                    settled += n
                    counts[UNCHANGED] += 1
                elif ids[i * ID_SIZE:(i + 1) * ID_SIZE] == ZERO_ID:
                    if zero is None:
                        settled += n
                    else:
                        pipeline.put(write_q, (zero, n, (i,), False), stop)
            with done_lock:
                done[0] += settled
            for run in plan_runs(manifest, fetcher.locate, max_run, wanted=wanted):
                if cancel is not None and cancel():
                    raise Cancelled("restore cancelled by the caller")
                pipeline.put(run_q, run, stop)
        finally:
            pipeline.end(run_q, stop, readers)

    def read_run(run: PackRun) -> None:
        """Read `run` into a pooled buffer and queue it for decoding; a vanished pack's
        blobs are looked up again (the index is re-read once) and read where they are now."""
        key = pack_key(run.pack_id)
        buf = pipeline.get(run_pool, stop)
        try:
            fetcher.check_header(run.pack_id, key)
            data = target.read_range(key, run.offset, run.length, buf)
            with done_lock:
                counts[READ] += len(data)
        except ObjectNotFound:
            run_pool.put(buf)
            fetcher.reload()
            for blob in run.blobs:
                loc = fetcher.locate(blob.chunk_id)
                if loc == BlobLocation(run.pack_id, blob.offset, blob.length):
                    raise MissingChunk(f"chunk {blob.chunk_id.hex()}: pack {key} is missing", file=key,
                                       chunk_id=blob.chunk_id.hex()) from None
                moved = PlannedBlob(blob.chunk_id, loc.offset, loc.length, blob.chunks)
                read_run(PackRun(loc.pack_id, loc.offset, loc.length, (moved,)))
            return
        blobs = []
        for blob in run.blobs:
            start = blob.offset - run.offset
            if start + blob.length > len(data):
                raise MissingChunk(f"chunk {blob.chunk_id.hex()}: pack {key} is truncated", file=key,
                                   chunk_id=blob.chunk_id.hex())
            blobs.append((blob, data[start:start + blob.length], f"{key}@{blob.offset}"))
        decode_q.put((blobs, buf))

    def reader() -> None:
        while (run := pipeline.get(run_q, stop)) is not None:
            read_run(run)
        reading.done()

    def decoder() -> None:
        scratch = memoryview(bytearray(max_blob))
        while (item := pipeline.get(decode_q, stop)) is not None:
            blobs, buf = item
            # Blobs of consecutive disk chunks are decoded side by side into one output
            # buffer and leave as one large write; a blob needed at several places, or
            # a short last chunk, leaves on its own.
            group: memoryview | None = None
            first = filled = 0
            for blob, data, where in blobs:
                alone = len(blob.chunks) != 1
                i = blob.chunks[0]
                if group is not None and (alone or i != first + filled // cs or filled + cs > len(group)):
                    pipeline.put(write_q, (group, filled, (first,), True), stop)
                    group = None
                if group is None:
                    group, first, filled = pipeline.get(out_pool, stop), i, 0
                n = decode_blob_into(data, sealer, where, blob.chunk_id, group[filled:filled + cs], scratch)
                for j in blob.chunks:
                    if n != min(cs, size - j * cs):
                        raise MissingChunk(f"chunk {blob.chunk_id.hex()} has {n} bytes, the manifest needs "
                                           f"{min(cs, size - j * cs)}", chunk_id=blob.chunk_id.hex())
                if alone:
                    pipeline.put(write_q, (group, n, blob.chunks, True), stop)
                    group = None
                else:
                    filled += n
                    if n != cs or filled == len(group):
                        pipeline.put(write_q, (group, filled, (first,), True), stop)
                        group = None
            if group is not None:
                pipeline.put(write_q, (group, filled, (first,), True), stop)
            run_pool.put(buf)
        decoding.done()

    def writer() -> None:
        while (item := pipeline.get(write_q, stop)) is not None:
            buf, n, chunks, recycle = item
            view = buf[:n]
            for i in chunks:
                out.write(view, i * cs)
            with done_lock:
                done[0] += n * len(chunks)
                counts[WRITTEN] += n * len(chunks)
                counts[CHUNKS] += len(chunks) * -(-n // cs)  # a write may hold several chunks
            if recycle:
                out_pool.put(buf)

    try:
        crew.start("cairn-restore-plan", planner)
        for w in range(readers):
            crew.start(f"cairn-restore-read-{w}", reader)
        for w in range(decoders):
            crew.start(f"cairn-restore-decode-{w}", decoder)
        for w in range(writers):
            crew.start(f"cairn-restore-write-{w}", writer)
        while not crew.wait(0.2):
            if progress is not None:
                progress(done[0], size)
        crew.raise_first()
        if done[0] != size:
            raise MissingChunk(f"restore wrote {done[0]} of {size} bytes")
        out.finish()
        if progress is not None:
            progress(size, size)
    except BaseException:
        crew.stop.set()
        crew.join()
        out.abort()
        raise
    return RestoreResult(size, in_place, counts[READ], counts[WRITTEN], counts[CHUNKS], counts[UNCHANGED],
                         time.monotonic() - started)
