"""Pausing a workload's schedule, and resuming it.

A paused workload keeps its jobschedule but nothing fires: `schedule_paused_at` is set
and `next_fire_at` is cleared, so the scheduler's claim (live workloads whose
`next_fire_at` is due and that are not paused) never offers it; a modify while paused
keeps it cleared. Resume clears the mark and computes the next fire time from now, so
what fell due while paused is passed over, never caught up (an owner paused it on
purpose). Snapshots taken on request are not affected. Pause and resume write in the
caller's unit of work and touch `updated_at`, so cached views show the change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from cairn.db.models import Workload
from cairn.errors import Conflict
from cairn.workloads import states
from cairn.workloads.jobschedule import JobSchedule
from cairn.workloads.lifecycle import _next_fire
from cairn.workloads.records import lock_workload


def _live(session: Session, workload_id: str, project_scope: str | None) -> Workload:
    row = lock_workload(session, workload_id, project_scope)
    if row.status in (states.DELETING, states.DELETED):
        raise Conflict(f"Invalid state: Workload is '{row.status}'; its schedule cannot change.")
    return row


def pause(session: Session, workload_id: str, project_scope: str | None, now: datetime) -> Workload:
    row = _live(session, workload_id, project_scope)
    if row.schedule_paused_at is not None:
        raise Conflict(f"Workload {workload_id} is already paused.")
    row.schedule_paused_at = now
    row.next_fire_at = None
    row.updated_at = now
    return row


def resume(session: Session, workload_id: str, project_scope: str | None, now: datetime) -> Workload:
    row = _live(session, workload_id, project_scope)
    if row.schedule_paused_at is None:
        raise Conflict(f"Workload {workload_id} is not paused.")
    row.schedule_paused_at = None
    row.next_fire_at = _next_fire(JobSchedule.from_storage(row.jobschedule), now)
    row.updated_at = now
    return row
