"""Damage is always found: verify names it, restore raises, a wrong key is a clear error.

Objects are damaged through the repository's own target (read, altered, written back),
so every test runs on a directory and on a bucket of the development Swift alike: what a
bit flip on a disk or in an object store looks like to Cairn."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from cairn.engine import KeyFile, Passphrase, Repository
from cairn.engine.errors import CorruptObject, IntegrityError, WrongKey
from cairn.engine.packs import PACK_HEADER_SIZE
from cairn.targets import FilesystemTarget
from tests.engine.conftest import FAST_LOCKS, MakeRepo, reopen
from tests.engine.diskutil import MIB, make_disk, sha256


def _keys(repo: Repository, prefix: str) -> list[str]:
    return list(repo.target.list(prefix))


def _flip(repo: Repository, key: str, offset: int) -> None:
    data = bytearray(repo.target.get(key))
    data[offset] ^= 0x01
    repo.target.put(key, data)


def _truncate(repo: Repository, key: str, size: int) -> None:
    repo.target.put(key, repo.target.get(key)[:size])


def _two_snapshots(tmp_path: Path, repo: Repository) -> str:
    raw = make_disk(tmp_path / "d.raw", size=8 * MIB,
                    extents=[(0, 2 * MIB, "text"), (3 * MIB, 1 * MIB, "random")])
    repo.backup(raw, "w/s0/i/d")
    repo.backup(raw, "w/s1/i/d")
    return raw


def test_verify_names_the_corrupt_chunk_and_every_snapshot_that_needs_it(tmp_path: Path, repo: Repository) -> None:
    _two_snapshots(tmp_path, repo)
    pack = _keys(repo, "packs")[0]
    _flip(repo, pack, PACK_HEADER_SIZE + 48 + 10)
    assert repo.verify(deep=False).ok, "quick verify does not read chunk bytes"
    report = reopen(repo).verify(deep=True)
    assert not report.ok
    corrupt = [p for p in report.problems if p.kind == "corrupt-chunk"]
    assert len(corrupt) == 1 and corrupt[0].chunk_id is not None
    assert corrupt[0].manifests == ("w/s0/i/d", "w/s1/i/d")
    assert corrupt[0].file is not None and corrupt[0].file.startswith("packs/")


def test_restore_fails_loudly_on_flipped_pack_byte(tmp_path: Path, repo: Repository) -> None:
    _two_snapshots(tmp_path, repo)
    pack = _keys(repo, "packs")[0]
    _flip(repo, pack, PACK_HEADER_SIZE + 48 + 10)
    with pytest.raises(IntegrityError):
        repo.restore("w/s0/i/d", tmp_path / "out.raw")
    assert not (tmp_path / "out.raw").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


@pytest.mark.parametrize("prefix", ["packs", "index", "manifests"])
def test_any_flipped_byte_is_found_by_verify_and_fails_restore(tmp_path: Path, repo: Repository,
                                                              prefix: str, target_kind: str) -> None:
    raw = _two_snapshots(tmp_path, repo)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    path = _keys(repo, prefix)[0]
    size = repo.target.size(path)
    # The first bytes (headers) always, then random positions all over the file.
    offsets = sorted(set(list(range(0, min(size, 80), 11)) + [rng.randrange(size) for _ in range(6)] + [size - 1]))
    if target_kind == "s3":
        # The sweep tests the decoders, which read a bucket's objects as they read files;
        # a sample shows it, at a second of requests per offset instead of milliseconds.
        offsets = sorted(rng.sample(offsets, 5))
    opened = reopen(repo)
    for offset in offsets:
        _flip(repo, path, offset)
        report = opened.verify(deep=True)
        assert not report.ok, f"flip at {offset} of {path} not found (seed {seed})"
        out = tmp_path / "out.raw"
        restored_all = True
        for key in repo.list_manifests():
            try:
                opened.restore(key, out)
            except IntegrityError:
                restored_all = False
                continue
            assert sha256(out) == sha256(raw), f"wrong data restored after flip at {offset} (seed {seed})"
        if prefix != "manifests":
            assert not restored_all, f"flip at {offset} of {path} went unnoticed by restore (seed {seed})"
        _flip(repo, path, offset)
    assert reopen(repo).verify(deep=True).ok


@pytest.mark.parametrize("prefix", ["packs", "index", "manifests"])
def test_a_truncated_object_is_found_by_verify_and_fails_restore(tmp_path: Path, repo: Repository,
                                                                prefix: str) -> None:
    _two_snapshots(tmp_path, repo)
    key = _keys(repo, prefix)[0]
    _truncate(repo, key, repo.target.size(key) // 2)  # an upload or a copy cut short
    opened = reopen(repo)
    report = opened.verify(deep=True)
    assert not report.ok
    assert all(p.message for p in report.problems)
    with pytest.raises(IntegrityError) as info:
        for manifest in ("w/s0/i/d", "w/s1/i/d"):
            opened.restore(manifest, tmp_path / "out.raw")
    assert str(info.value), "the error says what is wrong"


def test_a_damaged_manifest_is_reported_by_quick_verify(tmp_path: Path, repo: Repository) -> None:
    _two_snapshots(tmp_path, repo)
    manifest = _keys(repo, "manifests")[0]
    _flip(repo, manifest, 100)
    report = repo.verify()
    assert [p.kind for p in report.problems] == ["corrupt-manifest"]
    with pytest.raises(CorruptObject):
        repo.restore("w/s0/i/d", tmp_path / "o.raw")


def test_a_missing_pack_is_reported_with_its_snapshots(tmp_path: Path, repo: Repository) -> None:
    _two_snapshots(tmp_path, repo)
    for pack in _keys(repo, "packs"):
        repo.target.delete(pack)
    report = repo.verify()
    assert {p.kind for p in report.problems} == {"missing-pack"}
    assert all(p.manifests == ("w/s0/i/d", "w/s1/i/d") for p in report.problems)
    with pytest.raises(IntegrityError):
        repo.restore("w/s1/i/d", tmp_path / "o.raw")


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(encrypted=True)
    with pytest.raises(WrongKey, match="wrong passphrase"):
        Repository.open(repo.target, key=Passphrase("not it"))
    with pytest.raises(WrongKey, match="encrypted"):
        Repository.open(repo.target)


def test_key_file_opens_what_it_encrypted(tmp_path: Path) -> None:
    keyfile = tmp_path / "secret.key"
    keyfile.write_bytes(os.urandom(64))
    target = FilesystemTarget(tmp_path / "repo", fsync=False)
    repo = Repository.init(target, encryption=KeyFile(str(keyfile)), chunk_size=65536, pack_size=MIB,
                           timing=FAST_LOCKS)
    raw = make_disk(tmp_path / "d.raw", size=2 * MIB, extents=[(0, MIB, "text")])
    repo.backup(raw, "k/1")
    again = Repository.open(target, key=KeyFile(str(keyfile)))
    again.restore("k/1", tmp_path / "o.raw")
    assert sha256(tmp_path / "o.raw") == sha256(raw)
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(64))
    with pytest.raises(WrongKey):
        Repository.open(target, key=KeyFile(str(other)))


def test_encrypted_repository_stores_no_plaintext(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(encrypted=True)
    raw = tmp_path / "d.raw"
    marker = b"CAIRN-PLAINTEXT-MARKER-" * 4000
    raw.write_bytes(marker)
    repo.backup(str(raw), "e/1")
    for pack in _keys(repo, "packs"):
        assert b"CAIRN-PLAINTEXT-MARKER" not in repo.target.get(pack)


def test_a_damaged_key_file_is_reported_by_verify_and_is_not_a_wrong_passphrase(
        tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(encrypted=True)
    [keyfile] = _keys(repo, "keys")
    _flip(repo, keyfile, 100)
    report = repo.verify()
    assert [p.kind for p in report.problems] == ["corrupt-key"]
    with pytest.raises(CorruptObject, match="key file checksum"):
        reopen(repo)  # the only key is damaged: say so, do not blame the passphrase


@pytest.mark.parametrize("damage", ["bytes after the frame", "frame cut short"])
def test_a_blob_whose_zstd_frame_does_not_fill_its_payload_exactly_is_corrupt(damage: str) -> None:
    import struct

    from cairn.engine.chunks import BLOB_HEADER, BLOB_MAGIC, ENC_ZSTD, decode_blob, encode_chunk
    from cairn.engine.crypto import Sealer
    from cairn.engine.errors import CorruptChunk

    sealer = Sealer(None)  # unencrypted: no GCM tag would catch it, the decoder must
    data = b"restore me " * 20000
    cid = sealer.chunk_id(data)
    header, payload = encode_chunk(data, cid, sealer)
    assert decode_blob(header + payload, sealer, "p@32", cid) == data
    payload = payload + b"junk" if damage == "bytes after the frame" else payload[:-4]
    forged = struct.pack(BLOB_HEADER, BLOB_MAGIC, ENC_ZSTD, len(payload), len(data), cid)
    with pytest.raises(CorruptChunk, match="decompress"):
        decode_blob(forged + payload, sealer, "p@32", cid)
