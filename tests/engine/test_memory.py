"""Peak memory of a backup and a restore does not grow with the disk size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.diskutil import MIB, make_disk, sha256

# VmHWM, not getrusage: a child started with vfork reports its parent's peak in
# ru_maxrss (Linux carries the pre-exec high-water mark over), and pytest's own memory
# is not the engine's.
SCRIPT = """
import sys
from cairn.engine import Repository
from cairn.targets import FilesystemTarget
target = FilesystemTarget(sys.argv[1], fsync=False)
repo = Repository.init(target, chunk_size=1 << 20, pack_size=8 << 20)
repo.backup(sys.argv[2], "m/1")
repo.restore("m/1", sys.argv[3])
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def _peak_kib(tmp_path: Path, size: int) -> int:
    piece = min(size, 16 * MIB)
    # 1 MiB chunks: the production size, and the O_DIRECT restore path.
    disk = make_disk(tmp_path / f"d{size}.raw", size=size,
                     extents=[(off, piece, "random") for off in range(0, size, piece)])
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"r{size}"), disk, str(tmp_path / f"o{size}")],
                         check=True, capture_output=True, text=True)
    assert sha256(tmp_path / f"o{size}") == sha256(disk)
    return int(out.stdout.strip())


@pytest.mark.slow
def test_peak_memory_is_independent_of_disk_size(tmp_path: Path) -> None:
    # 64 MiB: enough chunks to pass through every pooled restore buffer, so both runs
    # hold the same buffers and the difference is what the size itself costs.
    small = _peak_kib(tmp_path, 64 * MIB)
    large = _peak_kib(tmp_path, 512 * MIB)
    # 8x the data may cost a little bookkeeping (manifest ids, index entries), not buffers.
    assert large - small < 16 * 1024, (small, large)
    assert large < 256 * 1024
