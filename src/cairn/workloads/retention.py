"""Retention: which snapshots a workload's schedule says to remove, and why.

Pure decisions; the snapshot job applies them after a successful snapshot only. Rules:
the newest available snapshot is never removed, pinned snapshots are never removed, and
every removal carries the rule that caused it (stored as the snapshot's `deleted_reason`).

Under a tiered schedule each tier keeps the newest `retention` snapshots among those
that belong to it (the manual tier also only those younger than its
`retention_days_to_keep`), and a snapshot stays while any of its tiers keeps it. A tier
no longer in the schedule keeps nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cairn.workloads.tiers import MANUAL, Tier, Tiers

KEEP_COUNT = "Number of Snapshots to Keep"
KEEP_DAYS = "Number of days to retain Snapshots"


@dataclass(frozen=True)
class Kept:
    """An available snapshot as retention sees it."""

    id: str
    created_at: datetime
    pinned: bool = False
    #: the tiers the snapshot belongs to (tiered schedules only)
    tiers: tuple[str, ...] = ()


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


def expired_by_tiers(snapshots: list[Kept], tiers: Tiers, now: datetime) -> list[Removal]:
    """The snapshots no tier of `tiers` keeps at `now`, each with the rules it failed."""
    ordered = sorted(snapshots, key=lambda s: (s.created_at, s.id), reverse=True)
    keepers: set[str] = set()
    for name in tiers.present():
        tier = tiers.get(name)
        assert tier is not None
        kept = [s for s in ordered if name in s.tiers][:tier.retention]
        if name == MANUAL and tier.retention_days_to_keep is not None:
            horizon = now - timedelta(days=tier.retention_days_to_keep)
            kept = [s for s in kept if s.created_at >= horizon]
        keepers.update(s.id for s in kept)
    return [Removal(s.id, _tier_reason(s.tiers, tiers)) for s in ordered[1:]
            if not s.pinned and s.id not in keepers]


def _tier_reason(own: tuple[str, ...], tiers: Tiers) -> str:
    rules = [_tier_rule(name, tiers.get(name)) for name in own]
    return "retention: no tier keeps it any more (" + "; ".join(rules or ["it belongs to no tier"]) + ")"


def _tier_rule(name: str, tier: Tier | None) -> str:
    if tier is None:
        return f"{name} is no longer in the schedule"
    rule = f"{name} keeps the newest {tier.retention}"
    if name == MANUAL and tier.retention_days_to_keep is not None:
        rule += f" of at most {tier.retention_days_to_keep} day(s)"
    return rule
