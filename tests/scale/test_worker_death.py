"""A worker killed in the middle of a restore: the reaper settles it, its host cleans up.

The restore runs on a worker of its own host name, started from `tests.scale.paused_worker`:
it stops the restore of the instance's second disk at the data engine's first cancel
check, when the first disk is complete under its name and the second is being written
under a temporary one, and says so in a file. Only then is it killed (SIGKILL). The
reaper (in the schedulers) ends the restore `error` and queues a clean-up for that host,
touching no file. A replacement worker of the same name (a plain `cairn worker`, as an
operator would restart it) runs the clean-up: every file the restore wrote goes, and the
original disks stay as they were.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from cairn.jobs.reaper import LEASE_LOST
from tests.api.test_snapshots import sha256
from tests.conftest import wait_until
from tests.scale.client import Caller, small_disk
from tests.scale.conftest import LEASE_SECONDS, Cluster

pytestmark = pytest.mark.slow

HOST = "restorer"
ROOT = Path(__file__).resolve().parents[2]
#: a lease to run out, a reaper pass, and room for a loaded machine
REAPED_WITHIN = LEASE_SECONDS * 6 + 60


def start_pausing_worker(cluster: Cluster, name: str, pause_dir: Path, at: int) -> None:
    """A worker named HOST whose `at`-th restored disk pauses (see tests.scale.paused_worker)."""
    environment = {**cluster.environment, "CAIRN_TEST_PAUSE_DIR": str(pause_dir), "CAIRN_TEST_PAUSE_AT": str(at)}
    with open(cluster.logs / f"{name}.log", "ab") as log:
        cluster.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.scale.paused_worker", "worker", "--name", HOST],
            env=environment, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: "running (owner" in cluster.log(name) or cluster.processes[name].poll() is not None,
               timeout=60)
    assert cluster.processes[name].poll() is None, cluster.log(name)


def cleanup_jobs(cluster: Cluster) -> list[dict[str, Any]]:
    jobs = cluster.query("SELECT state, owner, payload FROM jobs WHERE kind = 'cleanup'")
    for job in jobs:
        if isinstance(job["payload"], str):  # MariaDB's JSON is text to a plain query
            job["payload"] = json.loads(job["payload"])
    return jobs


def restore_files(disks: Path, restore_id: str) -> list[str]:
    """Every file of the restore in `disks`: restored disks and the engine's temporary files."""
    return sorted(name for name in os.listdir(disks) if f"-restore-{restore_id[:8]}" in name)


def test_a_restore_whose_worker_was_killed_ends_error_and_its_files_go_once_that_worker_runs_again(
        cluster: Cluster, tmp_path: Path) -> None:
    pause = tmp_path / "pause"
    pause.mkdir()
    start_pausing_worker(cluster, "restorer-paused", pause, at=2)
    try:
        caller = Caller(cluster, 0)
        originals = [small_disk(cluster, "killed-a"), small_disk(cluster, "killed-b")]
        instance = cluster.cairn("instance", "add", "--project", "p1", "--name", "killed", "--disk",
                                 str(originals[0]), "--disk", str(originals[1]), "--host", HOST)
        workload = caller.create_workload(instance, "killed")
        caller.wait_workload(workload, "available")
        snapshot = caller.snapshot(workload)
        assert caller.wait_snapshot_ended(snapshot)["status"] == "available"
        caller.wait_workload(workload, "available")
        before = [sha256(disk) for disk in originals]

        response = httpx.post(f"{caller.base}/workloads/{workload}/snapshots/{snapshot}/restores",
                              headers=caller.headers, json={"restore": {
                                  "name": "doomed", "options": {"type": "openstack", "oneclickrestore": True}}})
        assert response.status_code == 202, response.text
        restore = response.json()["restore"]["id"]
        url = f"{caller.base}/workloads/{workload}/snapshots/{snapshot}/restores/{restore}"
        wait_until(lambda: (pause / "paused").exists(), timeout=120)
        disks = originals[0].parent
        second = Path((pause / "paused").read_text())
        written = restore_files(disks, restore)
        # the first disk complete under its own name, the second under a temporary one
        assert len(written) == 2 and not second.exists(), written
        assert any(name.startswith(f".{second.name}.cairn-partial-") for name in written), written

        cluster.stop("restorer-paused", sig=signal.SIGKILL)
        settled = wait_until(lambda: (r := httpx.get(url, headers=caller.headers).json()["restore"])["status"]
                             in ("available", "error", "cancelled") and r, timeout=REAPED_WITHIN, interval=0.2)
        assert settled["status"] == "error" and settled["error_msg"] == LEASE_LOST, settled
        caller.wait_workload(workload, "available")
        # the reaper, in the schedulers, touched no file of the dead worker's host
        assert restore_files(disks, restore) == written

        # the host's worker is back (restarted under the same name): its clean-up runs there
        cluster.start("restorer-again", "worker", "--name", HOST)
        wait_until(lambda: restore_files(disks, restore) == [], timeout=REAPED_WITHIN, interval=0.2)
        origin = cluster.job_of(restore)
        assert origin is not None
        [cleanup] = [job for job in cleanup_jobs(cluster) if job["payload"].get("of_job") == origin["id"]]
        assert cleanup["state"] == "succeeded" and cleanup["owner"].startswith(f"{HOST}:"), cleanup
        assert [sha256(disk) for disk in originals] == before
    finally:
        for name in ("restorer-paused", "restorer-again"):
            if name in cluster.processes:
                cluster.stop(name, sig=signal.SIGKILL)
