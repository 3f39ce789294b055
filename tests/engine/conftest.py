"""Repositories for the engine tests, on each kind of target: a directory, and a prefix
of a bucket on the one-node Swift of scripts/swift-dev.sh (through its S3 API).

Every test that takes `make_repo` or `repo` runs once per target kind, except tests that
need the repository as a directory: those reach `repo_path` (to damage files in place,
to list `.tmp-` files, or to hand the path to tests/engine/worker.py in a subprocess)
and run on the filesystem only. The S3 target's own damage, crash-garbage and
concurrency behaviour is tested in tests/targets/test_s3.py.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.engine import LockTiming, Passphrase, Repository
from cairn.targets import FilesystemTarget, Target

# Small sizes keep the suite fast; the format does not care.
CHUNK = 64 * 1024
PACK = 1024 * 1024
FAST_LOCKS = LockTiming(heartbeat_seconds=0.2, stale_seconds=5.0, gc_wait_seconds=20.0)
PASSPHRASE = "correct horse battery staple"
TARGET_KINDS = ("filesystem", "s3")


def _reaches(code: types.CodeType, module: dict[str, Any], name: str, seen: set[int]) -> bool:
    """Does `code`, or a module-level function it calls, or code nested in either, use `name`?"""
    if id(code) in seen:
        return False
    seen.add(id(code))
    if name in code.co_names:
        return True
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and _reaches(const, module, name, seen):
            return True
    for used in code.co_names:
        fn = module.get(used)
        if isinstance(fn, types.FunctionType) and fn.__module__ == module.get("__name__") \
                and _reaches(fn.__code__, module, name, seen):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target_kind" not in metafunc.fixturenames:
        return
    fn = metafunc.function
    needs_path = _reaches(fn.__code__, fn.__globals__, "repo_path", set())
    metafunc.parametrize("target_kind", ["filesystem"] if needs_path else list(TARGET_KINDS), scope="function")

#: what the `make_repo` fixture is: a new repository, from init's options
MakeRepo = Callable[..., Repository]


@pytest.fixture
def make_repo(tmp_path: Path, target_kind: str) -> Iterator[Callable[..., Repository]]:
    made: list[Any] = []

    def make(encrypted: bool = False, name: str = "repo", chunk_size: int = CHUNK, pack_size: int = PACK) -> Repository:
        target: Target
        if target_kind == "s3":
            from cairn.targets.s3 import S3Target
            from tests import swiftdev

            swiftdev.require_swift()
            target = S3Target(swiftdev.settings(), create_bucket=True)
            made.append(target)
        else:
            target = FilesystemTarget(tmp_path / name, fsync=False)
        return Repository.init(target, encryption=Passphrase(PASSPHRASE) if encrypted else None,
                               chunk_size=chunk_size, pack_size=pack_size, timing=FAST_LOCKS)

    yield make
    if made:
        from tests import swiftdev

        for target in made:
            swiftdev.purge(target.prefix, bucket=target.bucket)
            target.close()


@pytest.fixture(params=[False, True], ids=["plain", "encrypted"])
def repo(request: pytest.FixtureRequest, make_repo: Callable[..., Repository]) -> Repository:
    return make_repo(encrypted=request.param)


def reopen(repo: Repository) -> Repository:
    key = Passphrase(PASSPHRASE) if repo.config.encrypted else None
    return Repository.open(repo.target, key=key, timing=FAST_LOCKS)


def repo_path(repo: Repository) -> str:
    """The directory of a filesystem repository (tests that call this run on the
    filesystem only, see the module docstring)."""
    return os.fspath(repo.target.root)  # type: ignore[attr-defined]
