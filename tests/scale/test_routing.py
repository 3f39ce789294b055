"""Doorbells on a real RabbitMQ: any worker takes plain jobs; a named one takes its own.

Two `WorkerServer`s run in this process (each with its own `JobRunner` over one SQLite
database); the jobs' handler records which worker ran it. Then, end to end on the
scaled-out cluster: the jobs on the disks of an instance registered on a named worker
host run on that worker.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.orm import Session

from cairn.clock import utcnow
from cairn.db.database import Database
from cairn.jobs import records
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobRunner, Outcome
from tests.conftest import wait_until
from tests.scale.client import Caller, small_disk
from tests.scale.conftest import RABBIT_HOST, RABBIT_PORT, Cluster, _port_open, rabbitmqctl


class Recorder:
    """A job handler that notes which worker ran which job."""

    def __init__(self, name: str, ran: dict[str, str]) -> None:
        self.name = name
        self.ran = ran

    def run(self, job: JobContext) -> None:
        self.ran[job.record.id] = self.name

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        pass


@pytest.fixture
def vhost() -> Iterator[str]:
    if not _port_open(RABBIT_HOST, RABBIT_PORT):
        if os.environ.get("CI"):
            pytest.fail("RabbitMQ is not running (scripts/start-services.sh starts it)")
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
    name = f"cairn_routing_{os.getpid()}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


def test_jobs_naming_a_worker_run_there_and_others_run_anywhere(vhost: str, sqlite_database: Database) -> None:
    from cairn.jobs.messaging import Messaging, RabbitDispatcher, WorkerServer

    database = sqlite_database
    transport = f"rabbit://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"
    ran: dict[str, str] = {}
    connections, servers = [], []
    for name in ("host-a", "host-b"):
        messaging = Messaging(transport, executor_threads=2)
        runner = JobRunner(database, {"probe": Recorder(name, ran)}, f"{name}:1", timedelta(seconds=30), utcnow)
        server = WorkerServer(messaging, runner, name, threads=2)
        server.start()
        connections.append(messaging)
        servers.append(server)
    sender = Messaging(transport, executor_threads=1)
    try:
        dispatcher = RabbitDispatcher(sender, database)
        with database.unit_of_work() as session:
            routed = [records.create_job(session, "probe", "p1", utcnow(), payload={"worker": "host-b"})
                      for _ in range(6)]
            anywhere = [records.create_job(session, "probe", "p1", utcnow()) for _ in range(6)]
        for job_id in routed + anywhere:
            dispatcher.dispatch(job_id)

        def states() -> set[str]:
            # a job is marked succeeded after its handler returns, so wait on the rows
            with database.reader() as session:
                return {records.get_job(session, j).state for j in routed + anywhere}  # type: ignore[union-attr]
        wait_until(lambda: len(ran) == 12 and states() == {"succeeded"}, timeout=60)
        assert {ran[job_id] for job_id in routed} == {"host-b"}
    finally:
        stoppers = [threading.Thread(target=server.stop) for server in servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for messaging in [*connections, sender]:
            messaging.close()


@pytest.mark.slow
def test_jobs_on_the_disks_of_an_instance_on_a_named_host_run_on_that_worker(cluster: Cluster) -> None:
    caller = Caller(cluster, 1)
    workload = caller.workload(small_disk(cluster, "pinned"), "pinned", host="worker2")
    created = cluster.query("SELECT payload, owner FROM jobs WHERE workload_id = :w", w=workload)
    assert len(created) == 1 and created[0]["owner"].startswith("worker2:"), created
    snapshots = [caller.snapshot(workload) for _ in range(1)]
    for _ in range(2):
        assert caller.wait_snapshot_ended(snapshots[-1])["status"] == "available"
        caller.wait_workload(workload, "available")
        snapshots.append(caller.snapshot(workload))
    assert caller.wait_snapshot_ended(snapshots[-1])["status"] == "available"
    caller.wait_workload(workload, "available")
    response = httpx.post(f"{caller.base}/workloads/{workload}/snapshots/{snapshots[0]}/restores",
                          headers=caller.headers, json={"restore": {
                              "name": "back", "options": {"type": "openstack", "oneclickrestore": True}}})
    assert response.status_code in (200, 202), response.text
    restore = response.json()["restore"]["id"]
    wait_until(lambda: (j := cluster.job_of(restore)) and j["state"] == "succeeded", timeout=60, interval=0.1)
    for subject in [*snapshots, restore]:
        job = cluster.job_of(subject)
        assert job is not None and job["payload"].get("worker") == "worker2", job
        assert job["owner"].startswith("worker2:"), job
    # the restored instance's disks are on worker2's host: its jobs go there too
    restored = httpx.get(f"{caller.base}/workloads/{workload}/snapshots/{snapshots[0]}/restores/{restore}",
                         headers=caller.headers).json()["restore"]["instances"]
    listed = cluster.cairn("instance", "list", "--project", "p1")
    assert [line for line in listed.splitlines() if line.startswith(restored[0]["id"])][0].endswith(
        "(on worker worker2)"), listed


@pytest.mark.slow
def test_a_workload_of_instances_on_two_hosts_is_refused_naming_them(cluster: Cluster) -> None:
    caller = Caller(cluster, 0)
    first = cluster.cairn("instance", "add", "--project", "p1", "--name", "split-a",
                          "--disk", str(small_disk(cluster, "split-a")), "--host", "worker1")
    second = cluster.cairn("instance", "add", "--project", "p1", "--name", "split-b",
                           "--disk", str(small_disk(cluster, "split-b")), "--host", "worker2")
    response = httpx.post(f"{caller.base}/workloads", headers=caller.headers, json={"workload": {
        "name": "split", "instances": [{"instance-id": first}, {"instance-id": second}]}})
    assert response.status_code == 409, response.text
    assert "worker1: split-a; worker2: split-b" in response.text
    listed = httpx.get(f"{caller.base}/workloads", headers=caller.headers).json()["workloads"]
    assert "split" not in {w["name"] for w in listed}

