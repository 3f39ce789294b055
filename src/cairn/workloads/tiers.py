"""The tiers of a 6.x-style jobschedule: what each tier says, read, stored and shown.

A tiered jobschedule names up to six tiers beside the common fields (enabled,
start_date, start_time, end_date, timezone); docs/schedules.md is the reference:

    hourly   interval (1, 2, 3, 4, 6, 12, 24), retention, snapshot_type
    daily    backup_time (list of 24-hour "HH:MM"), retention, snapshot_type
    weekly   backup_day (list of mon..sun), retention, snapshot_type (full only)
    monthly  month_backup_day (list of 1..31), retention, snapshot_type (full only)
    yearly   backup_month (list of jan..dec), retention, snapshot_type (full only)
    manual   retention, retention_days_to_keep

Numbers are integers or strings of digits; lists keep their values once each, in
calendar order; day and month names match regardless of case. Trilio's dependencies
hold: an enabled schedule needs hourly, daily needs hourly, weekly and monthly need
daily, yearly needs monthly. This module is pure data: when the tiers fire is
`jobschedule`'s business, what they keep is `retention`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any

from cairn.errors import InvalidInput

HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY, MANUAL = (
    "hourly", "daily", "weekly", "monthly", "yearly", "manual")
TIER_NAMES = (HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY, MANUAL)
#: the tiers that fire on a schedule (manual is a retention rule for manual snapshots)
SCHEDULED_TIERS = TIER_NAMES[:5]
#: what each tier needs (Trilio's dependencies)
REQUIRES = {DAILY: HOURLY, WEEKLY: DAILY, MONTHLY: DAILY, YEARLY: MONTHLY}
HOURLY_INTERVALS = (1, 2, 3, 4, 6, 12, 24)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
FULL, INCREMENTAL = "full", "incremental"
MAX_RETENTION = 100_000
MAX_DAYS_TO_KEEP = 100_000
_MAX_LIST = 64
_MAX_TEXT = 64
_HHMM = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Tier:
    """One tier. Fields a tier does not have stay at their empty value."""

    retention: int
    snapshot_type: str = INCREMENTAL
    interval: int = 0                       # hourly
    backup_time: tuple[time, ...] = ()      # daily, earliest first
    backup_day: tuple[int, ...] = ()        # weekly: 0 is Monday
    month_backup_day: tuple[int, ...] = ()  # monthly
    backup_month: tuple[int, ...] = ()      # yearly: 1 is January
    retention_days_to_keep: int | None = None  # manual


@dataclass(frozen=True)
class Tiers:
    """The tiers a schedule has; None for a tier it does not have."""

    hourly: Tier | None = None
    daily: Tier | None = None
    weekly: Tier | None = None
    monthly: Tier | None = None
    yearly: Tier | None = None
    manual: Tier | None = None

    def get(self, name: str) -> Tier | None:
        tier: Tier | None = getattr(self, name)
        return tier

    def present(self) -> tuple[str, ...]:
        return tuple(name for name in TIER_NAMES if self.get(name) is not None)

    def to_storage(self) -> dict[str, Any]:
        return {name: _tier_storage(tier) for name in self.present()
                if (tier := self.get(name)) is not None}

    @classmethod
    def from_storage(cls, stored: Mapping[str, Any]) -> Tiers:
        return cls(**{name: _tier_from_storage(stored[name]) for name in TIER_NAMES if name in stored})

    def wire(self) -> dict[str, Any]:
        """Each tier in the request's own forms (integers, lists of names and times)."""
        return {name: _tier_wire(name, tier) for name in self.present()
                if (tier := self.get(name)) is not None}


# The fields each tier takes, in the guide's order; the first is the tier's own.
_TIER_FIELDS: dict[str, tuple[str, ...]] = {
    HOURLY: ("interval", "retention", "snapshot_type"),
    DAILY: ("backup_time", "retention", "snapshot_type"),
    WEEKLY: ("backup_day", "retention", "snapshot_type"),
    MONTHLY: ("month_backup_day", "retention", "snapshot_type"),
    YEARLY: ("backup_month", "retention", "snapshot_type"),
    MANUAL: ("retention", "retention_days_to_keep"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    HOURLY: ("interval", "retention"), DAILY: ("backup_time", "retention"),
    WEEKLY: ("backup_day", "retention"), MONTHLY: ("month_backup_day", "retention"),
    YEARLY: ("backup_month", "retention"), MANUAL: ("retention",),
}
FULL_ONLY = (WEEKLY, MONTHLY, YEARLY)


def parse_tier(name: str, raw: object, prefix: str) -> Tier:
    """One tier's object, validated; `prefix` is where it sits ("jobschedule")."""
    where = f"{prefix}.{name}"
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: {_show(raw)} is not an object", field=where)
    known = _TIER_FIELDS[name]
    for key in raw:
        if key not in known:
            shown = str(key)[:_MAX_TEXT]
            raise InvalidInput(f"{where}.{shown}: unknown field; {name} takes "
                               f"{', '.join(known)}", field=f"{where}.{shown}")
    for key in _REQUIRED[name]:
        if key not in raw:
            raise InvalidInput(f"{where}.{key}: required (a {name} tier gives "
                               f"{' and '.join(_REQUIRED[name])})", field=f"{where}.{key}")
    values: dict[str, Any] = {}
    for key in known:
        if key in raw:
            parser = _PARSERS[key] if not (key == "snapshot_type" and name in FULL_ONLY) else _full_only
            try:
                values[key] = parser(raw[key])
            except _Refused as refused:
                raise InvalidInput(f"{where}.{key}: {_show(raw[key])} is not {refused.accepted}",
                                   field=f"{where}.{key}") from None
    if name in FULL_ONLY:
        values["snapshot_type"] = FULL
    return Tier(**values)


def check_dependencies(tiers: Tiers, enabled: bool, prefix: str) -> None:
    """Trilio's rules between tiers; the refusal names the tier that lacks its base."""
    if enabled and tiers.hourly is None:
        raise InvalidInput(f"{prefix}.hourly: required while the schedule is enabled (the "
                           "tiered form fires from its hourly tier)", field=f"{prefix}.hourly")
    for name, needed in REQUIRES.items():
        if tiers.get(name) is not None and tiers.get(needed) is None:
            raise InvalidInput(f"{prefix}.{name}: needs the {needed} tier, which is missing",
                               field=f"{prefix}.{name}")


def merged(base: Tiers | None, given: Mapping[str, Tier | None]) -> Tiers:
    """`base` with the given tiers replaced (None removes a tier)."""
    return replace(base or Tiers(), **dict(given))


# --- value forms ----------------------------------------------------------------------

class _Refused(Exception):
    def __init__(self, accepted: str) -> None:
        super().__init__(accepted)
        self.accepted = accepted


def _integer(value: object, low: int, high: int, accepted: str) -> int:
    if type(value) is int:  # bool is an int subclass and must not pass for 1
        number = value
    elif isinstance(value, str) and len(value) <= _MAX_TEXT and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _Refused(accepted)
    if not low <= number <= high:
        raise _Refused(accepted)
    return number


def _listed(value: object, accepted: str, item: Callable[[object], Any]) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value or len(value) > _MAX_LIST:
        raise _Refused(accepted)
    return tuple(sorted({item(entry) for entry in value}))


def _named(names: tuple[str, ...], accepted: str, first: int) -> Callable[[object], int]:
    def parse(entry: object) -> int:
        if isinstance(entry, str) and entry.strip().casefold() in names:
            return names.index(entry.strip().casefold()) + first
        raise _Refused(accepted)
    return parse


def _parse_interval(value: object) -> int:
    accepted = f"one of {', '.join(map(str, HOURLY_INTERVALS))} (hours)"
    number = _integer(value, 1, 24, accepted)
    if number not in HOURLY_INTERVALS:
        raise _Refused(accepted)
    return number


def _parse_retention(value: object) -> int:
    return _integer(value, 1, MAX_RETENTION,
                    f"an integer from 1 to {MAX_RETENTION} (snapshots to keep)")


def _parse_days_to_keep(value: object) -> int:
    return _integer(value, 1, MAX_DAYS_TO_KEEP, f"an integer from 1 to {MAX_DAYS_TO_KEEP} (days)")


def _parse_snapshot_type(value: object) -> str:
    if isinstance(value, str) and value.strip().casefold() in (FULL, INCREMENTAL):
        return value.strip().casefold()
    raise _Refused("'incremental' or 'full'")


def _full_only(value: object) -> str:
    if isinstance(value, str) and value.strip().casefold() == FULL:
        return FULL
    raise _Refused("'full' (weekly, monthly and yearly snapshots are full)")


def _parse_backup_time(value: object) -> tuple[time, ...]:
    accepted = f"a list of 1 to {_MAX_LIST} 24-hour times 'HH:MM'"

    def one(entry: object) -> time:
        match = _HHMM.fullmatch(entry.strip()) if isinstance(entry, str) else None
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            raise _Refused(accepted)
        return time(int(match[1]), int(match[2]))
    return _listed(value, accepted, one)


def _parse_backup_day(value: object) -> tuple[int, ...]:
    accepted = f"a list of week days ({', '.join(WEEKDAYS)})"
    return _listed(value, accepted, _named(WEEKDAYS, accepted, 0))


def _parse_backup_month(value: object) -> tuple[int, ...]:
    accepted = f"a list of months ({', '.join(MONTHS)})"
    return _listed(value, accepted, _named(MONTHS, accepted, 1))


def _parse_month_days(value: object) -> tuple[int, ...]:
    accepted = "a list of days of the month, integers 1 to 31"
    return _listed(value, accepted, lambda entry: _integer(entry, 1, 31, accepted))


_PARSERS: dict[str, Callable[[object], Any]] = {
    "interval": _parse_interval,
    "retention": _parse_retention,
    "snapshot_type": _parse_snapshot_type,
    "backup_time": _parse_backup_time,
    "backup_day": _parse_backup_day,
    "month_backup_day": _parse_month_days,
    "backup_month": _parse_backup_month,
    "retention_days_to_keep": _parse_days_to_keep,
}


def _tier_storage(tier: Tier) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for item in fields(Tier):
        value = getattr(tier, item.name)
        if item.name == "backup_time":
            value = [moment.strftime("%H:%M") for moment in value]
        elif isinstance(value, tuple):
            value = list(value)
        stored[item.name] = value
    return stored


def _tier_from_storage(stored: Mapping[str, Any]) -> Tier:
    return Tier(
        retention=int(stored["retention"]), snapshot_type=str(stored["snapshot_type"]),
        interval=int(stored["interval"]),
        backup_time=tuple(time.fromisoformat(moment) for moment in stored["backup_time"]),
        backup_day=tuple(stored["backup_day"]), month_backup_day=tuple(stored["month_backup_day"]),
        backup_month=tuple(stored["backup_month"]),
        retention_days_to_keep=stored["retention_days_to_keep"])


def _tier_wire(name: str, tier: Tier) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "interval": tier.interval,
        "backup_time": [moment.strftime("%H:%M") for moment in tier.backup_time],
        "backup_day": [WEEKDAYS[day] for day in tier.backup_day],
        "month_backup_day": list(tier.month_backup_day),
        "backup_month": [MONTHS[month - 1] for month in tier.backup_month],
        "retention": tier.retention,
        "snapshot_type": tier.snapshot_type,
        "retention_days_to_keep": tier.retention_days_to_keep,
    }
    view = {key: shown[key] for key in _TIER_FIELDS[name]}
    if name == MANUAL and tier.retention_days_to_keep is None:
        view.pop("retention_days_to_keep")
    return view


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
