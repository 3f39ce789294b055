"""Retention decisions: what each rule removes, and what it never removes."""

from __future__ import annotations

from datetime import datetime, timedelta

from cairn.workloads.retention import KEEP_COUNT, KEEP_DAYS, Kept, expired_snapshots

NOW = datetime(2026, 11, 26, 12, 0)


def daily(count: int) -> list[Kept]:
    return [Kept(f"s{i}", NOW - timedelta(days=count - 1 - i)) for i in range(count)]


def test_keep_count_removes_all_but_the_newest_n() -> None:
    removed = expired_snapshots(daily(5), KEEP_COUNT, 3, NOW)
    assert [r.snapshot_id for r in removed] == ["s1", "s0"]
    assert all("newest 3" in r.reason for r in removed)


def test_keep_days_removes_what_is_older_than_the_horizon() -> None:
    removed = expired_snapshots(daily(10), KEEP_DAYS, 7, NOW)
    assert sorted(r.snapshot_id for r in removed) == ["s0", "s1"]
    assert all("7 day" in r.reason for r in removed)


def test_the_newest_snapshot_is_never_removed_even_when_too_old() -> None:
    old = [Kept("only", NOW - timedelta(days=400))]
    assert expired_snapshots(old, KEEP_DAYS, 1, NOW) == []
    assert expired_snapshots(daily(3), KEEP_DAYS, 1, NOW + timedelta(days=30))[-1].snapshot_id != "s2"


def test_pinned_snapshots_are_never_removed() -> None:
    snapshots = daily(4)
    snapshots[0] = Kept("s0", snapshots[0].created_at, pinned=True)
    assert [r.snapshot_id for r in expired_snapshots(snapshots, KEEP_COUNT, 1, NOW)] == ["s2", "s1"]


def test_nothing_to_keep_is_nothing_to_remove() -> None:
    assert expired_snapshots([], KEEP_COUNT, 1, NOW) == []
