"""A workload's job schedule: what a request may say, what is stored, shown and fired.

This module owns the `jobschedule` object of the workloads API (API.md, "jobschedule"):
reading it from a request (validation, normalisation, defaults, the merge of a modify
into the stored schedule), the policy fields that replace part of it, its storage form,
its wire view, and the fire times. It is pure: no clock, no database, no HTTP. The
caller passes the current time (`now`, an aware datetime) wherever "today" or "next"
matters, and turns `cairn.errors.InvalidInput` into a 400.

Input (every field optional; a modify keeps the stored value of a field it omits):

    enabled                 true/false, "True"/"False", "true"/"false", 1/0     true
    start_date              "MM/DD/YYYY" or "now"                                today
    start_time              "HH:MM AM/PM" (one-digit hour too) or 24-hour "HH:MM" 9:00 PM
    end_date                "MM/DD/YYYY" or "No End"                             No End
    interval                hours 1..8760: 5, "5", "5hr", "5 hr", "5 hrs"        24
    timezone                IANA name, "UTC", or "UTC+2" / "UTC-05:30" (±14:00)  service's
    retention_policy_type   "Number of Snapshots to Keep" or
                            "Number of days to retain Snapshots"                 the first
    retention_policy_value  integer 1..100000, number or string                  30
    fullbackup_interval     integer -1..100000, number or string                 -1

"Today" is the date of `now` in the schedule's timezone; years run 1970 to 2999.
Stricter than the original: an impossible date, an end_date before start_date, an
unknown timezone, an interval of 0, an unknown key, a wrong type (a list, a bool for a
number, a float) or a string longer than 64 characters is refused, naming the field. Keywords ("now", "No End", unit
"hr", timezone names, retention types) match regardless of case and are stored in their
canonical spelling; surrounding blanks are ignored. The keys the service adds to the
view (`appliance_timezone`, `global_jobscheduler`, `nextrun`) are ignored on input, so
that a client may send back what it was shown.

View (`JobSchedule.wire`), in the seed's forms: dates "10/27/2020" or "No End", time
"3:00 PM", interval "5" (hours, a string), retention_policy_value and
fullbackup_interval as strings, enabled a bool, timezone canonical ("Europe/Berlin",
"UTC+2", "UTC-5:30"), plus appliance_timezone, global_jobscheduler and, while enabled,
the global scheduler on and a fire time ahead, nextrun: whole seconds, rounded up.

Fire times: the first at start_date start_time in the schedule's timezone, then every
`interval` hours, none at or after the midnight that ends end_date there. When the
interval divides 24 or is a whole number of days, every fire time is a wall-clock time
(a daily 21:00 stays 21:00 across daylight saving); a wall time that does not exist that
day fires at the first instant after the gap, one that happens twice fires once, at
its first occurrence; two wall times that land on one instant fire once. Other
intervals count elapsed hours from the first fire time. A disabled schedule has no
fire times. After downtime, `due_fire_time` gives only the latest missed time, so a
burst of missed times becomes one snapshot.

The tiered (6.x) form: the keys hourly, daily, weekly, monthly, yearly and manual
(their fields in `tiers`) replace interval and the retention fields; a body with both
is refused. A tiered schedule fires at the union of its hourly cadence and its daily
times, under the same daylight-saving rules; `fire_tiers` says which tiers a fire time
belongs to and `fire_snapshot_type` what it takes. docs/schedules.md is the reference.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from cairn.errors import InvalidInput
from cairn.workloads.tiers import (
    FULL,
    MANUAL,
    SCHEDULED_TIERS,
    TIER_NAMES,
    Tier,
    Tiers,
    check_dependencies,
    merged,
    parse_tier,
)

RETENTION_POLICY_TYPES = ("Number of Snapshots to Keep", "Number of days to retain Snapshots")
POLICY_FIELDS = ("interval", "retention_policy_type", "retention_policy_value",
                 "fullbackup_interval")
#: the fields of the 4.x form that the tiered form replaces (a body may not mix them)
CADENCE_FIELDS = POLICY_FIELDS
READ_ONLY_FIELDS = ("appliance_timezone", "global_jobscheduler", "nextrun")

MAX_INTERVAL_HOURS = 8760
MAX_RETENTION_VALUE = 100_000
MAX_FULLBACKUP_INTERVAL = 100_000
_MAX_TEXT = 64
_YEARS = (1970, 2999)
_MAX_OFFSET_MINUTES = 14 * 60
# Schedules without an end stop here, so that date arithmetic never overflows.
_HORIZON = datetime(9000, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class JobSchedule:
    """A validated schedule; `timezone` is a canonical name that `zone()` can load."""

    enabled: bool
    start_date: date
    start_time: time
    end_date: date | None
    interval_hours: int
    timezone: str
    retention_policy_type: str
    retention_policy_value: int
    fullbackup_interval: int
    #: the tiered (6.x) form: when set, the tiers fire and retain, not the 4.x fields
    tiers: Tiers | None = None

    def to_storage(self) -> dict[str, Any]:
        """A JSON-serialisable dict, the same for equal schedules; `from_storage` reads it."""
        stored = {
            "enabled": self.enabled,
            "start_date": self.start_date.isoformat(),
            "start_time": self.start_time.strftime("%H:%M"),
            "end_date": None if self.end_date is None else self.end_date.isoformat(),
            "interval_hours": self.interval_hours,
            "timezone": self.timezone,
            "retention_policy_type": self.retention_policy_type,
            "retention_policy_value": self.retention_policy_value,
            "fullbackup_interval": self.fullbackup_interval,
        }
        if self.tiers is not None:  # absent for the 4.x form: its stored form is unchanged
            stored["tiers"] = self.tiers.to_storage()
        return stored

    @classmethod
    def from_storage(cls, stored: Mapping[str, Any]) -> JobSchedule:
        """The schedule `to_storage` wrote."""
        end = stored["end_date"]
        return cls(
            enabled=bool(stored["enabled"]),
            start_date=date.fromisoformat(stored["start_date"]),
            start_time=time.fromisoformat(stored["start_time"]),
            end_date=None if end is None else date.fromisoformat(end),
            interval_hours=int(stored["interval_hours"]),
            timezone=str(stored["timezone"]),
            retention_policy_type=str(stored["retention_policy_type"]),
            retention_policy_value=int(stored["retention_policy_value"]),
            fullbackup_interval=int(stored["fullbackup_interval"]),
            tiers=Tiers.from_storage(stored["tiers"]) if "tiers" in stored else None,
        )

    def wire(self, *, appliance_timezone: str, global_jobscheduler: bool,
             now: datetime) -> dict[str, Any]:
        """The API's view, in the seed's forms; `nextrun` is whole seconds, rounded up."""
        view: dict[str, Any] = {
            "enabled": self.enabled,
            "start_date": _us_date(self.start_date),
            "start_time": _twelve_hour(self.start_time),
            "end_date": "No End" if self.end_date is None else _us_date(self.end_date),
            "timezone": self.timezone,
        }
        if self.tiers is None:
            view.update({
                "interval": str(self.interval_hours),
                "retention_policy_type": self.retention_policy_type,
                "retention_policy_value": str(self.retention_policy_value),
                "fullbackup_interval": str(self.fullbackup_interval),
            })
        else:
            view.update(self.tiers.wire())
        view.update({"appliance_timezone": appliance_timezone,
                     "global_jobscheduler": global_jobscheduler})
        if global_jobscheduler:
            upcoming = next_fire_time(self, now)
            if upcoming is not None:
                # ceil: a client that sleeps `nextrun` seconds wakes after the snapshot began
                view["nextrun"] = -(-(upcoming - _aware_utc(now, "now")) // timedelta(seconds=1))
        return view


def parse_jobschedule(raw: Mapping[str, object] | None, *, service_timezone: str,
                      now: datetime, base: JobSchedule | None = None) -> JobSchedule:
    """The schedule a create (`base` None) or a modify of `base` asks for; None means {}.

    `now` (aware) gives "today" in the resulting schedule's timezone for start_date's
    default and "now". Raises InvalidInput naming the field. A tier key makes the
    schedule tiered (a modify replaces the tiers it names; null removes one); a 4.x
    cadence field turns it back into the 4.x form; a body with both is refused.
    """
    if raw is None:
        raw = {}
    _check_keys("jobschedule", raw, _FIELDS + TIER_NAMES, ignored=READ_ONLY_FIELDS)
    given = {key: value for key, value in raw.items() if key in _FIELDS}
    tier_keys = [key for key in TIER_NAMES if key in raw]
    mixed = next((key for key in CADENCE_FIELDS if key in given), None)
    if tier_keys and mixed is not None:
        raise InvalidInput(
            f"jobschedule.{mixed}: a field of the 4.x form cannot be combined with the "
            f"tiered form ({', '.join(tier_keys)}); send one form or the other",
            field=f"jobschedule.{mixed}")

    if "timezone" in given:
        zone_name = _parsed("jobschedule", "timezone", given["timezone"], _parse_timezone)
    elif base is not None:
        zone_name = base.timezone
    else:
        zone_name = _parsed("jobschedule", "timezone", service_timezone, _parse_timezone)
    today = _aware_utc(now, "now").astimezone(zone(zone_name)).date()

    values: dict[str, Any] = (_defaults(today) if base is None else
                              {item.name: getattr(base, item.name) for item in fields(base)})
    parsers = {**_PARSERS, "start_date": lambda value: _parse_start_date(value, today)}
    for key, value in given.items():
        values[_attribute(key)] = _parsed("jobschedule", key, value, parsers[key])
    values["timezone"] = zone_name
    if tier_keys:
        changes: dict[str, Tier | None] = {
            key: None if raw[key] is None else parse_tier(key, raw[key], "jobschedule")
            for key in tier_keys}
        values["tiers"] = merged(values.get("tiers"), changes)
    elif mixed is not None:
        values["tiers"] = None

    end, start = values["end_date"], values["start_date"]
    if end is not None and end < start:
        # blame what this request changed; a modify may move only one of the two
        culprit = "end_date" if "end_date" in given else "start_date"
        raise InvalidInput(
            f"jobschedule.{culprit}: end_date {_us_date(end)} is before start_date "
            f"{_us_date(start)}; end_date must be on or after start_date",
            field=f"jobschedule.{culprit}")
    if values.get("tiers") is not None:
        check_dependencies(values["tiers"], values["enabled"], "jobschedule")
    return JobSchedule(**values)


def parse_policy_fields(raw: Mapping[str, object], *,
                        field_prefix: str = "workload_policy.field_values") -> dict[str, Any]:
    """A policy's four field values, validated, keyed by `JobSchedule` attribute.

    All four are required. Apply them with `dataclasses.replace(schedule, **fields)`:
    a workload's `metadata.policy_id` makes them replace whatever the body gave.
    """
    _check_keys(field_prefix, raw, POLICY_FIELDS)
    fields = {}
    for key in POLICY_FIELDS:
        if key not in raw:
            raise InvalidInput(f"{field_prefix}.{key}: required (a policy gives all of "
                               f"{', '.join(POLICY_FIELDS)})", field=f"{field_prefix}.{key}")
        fields[_attribute(key)] = _parsed(field_prefix, key, raw[key], _PARSERS[key])
    return fields


def next_fire_time(schedule: JobSchedule, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (aware), in UTC; None if there is none."""
    after = _aware_utc(after, "after")
    if not schedule.enabled:
        return None
    if schedule.tiers is not None:
        return next(_tiered_after(schedule, after), None)
    plan = _plan(schedule)
    if after >= plan.limit:
        return None
    fire = plan.at(plan.index_after(after))
    return fire if fire < plan.limit else None


def fire_times(schedule: JobSchedule, start: datetime, end: datetime) -> Iterator[datetime]:
    """The fire times t with start < t <= end (both aware), increasing, in UTC."""
    start, end = _aware_utc(start, "start"), _aware_utc(end, "end")
    if not schedule.enabled:
        return
    if schedule.tiers is not None:
        for fire in _tiered_after(schedule, start):
            if fire > end:
                return
            yield fire
        return
    plan = _plan(schedule)
    end = min(end, plan.limit - _TICK)
    if start >= end:
        return
    index, previous = plan.index_after(start), start
    while (fire := plan.at(index)) <= end:
        # two wall times may land on one instant (a time in a gap and the gap's end)
        if fire > previous:
            yield fire
            previous = fire
        index += 1


def due_fire_time(schedule: JobSchedule, last_fired: datetime | None,
                  now: datetime) -> datetime | None:
    """The latest fire time <= now that is after `last_fired` (if given), in UTC.

    One answer however many fire times were missed: the scheduler snapshots once. The
    cost does not grow with the schedule's age (an arithmetic jump, then a DST fix-up).
    """
    now = _aware_utc(now, "now")
    if not schedule.enabled:
        return None
    if schedule.tiers is not None:
        latest = _tiered_latest(schedule, now)
        if latest is None:
            return None
        fire = latest
    else:
        plan = _plan(schedule)
        index = plan.index_after(min(now, plan.limit - _TICK)) - 1
        if index < 0:
            return None
        fire = plan.at(index)
    if last_fired is not None and fire <= _aware_utc(last_fired, "last_fired"):
        return None
    return fire


def fire_tiers(schedule: JobSchedule, fire: datetime) -> tuple[str, ...]:
    """The tiers a fire time of a tiered schedule belongs to, in tier order.

    Hourly: a time of the hourly cadence. Daily: one of the day's backup_time. Weekly,
    monthly: the day's first daily fire, on a backup_day or a month_backup_day. Yearly:
    the first monthly fire of a backup_month. () for the 4.x form or no fire time.
    """
    plan = _hourly_plan(schedule)
    if schedule.tiers is None or plan is None:
        return ()
    fire = _aware_utc(fire, "fire")
    tiers, found = schedule.tiers, set()
    if plan.at(plan.index_after(fire - _TICK)) == fire:
        found.add("hourly")
    daily = tiers.daily
    local = fire.astimezone(plan.zone).date()
    for day in (local - timedelta(days=1), local, local + timedelta(days=1)) if daily else ():
        times = [moment for moment in daily.backup_time  # type: ignore[union-attr]
                 if datetime.combine(day, moment) >= plan.first_wall]
        matched = [moment for moment in times
                   if _instant(datetime.combine(day, moment), plan.zone) == fire]
        if not matched:
            continue
        found.add("daily")
        if matched[0] != times[0]:
            continue  # weekly and above take the day's first daily fire only
        if tiers.weekly is not None and day.weekday() in tiers.weekly.backup_day:
            found.add("weekly")
        if tiers.monthly is not None and day.day in tiers.monthly.month_backup_day:
            found.add("monthly")
            if (tiers.yearly is not None and day.month in tiers.yearly.backup_month
                    and day == _first_monthly_day(schedule, day)):
                found.add("yearly")
    return tuple(name for name in SCHEDULED_TIERS if name in found)


def fire_snapshot_type(schedule: JobSchedule, tiers: tuple[str, ...]) -> str | None:
    """full when any of the fire's tiers takes full snapshots (weekly and above always
    do), else incremental; None for the 4.x form, whose fullbackup_interval decides."""
    if schedule.tiers is None or not tiers:
        return None
    kinds = {tier.snapshot_type for name in tiers if (tier := schedule.tiers.get(name)) is not None}
    return FULL if FULL in kinds else "incremental"


def manual_tiers(schedule: JobSchedule) -> tuple[str, ...]:
    """The tiers a snapshot taken on request belongs to: manual, for the tiered form."""
    return () if schedule.tiers is None else (MANUAL,)


@lru_cache(maxsize=1024)
def zone(name: str) -> tzinfo:
    """The tzinfo for a canonical timezone name ("UTC+2" style or IANA)."""
    offset = _OFFSET.fullmatch(name)
    if offset is None:
        return ZoneInfo(name)
    sign = -1 if offset[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[2]), minutes=int(offset[3] or 0)), name)


# --- fire-time arithmetic -------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """A schedule reduced to arithmetic: fire number k is `at(k)`, non-decreasing in k."""

    zone: tzinfo
    first_wall: datetime  # naive local wall time of fire number 0
    first: datetime
    step: timedelta
    by_wall_clock: bool
    limit: datetime  # exclusive

    def at(self, index: int) -> datetime:
        if self.by_wall_clock:
            return _instant(self.first_wall + index * self.step, self.zone)
        return self.first + index * self.step

    def index_after(self, after: datetime) -> int:
        """The smallest k with at(k) > after."""
        if self.by_wall_clock:
            elapsed = after.astimezone(self.zone).replace(tzinfo=None) - self.first_wall
        else:
            elapsed = after - self.first
        # Never too far: wall k of the guess is <= after's wall, and wall times map to
        # instants in order, so at(guess) <= after. Too near by at most the few steps
        # that fit in a repeated hour, when `after` is in its second occurrence.
        index = max(0, elapsed // self.step)
        while self.at(index) <= after:
            index += 1
        return index


@lru_cache(maxsize=1024)
def _plan(schedule: JobSchedule) -> _Plan:
    tz = zone(schedule.timezone)
    first_wall = datetime.combine(schedule.start_date, schedule.start_time)
    limit = _HORIZON
    if schedule.end_date is not None:
        limit = _instant(datetime.combine(schedule.end_date + timedelta(days=1), time()), tz)
    hours = schedule.interval_hours
    return _Plan(zone=tz, first_wall=first_wall, first=_instant(first_wall, tz),
                 step=timedelta(hours=hours), by_wall_clock=24 % hours == 0 or hours % 24 == 0,
                 limit=limit)


def _hourly_plan(schedule: JobSchedule) -> _Plan | None:
    """The hourly tier's cadence (its intervals all divide 24: wall-clock times)."""
    hourly = None if schedule.tiers is None else schedule.tiers.hourly
    if hourly is None:
        return None
    return _plan(replace(schedule, interval_hours=hourly.interval, tiers=None))


def _daily_walls(schedule: JobSchedule, plan: _Plan, day: date, step: int) -> Iterator[datetime]:
    """The daily tier's wall times from `day` on (step 1) or back (step -1), not before
    the schedule's first wall time."""
    daily = schedule.tiers.daily if schedule.tiers is not None else None
    if daily is None:
        return
    moments = daily.backup_time if step > 0 else tuple(reversed(daily.backup_time))
    while step > 0 or day >= schedule.start_date:
        for moment in moments:
            wall = datetime.combine(day, moment)
            if wall >= plan.first_wall:
                yield wall
        if day.year >= _HORIZON.year:
            return
        day += timedelta(days=step)


def _tiered_after(schedule: JobSchedule, after: datetime) -> Iterator[datetime]:
    """The tiered schedule's fire times after `after`, increasing, each once."""
    plan = _hourly_plan(schedule)
    if plan is None:
        return
    streams: list[Iterator[datetime]] = [
        (plan.at(index) for index in count(plan.index_after(after)))]
    first_day = max(schedule.start_date, after.astimezone(plan.zone).date() - timedelta(days=1))
    # wall times map to instants in order, so each stream is non-decreasing
    streams.append(instant for wall in _daily_walls(schedule, plan, first_day, 1)
                   if (instant := _instant(wall, plan.zone)) > after)
    previous = after
    for fire in heapq.merge(*streams):
        if fire >= plan.limit:
            return
        if fire > previous:
            yield fire
            previous = fire


def _tiered_latest(schedule: JobSchedule, now: datetime) -> datetime | None:
    """The tiered schedule's latest fire time at or before `now`."""
    plan = _hourly_plan(schedule)
    if plan is None:
        return None
    now = min(now, plan.limit - _TICK)
    index = plan.index_after(now) - 1
    latest = plan.at(index) if index >= 0 else None
    last_day = now.astimezone(plan.zone).date() + timedelta(days=1)
    for wall in _daily_walls(schedule, plan, last_day, -1):
        instant = _instant(wall, plan.zone)
        if instant <= now:
            return instant if latest is None else max(latest, instant)
    return latest


def _first_monthly_day(schedule: JobSchedule, day: date) -> date | None:
    """The first day of `day`'s month on which the monthly tier fires."""
    tiers = schedule.tiers
    if tiers is None or tiers.monthly is None or tiers.daily is None:
        return None
    monthly, last_time = tiers.monthly, tiers.daily.backup_time[-1]
    first_wall = datetime.combine(schedule.start_date, schedule.start_time)
    for number in monthly.month_backup_day:
        try:
            candidate = day.replace(day=number)
        except ValueError:
            continue  # the month has no such day
        if datetime.combine(candidate, last_time) >= first_wall:
            return candidate
    return None


def _instant(wall: datetime, tz: tzinfo) -> datetime:
    """The UTC instant a naive local wall time fires at (see the module's rules)."""
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)  # fold=0: first occurrence
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # The wall time is in a forward shift's gap. Read with the later offset it is an
    # instant before the shift, with the earlier one an instant after: bisect to the
    # shift itself (zone transitions fall on whole seconds).
    before = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = int(instant.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) > wall:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _aware_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


# --- input forms ----------------------------------------------------------------------

class _Refused(Exception):
    """A parser's refusal; `accepted` completes "<value> is not ..."."""

    def __init__(self, accepted: str) -> None:
        super().__init__(accepted)
        self.accepted = accepted


_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", re.ASCII)
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*([ap]m)?", re.ASCII | re.IGNORECASE)
_HOURS = re.compile(r"([0-9]+)\s*(?:hrs?)?", re.ASCII | re.IGNORECASE)
_INTEGER = re.compile(r"([+-]?[0-9]+)", re.ASCII)
_OFFSET = re.compile(r"UTC([+-])([0-9]{1,2})(?::([0-9]{2}))?", re.ASCII | re.IGNORECASE)
_ENABLED_WORDS = {"True": True, "true": True, "False": False, "false": False}
_A_DATE = f"a date of the form MM/DD/YYYY (years {_YEARS[0]} to {_YEARS[1]})"


def _text(value: object, accepted: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _Refused(accepted)
    return value.strip()


def _parse_enabled(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip() in _ENABLED_WORDS:
        return _ENABLED_WORDS[value.strip()]
    raise _Refused("true or false (also 'True'/'False', 'true'/'false', 1/0)")


def _calendar_date(text: str, accepted: str) -> date:
    match = _DATE.fullmatch(text)
    if match is None or not _YEARS[0] <= int(match[3]) <= _YEARS[1]:
        raise _Refused(accepted)
    try:
        return date(int(match[3]), int(match[1]), int(match[2]))
    except ValueError:
        raise _Refused(accepted) from None


def _parse_start_date(value: object, today: date) -> date:
    accepted = f"{_A_DATE} or 'now'"
    text = _text(value, accepted)
    return today if text.casefold() == "now" else _calendar_date(text, accepted)


def _parse_end_date(value: object) -> date | None:
    accepted = f"{_A_DATE} or 'No End'"
    text = _text(value, accepted)
    return None if text.casefold() == "no end" else _calendar_date(text, accepted)


def _parse_start_time(value: object) -> time:
    accepted = "a time of the form HH:MM AM/PM or 24-hour HH:MM"
    match = _TIME.fullmatch(_text(value, accepted))
    if match is None:
        raise _Refused(accepted)
    hour, minute, half = int(match[1]), int(match[2]), match[3]
    if half is not None:
        if not 1 <= hour <= 12:
            raise _Refused(accepted)
        hour = hour % 12 + (12 if half.casefold() == "pm" else 0)
    if hour > 23 or minute > 59:
        raise _Refused(accepted)
    return time(hour, minute)


def _whole_number(value: object, pattern: re.Pattern[str], low: int, high: int,
                  accepted: str) -> int:
    # bool is an int subclass: True must not pass for 1
    if type(value) is int:
        number = value
    elif isinstance(value, str) and (match := pattern.fullmatch(_text(value, accepted))):
        number = int(match[1])
    else:
        raise _Refused(accepted)
    if not low <= number <= high:
        raise _Refused(accepted)
    return number


def _parse_interval(value: object) -> int:
    return _whole_number(value, _HOURS, 1, MAX_INTERVAL_HOURS,
                         f"a number of hours from 1 to {MAX_INTERVAL_HOURS} "
                         "(5, '5', '5hr', '5 hr', '5 hrs')")


def _parse_retention_value(value: object) -> int:
    return _whole_number(value, _INTEGER, 1, MAX_RETENTION_VALUE,
                         f"an integer from 1 to {MAX_RETENTION_VALUE} (number or string)")


def _parse_fullbackup_interval(value: object) -> int:
    return _whole_number(value, _INTEGER, -1, MAX_FULLBACKUP_INTERVAL,
                         f"an integer from -1 to {MAX_FULLBACKUP_INTERVAL} (number or string): "
                         "-1 never, 0 always, N a full after N incrementals")


def _parse_retention_type(value: object) -> str:
    accepted = " or ".join(repr(name) for name in RETENTION_POLICY_TYPES)
    text = _text(value, accepted).casefold()
    for name in RETENTION_POLICY_TYPES:
        if name.casefold() == text:
            return name
    raise _Refused(accepted)


def _parse_timezone(value: object) -> str:
    accepted = ("an IANA timezone name (e.g. 'Europe/Berlin'), 'UTC', or an offset "
                "from 'UTC-14:00' to 'UTC+14:00' (e.g. 'UTC+2', 'UTC-05:30')")
    text = _text(value, accepted)
    offset = _OFFSET.fullmatch(text)
    if offset is None:
        name = _iana_names().get(text.casefold())
        if name is None:
            raise _Refused(accepted)
        return name
    hours, minutes = int(offset[2]), int(offset[3] or 0)
    if minutes > 59 or hours * 60 + minutes > _MAX_OFFSET_MINUTES:
        raise _Refused(accepted)
    if hours == minutes == 0:
        return "UTC"
    # canonical like the seed's "UTC+2": no padding, minutes only when there are some
    return f"UTC{offset[1]}{hours}" + (f":{minutes:02d}" if minutes else "")


@lru_cache(maxsize=1)
def _iana_names() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


_FIELDS = ("enabled", "start_date", "start_time", "end_date", "interval", "timezone",
           "retention_policy_type", "retention_policy_value", "fullbackup_interval")
# start_date's parser is missing: it needs "today", known only inside parse_jobschedule
_PARSERS: dict[str, Callable[[object], Any]] = {
    "enabled": _parse_enabled,
    "start_time": _parse_start_time,
    "end_date": _parse_end_date,
    "interval": _parse_interval,
    "timezone": _parse_timezone,
    "retention_policy_type": _parse_retention_type,
    "retention_policy_value": _parse_retention_value,
    "fullbackup_interval": _parse_fullbackup_interval,
}


def _attribute(key: str) -> str:
    """The JobSchedule attribute of a wire field."""
    return "interval_hours" if key == "interval" else key


def _check_keys(prefix: str, raw: object, known: tuple[str, ...],
                ignored: tuple[str, ...] = ()) -> None:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{prefix}: {_show(raw)} is not an object", field=prefix)
    for key in raw:
        if key not in known and key not in ignored:
            name = str(key)[:_MAX_TEXT]
            raise InvalidInput(f"{prefix}.{name}: unknown field; known fields are "
                               f"{', '.join(known)}", field=f"{prefix}.{name}")


def _parsed(prefix: str, key: str, value: object, parser: Callable[[object], Any]) -> Any:
    try:
        return parser(value)
    except _Refused as refused:
        raise InvalidInput(f"{prefix}.{key}: {_show(value)} is not {refused.accepted}",
                           field=f"{prefix}.{key}") from None


def _defaults(today: date) -> dict[str, Any]:
    return {
        "enabled": True,
        "start_date": today,
        "start_time": time(21, 0),
        "end_date": None,
        "interval_hours": 24,
        "retention_policy_type": RETENTION_POLICY_TYPES[0],
        "retention_policy_value": 30,
        "fullbackup_interval": -1,
    }


def _show(value: object) -> str:
    # never echo a megabyte back in an error message
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _us_date(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def _twelve_hour(moment: time) -> str:
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.hour % 12 or 12}:{moment.minute:02d} {half}"
