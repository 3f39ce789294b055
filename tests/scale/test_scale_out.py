"""Scale-out end to end: separate api, scheduler and worker processes over RabbitMQ.

Everything goes through HTTP and real processes; the database is read only to learn
which worker runs a job (to kill that one) and what became of the job row.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.pausing import FileGate
from tests.scale.client import Caller, small_disk
from tests.scale.conftest import HELD_AT, LEASE_SECONDS, Cluster, start_worker

pytestmark = pytest.mark.slow


def test_snapshots_through_either_api_end_available_run_by_a_worker(cluster: Cluster) -> None:
    for index in (0, 1):
        caller = Caller(cluster, index)
        workload = caller.workload(small_disk(cluster, f"small{index}"), f"small{index}")
        snapshot = caller.snapshot(workload)
        ended = caller.wait_snapshot_ended(snapshot)
        assert ended["status"] == "available", ended
        # the snapshot is available a moment before its job's closing transaction ends
        job = wait_until(lambda: (j := cluster.job_of(snapshot)) and j["state"] != "running" and j)  # noqa: B023 - wait_until calls it before the loop moves on
        assert job["state"] == "succeeded", job
        assert job["owner"].split(":")[0] in cluster.workers(), job
        caller.wait_workload(workload, "available")


def test_every_role_answers_its_healthcheck_and_the_api_serves_metrics(cluster: Cluster) -> None:
    health = httpx.get(f"{cluster.api_urls[0]}/healthcheck").json()
    assert health["role"] == "api" and health["status"] == "ok" and health["version"]
    scheduler = httpx.get(cluster.health_urls["scheduler1"]).json()
    assert scheduler["role"] == "scheduler" and scheduler["status"] == "ok", scheduler
    assert scheduler["reaper"] is True and scheduler["scheduler"] is True
    worker = httpx.get(cluster.health_urls["worker1"]).json()
    assert worker["role"] == "worker" and worker["name"] == "worker1" and worker["status"] == "ok", worker
    caller = Caller(cluster, 0)
    assert httpx.get(f"{caller.base}/workloads", headers=caller.headers).status_code == 200
    metrics = httpx.get(f"{cluster.api_urls[0]}/metrics").text
    # by route template, so that ids never make a series each
    assert 'cairn_http_requests_total{method="GET",route="/v1/{project_id}/workloads",status="200"}' in metrics
    assert "# TYPE cairn_jobs gauge" in metrics and "cairn_snapshot_duration_seconds_bucket" in metrics


def test_role_refuses_to_start_on_a_database_behind_the_newest_schema(cluster: Cluster, tmp_path: Path) -> None:
    environment = {**cluster.environment, "CAIRN_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"}
    done = subprocess.run([sys.executable, "-m", "cairn", "worker"], env=environment,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "cairn db upgrade" in done.stderr


def test_worker_killed_mid_snapshot_is_reaped_within_the_lease_and_the_next_snapshot_succeeds(
        cluster: Cluster, noise: Path, tmp_path: Path) -> None:
    caller = Caller(cluster, 0)
    disk = cluster.data_dir / "disks" / "big.raw"
    disk.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(noise, disk)
    workload = caller.workload(disk, "big")
    # The snapshot can only go to a worker that holds its disk's reading midway, so the
    # test kills that worker while the snapshot surely runs.
    victim, survivor = cluster.workers()
    cluster.stop(victim, survivor)
    gate = tmp_path / "gate"
    gate.mkdir()
    start_worker(cluster, victim, hold=(disk, HELD_AT, gate))
    snapshot = caller.snapshot(workload)
    FileGate.wait_reached(gate)
    job = cluster.job_of(snapshot)
    assert job is not None and job["state"] == "running" and job["owner"].split(":")[0] == victim, job
    start_worker(cluster, survivor)
    cluster.stop(victim, sig=signal.SIGKILL)
    killed_at = time.monotonic()
    ended = caller.wait_snapshot_ended(snapshot, timeout=30)
    reaped_after = time.monotonic() - killed_at
    assert ended["status"] == "error" and "lease expired" in ended["error_msg"], ended
    # lease, plus one reaper pass (a quarter of the lease, at least 1 s), plus slack for
    # the settle's writes and the polling over HTTP on a slow machine
    assert reaped_after < LEASE_SECONDS + max(1, LEASE_SECONDS / 4) + 6, reaped_after
    assert cluster.job_of(snapshot)["state"] == "failed"  # type: ignore[index]
    caller.wait_workload(workload, "available")
    # the reaper (in a scheduler) settled the job, and announced it
    errors = wait_until(lambda: [e for e in _drain(cluster, "notifications.error")
                                 if e["payload"].get("subject_id") == snapshot], timeout=60, interval=0.2)
    assert errors[0]["event_type"] == "snapshot.create.error"
    assert "lease expired" in errors[0]["payload"]["error"]

    again = caller.snapshot(workload)
    ended = caller.wait_snapshot_ended(again, timeout=120)
    assert ended["status"] == "available", ended
    assert cluster.job_of(again)["owner"].split(":")[0] == survivor  # type: ignore[index]
    start_worker(cluster, victim)


def test_doorbell_lost_on_the_broker_is_rung_again_by_the_reaper(cluster: Cluster) -> None:
    caller = Caller(cluster, 1)
    workload = caller.workload(small_disk(cluster, "lost"), "lost")
    names = cluster.workers()
    cluster.stop(*names)
    snapshot = caller.snapshot(workload)
    # the doorbell waits in the topic queue: losing it is the broker's doing
    # one message or more: the reaper rings a job still queued after a while again
    wait_until(lambda: re.search(r"^cairn-worker\t[1-9]", _queues(cluster), re.M), timeout=30, interval=0.1)
    subprocess.run(["rabbitmqctl", "-q", "purge_queue", "-p", cluster.vhost, "cairn-worker"], check=True,
                   capture_output=True)
    assert cluster.job_of(snapshot)["state"] == "queued"  # type: ignore[index]
    cluster.start_workers(*names)
    ended = caller.wait_snapshot_ended(snapshot, timeout=LEASE_SECONDS * 4 + 30)
    assert ended["status"] == "available", ended
    wait_until(lambda: cluster.job_of(snapshot)["state"] == "succeeded")  # type: ignore[index]


def _queues(cluster: Cluster) -> str:
    return subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", cluster.vhost, "name", "messages"],
                          capture_output=True, text=True).stdout


def test_snapshot_notifications_announce_start_and_end_with_ids_and_sizes(cluster: Cluster) -> None:
    caller = Caller(cluster, 0)
    workload = caller.workload(small_disk(cluster, "told"), "told")
    snapshot = caller.snapshot(workload)
    assert caller.wait_snapshot_ended(snapshot)["status"] == "available"
    seen: dict[str, dict[str, Any]] = {}

    def drained() -> bool:
        for event in _drain(cluster, "notifications.info"):
            if event["payload"].get("subject_id") == snapshot:
                seen[event["event_type"]] = event
        return "snapshot.create.end" in seen

    wait_until(drained, timeout=60, interval=0.2)
    assert "snapshot.create.start" in seen
    end = seen["snapshot.create.end"]
    assert end["publisher_id"].startswith("cairn.")
    assert end["payload"]["project_id"] == "p1" and end["payload"]["workload_id"] == workload
    assert end["payload"]["state"] == "succeeded" and end["payload"]["size"] > 0
    assert end["payload"]["duration_seconds"] >= 0


def _drain(cluster: Cluster, queue: str) -> list[dict[str, Any]]:
    """Every notification waiting in `queue` (the oslo envelope opened)."""
    import json

    import amqp.exceptions
    import kombu

    events = []
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:5672/{cluster.vhost}") as connection:
        channel = connection.channel()
        try:
            while (message := channel.basic_get(queue, no_ack=True)) is not None:
                body = json.loads(message.body)
                events.append(json.loads(body["oslo.message"]) if "oslo.message" in body else body)
        except amqp.exceptions.NotFound:  # the first notification of its level declares it
            pass
    return events
