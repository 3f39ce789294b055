"""Backups restore bit-exactly: raw and qcow2 sources, plain and encrypted, full and incremental."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cairn.engine import Repository, open_source
from cairn.engine.errors import BadManifestKey, Cancelled, ManifestExists, ManifestNotFound
from cairn.engine.sources import Qcow2Source, RawSource
from cairn.errors import InvalidInput
from tests.engine.conftest import CHUNK, MakeRepo, reopen
from tests.engine.diskutil import MIB, make_disk, qcow2_sha256, scribble, sha256, to_qcow2


def _source_path(tmp_path: Path, raw: str, kind: str, tag: str) -> str:
    if kind == "raw":
        return raw
    return to_qcow2(raw, str(tmp_path / f"{tag}.qcow2"), compressed=(kind == "qcow2-compressed"))


@pytest.mark.parametrize("kind", ["raw", "qcow2", "qcow2-compressed"])
def test_full_and_incremental_backups_restore_bit_exact(tmp_path: Path, repo: Repository, kind: str) -> None:
    raw = make_disk(tmp_path / "disk.raw", seed=3)
    expected = {"w/s0/i/d": sha256(raw)}
    repo.backup(_source_path(tmp_path, raw, kind, "s0"), "w/s0/i/d")

    changed = scribble(raw, seed=4)
    expected["w/s1/i/d"] = sha256(raw)
    no_map = repo.backup(_source_path(tmp_path, raw, kind, "s1"), "w/s1/i/d", parent_key="w/s0/i/d")
    assert 1 <= no_map.chunks_new <= len(changed) * 2

    changed = scribble(raw, seed=5)
    expected["w/s2/i/d"] = sha256(raw)
    with_map = repo.backup(_source_path(tmp_path, raw, kind, "s2"), "w/s2/i/d", parent_key="w/s1/i/d",
                           changed_ranges=changed)
    assert with_map.bytes_read <= len(changed) * 2 * CHUNK
    assert 1 <= with_map.chunks_new <= len(changed) * 2

    repo = reopen(repo)
    for key, digest in expected.items():
        out = tmp_path / f"{key.replace('/', '_')}.raw"
        repo.restore(key, out)
        assert sha256(out) == digest, key
    assert repo.verify(deep=True).ok


def test_restore_to_qcow2_is_bit_exact(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "disk.raw", seed=6)
    repo.backup(raw, "a/b")
    repo.restore("a/b", tmp_path / "out.qcow2", format="qcow2")
    with open(tmp_path / "out.qcow2", "rb") as handle:
        assert handle.read(4) == b"QFI\xfb"
    assert qcow2_sha256(str(tmp_path / "out.qcow2"), str(tmp_path / "check.raw")) == sha256(raw)


def test_holes_are_never_read_and_zero_chunks_never_stored(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "sparse.raw", size=64 * MIB,
                    extents=[(3 * MIB, 1 * MIB, "random"), (20 * MIB, 2 * MIB, "zero")])
    result = repo.backup(raw, "s/1")
    # The data extents are exactly 3 MiB (1 MiB random + 2 MiB of written zeros).
    assert result.bytes_read == 3 * MIB
    assert result.chunks_new == MIB // CHUNK
    assert result.chunks_zero == result.chunks_total - MIB // CHUNK
    repo.restore("s/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(raw)
    # Zero chunks come back as holes, not as written zeros.
    assert os.stat(tmp_path / "out.raw").st_blocks * 512 <= 2 * MIB


def test_incremental_with_map_reads_only_changed_chunks(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=32 * MIB, extents=[(0, 32 * MIB, "random")])
    repo.backup(raw, "d/0")
    changed = [(5 * CHUNK + 10, 100), (17 * CHUNK, 2 * CHUNK)]
    with open(raw, "r+b") as handle:
        for off, length in changed:
            handle.seek(off)
            handle.write(os.urandom(length))
    result = repo.backup(raw, "d/1", parent_key="d/0", changed_ranges=changed)
    assert result.bytes_read == 3 * CHUNK
    assert result.chunks_new == 3
    repo.restore("d/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(raw)


def test_incremental_follows_a_grown_disk(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=8 * MIB + 777, extents=[(0, 8 * MIB + 777, "text")])
    repo.backup(raw, "g/0")
    with open(raw, "ab") as handle:
        handle.write(os.urandom(3 * CHUNK + 5))
    repo.backup(raw, "g/1", parent_key="g/0", changed_ranges=[(8 * MIB + 777, 3 * CHUNK + 5)])
    repo.restore("g/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(raw)


def test_open_source_detects_raw_and_qcow2_and_reads_qcow2_directly_when_it_can(tmp_path: Path) -> None:
    raw = make_disk(tmp_path / "d.raw", size=8 * MIB, extents=[(MIB, MIB, "random")])
    plain = to_qcow2(raw, str(tmp_path / "d.qcow2"))
    packed = to_qcow2(raw, str(tmp_path / "c.qcow2"), compressed=True)
    with open_source(raw) as src:
        assert isinstance(src, RawSource) and src.size == 8 * MIB
        assert [(e.offset, e.length) for e in src.data_extents()] == [(MIB, MIB)]
    with open_source(plain) as src:
        assert isinstance(src, Qcow2Source) and not src.reads_through_nbd
    with open_source(packed) as src:
        # Random data does not compress, so qemu stores it plainly; force NBD with text.
        assert isinstance(src, Qcow2Source)
    text = make_disk(tmp_path / "t.raw", size=8 * MIB, extents=[(0, 2 * MIB, "text")])
    with open_source(to_qcow2(text, str(tmp_path / "t.qcow2"), compressed=True)) as src:
        assert isinstance(src, Qcow2Source) and src.reads_through_nbd


def test_every_manifest_restores_after_its_parent_is_deleted_and_collected(tmp_path: Path, repo: Repository) -> None:
    raw = make_disk(tmp_path / "d.raw", seed=9)
    repo.backup(raw, "p/0")
    changed = scribble(raw, seed=10)
    repo.backup(raw, "p/1", parent_key="p/0", changed_ranges=changed)
    repo.delete_manifest("p/0")
    repo.gc()
    assert repo.verify(deep=True).ok
    repo.restore("p/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(raw)


def test_cancelled_backup_leaves_only_garbage_that_gc_removes(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(pack_size=256 * 1024)
    raw = make_disk(tmp_path / "d.raw", extents=[(0, 16 * MIB, "random")])
    calls = iter(range(1000))
    with pytest.raises(Cancelled):
        repo.backup(raw, "c/1", cancel=lambda: next(calls) > 100)
    assert repo.list_manifests() == []
    assert repo.stats().packs > 0
    assert repo.verify(deep=True).ok
    report = repo.gc()
    assert report.packs_deleted > 0
    assert repo.stats().packs == 0
    assert repo.verify(deep=True).ok


def test_progress_reaches_the_disk_size(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=4 * MIB, extents=[(0, 4 * MIB, "text")])
    seen: list[tuple[int, int]] = []
    repo.backup(raw, "x/1", progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4 * MIB, 4 * MIB)
    restored: list[tuple[int, int]] = []
    repo.restore("x/1", tmp_path / "o.raw", progress=lambda d, t: restored.append((d, t)))
    assert restored[-1] == (4 * MIB, 4 * MIB)


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a//b", "a/./b", "a/../b", "", "a/.tmp-x"])
def test_unsafe_manifest_keys_are_refused(tmp_path: Path, make_repo: MakeRepo, key: str) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=MIB, extents=[(0, 1000, "text")])
    with pytest.raises(BadManifestKey):
        repo.backup(raw, key)
    assert isinstance(BadManifestKey("x"), InvalidInput)


def test_manifests_are_immutable_and_missing_ones_are_not_found(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=MIB, extents=[(0, 1000, "text")])
    repo.backup(raw, "m/1")
    with pytest.raises(ManifestExists):
        repo.backup(raw, "m/1")
    with pytest.raises(ManifestNotFound):
        repo.restore("m/2", tmp_path / "o.raw")
    with pytest.raises(ManifestNotFound):
        repo.delete_manifest("m/2")
    assert not (tmp_path / "o.raw").exists()


def test_changed_ranges_without_parent_are_refused(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=MIB, extents=[(0, 1000, "text")])
    with pytest.raises(InvalidInput):
        repo.backup(raw, "m/1", changed_ranges=[(0, 10)])


def test_backups_deduplicate_identical_disks(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", seed=12)
    first = repo.backup(raw, "a/1")
    shutil.copy(raw, tmp_path / "copy.raw")
    second = repo.backup(str(tmp_path / "copy.raw"), "b/1")
    assert first.chunks_new > 0 and second.chunks_new == 0
    # Only the manifest is new: header, one id per chunk, checksum.
    assert second.bytes_added == 64 + 32 * second.chunks_total + 32
