"""Properties of a tiered schedule's fire times and of per-tier retention, checked
against slow, obvious references, across daylight-saving shifts in several zones."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.workloads.jobschedule import (
    JobSchedule,
    due_fire_time,
    fire_snapshot_type,
    fire_tiers,
    fire_times,
    next_fire_time,
    parse_jobschedule,
    zone,
)
from cairn.workloads.retention import Kept, expired_by_tiers
from cairn.workloads.tiers import HOURLY_INTERVALS, MONTHS, TIER_NAMES, WEEKDAYS, Tiers
from tests.workloads.test_jobschedule_properties import TRICKY_TIMES, shift_days

SETTINGS = settings(max_examples=40, deadline=None)
MINUTE = timedelta(minutes=1)
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "Australia/Sydney")
WINDOW_DAYS = 3


@st.composite
def tiered(draw: st.DrawFn) -> tuple[JobSchedule, datetime, datetime]:
    """A tiered schedule that starts a few days before a shift of its zone, and the
    window (start, end) of UTC instants to check, which spans the shift."""
    name = draw(st.sampled_from(ZONES))
    shift = draw(st.sampled_from(shift_days(name)))
    start = shift - timedelta(days=draw(st.integers(0, 2)))
    at = draw(st.sampled_from(TRICKY_TIMES))
    times = draw(st.lists(st.sampled_from(TRICKY_TIMES + (time(12), time(22, 45))),
                          min_size=1, max_size=3))
    days_of_window = [start + timedelta(days=n) for n in range(WINDOW_DAYS + 1)]
    weekdays = draw(st.lists(st.sampled_from([d.weekday() for d in days_of_window]), min_size=1))
    month_days = draw(st.lists(st.sampled_from([d.day for d in days_of_window] + [31]), min_size=1))
    raw = {
        "timezone": name, "start_date": start.strftime("%m/%d/%Y"), "start_time": at.strftime("%H:%M"),
        "hourly": {"interval": draw(st.sampled_from(HOURLY_INTERVALS)), "retention": 3},
        "daily": {"backup_time": [t.strftime("%H:%M") for t in times], "retention": 2},
        "weekly": {"backup_day": [WEEKDAYS[d] for d in weekdays], "retention": 1},
        "monthly": {"month_backup_day": month_days, "retention": 1},
        "yearly": {"backup_month": [MONTHS[shift.month - 1]], "retention": 1},
    }
    schedule = parse_jobschedule(raw, service_timezone="UTC", now=datetime(2024, 1, 1, tzinfo=UTC))
    window_start = datetime.combine(start, time(0), zone(name)).astimezone(UTC) - timedelta(hours=1)
    return schedule, window_start, window_start + timedelta(days=WINDOW_DAYS)


def reference_instant(wall: datetime, minutes: list[tuple[datetime, datetime]]) -> datetime | None:
    """The first instant whose local wall time is at or past `wall`: the wall time itself
    (its first occurrence), or the end of the gap it falls in."""
    return next((instant for instant, local in minutes if local >= wall), None)


def reference(schedule: JobSchedule, start: datetime, end: datetime) -> dict[str, set[datetime]]:
    """Each tier's fire instants in (start, end], from wall times alone."""
    tz = zone(schedule.timezone)
    count = int((end - start) / MINUTE) + 24 * 60
    minutes = [(start + n * MINUTE, (start + n * MINUTE).astimezone(tz).replace(tzinfo=None))
               for n in range(count)]
    tiers = schedule.tiers
    assert tiers is not None and tiers.hourly is not None and tiers.daily is not None
    first = datetime.combine(schedule.start_date, schedule.start_time)
    days = [schedule.start_date + timedelta(days=n) for n in range(-1, WINDOW_DAYS + 2)]
    found: dict[str, set[datetime]] = {name: set() for name in TIER_NAMES}

    def add(tier: str, wall: datetime) -> None:
        if wall >= first and (instant := reference_instant(wall, minutes)) and start < instant <= end:
            found[tier].add(instant)

    wall = first
    while wall < first + timedelta(days=WINDOW_DAYS + 2):
        add("hourly", wall)
        wall += timedelta(hours=tiers.hourly.interval)
    for day in days:
        walls = [datetime.combine(day, t) for t in tiers.daily.backup_time
                 if datetime.combine(day, t) >= first]
        for each in walls:
            add("daily", each)
        if not walls:
            continue
        assert tiers.weekly and tiers.monthly and tiers.yearly
        if day.weekday() in tiers.weekly.backup_day:
            add("weekly", walls[0])
        if day.day in tiers.monthly.month_backup_day:
            add("monthly", walls[0])
            firsts = [d for d in days if d.month == day.month and d.day in tiers.monthly.month_backup_day
                      and datetime.combine(d, tiers.daily.backup_time[-1]) >= first]
            if day.month in tiers.yearly.backup_month and firsts and day == min(firsts):
                add("yearly", walls[0])
    return found


@SETTINGS
@given(tiered())
def test_each_tier_fires_at_its_wall_times_across_a_shift(case: tuple[JobSchedule, datetime, datetime]) -> None:
    schedule, start, end = case
    expected = reference(schedule, start, end)
    fires = list(fire_times(schedule, start, end))
    assert fires == sorted(set(fires)), "increasing, each instant once"
    assert set(fires) == expected["hourly"] | expected["daily"]
    for name in ("hourly", "daily", "weekly", "monthly", "yearly"):
        assert {fire for fire in fires if name in fire_tiers(schedule, fire)} == expected[name], name
    for fire in fires:
        tiers = fire_tiers(schedule, fire)
        if {"weekly", "monthly", "yearly"} & set(tiers):
            assert fire_snapshot_type(schedule, tiers) == "full"


@SETTINGS
@given(tiered(), st.integers(0, WINDOW_DAYS * 24 * 4))
def test_next_and_due_agree_with_the_fire_times(case: tuple[JobSchedule, datetime, datetime],
                                                quarter_hours: int) -> None:
    schedule, start, end = case
    fires = list(fire_times(schedule, start - timedelta(days=2), end + timedelta(days=2)))
    now = start + quarter_hours * timedelta(minutes=15)
    assert next_fire_time(schedule, now) == min(f for f in fires if f > now)
    past = [f for f in fires if f <= now]
    assert due_fire_time(schedule, None, now) == (max(past) if past else None)
    if past:
        assert due_fire_time(schedule, max(past), now) is None


@st.composite
def tiered_snapshots(draw: st.DrawFn) -> tuple[list[Kept], Tiers, datetime]:
    days = draw(st.none() | st.integers(1, 5))
    schedule = parse_jobschedule({
        "hourly": {"interval": 1, "retention": draw(st.integers(1, 5))},
        "daily": {"backup_time": ["00:00"], "retention": draw(st.integers(1, 5))},
        "weekly": {"backup_day": ["mon"], "retention": draw(st.integers(1, 3))},
        "manual": {"retention": draw(st.integers(1, 3)),
                   **({} if days is None else {"retention_days_to_keep": days})},
    }, service_timezone="UTC", now=datetime(2024, 1, 1, tzinfo=UTC))
    assert schedule.tiers is not None
    base = datetime(2026, 1, 1)
    tier_sets = st.sampled_from([("hourly",), ("daily",), ("hourly", "daily"), ("daily", "weekly"),
                                 ("manual",), ("yearly",)])
    snapshots = [Kept(f"s{n}", base + timedelta(hours=draw(st.integers(0, 24 * 20))),
                      draw(st.booleans()) and draw(st.booleans()), draw(tier_sets))
                 for n in range(draw(st.integers(0, 25)))]
    return snapshots, schedule.tiers, base + timedelta(days=draw(st.integers(0, 25)))


@settings(max_examples=200, deadline=None)
@given(tiered_snapshots())
def test_a_snapshot_stays_exactly_while_one_of_its_tiers_keeps_it(
        case: tuple[list[Kept], Tiers, datetime]) -> None:
    snapshots, tiers, now = case
    removed = {r.snapshot_id: r.reason for r in expired_by_tiers(snapshots, tiers, now)}
    newest = max(snapshots, key=lambda s: (s.created_at, s.id)) if snapshots else None

    def kept_by(name: str, snapshot: Kept) -> bool:
        tier = tiers.get(name)
        if tier is None:
            return False  # a tier the schedule no longer has keeps nothing
        members = sorted((s for s in snapshots if name in s.tiers),
                         key=lambda s: (s.created_at, s.id), reverse=True)[:tier.retention]
        if tier.retention_days_to_keep is not None:
            members = [s for s in members if s.created_at >= now - timedelta(days=tier.retention_days_to_keep)]
        return snapshot in members

    for snapshot in snapshots:
        stays = snapshot.pinned or snapshot is newest or any(kept_by(t, snapshot) for t in snapshot.tiers)
        assert (snapshot.id not in removed) == stays, snapshot
        if not stays:
            assert all(t in removed[snapshot.id] for t in snapshot.tiers)
