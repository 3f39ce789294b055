"""The read-only NBD export of a snapshot, read by QEMU's own client (qemu-img, qemu-io)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cairn.engine import Repository
from cairn.engine.snapshot_reader import SnapshotReader
from cairn.platforms.nbd_server import NbdServer
from cairn.targets import FilesystemTarget
from tests.engine.diskutil import MIB, make_disk, sha256


def _repository(tmp_path: Path) -> tuple[Repository, str]:
    raw = make_disk(tmp_path / "disk.raw", size=8 * MIB, seed=9)
    repo = Repository.init(FilesystemTarget(tmp_path / "repo", fsync=False), chunk_size=MIB)
    repo.backup(raw, "a/1")
    return repo, raw


def test_qemu_reads_the_snapshot_bit_for_bit_through_the_export(tmp_path: Path) -> None:
    repo, raw = _repository(tmp_path)
    reader = repo.open_reader("a/1")
    server = NbdServer(reader, str(tmp_path / "nbd.sock"), "vda")
    try:
        out = tmp_path / "out.raw"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url, str(out)], check=True)
        assert sha256(out) == sha256(raw)
        assert server.failure is None
        # a qcow2 overlay reads through it as its backing file
        overlay = tmp_path / "overlay.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", server.url, str(overlay)],
                       check=True)
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(overlay), str(tmp_path / "via.raw")], check=True)
        assert sha256(tmp_path / "via.raw") == sha256(raw)
    finally:
        server.close()
        reader.close()


def test_writes_are_refused(tmp_path: Path) -> None:
    repo, _raw = _repository(tmp_path)
    reader = repo.open_reader("a/1")
    server = NbdServer(reader, str(tmp_path / "nbd.sock"), "vda")
    try:
        proc = subprocess.run(["qemu-io", "-f", "raw", "-c", "write 0 4k", server.url], capture_output=True, text=True)
        assert proc.returncode != 0 or "failed" in proc.stdout + proc.stderr
    finally:
        server.close()
        reader.close()


class _GoneTarget:
    """A reader whose target went away after the first MiB."""

    def __init__(self, inner: SnapshotReader) -> None:
        self.inner = inner
        self.size = inner.size

    def read_into(self, buf: memoryview, offset: int) -> None:
        if offset + len(buf) > MIB:
            raise OSError("the backup target is unreachable")
        self.inner.read_into(buf, offset)


def test_a_read_that_fails_is_an_io_error_never_zeros_and_is_kept(tmp_path: Path) -> None:
    repo, _raw = _repository(tmp_path)
    reader = repo.open_reader("a/1")
    server = NbdServer(_GoneTarget(reader), str(tmp_path / "nbd.sock"), "vda")
    try:
        proc = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url,
                               str(tmp_path / "out.raw")], capture_output=True, text=True)
        assert proc.returncode != 0
        assert "Input/output error" in proc.stderr
        assert server.failure == "the backup target is unreachable"
    finally:
        server.close()
        reader.close()
