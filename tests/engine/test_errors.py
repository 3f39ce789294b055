"""Every lower-level failure (OS, qemu-img, qemu-nbd) leaves the engine as a Cairn error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cairn.engine import errors, open_source
from cairn.engine.qemu import NbdExport
from cairn.errors import CairnError, Conflict, InvalidInput, NotFound, Unavailable
from cairn.targets import FilesystemTarget


def test_every_engine_error_is_one_of_the_domain_kinds() -> None:
    kinds = (InvalidInput, NotFound, Conflict, Unavailable, errors.IntegrityError)
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, CairnError), name
        assert issubclass(cls, kinds), name


def test_a_missing_disk_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(errors.SourceError):
        open_source(tmp_path / "nope.raw")


def test_a_broken_qcow2_image_is_a_tool_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"QFI\xfb" + os.urandom(4096))
    with pytest.raises(errors.ToolFailed) as info:
        open_source(bad)
    assert isinstance(info.value, Unavailable) and "qemu-img" in info.value.message


def test_an_nbd_export_of_a_broken_image_is_a_tool_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(b"QFI\xfb" + bytes(4096))
    with pytest.raises(errors.ToolFailed):
        NbdExport(str(bad), "qcow2", readonly=True)


def test_nbd_read_past_the_end_is_a_source_error(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"x" * 65536)
    img = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(img)], check=True)
    export = NbdExport(str(img), "qcow2", readonly=True)
    try:
        with pytest.raises(errors.SourceError):
            export.client.pread_into(memoryview(bytearray(4096)), 1 << 40)
    finally:
        export.close()


def test_a_repository_on_a_full_filesystem_reports_target_full(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        from cairn.engine import Repository
        from tests.engine.diskutil import MIB, make_disk

        repo = Repository.init(FilesystemTarget(mnt / "repo"), chunk_size=65536, pack_size=MIB)
        disk = make_disk(tmp_path / "d.raw", size=4 * MIB, extents=[(0, 3 * MIB, "random")])
        with pytest.raises(errors.TargetFull):
            repo.backup(disk, "full/1")
        assert repo.list_manifests() == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
