"""The claim loop: every due jobschedule fires once, whatever number of replicas run it.

A tick claims the due workloads (live, `next_fire_at <= now`, the most overdue first) in
bounded batches. Each batch is one unit of work whose rows are locked with `FOR UPDATE
SKIP LOCKED`, so replicas ticking at once take disjoint batches on PostgreSQL and
MariaDB; SQLite ignores the clause, and its BEGIN IMMEDIATE serialises the replicas
instead. Every claimed row leaves the due set in the same transaction (its
`next_fire_at` moves past `now`), so whoever claims next never sees it again. The
database has the last word: snapshots are unique on `(workload_id, fire_time)`, and a
clash there means another replica fired that time, not an error.

What one claimed workload gets, each in its own savepoint so that one bad workload never
holds back the others:

- a fire time is due: a snapshot named `jobscheduler` with that `fire_time`. However
  many times were missed (downtime), only the latest of them fires: one snapshot.
- due while the global scheduler is off: passed over. Nothing fires while the switch is
  off, and turning it on fires nothing until the next fire time (what was passed over
  is not caught up: an admin turned it off on purpose, unlike downtime).
- due while the workload is busy (not `available`: a snapshot, restore or reset runs,
  or it is in `error`): passed over with a warning; it fires at its next fire time. Not
  retried sooner: a scheduled time is a point in time, and a retry loop against a long
  restore would only hammer the row.
- nothing due (schedule disabled, ended, or moved by a modify): only `next_fire_at` moves
  (NULL when nothing is scheduled any more).
- an unexpected error (a corrupt stored schedule, a bug): logged, and the workload is
  looked at again after `retry_after`, never in a hot loop.

A due time that fired, was passed over or was found already fired is stored in
`last_fired_at`, which `due_fire_time` then never offers again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cairn.db.database import Database
from cairn.db.models import Snapshot, Workload
from cairn.errors import Conflict
from cairn.scheduler.decision import decide
from cairn.workloads import global_scheduler
from cairn.workloads.jobschedule import JobSchedule
from cairn.workloads.snapshot_service import Route, SnapshotService
from cairn.workloads.snapshot_type import SnapshotRequest

log = logging.getLogger(__name__)

#: a workload whose turn failed unexpectedly is looked at again after this long
RETRY_AFTER = timedelta(minutes=5)
#: due workloads claimed (and locked) per transaction
BATCH_SIZE = 50

# What one workload's turn came to (for the tick's summary line).
FIRED, ALREADY_FIRED, BUSY, SWITCHED_OFF, NOTHING_DUE, FAILED, DEFERRED = (
    "fired", "already fired", "busy", "global scheduler off", "nothing due", "failed",
    "deferred to the next tick")


@dataclass(frozen=True)
class _Claimed:
    """The columns of a claimed workload row that its turn needs."""

    id: str
    user_id: str
    jobschedule: dict[str, Any]
    last_fired_at: datetime | None


class Scheduler:
    """Fires due jobschedules; run one per scheduler replica (or in `cairn serve`).

    `clock` gives now as naive UTC; `owner` names this replica in logs (host:pid).
    """

    def __init__(self, database: Database, snapshots: SnapshotService,
                 clock: Callable[[], datetime], owner: str, *, batch_size: int = BATCH_SIZE,
                 retry_after: timedelta = RETRY_AFTER) -> None:
        if batch_size < 1 or retry_after <= timedelta(0):
            raise ValueError("batch_size must be >= 1 and retry_after positive")
        self.database = database
        self.snapshots = snapshots
        self.clock = clock
        self.owner = owner
        self.batch_size = batch_size
        self.retry_after = retry_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> int:
        """Handle every workload due at `now` (naive UTC; default the clock's now).

        Returns how many snapshots were fired. Raises only when the database fails;
        a single workload's trouble is logged and does not stop the pass.
        """
        if now is None:
            now = self.clock()
        outcomes: dict[str, int] = {}
        while True:
            # Where each due workload's snapshot runs is asked of the platform before any
            # row is locked; a workload claimed without a route waits for the next tick.
            routes = self.snapshots.routes(self._due(now))
            with self.database.unit_of_work() as session:
                switched_on = global_scheduler.is_enabled(session)
                claimed = self._claim(session, now)
                batch = [self._turn(session, workload, now, switched_on, routes.get(workload.id))
                         for workload in claimed]
            # counted after the commit: a batch that rolled back fired nothing
            for outcome in batch:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            # a short batch means nothing due is left that another replica does not hold;
            # one that only deferred made no progress this tick
            if len(claimed) < self.batch_size or all(outcome == DEFERRED for outcome in batch):
                break
        if outcomes:
            log.info("scheduler %s at %s: %s", self.owner, now.isoformat(),
                     ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())))
        return outcomes.get(FIRED, 0)

    def _due_rows(self, now: datetime) -> Any:
        return (select(Workload.id, Workload.user_id, Workload.jobschedule, Workload.last_fired_at)
                .where(Workload.deleted.is_(False), Workload.next_fire_at.is_not(None),
                       Workload.next_fire_at <= now, Workload.schedule_paused_at.is_(None))
                .order_by(Workload.next_fire_at, Workload.id)
                .limit(self.batch_size))

    def _due(self, now: datetime) -> list[str]:
        """The workloads a claim at `now` would take, read without locking them."""
        with self.database.reader() as session:
            return list(session.scalars(self._due_rows(now).with_only_columns(Workload.id)))

    def _claim(self, session: Session, now: datetime) -> list[_Claimed]:
        rows = session.execute(self._due_rows(now).with_for_update(skip_locked=True)).all()
        return [_Claimed(row.id, row.user_id, row.jobschedule, row.last_fired_at) for row in rows]

    def _turn(self, session: Session, workload: _Claimed, now: datetime, switched_on: bool,
              route: Route | None) -> str:
        """One claimed workload: fire or pass over what is due, then move its next_fire_at."""
        try:
            decision = decide(JobSchedule.from_storage(workload.jobschedule), workload.last_fired_at, now)
            outcome = NOTHING_DUE
            if decision.due is not None and switched_on and route is None:
                return DEFERRED  # left due: the next tick routes and fires it
            if decision.due is not None:
                outcome = self._fire(session, workload, decision.due, route) if switched_on else SWITCHED_OFF
            if outcome == SWITCHED_OFF:
                log.debug("workload %s: fire time %s passed over, the global scheduler is off",
                          workload.id, decision.due)
            self._advance(session, workload.id, last_fired_at=decision.last_fired_at(workload.last_fired_at),
                          next_fire_at=decision.next_fire_at)
            return outcome
        except Exception:
            # A database failure fails the next statement too and so ends the batch; anything
            # else is this workload's own trouble: park it, do not retry in a hot loop.
            retry_at = now + self.retry_after
            log.exception("scheduler %s: workload %s could not be scheduled; trying again at %s",
                          self.owner, workload.id, retry_at.isoformat())
            self._advance(session, workload.id, last_fired_at=workload.last_fired_at, next_fire_at=retry_at)
            return FAILED

    def _fire(self, session: Session, workload: _Claimed, due: datetime, route: Route | None) -> str:
        try:
            # The savepoint undoes a refused or clashing snapshot (its row, the workload's
            # lock) and keeps the batch's transaction usable on PostgreSQL.
            with session.begin_nested():
                self.snapshots.take(session, workload.id, None, workload.user_id, SnapshotRequest(),
                                    fire_time=due, route=route)
            return FIRED
        except Conflict as exc:
            log.warning("workload %s: scheduled snapshot for %s skipped, it fires at its next time: %s",
                        workload.id, due.isoformat(), exc.message)
            return BUSY
        except IntegrityError:
            if not _already_fired(session, workload.id, due):
                raise
            log.info("workload %s: fire time %s was already fired", workload.id, due.isoformat())
            return ALREADY_FIRED

    def _advance(self, session: Session, workload_id: str, *, last_fired_at: datetime | None,
                 next_fire_at: datetime | None) -> None:
        session.execute(update(Workload).where(Workload.id == workload_id)
                        .values(last_fired_at=last_fired_at, next_fire_at=next_fire_at))

    # -- the background thread -------------------------------------------------------------

    def start(self, interval: float) -> None:
        """Tick now, then every `interval` seconds, on a daemon thread, until `stop()`."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"scheduler {self.owner} is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True,
                                        name=f"scheduler-{self.owner}")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current tick; returns once it has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self, interval: float) -> None:
        # The first tick runs at once: after downtime, what was missed fires right away.
        while True:
            try:
                self.tick()
            except Exception:  # the database may be back next time; the loop must live on
                log.exception("scheduler %s: tick failed", self.owner)
            if self._stop.wait(interval):
                return


def _already_fired(session: Session, workload_id: str, fire_time: datetime) -> bool:
    # A locking read: on MariaDB a plain read would use the transaction's snapshot, older
    # than the row that made the insert clash.
    return session.scalar(select(Snapshot.id).where(
        Snapshot.workload_id == workload_id, Snapshot.fire_time == fire_time)
        .with_for_update()) is not None
