"""Retention: which snapshots a workload's schedule says to remove, and why.

Pure decisions; the snapshot job applies them after a successful snapshot only. Rules:
the newest available snapshot is never removed, pinned snapshots are never removed, and
every removal carries the rule that caused it (stored as the snapshot's `deleted_reason`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

KEEP_COUNT = "Number of Snapshots to Keep"
KEEP_DAYS = "Number of days to retain Snapshots"


@dataclass(frozen=True)
class Kept:
    """An available snapshot as retention sees it."""

    id: str
    created_at: datetime
    pinned: bool = False


@dataclass(frozen=True)
class Removal:
    snapshot_id: str
    reason: str


def expired_snapshots(snapshots: list[Kept], policy_type: str, value: int, now: datetime) -> list[Removal]:
    """The snapshots to remove under the rule `policy_type`/`value` at `now`."""
    ordered = sorted(snapshots, key=lambda s: (s.created_at, s.id), reverse=True)
    if not ordered:
        return []
    candidates = [s for s in ordered[1:] if not s.pinned]  # the newest always stays
    if policy_type == KEEP_COUNT:
        keep = {s.id for s in ordered[:max(value, 1)]}
        reason = f"retention: only the newest {value} snapshot(s) are kept"
        return [Removal(s.id, reason) for s in candidates if s.id not in keep]
    if policy_type == KEEP_DAYS:
        horizon = now - timedelta(days=value)
        reason = f"retention: snapshots older than {value} day(s) are removed"
        return [Removal(s.id, reason) for s in candidates if s.created_at < horizon]
    raise ValueError(f"unknown retention policy type {policy_type!r}")
