"""The golden repositories in tests/fixtures/engine open, verify and restore with this code."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from cairn.engine import Passphrase, Repository
from cairn.engine.errors import IntegrityError
from cairn.targets import FilesystemTarget
from tests.engine.diskutil import sha256

FIXTURES = Path(__file__).parents[1] / "fixtures" / "engine"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def _unpack(name: str, tmp_path: Path) -> FilesystemTarget:
    with tarfile.open(FIXTURES / f"format-v1-{name}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    return FilesystemTarget(tmp_path / "repo", fsync=False)


@pytest.mark.parametrize("name", ["plain", "encrypted"])
def test_golden_repository_verifies_and_restores_bit_exact(tmp_path: Path, name: str) -> None:
    key = Passphrase(EXPECTED["passphrase"]) if name == "encrypted" else None
    repo = Repository.open(_unpack(name, tmp_path), key=key)
    assert repo.verify(deep=True).ok
    assert sorted(repo.list_manifests()) == sorted(EXPECTED[name])
    for manifest_key, digest in EXPECTED[name].items():
        repo.restore(manifest_key, tmp_path / "out.raw")
        assert sha256(tmp_path / "out.raw") == digest


def test_broken_golden_repository_names_the_damaged_chunk_and_its_snapshots(tmp_path: Path) -> None:
    repo = Repository.open(_unpack("broken", tmp_path))
    report = repo.verify(deep=True)
    assert not report.ok
    [problem] = report.problems
    assert problem.kind == "corrupt-chunk"
    assert problem.chunk_id == EXPECTED["broken"]["corrupt_chunk"]
    assert problem.file == EXPECTED["broken"]["pack"]
    assert set(problem.manifests) == set(EXPECTED["plain"])
    with pytest.raises(IntegrityError):
        repo.restore("golden/s0/vm/disk0", tmp_path / "out.raw")
