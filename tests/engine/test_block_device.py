"""Block devices as sources and restore destinations, through real loop devices."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.engine import open_source
from cairn.engine.sources import BlockSource
from tests.engine.conftest import MakeRepo
from tests.engine.diskutil import MIB, make_disk, sha256


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[str, str]]:
    backing = make_disk(tmp_path / "backing.raw", size=8 * MIB, seed=31)
    proc = subprocess.run(["losetup", "-f", "--show", backing], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"no loop devices here: {proc.stderr.strip()}")
    device = proc.stdout.strip()
    try:
        yield device, backing
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_block_device_backs_up_and_restores_onto_another_device(tmp_path: Path, make_repo: MakeRepo,
                                                                  loop_device: tuple[str, str]) -> None:
    device, backing = loop_device
    expected = sha256(backing)
    with open_source(device) as src:
        assert isinstance(src, BlockSource) and src.size == 8 * MIB
    repo = make_repo()
    result = repo.backup(device, "blk/1")
    assert result.bytes_read == 8 * MIB  # a block device shows no holes
    # Restore onto the same device after scribbling over it: zero chunks must be written too.
    with open(device, "r+b") as handle:
        handle.write(b"\xff" * (8 * MIB))
    repo.restore("blk/1", device)
    subprocess.run(["sync"], check=True)
    assert sha256(device) == expected
