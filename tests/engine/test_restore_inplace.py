"""In-place restores write only the chunks that differ from the disk as it is.

The count comes from the restore's own result (`bytes_written`, `chunks_written`,
`bytes_read` of packs), which the writers and readers add up as they go: no timing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cairn.engine import Repository
from tests.engine.conftest import CHUNK, MakeRepo
from tests.engine.diskutil import MIB, make_disk, qcow2_sha256, sha256, to_qcow2


def _overwrite(path: str | os.PathLike[str], offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def test_inplace_restore_of_an_unchanged_disk_writes_nothing(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "disk.raw", seed=11)
    repo.backup(raw, "w/s0/i/d")
    result = repo.restore("w/s0/i/d", raw, inplace=True)
    assert result.inplace
    assert result.bytes_written == 0 and result.chunks_written == 0 and result.bytes_read == 0
    assert result.chunks_unchanged == os.path.getsize(raw) // CHUNK


def test_inplace_restore_writes_only_the_chunks_that_differ(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(encrypted=True)
    raw = make_disk(tmp_path / "disk.raw", size=16 * MIB, extents=[(0, 8 * MIB, "random"), (12 * MIB, MIB, "random")])
    repo.backup(raw, "w/s0/i/d")
    expected = sha256(raw)
    keep = tmp_path / "kept.raw"
    shutil.copyfile(raw, keep)
    # Damage three chunks: new bytes inside two data chunks and data where a hole was
    # (the manifest has zeros there, so the restore must write zeros back).
    _overwrite(raw, 3 * CHUNK + 100, os.urandom(500))
    _overwrite(raw, 40 * CHUNK, os.urandom(CHUNK))
    _overwrite(raw, 160 * CHUNK + 7, b"x")
    inode = os.stat(raw).st_ino

    result = repo.restore("w/s0/i/d", raw, inplace=True)

    assert sha256(raw) == expected
    assert os.stat(raw).st_ino == inode  # the disk itself was written, not replaced
    assert result.chunks_written == 3
    assert result.bytes_written == 3 * CHUNK
    assert result.chunks_unchanged == 16 * MIB // CHUNK - 3
    # Two data chunks fetched (the zero chunk comes from no pack), a few blob headers over.
    assert CHUNK // 2 <= result.bytes_read <= 2 * CHUNK + 4096


def test_full_restore_writes_every_data_chunk(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "disk.raw", size=8 * MIB, extents=[(0, 2 * MIB, "random")])
    repo.backup(raw, "a/1")
    result = repo.restore("a/1", tmp_path / "out.raw")
    assert not result.inplace
    assert result.bytes_written == 2 * MIB and result.chunks_unchanged == 0
    assert sha256(tmp_path / "out.raw") == sha256(raw)


def test_inplace_restore_of_a_missing_disk_restores_it_whole(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "disk.raw", size=4 * MIB, extents=[(0, MIB, "random")])
    repo.backup(raw, "a/1")
    out = tmp_path / "gone.raw"
    result = repo.restore("a/1", out, inplace=True)
    assert not result.inplace and result.bytes_written == MIB
    assert sha256(out) == sha256(raw)


def test_inplace_restore_fixes_a_disk_that_changed_size(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "disk.raw", size=4 * MIB, extents=[(0, 4 * MIB, "random")])
    repo.backup(raw, "a/1")
    expected = sha256(raw)
    with open(raw, "r+b") as handle:
        handle.truncate(3 * MIB)
    result = repo.restore("a/1", raw, inplace=True)
    assert sha256(raw) == expected
    assert result.bytes_written == MIB
    with open(raw, "r+b") as handle:
        handle.truncate(6 * MIB)
        handle.seek(5 * MIB)
        handle.write(b"tail")
    result = repo.restore("a/1", raw, inplace=True)
    assert sha256(raw) == expected and result.bytes_written == 0


def test_inplace_restore_of_a_qcow2_disk_writes_only_what_differs(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "disk.raw", size=8 * MIB, extents=[(0, 4 * MIB, "random")])
    image = to_qcow2(raw, str(tmp_path / "disk.qcow2"))
    repo.backup(image, "q/1")
    expected = sha256(raw)
    _overwrite(raw, 2 * CHUNK, os.urandom(CHUNK))
    os.unlink(image)
    to_qcow2(raw, image)
    result = repo.restore("q/1", image, format="qcow2", inplace=True)
    assert result.inplace and result.chunks_written == 1 and result.bytes_written == CHUNK
    assert qcow2_sha256(image, str(tmp_path / "check.raw")) == expected
