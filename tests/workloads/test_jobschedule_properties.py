"""Properties of the jobschedule fire times, checked against a slow, obvious reference."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.workloads.jobschedule import (
    JobSchedule,
    due_fire_time,
    fire_times,
    next_fire_time,
    parse_jobschedule,
    zone,
)

SETTINGS = settings(max_examples=100, deadline=None)
MINUTE = timedelta(minutes=1)
FAR = datetime(3100, 1, 1, tzinfo=UTC)

# half-hour shifts (Lord Howe), shifts at midnight (Santiago), none (UTC, fixed offsets)
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "UTC", "UTC+5:30", "UTC-3")
DST_ZONES = ("Europe/Berlin", "America/New_York")
WALL_CLOCK_INTERVALS = (1, 2, 3, 4, 6, 8, 12, 24, 48, 168)
ELAPSED_INTERVALS = (5, 7, 9, 10, 13, 25, 36, 100)
# the Berlin and New York gaps and overlaps are 02:00-03:00 and 01:00-02:00
TRICKY_TIMES = tuple(time(h, m) for h in (0, 1, 2, 3) for m in (0, 15, 30, 59)) + (time(23, 30),)


def wall(when: datetime, name: str) -> datetime:
    return when.astimezone(zone(name)).replace(tzinfo=None)


@cache
def shift_days(name: str) -> tuple[date, ...]:
    """The days on which the zone's offset changes, 2024 to 2027."""
    tz, day, days = zone(name), date(2024, 1, 1), []
    while day < date(2028, 1, 1):
        noon = datetime.combine(day, time(12), tz)
        if noon.utcoffset() != (noon - timedelta(days=1)).utcoffset():
            days.append(day - timedelta(days=1))
        day += timedelta(days=1)
    return tuple(days) or (date(2026, 3, 29),)


@st.composite
def schedules(draw: st.DrawFn, zones: tuple[str, ...] = ZONES,
              intervals: tuple[int, ...] = WALL_CLOCK_INTERVALS + ELAPSED_INTERVALS,
              ending: bool = True) -> JobSchedule:
    name = draw(st.sampled_from(zones))
    near_a_shift = st.builds(lambda day, days: day + timedelta(days=days),
                             st.sampled_from(shift_days(name)), st.integers(-12, 1))
    start = draw(st.dates(date(2024, 1, 1), date(2027, 6, 30)) | near_a_shift)
    at = draw(st.sampled_from(TRICKY_TIMES) | st.times().map(lambda t: t.replace(second=0,
                                                                                microsecond=0)))
    end = None
    if ending:
        end = draw(st.none() | st.integers(0, 40).map(lambda days: start + timedelta(days=days)))
    return schedule_of(name, start, at, draw(st.sampled_from(intervals)), end)


def schedule_of(name: str, start: date, at: time, hours: int,
                end: date | None = None) -> JobSchedule:
    return JobSchedule(enabled=True, start_date=start, start_time=at, end_date=end,
                       interval_hours=hours, timezone=name,
                       retention_policy_type="Number of Snapshots to Keep",
                       retention_policy_value=30, fullbackup_interval=-1)


def first_wall(schedule: JobSchedule) -> datetime:
    return datetime.combine(schedule.start_date, schedule.start_time)


def reference_instant(local: datetime, name: str) -> datetime:
    """Where a wall time fires, by trying both readings and walking minute by minute."""
    tz = zone(name)
    readings = [moment for fold in (0, 1)
                if wall(moment := local.replace(tzinfo=tz, fold=fold).astimezone(UTC), name)
                == local]
    if readings:
        return min(readings)
    moment = local.replace(tzinfo=tz).astimezone(UTC)  # some instant after the gap
    while wall(moment - MINUTE, name) > local:
        moment -= MINUTE
    return moment


def reference_fire_times(schedule: JobSchedule, until: datetime) -> list[datetime]:
    """Every fire time up to `until`, enumerated one by one from the first."""
    hours, name = schedule.interval_hours, schedule.timezone
    step, start = timedelta(hours=hours), first_wall(schedule)
    first = reference_instant(start, name)
    fires: list[datetime] = []
    for index in range(10**6):
        if 24 % hours == 0 or hours % 24 == 0:
            fire = reference_instant(start + index * step, name)
        else:
            fire = first + index * step
        if fire > until or (schedule.end_date and wall(fire, name).date() > schedule.end_date):
            return fires
        if not fires or fire > fires[-1]:
            fires.append(fire)
    raise AssertionError("runaway reference")


@st.composite
def windows(draw: st.DrawFn, schedule: JobSchedule) -> tuple[datetime, datetime]:
    """Up to ten days, near the schedule's start or near a shift of its zone after it."""
    first_day = schedule.start_date
    anchors = [first_day] + [day for day in shift_days(schedule.timezone)
                             if first_day <= day <= first_day + timedelta(days=40)]
    anchor = datetime.combine(draw(st.sampled_from(anchors)), time(), UTC)
    start = anchor + timedelta(minutes=draw(st.integers(-3 * 1440, 10 * 1440)))
    return start, start + timedelta(minutes=draw(st.integers(0, 10 * 1440)))


@SETTINGS
@given(st.data())
def test_fire_times_are_the_references_within_any_window(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    start, end = data.draw(windows(schedule))
    expected = [fire for fire in reference_fire_times(schedule, end) if fire > start]
    assert list(fire_times(schedule, start, end)) == expected


@SETTINGS
@given(st.data())
def test_fire_times_strictly_increase_and_stay_between_start_and_end(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    start, end = data.draw(windows(schedule))
    fires = list(fire_times(schedule, start, end))
    assert all(a < b for a, b in pairwise(fires))
    assert all(start < fire <= end for fire in fires)
    # nothing before the start: a start time in a gap moves later, never earlier
    assert all(wall(fire, schedule.timezone) >= first_wall(schedule) for fire in fires)
    if schedule.end_date is not None:
        assert all(wall(fire, schedule.timezone).date() <= schedule.end_date for fire in fires)
        assert next_fire_time(schedule, datetime.combine(schedule.end_date, time(), UTC)
                              + timedelta(days=2)) is None


@SETTINGS
@given(st.sampled_from(DST_ZONES), st.sampled_from((1, 2, 3, 4)), st.integers(0, 23), st.data())
def test_short_intervals_across_a_shift_never_fire_twice_at_one_instant(
        name: str, hours: int, hour: int, data: st.DataObject) -> None:
    # on the hour, a wall time in the gap and the gap's end are the same instant
    day = data.draw(st.sampled_from(shift_days(name)))
    schedule = schedule_of(name, day - timedelta(days=2), time(hour), hours)
    opening = datetime.combine(day, time(), UTC) - timedelta(days=1)
    fires = list(fire_times(schedule, opening, opening + timedelta(days=3)))
    assert all(a < b for a, b in pairwise(fires))
    expected = reference_fire_times(schedule, opening + timedelta(days=3))
    assert fires == [fire for fire in expected if fire > opening]


@SETTINGS
@given(schedules(zones=DST_ZONES, intervals=(24,), ending=False))
def test_daily_schedules_keep_their_wall_clock_time_across_daylight_saving(
        schedule: JobSchedule) -> None:
    name, at = schedule.timezone, schedule.start_time
    opening = datetime.combine(schedule.start_date, time(), UTC) - timedelta(days=1)
    fires = list(fire_times(schedule, opening, opening + timedelta(days=400)))
    days = [wall(fire, name).date() for fire in fires]
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))]  # one a day
    for fire in fires:
        local = fire.astimezone(zone(name))
        if local.time().replace(fold=0) == at:
            assert local.fold == 0  # an overlap's first occurrence
        else:
            # a gap: the time did not exist, and the fire is the first instant after it
            assert local.time() > at
            assert wall(fire - timedelta(seconds=1), name).time() < at


@SETTINGS
@given(schedules(intervals=(1, 2, 3, 4, 6, 8, 12)))
def test_divisors_of_a_day_stay_on_their_wall_clock_grid(schedule: JobSchedule) -> None:
    opening = datetime.combine(schedule.start_date, time(), UTC) - timedelta(days=1)
    step = timedelta(hours=schedule.interval_hours)
    for fire in fire_times(schedule, opening, opening + timedelta(days=20)):
        local = wall(fire, schedule.timezone)
        on_grid = (local - first_wall(schedule)) % step == timedelta(0)
        # off the grid only where a grid time fell into a gap
        assert on_grid or fire == reference_instant(
            local - (local - first_wall(schedule)) % step, schedule.timezone)


@SETTINGS
@given(st.data())
def test_other_intervals_are_exactly_their_hours_apart(data: st.DataObject) -> None:
    schedule = data.draw(schedules(intervals=ELAPSED_INTERVALS))
    start, end = data.draw(windows(schedule))
    fires = list(fire_times(schedule, start, end + timedelta(days=10)))
    step = timedelta(hours=schedule.interval_hours)
    assert all(b - a == step for a, b in pairwise(fires))


@SETTINGS
@given(st.data())
def test_next_fire_time_is_the_first_fire_time_after(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    after, _ = data.draw(windows(schedule))
    assert next_fire_time(schedule, after) == next(fire_times(schedule, after, FAR), None)


@SETTINGS
@given(st.data())
def test_due_fire_time_is_the_latest_missed_time_by_brute_force(data: st.DataObject) -> None:
    schedule = data.draw(schedules())
    last, now = data.draw(windows(schedule))
    last_fired = data.draw(st.none() | st.just(last))
    missed = [fire for fire in reference_fire_times(schedule, now)
              if last_fired is None or fire > last_fired]
    assert due_fire_time(schedule, last_fired, now) == (missed[-1] if missed else None)


@SETTINGS
@given(schedules(), st.booleans(), st.datetimes(datetime(2024, 1, 1), datetime(2028, 1, 1),
                                                 timezones=st.just(UTC)))
def test_storage_and_the_view_round_trip(schedule: JobSchedule, enabled: bool,
                                         now: datetime) -> None:
    schedule = replace(schedule, enabled=enabled)
    assert JobSchedule.from_storage(schedule.to_storage()) == schedule
    shown = schedule.wire(appliance_timezone="UTC", global_jobscheduler=True, now=now)
    assert parse_jobschedule(shown, service_timezone="UTC", now=now) == schedule
    upcoming = next_fire_time(schedule, now)
    if upcoming is None:
        assert "nextrun" not in shown
    else:
        assert 0 <= shown["nextrun"] - (upcoming - now).total_seconds() < 1
