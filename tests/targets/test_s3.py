"""S3Target keeps the object-store contract on a real OpenStack Swift (scripts/swift-dev.sh):
atomic puts, exclusive creates, multipart writers, ranges, listing, and every failure a
target error — a missing bucket, a dead or silent server, a server answering 503."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cairn.engine import Repository
from cairn.engine.errors import RepositoryNotFound
from cairn.errors import InvalidInput
from cairn.targets import ObjectNotFound, Target, TargetIOError
from cairn.targets.base import READ_SLACK
from cairn.targets.s3 import (
    CLAIM_TTL_SECONDS,
    MIB,
    BucketNotFound,
    S3Settings,
    S3Target,
)
from tests import swiftdev
from tests.engine.conftest import FAST_LOCKS
from tests.engine.diskutil import sha256


@pytest.fixture
def settings() -> Iterator[S3Settings]:
    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    s = swiftdev.settings(part_size=5 * MIB)
    yield s
    swiftdev.purge(s.prefix)


@pytest.fixture
def target(settings: S3Settings) -> Iterator[S3Target]:
    t = S3Target(settings)
    yield t
    t.close()


def test_s3_target_satisfies_the_protocol(target: S3Target) -> None:
    assert isinstance(target, Target)
    assert target.free_space() is None
    assert target.describe() == f"s3://{swiftdev.BUCKET}/{target.prefix} at {swiftdev.ENDPOINT}"


def test_put_get_range_size_exists_delete(target: S3Target) -> None:
    target.put("a/b/c.bin", b"0123456789")
    assert target.get("a/b/c.bin") == b"0123456789"
    assert target.get_range("a/b/c.bin", 3, 4) == b"3456"
    assert target.get_range("a/b/c.bin", 8, 10) == b"89"
    assert target.get_range("a/b/c.bin", 10, 4) == b""
    assert target.size("a/b/c.bin") == 10
    assert target.exists("a/b/c.bin") and not target.exists("a/b/nope")
    target.delete("a/b/c.bin")
    assert not target.exists("a/b/c.bin")
    target.delete("a/b/c.bin")  # deleting twice is not an error: GC may race a crash


def test_missing_objects_are_object_not_found(target: S3Target) -> None:
    for call in (lambda: target.get("no/such"), lambda: target.size("no/such"),
                 lambda: target.get_range("no/such", 0, 4),
                 lambda: target.read_range("no/such", 0, 4, memoryview(bytearray(4 + READ_SLACK)))):
        with pytest.raises(ObjectNotFound) as info:
            call()
        assert info.value.key == "no/such"


def test_unsafe_keys_are_refused_before_any_request(target: S3Target) -> None:
    for key in ("../x", "/abs", "a//b", "a/.tmp-claims/x"):
        with pytest.raises(InvalidInput):
            target.put(key, b"x")


def test_a_reader_sees_the_old_or_the_new_object_never_a_mixture(target: S3Target) -> None:
    size = 2 * MIB
    target.put("obj", b"A" * size)
    stop = threading.Event()
    seen: list[bytes] = []

    def read() -> None:
        while not stop.is_set():
            data = target.get("obj")
            assert len(data) == size
            seen.append(data[:1])
            assert data == data[:1] * size

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(6):
            target.put("obj", (b"B" if i % 2 == 0 else b"A") * size)
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) <= {b"A", b"B"}


def test_read_range_fills_the_callers_buffer_and_stops_at_the_end(target: S3Target) -> None:
    data = os.urandom(3 * 4096 + 100)
    target.put("p.bin", data)
    buf = memoryview(bytearray(4096 + READ_SLACK))
    got = target.read_range("p.bin", 5000, 4096, buf)
    assert got == data[5000:9096] and got.obj is buf.obj
    assert target.read_range("p.bin", 12000, 4096, buf) == data[12000:]
    assert target.read_range("p.bin", len(data), 10, buf) == b""
    with pytest.raises(ValueError):
        target.read_range("p.bin", 0, 4096, buf[:4096])


def test_list_pages_through_every_key_sorted_and_hides_claims_and_uploads(settings: S3Settings) -> None:
    target = S3Target(S3Settings(**{**settings.__dict__, "list_page_size": 3}))
    keys = sorted(f"x/{i:02d}" for i in range(10)) + ["x/sub/z"]
    for key in reversed(keys):
        target.put(key, b"")
    target.put("y/other", b"")
    target.put("xylophone", b"")  # shares the letters, not the folder
    writer = target.writer("x/unfinished")
    writer.write(os.urandom(5 * MIB))  # one full part: a multipart upload is open
    assert list(target.list("x")) == keys
    assert [t.split("?")[0] for t in target.list_temporary("x")] == ["x/unfinished"]
    writer.abort()
    assert list(target.list_temporary("x")) == []


def test_create_exclusive_publishes_once_and_never_overwrites(target: S3Target) -> None:
    assert target.create_exclusive("locks/exclusive.lock", b"first")
    assert not target.create_exclusive("locks/exclusive.lock", b"second")
    assert target.get("locks/exclusive.lock") == b"first"
    # Swift 2.30's s3api answers 501 to `If-None-Match: *`: the claim protocol is used,
    # and its claims are gone once the create returns.
    assert not target.uses_conditional_put()
    assert list(target.list("locks")) == ["locks/exclusive.lock"]
    assert swiftdev_keys(target, ".tmp-claims") == []


def swiftdev_keys(target: S3Target, folder: str) -> list[str]:
    s3 = swiftdev.client()
    reply = s3.list_objects_v2(Bucket=target.bucket, Prefix=f"{target.prefix}/{folder}/")
    return [item["Key"] for item in reply.get("Contents", ())]


def test_concurrent_exclusive_creates_have_exactly_one_winner(settings: S3Settings) -> None:
    targets = [S3Target(settings) for _ in range(6)]
    for t in targets:
        t.uses_conditional_put()
    results: dict[int, bool] = {}
    barrier = threading.Barrier(len(targets))

    def create(i: int) -> None:
        barrier.wait()
        results[i] = targets[i].create_exclusive("manifests/w/s/i/d.manifest", f"writer {i}".encode())

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, won in results.items() if won]
    assert len(results) == len(targets) and len(winners) == 1
    assert targets[0].get("manifests/w/s/i/d.manifest") == f"writer {winners[0]}".encode()


def test_a_dead_creators_claim_does_not_block_the_key_forever(target: S3Target) -> None:
    dead = f"{target.prefix}/.tmp-claims/config/{time.time_ns() - int((CLAIM_TTL_SECONDS + 5) * 1e9):020d}-dead"
    s3 = swiftdev.client()
    s3.put_object(Bucket=target.bucket, Key=dead, Body=json.dumps({"pid": 1}).encode())
    assert target.create_exclusive("config", b"cfg")
    assert target.get("config") == b"cfg"
    assert swiftdev_keys(target, ".tmp-claims") == []


def test_trusting_conditional_puts_on_a_server_without_them_is_a_target_error(settings: S3Settings) -> None:
    target = S3Target(S3Settings(**{**settings.__dict__, "conditional_put": "yes"}))
    with pytest.raises(TargetIOError, match="501 NotImplemented"):
        target.create_exclusive("config", b"x")
    assert not target.exists("config")


def test_multipart_writer_publishes_on_commit_only(target: S3Target) -> None:
    data = os.urandom(12 * MIB + 123)
    writer = target.writer("packs/ab/big.pack")
    for start in range(0, len(data), 3 * MIB):
        writer.write(memoryview(data)[start:start + 3 * MIB])
    assert writer.tell() == len(data)
    assert not target.exists("packs/ab/big.pack")
    assert list(target.list("packs")) == []
    writer.commit()
    assert target.size("packs/ab/big.pack") == len(data)
    assert target.get("packs/ab/big.pack") == data
    assert target.get_range("packs/ab/big.pack", 5 * MIB - 3, 7) == data[5 * MIB - 3:5 * MIB + 4]
    assert list(target.list_temporary("packs")) == []


def test_an_aborted_multipart_writer_leaves_nothing_visible_or_pending(target: S3Target) -> None:
    writer = target.writer("packs/cd/gone.pack")
    writer.write(os.urandom(11 * MIB))  # two parts uploaded
    assert len(list(target.list_temporary("packs"))) == 1
    writer.abort()
    assert not target.exists("packs/cd/gone.pack")
    assert list(target.list("packs")) == []
    assert list(target.list_temporary("packs")) == []


def test_a_small_writer_is_one_put(target: S3Target) -> None:
    writer = target.writer("index/small.idx")
    writer.write(b"abc")
    writer.write(bytearray(b"def"))
    assert list(target.list_temporary("index")) == []  # no multipart upload for one part
    writer.commit()
    assert target.get("index/small.idx") == b"abcdef"


def test_gc_aborts_unfinished_uploads_through_delete_temporary(target: S3Target) -> None:
    writer = target.writer("packs/ef/crashed.pack")
    writer.write(os.urandom(5 * MIB))
    [pending] = target.list_temporary("packs")
    target.delete_temporary(pending)
    assert list(target.list_temporary("packs")) == []
    with pytest.raises(TargetIOError):
        target.delete_temporary("packs/ef/crashed.pack")  # not an upload: refused


def test_a_missing_bucket_is_an_error_naming_endpoint_and_bucket_never_an_empty_repository() -> None:
    swiftdev.require_swift()
    settings = swiftdev.settings(bucket=f"cairn-missing-{os.urandom(4).hex()}")
    target = S3Target(settings)
    for call in (lambda: target.get("config"), lambda: target.exists("config"), lambda: list(target.list("packs")),
                 lambda: target.put("x", b"x"), lambda: Repository.open(target),
                 lambda: Repository.init(target)):
        with pytest.raises(BucketNotFound) as info:
            call()
        assert settings.bucket in str(info.value) and settings.endpoint in str(info.value)
    with pytest.raises(BucketNotFound):
        S3Target(settings).exists("x")  # and init above created nothing


def test_init_creates_the_bucket_only_when_asked(tmp_path: Path) -> None:
    swiftdev.require_swift()
    settings = swiftdev.settings(bucket=f"cairn-new-{os.urandom(4).hex()}")
    repo = Repository.init(S3Target(settings, create_bucket=True), timing=FAST_LOCKS)
    try:
        assert Repository.open(S3Target(settings), timing=FAST_LOCKS).config.repo_id == repo.config.repo_id
        with pytest.raises(RepositoryNotFound):
            Repository.open(S3Target(swiftdev.settings(bucket=settings.bucket)))  # another prefix: no repository
    finally:
        swiftdev.purge(settings.prefix, bucket=settings.bucket)
        swiftdev.client().delete_bucket(Bucket=settings.bucket)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stopped_server_is_a_target_io_error_in_seconds() -> None:
    target = S3Target(swiftdev.settings(endpoint=f"http://127.0.0.1:{_closed_port()}", connect_timeout=1.0,
                                        max_attempts=2))
    started = time.monotonic()
    for call in (lambda: target.get("config"), lambda: target.put("x", b"x"), lambda: target.exists("x")):
        with pytest.raises(TargetIOError, match="cannot talk to http://127.0.0.1"):
            call()
    assert time.monotonic() - started < 30


def test_a_server_that_never_answers_is_a_target_io_error_after_the_read_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # accepts connections (the kernel does) and never replies
        port = silent.getsockname()[1]
        target = S3Target(swiftdev.settings(endpoint=f"http://127.0.0.1:{port}", read_timeout=1.0,
                                            max_attempts=2))
        started = time.monotonic()
        with pytest.raises(TargetIOError, match="cannot talk to"):
            target.get("config")
        assert time.monotonic() - started < 20


class FlakyProxy:
    """A TCP proxy in front of Swift that answers the first `failures` connections with
    `503 Slow Down` (what a throttling S3 says), then forwards bytes both ways."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.refused = 0
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(32)
        self.port = int(self._server.getsockname()[1])
        host, _, port = swiftdev.ENDPOINT.removeprefix("http://").partition(":")
        self._upstream = (host, int(port or 80))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            if self.refused < self.failures:
                self.refused += 1
                threading.Thread(target=self._refuse, args=(conn,), daemon=True).start()
            else:
                up = socket.create_connection(self._upstream)
                for a, b in ((conn, up), (up, conn)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _refuse(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
                         b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()


def test_throttling_is_retried_with_backoff_then_reported(settings: S3Settings) -> None:
    S3Target(settings).put("obj", b"payload")
    proxy = FlakyProxy(failures=2)
    try:
        patient = S3Target(S3Settings(**{**settings.__dict__, "endpoint": f"http://127.0.0.1:{proxy.port}",
                                         "max_attempts": 3}))
        assert patient.get("obj") == b"payload"
        assert proxy.refused == 2
        proxy.failures = proxy.refused + 5
        hasty = S3Target(S3Settings(**{**settings.__dict__, "endpoint": f"http://127.0.0.1:{proxy.port}",
                                       "max_attempts": 2}))
        with pytest.raises(TargetIOError, match="503 SlowDown"):
            hasty.get("obj")
    finally:
        proxy.close()


@pytest.mark.parametrize(("field", "value"), [("endpoint", "127.0.0.1:18080"), ("bucket", ""),
                                             ("prefix", "../up"), ("part_size", MIB),
                                             ("conditional_put", "maybe"), ("list_page_size", 0)])
def test_bad_settings_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        S3Target(replace(swiftdev.settings(), **{field: value}))
    assert info.value.field == field


WORKER = str(Path(__file__).parents[1] / "engine" / "worker.py")
ROOT = str(Path(__file__).parents[2])


def _verify_and_restore_all(repo: Repository, workdir: Path, seed: int) -> None:
    from tests.engine.worker import loop_disk

    report = repo.verify(deep=True)
    assert report.ok, f"seed {seed}: {report.problems}"
    for key in repo.list_manifests():
        crash, j = key[1:].split("/")
        repo.restore(key, workdir / "restored.raw")
        assert sha256(workdir / "restored.raw") == sha256(loop_disk(str(workdir), int(crash), int(j))), \
            f"seed {seed}: {key} restored wrong data"


@pytest.mark.slow
def test_backups_and_gc_killed_at_random_moments_leave_a_verifying_bucket(tmp_path: Path,
                                                                          settings: S3Settings) -> None:
    import random
    import signal
    import subprocess
    import sys

    seed = random.randrange(1 << 30)
    print(f"crash seed {seed}")
    rng = random.Random(seed)
    target = S3Target(settings)
    repo = Repository.init(target, chunk_size=64 * 1024, pack_size=256 * 1024, timing=FAST_LOCKS)
    spec = f"s3:{settings.bucket}/{settings.prefix}"
    for i in range(6):
        proc = subprocess.Popen([sys.executable, WORKER, "loop", spec, str(tmp_path), str(i)], cwd=ROOT)
        time.sleep(rng.uniform(0.5, 2.5))  # process start-up and boto3's import take most of a second
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        print(f"kill {i}: {len(repo.list_manifests())} manifests, {len(list(target.list('packs')))} packs, "
              f"{len(list(target.list_temporary('packs')))} unfinished uploads")
        _verify_and_restore_all(repo, tmp_path, seed)
        if repo.list_manifests():
            repo.delete_manifest(rng.choice(sorted(repo.list_manifests())))
        gc = subprocess.Popen([sys.executable, WORKER, "gc", spec], cwd=ROOT)
        time.sleep(rng.uniform(0.5, 2.0))
        gc.send_signal(signal.SIGKILL)
        gc.wait()
        _verify_and_restore_all(repo, tmp_path, seed)
    report = repo.gc()  # a killed GC's exclusive lock and claims do not keep this one out
    assert not report.pending
    assert list(target.list_temporary("packs")) == []
    _verify_and_restore_all(repo, tmp_path, seed)
