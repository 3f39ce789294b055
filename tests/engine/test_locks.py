"""Lock files and their beat files (docs/format.md, section 10)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cairn.engine import LockTiming, Repository
from cairn.engine.errors import RepositoryBusy
from cairn.engine.locks import EXCLUSIVE_KEY, Lock, beat_key, read_lock, remove_lock
from cairn.targets import FilesystemTarget
from tests.conftest import wait_until

QUICK = LockTiming(heartbeat_seconds=0.05, stale_seconds=0.6, gc_wait_seconds=5.0)


class RemovedMidBeat:
    """A target on which a GC removes the lock `victim` just after a heartbeat has seen
    that it exists, and before the heartbeat writes: the narrowest window there is."""

    def __init__(self, inner: FilesystemTarget) -> None:
        self.inner = inner
        self.victim: str | None = None
        self.removed = False

    def exists(self, key: str) -> bool:
        found = self.inner.exists(key)
        if key == self.victim and found and not self.removed:
            remove_lock(self.inner, key)
            self.removed = True
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_lock_removed_as_stale_mid_heartbeat_is_never_written_back(tmp_path: Path) -> None:
    target = RemovedMidBeat(FilesystemTarget(tmp_path / "t", fsync=False))
    with Lock(target, "backup", QUICK) as lock:
        target.victim = lock.key
        wait_until(lambda: lock.error is not None, timeout=10, interval=0.01)
        assert target.removed and not target.inner.exists(lock.key)
        with pytest.raises(RepositoryBusy, match="removed as stale"):
            lock.check()


def test_a_held_lock_stays_fresh_through_its_beat_file(tmp_path: Path) -> None:
    target = FilesystemTarget(tmp_path / "t", fsync=False)
    timing = LockTiming(heartbeat_seconds=0.05, stale_seconds=1.5, gc_wait_seconds=5.0)
    with Lock(target, "restore", timing) as lock:
        written = target.get(lock.key)
        time.sleep(timing.stale_seconds + 0.5)  # the lock file's own heartbeat is stale by now
        assert target.get(lock.key) == written  # the lock file itself is written once
        record = read_lock(target, lock.key)
        assert record is not None and not record.is_stale(timing)
        lock.check()
    assert list(target.list("locks")) == []


def test_a_beat_left_by_an_earlier_exclusive_holder_does_not_keep_a_new_one_fresh(tmp_path: Path) -> None:
    target = FilesystemTarget(tmp_path / "t", fsync=False)
    long_ago = time.time() - 3600
    target.put(EXCLUSIVE_KEY, json.dumps({"kind": "gc", "id": "b" * 16, "host": "elsewhere", "pid": 1,
                                          "created": long_ago, "heartbeat": long_ago}).encode())
    target.put(beat_key(EXCLUSIVE_KEY), json.dumps({"id": "a" * 16, "heartbeat": time.time()}).encode())
    record = read_lock(target, EXCLUSIVE_KEY)
    assert record is not None and record.is_stale(QUICK)


def test_gc_removes_beat_files_whose_lock_is_gone(make_repo: Callable[..., Repository]) -> None:
    repo = make_repo()
    orphan = beat_key("locks/backup-0123456789abcdef.lock")
    repo.target.put(orphan, json.dumps({"id": "0123456789abcdef", "heartbeat": time.time()}).encode())
    repo.gc()
    assert list(repo.target.list("locks")) == []
