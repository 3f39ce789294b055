"""The broker restarted and the database connections dropped under a running cluster.

RabbitMQ is shared by everything on this machine: the restart test stops and starts the
broker application (`rabbitmqctl stop_app` / `start_app`: the node stays up, so its
users, vhosts and permissions stay) and waits until it answers again, whatever happens.
Dropping connections uses the server's own tools: `pg_terminate_backend` on PostgreSQL,
`KILL` on MariaDB, on every connection to the cluster's database.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bench.cluster import RABBIT_HOST, RABBIT_PORT, port_open
from tests.conftest import ADMIN_URLS, wait_until
from tests.pausing import FileGate
from tests.scale.client import Caller, quick_workloads
from tests.scale.conftest import HELD_AT, LEASE_SECONDS, Cluster, start_worker

pytestmark = pytest.mark.slow

MiB = 1 << 20


def _broker_answers() -> bool:
    if not port_open(RABBIT_HOST, RABBIT_PORT):
        return False
    done = subprocess.run(["rabbitmq-diagnostics", "-q", "check_running"], capture_output=True, timeout=60)
    return done.returncode == 0


@pytest.fixture
def broker_restored() -> Iterator[None]:
    """Whatever the test does to the broker, it is running again afterwards."""
    yield
    if not _broker_answers():
        subprocess.run(["rabbitmqctl", "-q", "start_app"], capture_output=True, timeout=120)
    wait_until(_broker_answers, timeout=120, interval=1)


def test_jobs_acknowledged_before_a_broker_restart_all_complete(cluster: Cluster, broker_restored: None) -> None:
    workloads = list(quick_workloads(cluster, [f"mq{i}" for i in range(4)]).values())
    callers = [Caller(cluster, 0), Caller(cluster, 1)]
    workers = [cluster.processes[name] for name in cluster.workers()]
    # Frozen workers claim nothing: the jobs stay queued, their doorbells on the broker.
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        queued = [callers[index % 2].snapshot(workload) for index, workload in enumerate(workloads)]
        assert {cluster.job_of(snapshot)["state"] for snapshot in queued} == {"queued"}  # type: ignore[index]
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
    # every process now finds its broker connection gone; the broker comes back
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=120)
    wait_until(_broker_answers, timeout=120, interval=1)

    # the doorbells died with the broker's queues: the reapers ring again, over their
    # reconnected transports, to workers that reconnected by themselves
    for snapshot in queued:
        ended = callers[0].wait_snapshot_ended(snapshot, timeout=LEASE_SECONDS * 6 + 60)
        assert ended["status"] == "available", ended
    wait_until(lambda: {cluster.job_of(s)["state"] for s in queued} == {"succeeded"})  # type: ignore[index]
    assert all(worker.poll() is None for worker in workers)

    # the api replicas reconnected too: a new job's doorbell rings at once
    for index, caller in enumerate(callers):
        caller.wait_workload(workloads[index], "available")
        snapshot = caller.snapshot(workloads[index])
        assert caller.wait_snapshot_ended(snapshot)["status"] == "available"
        job = cluster.job_of(snapshot)
        assert f"doorbell of job {job['id']}" not in cluster.log(f"api{index + 1}")  # type: ignore[index]


def _drop_connections(cluster: Cluster) -> int:
    """Kill every server connection to the cluster's database; returns how many."""
    database = sa.make_url(cluster.database_url).database
    admin = sa.create_engine(ADMIN_URLS[cluster.backend], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if cluster.backend == "postgresql":
                return len(conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).all())
            ids = conn.execute(sa.text("SELECT id FROM information_schema.processlist "
                                       "WHERE db = :db AND id <> connection_id()"), {"db": database}).scalars().all()
            for connection_id in ids:
                try:
                    conn.execute(sa.text(f"KILL {int(connection_id)}"))
                except sa.exc.DBAPIError as exc:  # it ended by itself meanwhile
                    if "Unknown thread id" not in str(exc):
                        raise
            return len(ids)
    finally:
        admin.dispose()


def _lease_of(cluster: Cluster, subject_id: str) -> Any:
    return cluster.query("SELECT lease_expires_at FROM jobs WHERE subject_id = :s", s=subject_id)[0]["lease_expires_at"]


def test_processes_recover_when_the_database_drops_every_connection(cluster: Cluster, tmp_path: Path) -> None:
    callers = [Caller(cluster, 0), Caller(cluster, 1)]
    workloads = quick_workloads(cluster, ["blip-small"])
    # a snapshot held midway by its worker: the worker renews its lease meanwhile
    big = cluster.data_dir / "disks" / "blip-big.raw"
    with open(big, "wb") as handle:
        for _ in range(4):
            handle.write(os.urandom(16 * MiB))
    running_workload = callers[0].workload(big, "blip-big")
    holder, other = cluster.workers()
    cluster.stop(holder, other)
    gate = tmp_path / "gate"
    gate.mkdir()
    start_worker(cluster, holder, hold=(big, HELD_AT, gate))
    running = callers[0].snapshot(running_workload)
    FileGate.wait_reached(gate)
    assert cluster.job_of(running)["state"] == "running"  # type: ignore[index]
    start_worker(cluster, other)

    dropped = _drop_connections(cluster)
    # every role holds pooled connections: both apis, both schedulers, the working worker
    assert dropped >= 5, dropped
    # and again while the snapshot is held: its heartbeat meets dead connections and
    # still renews the lease; then once more, so that the snapshot's own progress and
    # state writes, once released, find the connections it pooled dead
    for _ in range(2):
        before = _lease_of(cluster, running)

        def renewed(before: Any = before) -> bool:
            return bool(_lease_of(cluster, running) > before)
        wait_until(renewed, timeout=LEASE_SECONDS * 3, interval=0.1)
        _drop_connections(cluster)
    FileGate.release(gate)

    # the next requests find their pooled connection dead and take a new one: no error
    for caller in callers * 3:
        response = httpx.get(f"{caller.base}/workloads", headers=caller.headers)
        assert response.status_code == 200, response.text
    for name, url in cluster.health_urls.items():
        health = httpx.get(url).json()
        assert health["status"] == "ok" and health["database"] is True, (name, health)
    ended = callers[0].wait_snapshot_ended(running, timeout=120)
    assert ended["status"] == "available", ended.get("error_msg")
    assert cluster.job_of(running)["owner"].split(":")[0] == holder  # type: ignore[index]
    cluster.stop(holder)  # its gate is spent: a plain worker again
    start_worker(cluster, holder)
    for caller in callers:  # new jobs, queued by either api, run as before
        caller.wait_workload(workloads["blip-small"], "available")
        snapshot = caller.snapshot(workloads["blip-small"])
        assert caller.wait_snapshot_ended(snapshot)["status"] == "available"
