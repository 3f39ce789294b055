"""What this machine can do for a restore, measured on the restore's own bytes.

    python bench/restore_limit.py copy REPO NAME OUT     # I/O alone
    python bench/restore_limit.py decode REPO NAME       # decoding alone

Run by bench/engine.py as child processes, right after Cairn's restore, so the limit and
the restores are measured on the same machine in the same minutes. Each prints one
JSON object with `seconds`, the timed part alone (not the interpreter's start-up, the
key unwrapping or the index load, which a restore pays and the limit does not), and
`cpu_seconds`, the CPU time (user + system, every thread) of that same part.

- **copy**: the I/O a restore of snapshot NAME must do, by the plainest program that
  does it: one thread reads the same pack ranges the restore reads (its read plan, in
  its order, 4 MiB reads with O_DIRECT) and one thread writes the same number of bytes
  at the same disk offsets (the snapshot's non-zero chunks, adjacent ones joined into
  writes of up to 4 MiB, O_DIRECT) into a new sparse file OUT, then one fsync. The
  bytes written are the bytes read, over and over: no decoding, no hashing.
- **decode**: authenticate, decompress and re-hash every blob the restore decodes
  (chunks.decode_blob_into, as the restore does), from memory (the runs are read
  before the clock starts), in one thread per CPU.

The machine's limit for the restore is the larger of the two: a restore cannot take
less than its I/O, nor less than its decoding spread over every core.
"""

from __future__ import annotations

import json
import mmap
import os
import queue
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from cairn.engine import Passphrase, Repository  # noqa: E402
from cairn.engine.chunks import BLOB_HEADER_SIZE, ID_SIZE, SEAL_OVERHEAD, ZERO_ID, decode_blob_into  # noqa: E402
from cairn.engine.index import load_index  # noqa: E402
from cairn.engine.packs import pack_key  # noqa: E402
from cairn.engine.restore import ChunkFetcher  # noqa: E402
from cairn.engine.restore_plan import DEFAULT_MAX_RUN, PackRun, plan_runs  # noqa: E402
from cairn.targets import FilesystemTarget  # noqa: E402

IO_SIZE = 4 << 20
ALIGN = 4096


def _open(repo: str, name: str) -> tuple[Repository, list[PackRun], list[tuple[int, int]]]:
    """The repository, the restore's read plan and its writes ((offset, length) on the
    disk, adjacent non-zero chunks joined up to IO_SIZE)."""
    repository = Repository.open(FilesystemTarget(repo), key=Passphrase(os.environ["CAIRN_REPO_PASSPHRASE"]))
    manifest = repository.load_manifest(name)
    fetcher = ChunkFetcher(repository.target, repository.sealer, load_index(repository.target, repository.sealer))
    max_run = max(DEFAULT_MAX_RUN, BLOB_HEADER_SIZE + manifest.chunk_size + SEAL_OVERHEAD)
    runs = list(plan_runs(manifest, fetcher.locate, max_run))
    cs, size, ids = manifest.chunk_size, manifest.disk_size, manifest.ids
    writes: list[tuple[int, int]] = []
    for i in range(manifest.chunk_count):
        if ids[i * ID_SIZE:(i + 1) * ID_SIZE] == ZERO_ID:
            continue
        off, n = i * cs, min(cs, size - i * cs)
        if writes and writes[-1][0] + writes[-1][1] == off and writes[-1][1] + n <= IO_SIZE:
            writes[-1] = (writes[-1][0], writes[-1][1] + n)
        else:
            writes.append((off, n))
    return repository, runs, writes


def copy(repo: str, name: str, out: str) -> dict[str, float | int]:
    _repository, runs, writes = _open(repo, name)
    files: dict[bytes, int] = {}
    for run in runs:
        if run.pack_id not in files:
            path = os.path.join(repo, pack_key(run.pack_id))
            try:
                files[run.pack_id] = os.open(path, os.O_RDONLY | os.O_DIRECT)
            except OSError:
                files[run.pack_id] = os.open(path, os.O_RDONLY)
    size = writes[-1][0] + writes[-1][1] if writes else 0
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    dfd = os.open(out, os.O_WRONLY | os.O_DIRECT)
    buffers = [memoryview(mmap.mmap(-1, IO_SIZE + 2 * ALIGN)) for _ in range(4)]
    filled: queue.Queue[memoryview | None] = queue.Queue()
    free: queue.Queue[memoryview] = queue.Queue()
    for buf in buffers:
        free.put(buf)
    read_bytes = [0]

    def reader() -> None:
        for run in runs:
            buf = free.get()
            start = run.offset // ALIGN * ALIGN  # O_DIRECT wants aligned offsets and lengths
            length = -(-(run.offset + run.length - start) // ALIGN) * ALIGN
            done = 0
            while done < length:
                n = os.preadv(files[run.pack_id], [buf[done:length]], start + done)
                if n <= 0:
                    break
                done += n
            read_bytes[0] += run.length
            filled.put(buf)
        filled.put(None)

    started, cpu_started = time.perf_counter(), time.process_time()
    thread = threading.Thread(target=reader)
    thread.start()
    first = filled.get()
    reading = first is not None
    buf = first if first is not None else buffers[0]
    for off, n in writes:
        # The writer writes what was read last, taking each new buffer as it comes.
        if reading:
            fresh: memoryview | None
            try:
                fresh = filled.get_nowait()
            except queue.Empty:
                fresh = buf
            if fresh is None:
                reading = False
            elif fresh is not buf:
                free.put(buf)
                buf = fresh
        if n % ALIGN == 0:
            os.pwrite(dfd, buf[:n], off)
        else:
            os.pwrite(fd, buf[:n], off)
    while reading and (rest := filled.get()) is not None:
        free.put(rest)
    thread.join()
    os.fsync(fd)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    os.close(dfd)
    os.close(fd)
    for f in files.values():
        os.close(f)
    os.unlink(out)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "bytes_read": read_bytes[0],
            "bytes_written": sum(n for _o, n in writes)}


def decode(repo: str, name: str) -> dict[str, float | int]:
    repository, runs, _writes = _open(repo, name)
    loaded = [(run, repository.target.get_range(pack_key(run.pack_id), run.offset, run.length)) for run in runs]
    work: queue.Queue[tuple[PackRun, bytes]] = queue.Queue()
    for item in loaded:
        work.put(item)
    manifest = repository.load_manifest(name)
    cs = manifest.chunk_size
    decoded = [0]
    lock = threading.Lock()

    def decoder() -> None:
        out = memoryview(mmap.mmap(-1, cs))
        scratch = memoryview(bytearray(BLOB_HEADER_SIZE + cs + SEAL_OVERHEAD))
        total = 0
        while True:
            try:
                run, data = work.get_nowait()
            except queue.Empty:
                break
            view = memoryview(data)
            for blob in run.blobs:
                start = blob.offset - run.offset
                total += decode_blob_into(view[start:start + blob.length], repository.sealer, "bench",
                                          blob.chunk_id, out, scratch)
        with lock:
            decoded[0] += total

    threads = [threading.Thread(target=decoder) for _ in range(os.cpu_count() or 1)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
            "bytes_decoded": decoded[0], "threads": len(threads)}


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "copy":
        result = copy(argv[1], argv[2], argv[3])
    elif len(argv) >= 3 and argv[0] == "decode":
        result = decode(argv[1], argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
