"""`decide`: the fire time due for one workload at an instant, and the next one (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from cairn.scheduler.decision import Decision, decide
from cairn.workloads.jobschedule import JobSchedule

DAILY = JobSchedule(enabled=True, start_date=date(2030, 3, 1), start_time=time(21, 0), end_date=None,
                    interval_hours=24, timezone="Europe/Berlin",
                    retention_policy_type="Number of Snapshots to Keep", retention_policy_value=30,
                    fullbackup_interval=-1)
FIRST = datetime(2030, 3, 1, 20, 0)  # 21:00 in Berlin (CET), as naive UTC


def test_before_the_first_fire_time_nothing_is_due() -> None:
    assert decide(DAILY, None, FIRST - timedelta(seconds=1)) == Decision(due=None, next_fire_at=FIRST)


def test_at_a_fire_time_it_is_due_and_the_next_is_a_day_later() -> None:
    assert decide(DAILY, None, FIRST) == Decision(due=FIRST, next_fire_at=FIRST + timedelta(days=1))


def test_missed_fire_times_give_only_the_latest() -> None:
    now = FIRST + timedelta(days=9, hours=3)
    decision = decide(DAILY, FIRST, now)
    assert decision.due == FIRST + timedelta(days=9)
    assert decision.next_fire_at == FIRST + timedelta(days=10)


def test_a_fire_time_already_fired_is_not_due_again() -> None:
    decision = decide(DAILY, FIRST, FIRST + timedelta(hours=5))
    assert decision.due is None and decision.last_fired_at(FIRST) == FIRST


def test_wall_clock_kept_across_daylight_saving() -> None:
    # Berlin moves to CEST on 2030-03-31: 21:00 local is then 19:00 UTC
    decision = decide(DAILY, None, datetime(2030, 3, 31, 19, 30))
    assert decision.due == datetime(2030, 3, 31, 19, 0)
    assert decision.next_fire_at == datetime(2030, 4, 1, 19, 0)


def test_disabled_and_ended_schedules_have_nothing_next() -> None:
    assert decide(replace(DAILY, enabled=False), None, FIRST) == Decision(None, None)
    ended = replace(DAILY, end_date=date(2030, 3, 2))
    assert decide(ended, None, FIRST + timedelta(days=1)) == Decision(FIRST + timedelta(days=1), None)
    assert decide(ended, FIRST + timedelta(days=1), FIRST + timedelta(days=30)) == Decision(None, None)
