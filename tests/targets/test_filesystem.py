"""FilesystemTarget keeps the object-store contract: atomic puts, ranges, listing, errors."""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

import pytest

from cairn.errors import InvalidInput, NotFound, Unavailable
from cairn.targets import FilesystemTarget, ObjectNotFound, Target, TargetError, TargetFull, TargetIOError, map_os_error
from cairn.targets.base import READ_SLACK


@pytest.fixture
def target(tmp_path: Path) -> FilesystemTarget:
    return FilesystemTarget(tmp_path / "t")


def test_filesystem_target_satisfies_the_protocol(target: FilesystemTarget) -> None:
    assert isinstance(target, Target)


def test_put_get_range_size_exists_delete(target: FilesystemTarget) -> None:
    target.put("a/b/c.bin", b"0123456789")
    assert target.get("a/b/c.bin") == b"0123456789"
    assert target.get_range("a/b/c.bin", 3, 4) == b"3456"
    assert target.size("a/b/c.bin") == 10
    assert target.exists("a/b/c.bin") and not target.exists("a/b/nope")
    target.delete("a/b/c.bin")
    assert not target.exists("a/b/c.bin")
    target.delete("a/b/c.bin")  # deleting twice is not an error: GC may race a crash


@pytest.mark.parametrize("storage", ["mmap", "bytearray"])
def test_read_range_returns_the_bytes_asked_for_and_stops_at_the_end(target: FilesystemTarget,
                                                                     storage: str) -> None:
    # An mmap is page-aligned (the O_DIRECT path), a bytearray usually not (buffered).
    data = os.urandom(3 * 4096 + 100)
    target.put("p.bin", data)
    size = 4096 + READ_SLACK
    buf = memoryview(mmap.mmap(-1, size) if storage == "mmap" else bytearray(size))
    assert target.read_range("p.bin", 5000, 4096, buf) == data[5000:9096]
    assert target.read_range("p.bin", 4096, 10, buf) == data[4096:4106]
    assert target.read_range("p.bin", 12000, 4096, buf) == data[12000:]
    assert target.read_range("p.bin", len(data), 10, buf) == b""
    with pytest.raises(ValueError):
        target.read_range("p.bin", 0, 4096, buf[:4096])


def test_list_is_recursive_sorted_and_hides_unfinished_uploads(target: FilesystemTarget) -> None:
    for key in ("x/2", "x/1", "x/sub/3", "y/4"):
        target.put(key, b"")
    writer = target.writer("x/5")
    writer.write(b"partial")
    assert list(target.list("x")) == ["x/1", "x/2", "x/sub/3"]
    assert len(list(target.list_temporary("x"))) == 1
    writer.abort()
    assert list(target.list_temporary("x")) == []
    assert list(target.list("missing")) == []


def test_writer_publishes_only_on_commit(target: FilesystemTarget) -> None:
    writer = target.writer("big/object")
    writer.write(b"a" * 1000)
    assert not target.exists("big/object")
    assert writer.tell() == 1000
    writer.commit()
    assert target.size("big/object") == 1000


def test_create_exclusive_publishes_once(target: FilesystemTarget) -> None:
    assert target.create_exclusive("locks/x", b"first")
    assert not target.create_exclusive("locks/x", b"second")
    assert target.get("locks/x") == b"first"
    assert list(target.list_temporary("locks")) == []


@pytest.mark.parametrize("key", ["/etc/passwd", "../up", "a/../../b", "a//b", "", "a\\b", "x/.tmp-1"])
def test_unsafe_keys_are_refused(target: FilesystemTarget, key: str) -> None:
    with pytest.raises(InvalidInput):
        target.put(key, b"x")


def test_missing_objects_are_not_found(target: FilesystemTarget) -> None:
    with pytest.raises(ObjectNotFound) as info:
        target.get("nope")
    assert isinstance(info.value, NotFound) and info.value.key == "nope"
    with pytest.raises(ObjectNotFound):
        target.get_range("nope", 0, 1)
    with pytest.raises(ObjectNotFound):
        target.read_range("nope", 0, 1, memoryview(bytearray(1 + READ_SLACK)))
    with pytest.raises(ObjectNotFound):
        target.size("nope")


def test_free_space_is_reported(target: FilesystemTarget) -> None:
    target.ensure_root()
    free = target.free_space()
    assert free is not None and free > 0


@pytest.mark.parametrize("code,kind", [(errno.ENOSPC, TargetFull), (errno.EDQUOT, TargetFull),
                                       (errno.EIO, TargetIOError), (errno.EACCES, TargetIOError),
                                       (errno.ESTALE, TargetIOError)])
def test_os_errors_map_to_unavailable(code: int, kind: type) -> None:
    mapped = map_os_error(OSError(code, os.strerror(code)), "writing x")
    assert isinstance(mapped, kind) and isinstance(mapped, Unavailable)
    assert isinstance(mapped, TargetError) and mapped.errno == code


def test_a_real_enospc_from_the_kernel_becomes_target_full(tmp_path: Path) -> None:
    # /dev/full fails every write with ENOSPC: a real kernel error, not a simulated one.
    with pytest.raises(OSError) as raw:
        with open("/dev/full", "wb", buffering=0) as handle:
            handle.write(b"x")
    assert isinstance(map_os_error(raw.value, "writing"), TargetFull)
