"""SIGKILL at random moments: the repository always verifies and every snapshot restores.

Real processes, killed with SIGKILL; the random seed is printed so a failure replays.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cairn.engine import Repository
from tests.engine.conftest import MakeRepo, repo_path
from tests.engine.diskutil import MIB, make_disk, sha256
from tests.engine.worker import loop_disk

WORKER = str(Path(__file__).with_name("worker.py"))
CWD = str(Path(__file__).parents[2])


def _check_everything(repo: Repository, workdir: Path, expected: dict[str, str], seed: int) -> None:
    report = repo.verify(deep=True)
    assert report.ok, f"seed {seed}: {report.problems}"
    out = workdir / "restored.raw"
    for key in repo.list_manifests():
        repo.restore(key, out)
        assert sha256(out) == expected[key], f"seed {seed}: {key} restored wrong data"


def _expected_for(key: str, workdir: Path, cache: dict[str, str]) -> str:
    if key not in cache:
        seed, j = key[1:].split("/")
        cache[key] = sha256(loop_disk(str(workdir), int(seed), int(j)))
    return cache[key]


@pytest.mark.slow
def test_backup_killed_at_20_random_moments_leaves_a_verifying_repository(tmp_path: Path, make_repo: MakeRepo) -> None:
    seed = random.randrange(1 << 30)
    print(f"crash seed {seed}")
    rng = random.Random(seed)
    repo = make_repo(pack_size=256 * 1024)
    expected: dict[str, str] = {}
    for i in range(20):
        proc = subprocess.Popen([sys.executable, WORKER, "loop", repo_path(repo), str(tmp_path), str(i)], cwd=CWD)
        time.sleep(rng.uniform(0.2, 0.75))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for key in repo.list_manifests():
            _expected_for(key, tmp_path, expected)
        committed = sum(1 for key in repo.list_manifests() if key.startswith(f"c{i}/"))
        print(f"kill {i}: {committed} of 3 backups had committed, {len(list(repo.target.list('packs')))} packs")
        _check_everything(repo, tmp_path, expected, seed)
        disk = make_disk(tmp_path / "next.raw", size=2 * MIB, seed=10_000 + i, extents=[(0, MIB, "random")])
        repo.backup(disk, f"n{i}/0")
        expected[f"n{i}/0"] = sha256(disk)
    repo.gc()
    _check_everything(repo, tmp_path, expected, seed)


@pytest.mark.slow
def test_gc_killed_at_10_random_moments_leaves_a_verifying_repository(tmp_path: Path, make_repo: MakeRepo) -> None:
    seed = random.randrange(1 << 30)
    print(f"crash seed {seed}")
    rng = random.Random(seed)
    repo = make_repo(pack_size=128 * 1024)
    expected: dict[str, str] = {}
    for i in range(10):
        for j in range(3):
            disk = loop_disk(str(tmp_path), i, j)
            repo.backup(disk, f"c{i}/{j}")
            expected[f"c{i}/{j}"] = sha256(disk)
        for key in rng.sample(sorted(repo.list_manifests()), 2):
            repo.delete_manifest(key)
        proc = subprocess.Popen([sys.executable, WORKER, "gc", repo_path(repo)], cwd=CWD,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "STARTED"
        time.sleep(rng.uniform(0.0, 0.08))  # a GC of this repository takes ~0.05-0.2 s
        proc.send_signal(signal.SIGKILL)
        finished = proc.wait() == 0
        proc.stdout.close()
        print(f"kill {i}: GC {'had finished' if finished else 'killed'}, plan left: "
              f"{repo.target.exists('locks/gc-plan.json')}")
        _check_everything(repo, tmp_path, expected, seed)
        disk = make_disk(tmp_path / "next.raw", size=2 * MIB, seed=20_000 + i, extents=[(0, MIB, "random")])
        repo.backup(disk, f"n{i}/0")
        expected[f"n{i}/0"] = sha256(disk)
    report = repo.gc()
    assert not report.pending
    _check_everything(repo, tmp_path, expected, seed)


@pytest.mark.slow
def test_concurrent_backups_of_different_disks_into_one_repository(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(pack_size=256 * 1024)
    procs = [subprocess.Popen([sys.executable, WORKER, "loop", repo_path(repo), str(tmp_path), str(i),
                               "--count", "2"], cwd=CWD) for i in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    expected: dict[str, str] = {}
    assert len(repo.list_manifests()) == 8
    for key in repo.list_manifests():
        _expected_for(key, tmp_path, expected)
    _check_everything(repo, tmp_path, expected, 0)
