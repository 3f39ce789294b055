"""Reading a tiered jobschedule: forms accepted, Trilio's dependencies, the 4.x form untouched."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from cairn.errors import InvalidInput
from cairn.workloads.jobschedule import JobSchedule, fire_tiers, fire_times, parse_jobschedule
from cairn.workloads.tiers import FULL

NOW = datetime(2026, 4, 1, tzinfo=UTC)
HOURLY = {"interval": 24, "retention": 3}
DAILY = {"backup_time": ["06:00"], "retention": 3}


def parse(raw: dict[str, object], base: JobSchedule | None = None) -> JobSchedule:
    return parse_jobschedule(raw, service_timezone="UTC", now=NOW, base=base)


def refusal(raw: dict[str, object], base: JobSchedule | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse(raw, base)
    return caught.value.field or ""


def test_the_4x_form_stores_as_before_without_tiers() -> None:
    stored = parse({"interval": "5hr"}).to_storage()
    assert "tiers" not in stored and stored["interval_hours"] == 5
    assert JobSchedule.from_storage(stored).tiers is None


def test_numbers_may_be_strings_and_lists_are_kept_once_in_calendar_order() -> None:
    schedule = parse({"hourly": {"interval": "6", "retention": "4"},
                      "daily": {"backup_time": ["23:00", "7:05", "23:00"], "retention": 2},
                      "weekly": {"backup_day": ["SUN", "mon", "sun"], "retention": 1}})
    assert schedule.tiers is not None and schedule.tiers.hourly is not None
    assert (schedule.tiers.hourly.interval, schedule.tiers.hourly.retention) == (6, 4)
    assert schedule.tiers.daily is not None and schedule.tiers.daily.backup_time == (time(7, 5), time(23))
    assert schedule.tiers.weekly is not None and schedule.tiers.weekly.backup_day == (0, 6)
    assert schedule.tiers.weekly.snapshot_type == FULL
    assert JobSchedule.from_storage(schedule.to_storage()) == schedule


@pytest.mark.parametrize("value", [True, 4.0, [4], "4h", -4, 0])
def test_a_retention_that_is_not_a_whole_number_is_refused(value: object) -> None:
    assert refusal({"hourly": {"interval": 4, "retention": value}}) == "jobschedule.hourly.retention"


def test_trilios_dependencies() -> None:
    assert refusal({"daily": DAILY}) == "jobschedule.hourly"  # enabled: hourly is needed
    assert refusal({"enabled": False, "daily": DAILY}) == "jobschedule.daily"
    assert refusal({"hourly": HOURLY, "weekly": {"backup_day": ["mon"], "retention": 1}}) == "jobschedule.weekly"
    assert refusal({"hourly": HOURLY, "daily": DAILY,
                    "yearly": {"backup_month": ["jan"], "retention": 1}}) == "jobschedule.yearly"
    # monthly needs daily, not weekly (the guide's rule)
    parse({"hourly": HOURLY, "daily": DAILY, "monthly": {"month_backup_day": [1], "retention": 1}})
    # a disabled tiered schedule may have no tiers at all, and never fires
    quiet = parse({"enabled": False, "manual": {"retention": 2}})
    assert list(fire_times(quiet, NOW, datetime(2027, 1, 1, tzinfo=UTC))) == []


def test_mixing_the_forms_is_refused_naming_the_4x_field() -> None:
    assert refusal({"hourly": HOURLY, "retention_policy_type": "Number of Snapshots to Keep"}) == \
        "jobschedule.retention_policy_type"
    # a modify is one form or the other: a 4.x field over a tiered schedule switches back
    switched = parse({"fullbackup_interval": 2}, base=parse({"hourly": HOURLY, "timezone": "Asia/Tokyo"}))
    assert switched.tiers is None and switched.fullbackup_interval == 2
    assert switched.timezone == "Asia/Tokyo"


def test_a_month_without_the_day_has_no_monthly_fire() -> None:
    schedule = parse({"start_date": "04/01/2026", "start_time": "00:00",
                      "hourly": HOURLY, "daily": DAILY,
                      "monthly": {"month_backup_day": [31], "retention": 2}})
    monthly = [fire for fire in fire_times(schedule, NOW, datetime(2026, 6, 1, tzinfo=UTC))
               if "monthly" in fire_tiers(schedule, fire)]
    assert monthly == [datetime(2026, 5, 31, 6, tzinfo=UTC)]
