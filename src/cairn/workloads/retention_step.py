"""Retention applied: after a successful snapshot, the snapshots the schedule no longer
keeps are marked `deleting` with their reason, removed from the target, marked
`deleted`, and the space goes back through a garbage collection.

The decisions themselves are pure and live in `retention.py`. Every database step
reconnects after a dropped connection, and each is safe to run twice: marking reads
only `available` rows, removal from the target is idempotent, and the final write
only moves `deleting` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting
from cairn.db.models import Snapshot
from cairn.jobs.runner import JobContext
from cairn.workloads import states
from cairn.workloads.jobschedule import JobSchedule
from cairn.workloads.records import WorkloadRecord
from cairn.workloads.retention import Kept, Removal, expired_by_tiers, expired_snapshots
from cairn.workloads.target_data import WorkloadData
from cairn.workloads.tiers import HOURLY, MANUAL

log = logging.getLogger(__name__)


def mark_expired(session: Session, workload: WorkloadRecord, now: datetime) -> list[Removal]:
    """Mark the snapshots the workload's schedule no longer keeps `deleting`, each with
    the rule that removes it; returns them."""
    schedule = JobSchedule.from_storage(workload.jobschedule)
    rows = session.execute(select(Snapshot.id, Snapshot.created_at, Snapshot.pinned,
                                  Snapshot.schedule_tiers, Snapshot.fire_time).where(
        Snapshot.workload_id == workload.id, Snapshot.status == states.SNAP_AVAILABLE,
        Snapshot.deleted.is_(False))).all()
    if schedule.tiers is not None:
        removals = expired_by_tiers([Kept(r.id, r.created_at, r.pinned, _tiers_of(r)) for r in rows],
                                    schedule.tiers, now)
    else:
        removals = expired_snapshots([Kept(r.id, r.created_at, r.pinned) for r in rows],
                                     schedule.retention_policy_type, schedule.retention_policy_value, now)
    for removal in removals:
        session.execute(update(Snapshot).where(Snapshot.id == removal.snapshot_id).values(
            status=states.SNAP_DELETING, updated_at=now, deleted_reason=removal.reason))
    return removals


def _tiers_of(row: Any) -> tuple[str, ...]:
    """A snapshot's tiers; one taken before its schedule became tiered counts as hourly
    when scheduled and manual when taken on request."""
    if row.schedule_tiers is not None:
        return tuple(row.schedule_tiers)
    return (HOURLY,) if row.fire_time is not None else (MANUAL,)


class RetentionStep:
    """After a successful snapshot: remove what the schedule no longer keeps, then GC."""

    def __init__(self, clock: Callable[[], datetime], gc_wait_seconds: float) -> None:
        self.clock = clock
        self.gc_wait_seconds = gc_wait_seconds

    def __call__(self, job: JobContext, workload: WorkloadRecord, data: WorkloadData) -> None:
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                removals = mark_expired(session, workload, self.clock())
        for removal in removals:
            data.remove_snapshot(removal.snapshot_id)
            for attempt in reconnecting():
                with attempt, job.database.unit_of_work() as session:
                    now = self.clock()
                    session.execute(update(Snapshot).where(
                        Snapshot.id == removal.snapshot_id, Snapshot.status == states.SNAP_DELETING)
                        .values(status=states.SNAP_DELETED, deleted=True, deleted_at=now, updated_at=now))
            log.info("snapshot %s removed: %s", removal.snapshot_id, removal.reason)
        if removals:
            data.collect_garbage(self.gc_wait_seconds)
