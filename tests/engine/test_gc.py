"""GC frees what no manifest needs, repacks mostly-dead packs, and never races a backup.

Every test ends with a deep verify (restic's prune tests run the checker the same way).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cairn.engine import Repository
from cairn.engine.locks import PLAN_KEY, read_plan
from tests.engine.conftest import MakeRepo, repo_path
from tests.engine.diskutil import MIB, make_disk, sha256

WORKER = str(Path(__file__).with_name("worker.py"))


def _assert_verifies(repo: Repository) -> None:
    report = repo.verify(deep=True)
    assert report.ok, report.problems


def test_gc_deletes_packs_no_manifest_needs(tmp_path: Path, repo: Repository) -> None:
    a = make_disk(tmp_path / "a.raw", size=8 * MIB, seed=1, extents=[(0, 4 * MIB, "random")])
    b = make_disk(tmp_path / "b.raw", size=8 * MIB, seed=2, extents=[(0, 4 * MIB, "random")])
    repo.backup(a, "a/1")
    repo.backup(b, "b/1")
    before = repo.stats()
    repo.delete_manifest("a/1")
    report = repo.gc()
    after = repo.stats()
    assert report.packs_deleted >= 3 and report.bytes_freed >= 3 * MIB
    assert after.stored_bytes < before.stored_bytes - 3 * MIB
    assert not repo.target.exists(PLAN_KEY)
    repo.restore("b/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(b)
    _assert_verifies(repo)


def _mostly_dead_pack(repo: Repository, tmp_path: Path, seeds: tuple[int, int], b_size: int) -> str:
    """Disk b's 1 MiB of data shares packs with 4 MiB that no manifest uses any more
    (one backup of a disk holding a then b, since deleted); b is returned."""
    a = make_disk(tmp_path / "a.raw", size=4 * MIB, seed=seeds[0], extents=[(0, 4 * MIB, "random")])
    b = make_disk(tmp_path / "b.raw", size=b_size, seed=seeds[1], extents=[(0, 1 * MIB, "random")])
    both = tmp_path / "both.raw"
    both.write_bytes(open(a, "rb").read() + open(b, "rb").read())
    repo.backup(str(both), "both/1")
    repo.backup(b, "b/1")
    repo.delete_manifest("both/1")
    return b


def test_gc_repacks_mostly_dead_packs_and_keeps_the_live_chunks(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(pack_size=8 * MIB)
    b = _mostly_dead_pack(repo, tmp_path, seeds=(3, 4), b_size=4 * MIB)
    report = repo.gc()
    assert report.packs_repacked == 1 and report.chunks_copied == MIB // (64 * 1024)
    assert repo.stats().stored_bytes < 2 * MIB
    repo.restore("b/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(b)
    _assert_verifies(repo)


def test_gc_removes_unfinished_uploads_and_unindexed_packs(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=4 * MIB)
    repo.backup(raw, "d/1")
    root = Path(repo_path(repo))
    (root / "packs" / "00").mkdir(parents=True, exist_ok=True)
    (root / "packs" / "00" / ".tmp-deadbeef").write_bytes(b"half a pack")
    writer = repo.target.writer("packs/00/" + "00" * 16 + ".pack")
    writer.write(b"CAIRNPAK" + bytes(24))
    writer.commit()
    report = repo.gc()
    assert report.temporary_files_removed == 1 and report.packs_deleted == 1
    assert not (root / "packs" / "00" / ".tmp-deadbeef").exists()
    _assert_verifies(repo)


def _start_paused_backup(repo: Repository, disk: str, key: str, pause: Path) -> subprocess.Popen[str]:
    args = [sys.executable, WORKER, "backup", repo_path(repo), disk, key, "--pause-file", str(pause)]
    if repo.config.encrypted:
        args += ["--passphrase", "correct horse battery staple"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).parents[2]))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def _dead_chunks_and_a_paused_backup(tmp_path: Path, repo: Repository, seed: int, key: str,
                                     data: int = 4 * MIB) -> tuple[str, subprocess.Popen[str], Path]:
    """Back up a disk and forget it (its chunks are dead), then start a backup of the same
    disk in another process that deduplicates against those chunks and pauses."""
    raw = make_disk(tmp_path / "d.raw", size=8 * MIB, seed=seed, extents=[(0, data, "random")])
    repo.backup(raw, "old/1")
    repo.delete_manifest("old/1")
    pause = tmp_path / "go"
    return raw, _start_paused_backup(repo, raw, key, pause), pause


def test_gc_never_deletes_chunks_a_running_backup_deduplicated_against(tmp_path: Path, repo: Repository) -> None:
    raw, proc, pause = _dead_chunks_and_a_paused_backup(tmp_path, repo, 7, "new/1", data=6 * MIB)
    report = repo.gc(wait_seconds=0.5)
    assert report.pending and len(report.waited_for) == 1
    plan = read_plan(repo.target)
    assert plan is not None and plan.doomed_packs
    # A backup that starts after the plan treats the doomed chunks as absent.
    late = repo.backup(raw, "late/1")
    assert late.chunks_new == 6 * MIB // (64 * 1024)
    pause.touch()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert '"chunks_new": 0' in out, "the paused backup deduplicated against the old chunks"
    report = repo.gc()
    assert not report.pending and report.packs_deleted >= 1
    for key in ("new/1", "late/1"):
        repo.restore(key, tmp_path / "out.raw")
        assert sha256(tmp_path / "out.raw") == sha256(raw)
    _assert_verifies(repo)


def test_gc_waits_for_a_running_backup_then_completes(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    raw, proc, pause = _dead_chunks_and_a_paused_backup(tmp_path, repo, 8, "y/1")
    started = time.monotonic()
    threading.Timer(1.0, pause.touch).start()
    report = repo.gc()
    assert not report.pending and time.monotonic() - started >= 1.0
    proc.communicate(timeout=60)
    repo.restore("y/1", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(raw)
    _assert_verifies(repo)


def test_a_stale_lock_of_a_dead_backup_does_not_block_gc(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo()
    _raw, proc, _pause = _dead_chunks_and_a_paused_backup(tmp_path, repo, 9, "y/1")
    proc.kill()
    proc.wait()
    report = repo.gc(wait_seconds=5)
    assert not report.pending and report.stale_locks_removed == 1
    assert repo.list_manifests() == []
    _assert_verifies(repo)


@pytest.mark.slow
def test_backups_and_gc_in_separate_processes_leave_everything_restorable(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo(pack_size=512 * 1024)
    cwd = str(Path(__file__).parents[2])
    disks = {}
    for i in range(4):
        disks[i] = make_disk(tmp_path / f"d{i}.raw", size=8 * MIB, seed=100 + i,
                             extents=[(0, 2 * MIB, "text"), (3 * MIB, 2 * MIB, "random")])
    repo.backup(disks[0], "seed/0")
    repo.backup(disks[1], "seed/1")
    repo.delete_manifest("seed/0")
    expected: dict[str, str] = {"seed/1": sha256(disks[1])}
    procs = []
    for round_ in range(3):
        for i in range(4):
            key = f"r{round_}/d{i}"
            expected[key] = sha256(disks[i])
            procs.append(subprocess.Popen([sys.executable, WORKER, "backup", repo_path(repo), disks[i], key],
                                          cwd=cwd, stdout=subprocess.PIPE, text=True))
        procs.append(subprocess.Popen([sys.executable, WORKER, "gc", repo_path(repo)], cwd=cwd,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            # A GC may find another GC holding the exclusive lock; that is its only allowed failure.
            assert proc.returncode == 0 or "busy" in (err or ""), (out, err)
        procs = []
        repo.delete_manifest(f"r{round_}/d0")
        del expected[f"r{round_}/d0"]
    repo.gc()
    assert sorted(repo.list_manifests()) == sorted(expected)
    for key, digest in expected.items():
        repo.restore(key, tmp_path / "out.raw")
        assert sha256(tmp_path / "out.raw") == digest, key
    _assert_verifies(repo)


def test_a_restore_holding_old_locations_finds_chunks_gc_moved(tmp_path: Path, make_repo: MakeRepo) -> None:
    from cairn.engine.index import load_index
    from cairn.engine.restore import ChunkFetcher

    repo = make_repo(pack_size=8 * MIB)
    a = make_disk(tmp_path / "a.raw", size=4 * MIB, seed=5, extents=[(0, 4 * MIB, "random")])
    b = make_disk(tmp_path / "b.raw", size=1 * MIB, seed=6, extents=[(0, 1 * MIB, "random")])
    both = tmp_path / "both.raw"
    both.write_bytes(open(a, "rb").read() + open(b, "rb").read())
    repo.backup(str(both), "both/1")
    repo.backup(b, "b/1")
    fetcher = ChunkFetcher(repo.target, repo.sealer, load_index(repo.target, repo.sealer))
    repo.delete_manifest("both/1")
    assert repo.gc().packs_repacked == 1
    data = b"".join(fetcher.fetch(cid) for cid in repo.load_manifest("b/1").iter_ids())
    assert data == open(b, "rb").read()
    _assert_verifies(repo)


def test_a_restore_whose_pack_gc_deletes_midway_reads_the_moved_chunks(tmp_path: Path, make_repo: MakeRepo) -> None:
    from cairn.engine.locks import Lock
    from cairn.targets import FilesystemTarget
    from tests.engine.conftest import FAST_LOCKS

    repo = make_repo(pack_size=8 * MIB)
    b = _mostly_dead_pack(repo, tmp_path, seeds=(5, 6), b_size=1 * MIB)
    # A running backup makes GC publish its plan and wait; a restore that starts after the
    # plan is not waited for, so GC repacks under it once the backup ends.
    backup = Lock(repo.target, "backup", FAST_LOCKS)
    backup.__enter__()
    reports = []
    gc = threading.Thread(target=lambda: reports.append(repo.gc()))
    gc.start()
    while not repo.target.exists(PLAN_KEY):
        time.sleep(0.01)

    class GcRunsBeforeTheFirstRead(FilesystemTarget):
        def read_range(self, key: str, offset: int, length: int, buf: memoryview) -> memoryview:
            if gc.is_alive():
                backup.__exit__(None, None, None)
                gc.join()
            return super().read_range(key, offset, length, buf)

    restoring = Repository.open(GcRunsBeforeTheFirstRead(repo_path(repo), fsync=False), timing=FAST_LOCKS)
    restoring.restore("b/1", tmp_path / "out.raw")
    assert reports and reports[0].packs_repacked == 1 and not reports[0].pending
    assert sha256(tmp_path / "out.raw") == sha256(b)
    _assert_verifies(repo)


def test_a_backup_whose_lock_was_removed_as_stale_commits_nothing(tmp_path: Path, make_repo: MakeRepo) -> None:
    from cairn.engine.errors import RepositoryBusy

    repo = make_repo()
    raw = make_disk(tmp_path / "d.raw", size=4 * MIB, seed=11)
    removed: list[str] = []

    def gc_judged_us_stale(done: int, total: int) -> None:
        if not removed:
            # What a GC does to a lock whose heartbeat it found too old.
            removed.extend(k for k in repo.target.list("locks") if k.startswith("locks/backup-"))
            for key in removed:
                repo.target.delete(key)
            time.sleep(0.5)  # a few heartbeat periods

    with pytest.raises(RepositoryBusy):
        repo.backup(raw, "z/1", progress=gc_judged_us_stale)
    assert removed and repo.list_manifests() == []
    assert list(repo.target.list("locks")) == []
    repo.gc()
    _assert_verifies(repo)


def test_verify_refuses_to_run_while_gc_holds_the_repository(tmp_path: Path, make_repo: MakeRepo) -> None:
    from cairn.engine.errors import RepositoryBusy

    repo = make_repo()
    raw, backup, pause = _dead_chunks_and_a_paused_backup(tmp_path, repo, 12, "v/2", data=2 * MIB)
    gc = subprocess.Popen([sys.executable, WORKER, "gc", repo_path(repo)], cwd=str(Path(__file__).parents[2]),
                          stdout=subprocess.PIPE, text=True)
    assert gc.stdout is not None and gc.stdout.readline().strip() == "STARTED"
    deadline = time.monotonic() + 20
    while not repo.target.exists(PLAN_KEY):  # GC now holds the exclusive lock and waits
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(RepositoryBusy):
        repo.verify()
    pause.touch()
    assert backup.wait(timeout=60) == 0 and gc.wait(timeout=60) == 0
    backup.stdout.close()  # type: ignore[union-attr]
    gc.stdout.close()
    repo.restore("v/2", tmp_path / "out.raw")
    assert sha256(tmp_path / "out.raw") == sha256(raw)
    _assert_verifies(repo)
