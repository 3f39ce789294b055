"""What snapshot and restore jobs do to their rows alike: ask the job to stop, settle a
row that did not finish, and report progress while the disks are copied."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cairn.db.models import Restore, Snapshot, Workload
from cairn.errors import Unavailable
from cairn.jobs import records as jobs
from cairn.jobs.runner import JobContext
from cairn.workloads import states

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.5  # seconds between progress writes to the database
#: the error of a snapshot settled by a reset while its job ran (`snapshot_reset`)
RESET_MESSAGE = "Reset by a user."


def cancel_work(session: Session, kind: str, row: Snapshot | Restore, now: datetime) -> None:
    """Ask the job working on a snapshot or restore to stop. A running job notices
    within a fraction of a second and settles the row itself; one still queued never
    starts, so the row is settled here."""
    for job in jobs.request_cancel(session, row.workload_id, now, kind=kind, subject_id=row.id):
        if job.state == jobs.QUEUED:
            jobs.cancel_queued(session, job.id, now, "Cancelled by a user.")
            settle_unfinished(session, row, states.SNAP_CANCELLED, "Cancelled by a user.", now)


def settle_unfinished(session: Session, row: Snapshot | Restore | None, status: str,
                      message: str | None, now: datetime) -> None:
    """Put a snapshot or restore that did not finish into `status` (error or cancelled)
    and unlock its workload; one that already ended is left as it is."""
    running = states.SNAP_RUNNING if isinstance(row, Snapshot) else states.RESTORE_RUNNING
    if row is None or row.status not in running:
        return
    row.status = status
    row.error_msg = message if status == states.SNAP_ERROR else None
    row.progress_msg = message or ""
    row.finished_at = now
    row.updated_at = now
    row.time_taken = int((now - row.created_at).total_seconds())
    session.execute(update(Workload).where(Workload.id == row.workload_id, Workload.status == states.LOCKED)
                    .values(status=states.AVAILABLE, updated_at=now))


class ProgressReporter:
    """Turns the engine's per-disk progress into throttled writes of a snapshot or
    restore row (`model`)."""

    def __init__(self, job: JobContext, row_id: str, total: int, verb: str,
                 model: type[Snapshot] | type[Restore] = Snapshot) -> None:
        self.job = job
        self.row_id = row_id
        self.total = max(total, 1)
        self.verb = verb
        self.model = model
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()
        self.last = 0.0

    def for_disk(self, key: str, label: str) -> Callable[[int, int], None]:
        def report(done: int, _total: int) -> None:
            with self.lock:
                self.done[key] = done
                now = time.monotonic()
                if now - self.last < PROGRESS_EVERY:
                    return
                self.last = now
                percent = min(99, int(sum(self.done.values()) * 100 / self.total))
            try:
                with self.job.database.unit_of_work() as session:
                    session.execute(update(self.model).where(self.model.id == self.row_id).values(
                        progress_percent=percent, progress_msg=f"{self.verb} {label}"))
            except (DBAPIError, Unavailable):
                # progress is only shown: a database blip must not fail the copy; the
                # next report writes again
                log.warning("could not record the progress of %s", self.row_id, exc_info=True)
        return report
