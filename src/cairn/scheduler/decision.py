"""What the scheduler does with one due workload at `now`: pure, no database, no clock.

A workload's row carries `last_fired_at` (the last fire time it snapshotted or
deliberately passed over) and `next_fire_at` (when to look again). `decide` reads the
stored schedule and gives the one fire time due now, however many were missed (the
latest of them: after downtime one snapshot, never a burst), and the next instant to
look, strictly after `now` so that a claimed row always leaves the due set. All
datetimes here are naive UTC, the form the database stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cairn.workloads.jobschedule import JobSchedule, due_fire_time, next_fire_time


@dataclass(frozen=True)
class Decision:
    #: the fire time to snapshot now (None: nothing is due, only `next_fire_at` moves)
    due: datetime | None
    #: the next fire time after now (None: the schedule is disabled or has ended)
    next_fire_at: datetime | None

    def last_fired_at(self, previous: datetime | None) -> datetime | None:
        """The `last_fired_at` to store once `due` was fired or passed over."""
        return self.due if self.due is not None else previous


def decide(schedule: JobSchedule, last_fired: datetime | None, now: datetime) -> Decision:
    """The fire time due at `now` (after `last_fired`) and the next one after `now`."""
    aware_now = _aware(now)
    due = due_fire_time(schedule, None if last_fired is None else _aware(last_fired), aware_now)
    upcoming = next_fire_time(schedule, aware_now)
    return Decision(due=_naive(due), next_fire_at=_naive(upcoming))


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
