"""Job rows: create, claim, renew, finish, and the queries the reaper needs.

Every state change is a conditional UPDATE (`WHERE state = ... AND owner = ...`) so two
workers, or a worker and the reaper, can never both win the same job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.database import rowcount
from cairn.db.models import Job

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)

#: the job payload key naming the one worker a job must run on (absent: any worker);
#: the broker dispatcher casts such a job to that worker's own queue
WORKER_KEY = "worker"


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    project_id: str
    workload_id: str | None
    subject_id: str | None
    state: str
    owner: str | None
    attempts: int
    cancel_requested: bool
    payload: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _record(row: Job) -> JobRecord:
    return JobRecord(id=row.id, kind=row.kind, project_id=row.project_id,
                     workload_id=row.workload_id, subject_id=row.subject_id, state=row.state,
                     owner=row.owner, attempts=row.attempts,
                     cancel_requested=row.cancel_requested, payload=dict(row.payload or {}),
                     error=row.error)


def create_job(session: Session, kind: str, project_id: str, now: datetime, *,
               workload_id: str | None = None, subject_id: str | None = None,
               payload: dict[str, Any] | None = None) -> str:
    job_id = str(uuid.uuid4())
    session.add(Job(id=job_id, kind=kind, project_id=project_id, workload_id=workload_id,
                    subject_id=subject_id, state=QUEUED, attempts=0, cancel_requested=False,
                    payload=payload or {}, created_at=now, updated_at=now))
    return job_id


def claim_job(session: Session, job_id: str, owner: str, now: datetime, lease: timedelta) -> JobRecord | None:
    """Take a queued job for `owner`; None when someone else has it or it is gone.

    `owner` names this one claim (the runner adds a random part to its process's name),
    so a claim run again after its commit was lost, but applied, finds the job its own.
    """
    session.execute(
        update(Job).where(Job.id == job_id, Job.state == QUEUED)
        .values(state=RUNNING, owner=owner, lease_expires_at=now + lease,
                attempts=Job.attempts + 1, updated_at=now))
    row = session.get(Job, job_id, populate_existing=True)
    if row is None or row.state != RUNNING or row.owner != owner:
        return None
    return _record(row)


def renew_lease(session: Session, job_id: str, owner: str, now: datetime, lease: timedelta) -> bool | None:
    """Extend the lease. Returns the job's cancel flag, or None when `owner` lost it."""
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.state == RUNNING, Job.owner == owner)
        .values(lease_expires_at=now + lease, updated_at=now))
    if rowcount(result) != 1:
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def cancel_flag(session: Session, job_id: str, owner: str) -> bool | None:
    """The job's cancel flag, or None when `owner` no longer runs it."""
    row = session.execute(select(Job.cancel_requested, Job.state, Job.owner).where(Job.id == job_id)).first()
    if row is None or row.state != RUNNING or row.owner != owner:
        return None
    return bool(row.cancel_requested)


def finish_job(session: Session, job_id: str, owner: str | None, state: str, now: datetime,
               error: str | None = None) -> bool:
    """End a running job; False when it was no longer this owner's (already reaped)."""
    conditions = [Job.id == job_id, Job.state == RUNNING]
    if owner is not None:
        conditions.append(Job.owner == owner)
    result = session.execute(update(Job).where(*conditions).values(
        state=state, error=error, finished_at=now, updated_at=now, lease_expires_at=None))
    return rowcount(result) == 1


def cancel_queued(session: Session, job_id: str, now: datetime, reason: str) -> bool:
    result = session.execute(update(Job).where(Job.id == job_id, Job.state == QUEUED).values(
        state=CANCELLED, error=reason, finished_at=now, updated_at=now))
    return rowcount(result) == 1


def request_cancel(session: Session, workload_id: str, now: datetime, *, kind: str | None = None,
                   subject_id: str | None = None) -> list[JobRecord]:
    """Flag the unfinished jobs of a workload (or only those of `kind` on `subject_id`)
    for cancellation; returns them."""
    query = select(Job).where(Job.workload_id == workload_id, Job.state.in_((QUEUED, RUNNING)))
    if kind is not None:
        query = query.where(Job.kind == kind, Job.subject_id == subject_id)
    rows = list(session.scalars(query))
    for row in rows:
        row.cancel_requested = True
        row.updated_at = now
    return [_record(row) for row in rows]


def expired_jobs(session: Session, now: datetime) -> list[JobRecord]:
    return [_record(row) for row in session.scalars(select(Job).where(
        Job.state == RUNNING, Job.lease_expires_at < now))]


def stale_queued_jobs(session: Session, older_than: datetime) -> list[JobRecord]:
    return [_record(row) for row in session.scalars(select(Job).where(
        Job.state == QUEUED, Job.updated_at < older_than))]


def touch(session: Session, job_id: str, now: datetime) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(updated_at=now))


def record_destinations(session: Session, job_id: str, owner: str | None,
                        destinations: list[dict[str, Any]]) -> bool:
    """Set what a running job is about to write outside the database (replacing what it
    said before, so a step run again after a lost commit does no harm). False when the
    job is no longer `owner`'s: it was reaped, and whatever it writes now nobody would
    clean up, so the caller must stop."""
    conditions = [Job.id == job_id, Job.state == RUNNING]
    if owner is not None:
        conditions.append(Job.owner == owner)
    result = session.execute(update(Job).where(*conditions).values(destinations=destinations))
    return rowcount(result) == 1


def add_destinations(session: Session, job_id: str, destinations: list[dict[str, Any]]) -> None:
    """Add to a job's destinations whatever it does not list yet (any state)."""
    known = job_destinations(session, job_id)
    merged = known + [d for d in destinations if d not in known]
    if merged != known:
        session.execute(update(Job).where(Job.id == job_id).values(destinations=merged))


def job_destinations(session: Session, job_id: str) -> list[dict[str, Any]]:
    """What a job recorded it writes outside the database (empty when unknown)."""
    return list(session.scalar(select(Job.destinations).where(Job.id == job_id)) or [])


def get_job(session: Session, job_id: str) -> JobRecord | None:
    row = session.get(Job, job_id)
    return _record(row) if row else None


def active_jobs(session: Session, workload_id: str) -> list[JobRecord]:
    return [_record(row) for row in session.scalars(select(Job).where(
        Job.workload_id == workload_id, Job.state.in_((QUEUED, RUNNING))))]
