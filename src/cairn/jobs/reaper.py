"""The reaper: fails jobs whose worker stopped renewing the lease, re-rings lost doorbells.

A running job whose lease expired is ended `failed` and its handler settles the
subject in the same transaction (marks it failed, unlocks the workload). The reaper runs
in `cairn scheduler`, which may reach neither the dead worker's disks nor its backup
target, so a settlement never touches them: it queues a `cleanup` job routed where the
dead job ran (`cairn.workloads.cleanup`), which the reaper rings once the settlement has
committed. A queued job nobody claimed for a while is dispatched again (a routed one
waits for its worker to start); claiming is atomic, so a duplicate doorbell is harmless.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from cairn.db.database import Database
from cairn.jobs import records
from cairn.jobs.dispatch import Dispatcher
from cairn.jobs.runner import JobHandler, Outcome, ring_follow_ups

log = logging.getLogger(__name__)

LEASE_LOST = "The worker running this job stopped responding (its lease expired)."


class Reaper:
    def __init__(self, database: Database, handlers: Mapping[str, JobHandler],
                 dispatcher: Dispatcher, clock: Callable[[], datetime],
                 requeue_after: timedelta) -> None:
        self.database = database
        self.handlers = handlers
        self.dispatcher = dispatcher
        self.clock = clock
        self.requeue_after = requeue_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reap_once(self) -> int:
        """One pass; returns how many jobs it failed."""
        now = self.clock()
        with self.database.reader() as session:
            expired = records.expired_jobs(session, now)
            stale = records.stale_queued_jobs(session, now - self.requeue_after)
        reaped = 0
        for job in expired:
            with self.database.unit_of_work() as session:
                ring_follow_ups(session, self.dispatcher.dispatch)
                if records.finish_job(session, job.id, job.owner, records.FAILED, now, LEASE_LOST):
                    self.handlers[job.kind].settle(session, job, Outcome(records.FAILED, LEASE_LOST))
                    reaped += 1
                    log.warning("reaped job %s (%s) of %s", job.id, job.kind, job.owner)
        for job in stale:
            with self.database.unit_of_work() as session:
                records.touch(session, job.id, now)
            self.dispatcher.dispatch(job.id)
        return reaped

    def start(self, interval: float) -> None:
        self._thread = threading.Thread(target=self._loop, args=(interval,), name="reaper", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the reaping loop is alive (for health checks)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reap_once()
            except Exception:
                log.exception("reaper pass failed")
