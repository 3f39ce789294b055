"""Runs one job: claim it, keep its lease alive, call its handler, end it once.

The lease is renewed by a heartbeat thread every third of the lease. The same thread
reads the job's cancel flag every `CANCEL_POLL_SECONDS` (a cheap read, so that a cancel or
an unlock takes effect within a fraction of a second); the handler observes it through
`JobContext.cancel_requested` and `JobContext.checkpoint()`.
A job whose lease was lost (the reaper already failed it) is not ended again here.

A handler's `settle` may queue follow-up jobs (`follow_up`: a clean-up after a failed
restore or snapshot). They are rung by whoever settled, once the closing transaction has
committed: the runner runs them itself, right after, when they may run where the settled
job ran (same routing, so the same host); the reaper rings them through its dispatcher.

A dropped database connection does not fail a job: the claim, the end, and the handlers'
own reads and state writes run again on a fresh connection (`reconnecting`). Each claim
has an owner name of its own (`host:pid/random`), so a claim whose commit was lost after
it applied is recognised as this claim when it runs again.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from cairn.db.database import Database, after_commit, reconnecting
from cairn.errors import CairnError
from cairn.jobs import records
from cairn.jobs.records import JobRecord

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.25
#: `Session.info` key: who rings the follow-up jobs a settlement queues in that session
_FOLLOW_UPS = "cairn_follow_ups"


class JobCancelled(CairnError):
    """Raised inside a handler when its job was asked to stop."""


@dataclass(frozen=True)
class Outcome:
    state: str
    error: str | None = None


class JobContext:
    """What a handler sees of its job while it runs."""

    def __init__(self, record: JobRecord, database: Database) -> None:
        self.record = record
        self.database = database
        self._cancel = threading.Event()
        self._lost = threading.Event()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set() or self._lost.is_set()

    def checkpoint(self) -> None:
        """Raise JobCancelled if the job was cancelled or its lease was lost."""
        if self._lost.is_set():
            raise JobCancelled("The job's lease was lost.")
        if self._cancel.is_set():
            raise JobCancelled("The job was cancelled.")


class JobHandler(Protocol):
    def run(self, job: JobContext) -> None:
        """Do the work; raise a CairnError to fail the job with its message."""
        ...

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        """Put the job's subject into its final state (in the job's closing transaction)."""
        ...


def follow_up(session: Session, kind: str, project_id: str, now: datetime, **fields: Any) -> str:
    """Queue a job from inside a handler's `settle`, rung once the settlement commits.

    Whoever settles (the runner, the reaper) says how to ring it (`ring_follow_ups`);
    a follow-up queued where nobody did is rung by the reaper after a lease.
    """
    job_id = records.create_job(session, kind, project_id, now, **fields)
    ring = session.info.get(_FOLLOW_UPS)
    if ring is not None:
        after_commit(session, lambda: ring(job_id))
    return job_id


def ring_follow_ups(session: Session, ring: Callable[[str], None]) -> None:
    """Have the follow-ups queued in `session` rung by `ring(job_id)` after its commit."""
    session.info[_FOLLOW_UPS] = ring


class JobRunner:
    def __init__(self, database: Database, handlers: Mapping[str, JobHandler], owner: str,
                 lease: timedelta, clock: Callable[[], datetime]) -> None:
        self.database = database
        self.handlers = handlers
        self.owner = owner
        self.lease = lease
        self.clock = clock

    def run(self, job_id: str) -> None:
        owner = f"{self.owner}/{secrets.token_hex(4)}"
        for attempt in reconnecting():
            with attempt, self.database.unit_of_work() as session:
                record = records.claim_job(session, job_id, owner, self.clock(), self.lease)
        if record is None:
            return
        handler = self.handlers[record.kind]
        context = JobContext(record, self.database)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(context, owner, stop),
                                name=f"lease-{job_id[:8]}", daemon=True)
        beat.start()
        outcome = self._execute(handler, context)
        stop.set()
        beat.join()
        # A second attempt after a lost commit that did apply finds the job ended: no-op.
        follow_ups: list[str] = []
        for attempt in reconnecting():
            with attempt, self.database.unit_of_work() as session:
                ring_follow_ups(session, follow_ups.append)
                if records.finish_job(session, job_id, owner, outcome.state, self.clock(), outcome.error):
                    handler.settle(session, record, outcome)
        log.info("job %s (%s) ended %s%s", job_id, record.kind, outcome.state,
                 f": {outcome.error}" if outcome.error else "")
        for follow_up_id in follow_ups:
            self._run_follow_up(record, follow_up_id)

    def _run_follow_up(self, settled: JobRecord, job_id: str) -> None:
        """Run a follow-up of `settled` here when it may run where `settled` ran; else
        it stays queued and the reaper rings it (this process may not reach its host)."""
        for attempt in reconnecting():
            with attempt, self.database.reader() as session:
                job = records.get_job(session, job_id)
        if job is None:
            return
        worker = job.payload.get(records.WORKER_KEY)
        if worker and worker != settled.payload.get(records.WORKER_KEY):
            return
        self.run(job_id)

    def _execute(self, handler: JobHandler, context: JobContext) -> Outcome:
        if context.record.cancel_requested:
            return Outcome(records.CANCELLED, "The job was cancelled before it started.")
        try:
            handler.run(context)
            return Outcome(records.SUCCEEDED)
        except JobCancelled as exc:
            return Outcome(records.CANCELLED, exc.message)
        except CairnError as exc:
            return Outcome(records.FAILED, exc.message)
        except Exception as exc:  # a bug must still end the job, never leave it stuck
            log.exception("job %s failed unexpectedly", context.record.id)
            return Outcome(records.FAILED, f"Internal error: {type(exc).__name__}: {exc}")

    def _heartbeat(self, context: JobContext, owner: str, stop: threading.Event) -> None:
        renew_every = self.lease.total_seconds() / 3
        renewed = time.monotonic()
        while not stop.wait(min(CANCEL_POLL_SECONDS, renew_every)):
            try:
                if time.monotonic() - renewed >= renew_every:
                    with self.database.unit_of_work() as session:
                        flag = records.renew_lease(session, context.record.id, owner,
                                                   self.clock(), self.lease)
                    renewed = time.monotonic()
                else:
                    with self.database.reader() as session:
                        flag = records.cancel_flag(session, context.record.id, owner)
            except Exception:  # a database blip: keep trying until the lease runs out
                log.warning("could not renew the lease of job %s", context.record.id, exc_info=True)
                continue
            if flag is None:
                context._lost.set()
                return
            if flag:
                context._cancel.set()
