"""Jobs: leases, the reaper, cancellation by unlock — on the real service and database."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import sqlalchemy as sa

from cairn.clock import utcnow
from cairn.db.models import Job, Workload
from cairn.jobs import records
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobHandler, Outcome
from cairn.workloads.lifecycle import JOB_RESET
from tests.api.test_workloads import create_workload, show, wait_status
from tests.conftest import Service, wait_until


def job_states(api: Service, workload_id: str, kind: str) -> list[str]:
    with api.runtime.database.reader() as session:
        return list(session.scalars(sa.select(Job.state).where(Job.workload_id == workload_id, Job.kind == kind)))


class _StepFirst:
    """A job handler that runs a test's step before the real handler's work."""

    def __init__(self, step: Callable[[JobContext], None], handler: JobHandler) -> None:
        self.step = step
        self.handler = handler

    def run(self, job: JobContext) -> None:
        self.step(job)
        self.handler.run(job)

    def settle(self, session: sa.orm.Session, job: JobRecord, outcome: Outcome) -> None:
        self.handler.settle(session, job, outcome)


@contextlib.contextmanager
def reset_starting_with(api: Service, step: Callable[[JobContext], None]) -> Iterator[None]:
    """While inside, every reset job of the service runs `step` first."""
    handler = api.runtime.handlers[JOB_RESET]
    api.runtime.handlers[JOB_RESET] = _StepFirst(step, handler)
    try:
        yield
    finally:
        api.runtime.handlers[JOB_RESET] = handler


def test_reaper_fails_a_job_whose_worker_died_and_settles_the_workload(api: Service) -> None:
    token = api.token()
    created = create_workload(api, token, [api.add_instance()])
    wait_status(api, token, created["id"], "available")
    now = utcnow()
    with api.runtime.database.unit_of_work() as session:
        session.get_one(Workload, created["id"]).status = "resetting"
        job_id = records.create_job(session, "workload_reset", "p1", now, workload_id=created["id"])
    with api.runtime.database.unit_of_work() as session:
        # a worker that claimed the job and then vanished: its lease is already over
        assert records.claim_job(session, job_id, "dead-host:1", now - timedelta(minutes=5), timedelta(seconds=1))
    # the service's own reaper thread may get there first; either way the job is reaped
    api.runtime.reaper.reap_once()
    detail = show(api, token, created["id"])
    assert detail["status"] == "error" and "lease expired" in detail["error_msg"]
    assert job_states(api, created["id"], "workload_reset") == ["failed"]
    assert api.runtime.reaper.reap_once() == 0


def test_reaper_redispatches_a_job_whose_doorbell_was_lost(api: Service) -> None:
    token = api.token()
    created = create_workload(api, token, [api.add_instance()])
    wait_status(api, token, created["id"], "available")
    with api.runtime.database.unit_of_work() as session:
        session.get_one(Workload, created["id"]).status = "resetting"
        # queued long ago and never dispatched (the process that wrote it died)
        records.create_job(session, "workload_reset", "p1", utcnow() - timedelta(minutes=10),
                           workload_id=created["id"])
    api.runtime.reaper.reap_once()
    wait_status(api, token, created["id"], "available")
    assert job_states(api, created["id"], "workload_reset") == ["succeeded"]


def test_unlock_cancels_a_running_job_which_ends_cancelled(api: Service) -> None:
    token = api.token()
    created = create_workload(api, token, [api.add_instance()])
    wait_status(api, token, created["id"], "available")
    started = threading.Event()

    def slow_step(job: JobContext) -> None:
        started.set()
        wait_until(lambda: job.cancel_requested, timeout=30)
        job.checkpoint()

    with reset_starting_with(api, slow_step):
        with api.client(token) as client:
            assert client.post(f"/v1/p1/workloads/{created['id']}/reset").status_code == 202
            assert started.wait(10)
            assert show(api, token, created["id"])["status"] == "resetting"
            assert client.post(f"/v1/p1/workloads/{created['id']}/unlock").status_code == 202
        assert show(api, token, created["id"])["status"] == "available"
        wait_until(lambda: job_states(api, created["id"], "workload_reset") == ["cancelled"], timeout=30)
        assert show(api, token, created["id"])["status"] == "available"


def test_a_failing_step_fails_the_job_and_puts_the_workload_in_error(api: Service) -> None:
    from cairn.errors import Conflict
    token = api.token()
    created = create_workload(api, token, [api.add_instance()])
    wait_status(api, token, created["id"], "available")

    def broken_step(job: JobContext) -> None:
        raise Conflict("the target is read-only")

    with reset_starting_with(api, broken_step):
        with api.client(token) as client:
            client.post(f"/v1/p1/workloads/{created['id']}/reset")
        detail = wait_status(api, token, created["id"], "error")
        assert "the target is read-only" in detail["error_msg"]
    # error allows a reset, which now succeeds
    with api.client(token) as client:
        assert client.post(f"/v1/p1/workloads/{created['id']}/reset").status_code == 202
    wait_status(api, token, created["id"], "available")


def test_claim_is_exclusive(api: Service) -> None:
    now = utcnow()
    with api.runtime.database.unit_of_work() as session:
        job_id = records.create_job(session, "workload_reset", "p1", now, workload_id=str(uuid.uuid4()))
    with api.runtime.database.unit_of_work() as session:
        first = records.claim_job(session, job_id, "a", now, timedelta(seconds=30))
    with api.runtime.database.unit_of_work() as session:
        second = records.claim_job(session, job_id, "b", now, timedelta(seconds=30))
    assert first is not None and first.owner == "a" and second is None
    with api.runtime.database.unit_of_work() as session:  # "a" again: its commit was lost but applied
        again = records.claim_job(session, job_id, "a", now, timedelta(seconds=30))
    assert again is not None and again.owner == "a" and again.attempts == first.attempts
    with api.runtime.database.unit_of_work() as session:
        assert records.renew_lease(session, job_id, "b", now, timedelta(seconds=30)) is None
        assert records.renew_lease(session, job_id, "a", now, timedelta(seconds=30)) is False
        assert records.finish_job(session, job_id, "a", records.SUCCEEDED, now)
