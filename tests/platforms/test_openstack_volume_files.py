"""A restored volume's file brought to Cinder's size, in the format Cinder made it in
(real `qemu-img`, real files): the snapshot's disk may be smaller than the volume, as an
image-backed root disk restored into a volume of whole GiB is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cairn.platforms.disk_probe import probe_disk
from cairn.platforms.openstack_restore import grow_volume_file

MiB = 1 << 20
GiB = 1 << 30


def test_a_qcow2_volume_file_is_resized_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "volume-q"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(512 * MiB)], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 1M", str(path)], check=True)
    grow_volume_file(str(path), "qcow2", GiB)
    assert probe_disk(str(path)) == ("qcow2", GiB)
    checked = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0xab 1M 1M", str(path)],
                             capture_output=True, text=True, check=True)
    assert "Pattern verification failed" not in checked.stdout


def test_a_raw_volume_file_is_extended_sparse(tmp_path: Path) -> None:
    path = tmp_path / "volume-r"
    path.write_bytes(b"\x01" * MiB)
    grow_volume_file(str(path), "raw", GiB)
    assert probe_disk(str(path)) == ("raw", GiB)
    assert path.read_bytes()[:MiB] == b"\x01" * MiB
    assert os.stat(path).st_blocks * 512 < 16 * MiB


def test_a_volume_file_already_of_the_size_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "volume-q"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(GiB)], check=True)
    before = path.read_bytes()
    grow_volume_file(str(path), "qcow2", GiB)
    assert path.read_bytes() == before
