from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.engine import LockTiming, Passphrase, Repository
from cairn.targets import FilesystemTarget

# Small sizes keep the suite fast; the format does not care.
CHUNK = 64 * 1024
PACK = 1024 * 1024
FAST_LOCKS = LockTiming(heartbeat_seconds=0.2, stale_seconds=5.0, gc_wait_seconds=20.0)
PASSPHRASE = "correct horse battery staple"

#: what the `make_repo` fixture is: a new repository, from init's options
MakeRepo = Callable[..., Repository]


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    def make(encrypted: bool = False, name: str = "repo", chunk_size: int = CHUNK, pack_size: int = PACK) -> Repository:
        target = FilesystemTarget(tmp_path / name, fsync=False)
        return Repository.init(target, encryption=Passphrase(PASSPHRASE) if encrypted else None,
                               chunk_size=chunk_size, pack_size=pack_size, timing=FAST_LOCKS)
    return make


@pytest.fixture(params=[False, True], ids=["plain", "encrypted"])
def repo(request: pytest.FixtureRequest, make_repo: Callable[..., Repository]) -> Repository:
    return make_repo(encrypted=request.param)


def reopen(repo: Repository) -> Repository:
    key = Passphrase(PASSPHRASE) if repo.config.encrypted else None
    return Repository.open(repo.target, key=key, timing=FAST_LOCKS)


def repo_path(repo: Repository) -> str:
    return os.fspath(repo.target.root)  # type: ignore[attr-defined]
