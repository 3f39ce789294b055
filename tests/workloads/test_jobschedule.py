"""Examples for the jobschedule rules: every accepted form, every refusal, fire times."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest

from cairn.errors import InvalidInput
from cairn.workloads import jobschedule as js
from cairn.workloads.jobschedule import (
    JobSchedule,
    due_fire_time,
    fire_times,
    next_fire_time,
    parse_jobschedule,
    parse_policy_fields,
    zone,
)

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def parse(raw: dict | None, *, now: datetime = NOW, base: JobSchedule | None = None,
          service_timezone: str = "UTC") -> JobSchedule:
    return parse_jobschedule(raw, service_timezone=service_timezone, now=now, base=base)


def refusal(raw: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse(raw)  # type: ignore[arg-type]
    return caught.value


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def local(when: datetime, name: str) -> datetime:
    return when.astimezone(zone(name)).replace(tzinfo=None)


# --- defaults and merging -------------------------------------------------------------

def test_an_empty_body_gives_the_documented_defaults() -> None:
    assert parse({}) == JobSchedule(
        enabled=True, start_date=date(2026, 6, 15), start_time=time(21, 0), end_date=None,
        interval_hours=24, timezone="UTC", retention_policy_type="Number of Snapshots to Keep",
        retention_policy_value=30, fullbackup_interval=-1)


def test_no_body_at_all_is_the_same_as_an_empty_one() -> None:
    assert parse(None) == parse({})


def test_the_default_timezone_is_the_services() -> None:
    assert parse({}, service_timezone="Europe/Berlin").timezone == "Europe/Berlin"


@pytest.mark.parametrize(("timezone", "today"), [
    ("Asia/Tokyo", date(2026, 1, 2)),          # already tomorrow there
    ("UTC", date(2026, 1, 1)),
    ("America/New_York", date(2026, 1, 1)),
])
def test_today_is_the_date_in_the_schedules_timezone(timezone: str, today: date) -> None:
    now = utc(2026, 1, 1, 23, 30)
    assert parse({"timezone": timezone}, now=now).start_date == today
    assert parse({"timezone": timezone, "start_date": "now"}, now=now).start_date == today


def test_a_modify_keeps_the_stored_value_of_every_field_it_omits() -> None:
    base = parse({"timezone": "Europe/Berlin", "start_date": "10/27/2020", "interval": "5",
                  "end_date": "12/31/2030", "retention_policy_value": 7, "enabled": False})
    changed = parse({"start_time": "3:00 PM"}, base=base, now=utc(2027, 1, 1))
    assert changed == replace(base, start_time=time(15, 0))


def test_a_modify_that_changes_only_the_timezone_keeps_the_dates_and_time() -> None:
    base = parse({"timezone": "Europe/Berlin", "start_date": "10/27/2020", "start_time": "21:00"})
    changed = parse({"timezone": "Asia/Tokyo"}, base=base)
    assert changed == replace(base, timezone="Asia/Tokyo")


def test_a_modify_that_says_now_uses_today_in_the_stored_timezone() -> None:
    base = parse({"timezone": "Asia/Tokyo", "start_date": "10/27/2020"})
    changed = parse({"start_date": "now"}, base=base, now=utc(2026, 1, 1, 23, 30))
    assert changed.start_date == date(2026, 1, 2)


def test_a_modify_that_moves_the_start_past_the_stored_end_blames_start_date() -> None:
    base = parse({"start_date": "01/01/2026", "end_date": "02/01/2026"})
    with pytest.raises(InvalidInput) as caught:
        parse({"start_date": "03/01/2026"}, base=base)
    assert caught.value.field == "jobschedule.start_date"


def test_the_keys_the_view_adds_are_ignored_so_a_shown_schedule_can_be_sent_back() -> None:
    schedule = parse({"timezone": "UTC+2", "start_time": "3:00 PM", "interval": 5})
    shown = schedule.wire(appliance_timezone="UTC", global_jobscheduler=True, now=NOW)
    assert "nextrun" in shown
    assert parse(shown, base=schedule) == schedule
    assert parse(shown) == schedule


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        parse({}, now=datetime(2026, 1, 1))


# --- accepted forms -------------------------------------------------------------------

@pytest.mark.parametrize(("field", "given", "attribute", "expected"), [
    ("enabled", True, "enabled", True),
    ("enabled", False, "enabled", False),
    ("enabled", "True", "enabled", True),
    ("enabled", "False", "enabled", False),
    ("enabled", "true", "enabled", True),
    ("enabled", "false", "enabled", False),
    ("enabled", 1, "enabled", True),
    ("enabled", 0, "enabled", False),
    ("start_date", "10/27/2020", "start_date", date(2020, 10, 27)),
    ("start_date", "2/9/2021", "start_date", date(2021, 2, 9)),
    ("start_date", "02/29/2024", "start_date", date(2024, 2, 29)),
    ("start_date", "now", "start_date", date(2026, 6, 15)),
    ("start_date", "Now", "start_date", date(2026, 6, 15)),
    ("start_time", "09:00 PM", "start_time", time(21, 0)),
    ("start_time", "3:00 PM", "start_time", time(15, 0)),
    ("start_time", "3:05PM", "start_time", time(15, 5)),
    ("start_time", "12:00 AM", "start_time", time(0, 0)),
    ("start_time", "12:30 PM", "start_time", time(12, 30)),
    ("start_time", "11:59 pm", "start_time", time(23, 59)),
    ("start_time", "21:00", "start_time", time(21, 0)),
    ("start_time", "00:00", "start_time", time(0, 0)),
    ("start_time", "7:45", "start_time", time(7, 45)),
    ("start_time", " 9:15 AM ", "start_time", time(9, 15)),
    ("end_date", "12/31/2030", "end_date", date(2030, 12, 31)),
    ("end_date", "No End", "end_date", None),
    ("end_date", "no end", "end_date", None),
    ("interval", 5, "interval_hours", 5),
    ("interval", "5", "interval_hours", 5),
    ("interval", "5hr", "interval_hours", 5),
    ("interval", "5 hr", "interval_hours", 5),
    ("interval", "5 hrs", "interval_hours", 5),
    ("interval", "24hr", "interval_hours", 24),
    ("interval", "24HR", "interval_hours", 24),
    ("interval", 1, "interval_hours", 1),
    ("interval", 8760, "interval_hours", 8760),
    ("timezone", "Europe/Berlin", "timezone", "Europe/Berlin"),
    ("timezone", "europe/berlin", "timezone", "Europe/Berlin"),
    ("timezone", "America/New_York", "timezone", "America/New_York"),
    ("timezone", "UTC", "timezone", "UTC"),
    ("timezone", "utc", "timezone", "UTC"),
    ("timezone", "UTC+2", "timezone", "UTC+2"),
    ("timezone", "UTC+02", "timezone", "UTC+2"),
    ("timezone", "UTC+02:00", "timezone", "UTC+2"),
    ("timezone", "UTC-05:30", "timezone", "UTC-5:30"),
    ("timezone", "UTC+5:45", "timezone", "UTC+5:45"),
    ("timezone", "UTC+14:00", "timezone", "UTC+14"),
    ("timezone", "UTC-14", "timezone", "UTC-14"),
    ("timezone", "UTC+0", "timezone", "UTC"),
    ("retention_policy_type", "Number of Snapshots to Keep", "retention_policy_type",
     "Number of Snapshots to Keep"),
    ("retention_policy_type", "Number of days to retain Snapshots", "retention_policy_type",
     "Number of days to retain Snapshots"),
    ("retention_policy_type", "number of days to retain snapshots", "retention_policy_type",
     "Number of days to retain Snapshots"),
    ("retention_policy_value", 10, "retention_policy_value", 10),
    ("retention_policy_value", "10", "retention_policy_value", 10),
    ("retention_policy_value", 1, "retention_policy_value", 1),
    ("retention_policy_value", 100000, "retention_policy_value", 100000),
    ("fullbackup_interval", -1, "fullbackup_interval", -1),
    ("fullbackup_interval", "-1", "fullbackup_interval", -1),
    ("fullbackup_interval", 0, "fullbackup_interval", 0),
    ("fullbackup_interval", "7", "fullbackup_interval", 7),
])
def test_every_documented_form_is_accepted_and_normalised(
        field: str, given: object, attribute: str, expected: object) -> None:
    assert getattr(parse({field: given}), attribute) == expected


def test_the_seeds_show_view_parses_once_its_impossible_end_date_is_fixed() -> None:
    seed = {"retention_policy_type": "Number of Snapshots to Keep", "end_date": "11/27/2020",
            "start_time": "3:00 PM", "interval": "5", "enabled": False,
            "retention_policy_value": "10", "timezone": "UTC+2", "start_date": "10/27/2020",
            "fullbackup_interval": "-1", "appliance_timezone": "UTC",
            "global_jobscheduler": True}
    schedule = parse(seed)
    assert schedule.wire(appliance_timezone="UTC", global_jobscheduler=True, now=NOW) == seed


def test_a_timezone_offset_is_east_of_utc_when_positive() -> None:
    assert zone("UTC+2").utcoffset(None) == timedelta(hours=2)
    assert zone("UTC-5:30").utcoffset(None) == -timedelta(hours=5, minutes=30)


# --- refusals -------------------------------------------------------------------------

def test_impossible_end_date_is_refused_naming_the_field() -> None:
    error = refusal({"end_date": "15/27/2020"})
    assert error.field == "jobschedule.end_date"
    assert error.message.startswith(
        "jobschedule.end_date: '15/27/2020' is not a date of the form MM/DD/YYYY")


def test_end_before_start_is_refused_naming_end_date() -> None:
    error = refusal({"start_date": "10/27/2020", "end_date": "10/26/2020"})
    assert error.field == "jobschedule.end_date"
    assert "before start_date 10/27/2020" in error.message


def test_end_on_the_start_day_is_accepted() -> None:
    schedule = parse({"start_date": "10/27/2020", "end_date": "10/27/2020"})
    assert schedule.end_date == date(2020, 10, 27)


def test_unknown_timezone_is_refused_naming_the_field() -> None:
    error = refusal({"timezone": "Mars/Olympus_Mons"})
    assert error.field == "jobschedule.timezone"
    assert "IANA timezone name" in error.message


def test_interval_of_zero_is_refused_naming_the_field() -> None:
    error = refusal({"interval": "0hr"})
    assert error.field == "jobschedule.interval"
    assert "hours from 1 to 8760" in error.message


def test_an_unknown_key_is_refused_naming_it() -> None:
    error = refusal({"intervals": "5"})
    assert error.field == "jobschedule.intervals"
    assert "unknown field" in error.message


def test_a_jobschedule_that_is_not_an_object_is_refused() -> None:
    assert refusal(["enabled"]).field == "jobschedule"


def test_a_huge_value_is_not_echoed_back() -> None:
    error = refusal({"timezone": "x" * 100_000})
    assert error.field == "jobschedule.timezone"
    assert len(error.message) < 300


@pytest.mark.parametrize(("field", "given"), [
    ("enabled", "yes"), ("enabled", 2), ("enabled", "1"), ("enabled", None), ("enabled", 1.0),
    ("enabled", [True]),
    ("start_date", "15/27/2020"), ("start_date", "02/30/2021"), ("start_date", "2020-10-27"),
    ("start_date", "10/27/20"), ("start_date", "01/01/1969"), ("start_date", "01/01/3000"),
    ("start_date", "tomorrow"), ("start_date", 20201027), ("start_date", None),
    ("start_time", "13:00 PM"), ("start_time", "0:30 AM"), ("start_time", "24:00"),
    ("start_time", "12:60"), ("start_time", "9 PM"), ("start_time", "9:5 PM"),
    ("start_time", "21:00:00"), ("start_time", 2100), ("start_time", ""),
    ("end_date", "15/27/2020"), ("end_date", "never"), ("end_date", None), ("end_date", False),
    ("interval", 0), ("interval", "0"), ("interval", -5), ("interval", "5 hours"),
    ("interval", "5h"), ("interval", 5.0), ("interval", "5.5"), ("interval", True),
    ("interval", 8761), ("interval", "9" * 30), ("interval", [5]), ("interval", None),
    ("interval", "\u0665"),  # ARABIC-INDIC DIGIT FIVE: int() would take it
    ("timezone", "Mars/Olympus_Mons"), ("timezone", "UTC+15"), ("timezone", "UTC+14:01"),
    ("timezone", "UTC+2:60"), ("timezone", "UTC+530"), ("timezone", "../etc/passwd"),
    ("timezone", ""), ("timezone", 2), ("timezone", None), ("timezone", "x" * 65),
    ("retention_policy_type", "Number of Snapshots"), ("retention_policy_type", 1),
    ("retention_policy_value", 0), ("retention_policy_value", "0"), ("retention_policy_value", -3),
    ("retention_policy_value", 100001), ("retention_policy_value", True),
    ("retention_policy_value", 10.0), ("retention_policy_value", "ten"),
    ("retention_policy_value", {"n": 1}),
    ("fullbackup_interval", -2), ("fullbackup_interval", "-2"), ("fullbackup_interval", False),
    ("fullbackup_interval", 100001), ("fullbackup_interval", "1e3"),
])
def test_every_malformed_value_is_refused_naming_the_field(field: str, given: object) -> None:
    error = refusal({field: given})
    assert error.field == f"jobschedule.{field}"
    assert error.message.startswith(f"jobschedule.{field}: ")
    assert " is not " in error.message


# --- policy fields --------------------------------------------------------------------

def test_policy_fields_are_validated_and_keyed_by_attribute() -> None:
    fields = parse_policy_fields({"interval": "12hr", "retention_policy_type":
                                  "Number of days to retain Snapshots",
                                  "retention_policy_value": "14", "fullbackup_interval": 3})
    assert fields == {"interval_hours": 12,
                      "retention_policy_type": "Number of days to retain Snapshots",
                      "retention_policy_value": 14, "fullbackup_interval": 3}
    assert replace(parse({}), **fields).interval_hours == 12


@pytest.mark.parametrize(("raw", "field"), [
    ({"interval": 1, "retention_policy_type": "Number of Snapshots to Keep",
      "retention_policy_value": 1}, "workload_policy.field_values.fullbackup_interval"),
    ({"interval": 0, "retention_policy_type": "Number of Snapshots to Keep",
      "retention_policy_value": 1, "fullbackup_interval": 0},
     "workload_policy.field_values.interval"),
    ({"interval": 1, "retention_policy_type": "Number of Snapshots to Keep",
      "retention_policy_value": 1, "fullbackup_interval": 0, "timezone": "UTC"},
     "workload_policy.field_values.timezone"),
    (["interval"], "workload_policy.field_values"),
])
def test_bad_policy_fields_are_refused_naming_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_policy_fields(raw)
    assert caught.value.field == field


# --- storage and the wire view --------------------------------------------------------

def test_storage_round_trips_through_json_and_is_stable() -> None:
    schedule = parse({"timezone": "UTC-5:30", "start_date": "10/27/2020",
                      "end_date": "11/27/2020", "start_time": "3:00 PM", "interval": 5})
    stored = json.dumps(schedule.to_storage(), sort_keys=True)
    assert JobSchedule.from_storage(json.loads(stored)) == schedule
    assert json.dumps(schedule.to_storage(), sort_keys=True) == stored
    assert JobSchedule.from_storage(parse({}).to_storage()) == parse({})


def test_the_view_uses_the_seeds_forms() -> None:
    schedule = parse({"start_time": "00:05", "end_date": "No End", "interval": "24hr",
                      "start_date": "06/15/2026"})
    shown = schedule.wire(appliance_timezone="Europe/Berlin", global_jobscheduler=True,
                          now=utc(2026, 6, 15, 12))
    assert shown == {
        "enabled": True, "start_date": "06/15/2026", "start_time": "12:05 AM",
        "end_date": "No End", "interval": "24", "timezone": "UTC",
        "retention_policy_type": "Number of Snapshots to Keep", "retention_policy_value": "30",
        "fullbackup_interval": "-1", "appliance_timezone": "Europe/Berlin",
        "global_jobscheduler": True, "nextrun": 12 * 3600 + 300}


def test_nextrun_is_whole_seconds_rounded_up() -> None:
    schedule = parse({"start_time": "21:00", "start_date": "06/15/2026"})
    now = utc(2026, 6, 15, 20, 59, 58, 500_000)
    shown = schedule.wire(appliance_timezone="UTC", global_jobscheduler=True, now=now)
    assert shown["nextrun"] == 2


@pytest.mark.parametrize(("raw", "global_on"), [
    ({"enabled": False}, True),
    ({}, False),
    ({"start_date": "01/01/2020", "end_date": "01/31/2020"}, True),  # ended
])
def test_nextrun_is_shown_only_while_something_will_fire(raw: dict, global_on: bool) -> None:
    shown = parse(raw).wire(appliance_timezone="UTC", global_jobscheduler=global_on, now=NOW)
    assert "nextrun" not in shown
    assert shown["global_jobscheduler"] is global_on


# --- fire times -----------------------------------------------------------------------

def fires(raw: dict, start: datetime, end: datetime) -> list[datetime]:
    return list(fire_times(parse(raw), start, end))


def test_the_first_fire_is_at_the_start_date_and_time_in_the_timezone() -> None:
    schedule = parse({"timezone": "UTC+2", "start_date": "10/27/2020", "start_time": "3:00 PM",
                      "interval": 5})
    assert next_fire_time(schedule, utc(2000, 1, 1)) == utc(2020, 10, 27, 13)


def test_a_daily_time_in_the_spring_gap_fires_when_the_gap_ends() -> None:
    times = fires({"timezone": "Europe/Berlin", "start_date": "03/28/2026",
                   "start_time": "02:30"}, utc(2026, 3, 27), utc(2026, 3, 31))
    assert times == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    assert local(times[1], "Europe/Berlin") == datetime(2026, 3, 29, 3, 0)


def test_a_daily_time_in_the_autumn_overlap_fires_once_at_its_first_occurrence() -> None:
    times = fires({"timezone": "America/New_York", "start_date": "10/31/2026",
                   "start_time": "1:30 AM"}, utc(2026, 10, 30), utc(2026, 11, 3))
    # EDT (-4) until the overlap's first 01:30, then EST (-5)
    assert times == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_a_daily_time_keeps_its_wall_clock_across_both_changes() -> None:
    times = fires({"timezone": "America/New_York", "start_date": "01/01/2026",
                   "start_time": "9:00 PM"}, utc(2026, 1, 1), utc(2027, 1, 1, 6))
    assert len(times) == 365
    assert {local(t, "America/New_York").time() for t in times} == {time(21, 0)}


def test_six_hourly_stays_on_its_four_wall_times_across_daylight_saving() -> None:
    times = fires({"timezone": "Europe/Berlin", "start_date": "03/27/2026", "start_time": "03:00",
                   "interval": "6 hrs"}, utc(2026, 3, 26), utc(2026, 4, 2))
    assert {local(t, "Europe/Berlin").time() for t in times} == {
        time(3), time(9), time(15), time(21)}
    assert len(times) == 4 * 6


def test_an_hourly_schedule_skips_the_repeated_hour_and_fires_the_gap_once() -> None:
    spring = fires({"timezone": "Europe/Berlin", "start_date": "03/29/2026", "start_time": "00:00",
                    "interval": 1}, utc(2026, 3, 28), utc(2026, 3, 29, 3))
    assert spring == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 0), utc(2026, 3, 29, 1),
                      utc(2026, 3, 29, 2), utc(2026, 3, 29, 3)]
    autumn = fires({"timezone": "Europe/Berlin", "start_date": "10/25/2026", "start_time": "00:00",
                    "interval": 1}, utc(2026, 10, 24), utc(2026, 10, 25, 3))
    assert autumn == [utc(2026, 10, 24, 22), utc(2026, 10, 24, 23), utc(2026, 10, 25, 0),
                      utc(2026, 10, 25, 2), utc(2026, 10, 25, 3)]


def test_a_five_hourly_schedule_counts_elapsed_hours_across_daylight_saving() -> None:
    times = fires({"timezone": "Europe/Berlin", "start_date": "03/28/2026", "start_time": "21:00",
                   "interval": 5}, utc(2026, 3, 28), utc(2026, 3, 30))
    assert times[0] == utc(2026, 3, 28, 20)
    assert all(b - a == timedelta(hours=5) for a, b in pairwise(times))


def test_a_multi_day_interval_keeps_its_wall_clock() -> None:
    times = fires({"timezone": "Europe/Berlin", "start_date": "03/01/2026", "start_time": "21:00",
                   "interval": "48hr"}, utc(2026, 2, 1), utc(2026, 5, 1))
    assert {local(t, "Europe/Berlin").time() for t in times} == {time(21)}
    assert [local(t, "Europe/Berlin").date() for t in times][:2] == [date(2026, 3, 1),
                                                                     date(2026, 3, 3)]


def test_nothing_fires_after_the_end_date_in_the_schedules_timezone() -> None:
    raw = {"timezone": "Asia/Tokyo", "start_date": "01/01/2026", "end_date": "01/03/2026",
           "start_time": "23:00", "interval": 12}
    times = fires(raw, utc(2025, 1, 1), utc(2027, 1, 1))
    assert [local(t, "Asia/Tokyo") for t in times] == [
        datetime(2026, 1, 1, 23), datetime(2026, 1, 2, 11), datetime(2026, 1, 2, 23),
        datetime(2026, 1, 3, 11), datetime(2026, 1, 3, 23)]
    assert next_fire_time(parse(raw), times[-1]) is None


def test_next_fire_time_is_strictly_after() -> None:
    schedule = parse({"start_date": "01/01/2026", "start_time": "21:00"})
    assert next_fire_time(schedule, utc(2026, 2, 1, 21)) == utc(2026, 2, 2, 21)
    assert next_fire_time(schedule, utc(2026, 2, 1, 20, 59)) == utc(2026, 2, 1, 21)


def test_a_disabled_schedule_never_fires() -> None:
    schedule = parse({"enabled": "False", "start_date": "01/01/2026"})
    assert next_fire_time(schedule, NOW) is None
    assert list(fire_times(schedule, utc(2026, 1, 1), utc(2027, 1, 1))) == []
    assert due_fire_time(schedule, None, NOW) is None


def test_fire_times_need_aware_datetimes() -> None:
    with pytest.raises(ValueError):
        next_fire_time(parse({}), datetime(2026, 1, 1))


def test_after_downtime_only_the_latest_missed_time_is_due() -> None:
    schedule = parse({"start_date": "01/01/2026", "start_time": "21:00", "interval": 1})
    assert due_fire_time(schedule, utc(2026, 1, 2), utc(2026, 1, 3, 5, 30)) == utc(2026, 1, 3, 5)
    assert due_fire_time(schedule, utc(2026, 1, 3, 5), utc(2026, 1, 3, 5, 59)) is None
    assert due_fire_time(schedule, None, utc(2026, 1, 1, 20)) is None
    assert due_fire_time(schedule, None, utc(2026, 1, 1, 21)) == utc(2026, 1, 1, 21)


def test_after_the_end_the_last_fire_time_is_still_due_once() -> None:
    schedule = parse({"start_date": "01/01/2026", "end_date": "01/05/2026", "start_time": "21:00"})
    assert due_fire_time(schedule, None, utc(2026, 6, 1)) == utc(2026, 1, 5, 21)
    assert due_fire_time(schedule, utc(2026, 1, 5, 21), utc(2026, 6, 1)) is None


def test_due_fire_time_does_not_walk_through_years_of_past_fire_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    instant = js._instant

    def counting(wall: datetime, tz: object) -> datetime:
        nonlocal calls
        calls += 1
        return instant(wall, tz)  # type: ignore[arg-type]

    monkeypatch.setattr(js, "_instant", counting)
    hourly = parse({"timezone": "Europe/Berlin", "start_date": "01/01/1971", "interval": 1})
    assert due_fire_time(hourly, None, utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 1)
    five = parse({"timezone": "America/New_York", "start_date": "01/01/1971", "interval": 5,
                  "start_time": "00:00"})
    due = due_fire_time(five, None, utc(2026, 3, 29, 1, 30))
    assert due is not None and (due - utc(1971, 1, 1, 5)) % timedelta(hours=5) == timedelta(0)
    assert calls < 50
