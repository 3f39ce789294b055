"""Copying a manifest into another repository (a workload moving to another project):
bit-exact, deduplicated in the destination, done once, and the source only read."""

from __future__ import annotations

from pathlib import Path

from cairn.engine.copy import ManifestSource, copy_manifest
from tests.engine.conftest import CHUNK, MakeRepo
from tests.engine.diskutil import MIB, make_disk, scribble, sha256


def test_a_copied_manifest_restores_bit_exact_from_an_encrypted_source(tmp_path: Path,
                                                                       make_repo: MakeRepo) -> None:
    source = make_repo(encrypted=True, name="old")
    destination = make_repo(name="new")
    # an odd size: the last chunk is short
    disk = make_disk(tmp_path / "disk.raw", size=3 * MIB + 4097, seed=3)
    source.backup(disk, "w/s1/i/0")
    def stored() -> list[str]:
        return sorted(k for prefix in ("packs", "index", "manifests", "locks") for k in source.target.list(prefix))
    before = stored()
    result = copy_manifest(source, destination, "w/s1/i/0")
    assert result is not None and result.disk_size == 3 * MIB + 4097
    destination.restore("w/s1/i/0", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(disk)
    assert destination.verify(deep=True).ok
    assert stored() == before  # the source is only read (its lock is gone)
    assert copy_manifest(source, destination, "w/s1/i/0") is None  # once copied, not again


def test_a_second_snapshot_copies_only_chunks_the_destination_lacks(tmp_path: Path, make_repo: MakeRepo) -> None:
    source, destination = make_repo(name="old"), make_repo(name="new")
    disk = make_disk(tmp_path / "disk.raw", size=4 * MIB, seed=4)
    source.backup(disk, "w/s1/i/0")
    scribble(disk, seed=5, count=2, length=4096)
    source.backup(disk, "w/s2/i/0", parent_key="w/s1/i/0")
    first = copy_manifest(source, destination, "w/s1/i/0")
    second = copy_manifest(source, destination, "w/s2/i/0")
    assert first is not None and second is not None
    assert second.chunks_new <= 2 < first.chunks_new
    destination.restore("w/s2/i/0", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(disk)


def test_the_manifest_source_reads_zeros_where_the_manifest_has_none(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    disk = make_disk(tmp_path / "disk.raw", size=2 * MIB, seed=6, extents=[(CHUNK, 100, "random")])
    repo.backup(disk, "w/s/i/0")
    view = ManifestSource(repo, "w/s/i/0")
    assert [(e.offset, e.length) for e in view.data_extents()] == [(CHUNK, CHUNK)]
    buf = bytearray(3 * CHUNK)
    view.read_into(memoryview(buf), 0)
    assert bytes(buf) == Path(disk).read_bytes()[:3 * CHUNK]
