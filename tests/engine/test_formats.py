"""Every on-disk header has a fixed size and refuses versions it does not know."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cairn.engine import Repository, config, crypto, index, manifest, packs
from cairn.engine.chunks import BLOB_HEADER
from cairn.engine.errors import UnsupportedFormat
from tests.engine.conftest import MakeRepo, repo_path
from tests.engine.diskutil import MIB, make_disk


def test_header_sizes_are_fixed() -> None:
    assert struct.calcsize(config.CONFIG_FORMAT) == 64
    assert struct.calcsize(crypto.KEYFILE_HEADER) == 68
    assert crypto.KEYFILE_SIZE == 68 + 80 + 32
    assert struct.calcsize(packs.PACK_HEADER) == 32
    assert struct.calcsize(BLOB_HEADER) == 48
    assert struct.calcsize(index.INDEX_HEADER) == 32
    assert struct.calcsize(index.INDEX_ENTRY) == 64
    assert struct.calcsize(manifest.MANIFEST_HEADER) == 64


def test_all_formats_are_little_endian() -> None:
    for fmt in (config.CONFIG_FORMAT, crypto.KEYFILE_HEADER, packs.PACK_HEADER, BLOB_HEADER,
                index.INDEX_HEADER, index.INDEX_ENTRY, manifest.MANIFEST_HEADER):
        assert fmt.startswith("<")


def _bump_version(path: Path, offset: int = 8) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, offset, 99)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("what", ["config", "manifest", "index", "pack"])
def test_unknown_versions_are_refused_with_a_clear_error(tmp_path: Path, make_repo: MakeRepo, what: str) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=2 * MIB, extents=[(0, MIB, "text")])
    repo.backup(raw, "v/1")
    root = Path(repo_path(repo))
    prefix = {"config": "config", "manifest": "manifests", "index": "index", "pack": "packs"}[what]
    victim = root / "config" if what == "config" else next(p for p in (root / prefix).rglob("*") if p.is_file())
    _bump_version(victim)
    with pytest.raises(UnsupportedFormat, match="version 99 is not supported"):
        opened = Repository.open(repo.target)
        if what == "pack":
            from cairn.engine.packs import check_pack_header
            check_pack_header(victim.read_bytes(), str(victim.relative_to(root)))
        opened.restore("v/1", tmp_path / "o.raw")
