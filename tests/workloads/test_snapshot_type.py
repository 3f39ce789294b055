"""The full-or-incremental rule, on its own: the request first, then history, then the
schedule's fullbackup_interval."""

from __future__ import annotations

import pytest

from cairn.workloads.snapshot_type import FULL, INCREMENTAL, SnapshotRequest, choose_type

ASKED_NOTHING = SnapshotRequest()


def kind(request: SnapshotRequest = ASKED_NOTHING, *, has_parent: bool = True, full_required: bool = False,
         interval: int = -1, incrementals: int = 0) -> str:
    return choose_type(request, has_parent=has_parent, full_required=full_required,
                       fullbackup_interval=interval, incrementals=incrementals)


def test_the_first_snapshot_is_full_whatever_is_asked() -> None:
    assert kind(SnapshotRequest(snapshot_type="incremental"), has_parent=False) == FULL


def test_a_reset_forces_a_full_even_when_an_incremental_is_asked() -> None:
    assert kind(SnapshotRequest(snapshot_type="incremental"), full_required=True) == FULL


@pytest.mark.parametrize("request_", [SnapshotRequest(full=True), SnapshotRequest(snapshot_type="full")])
def test_asking_for_a_full_gets_one(request_: SnapshotRequest) -> None:
    assert kind(request_, interval=-1) == FULL


def test_asking_for_an_incremental_overrides_the_schedules_interval() -> None:
    assert kind(SnapshotRequest(snapshot_type="incremental"), interval=0) == INCREMENTAL


def test_interval_minus_one_never_forces_a_full() -> None:
    assert kind(interval=-1, incrementals=10_000) == INCREMENTAL


def test_interval_zero_makes_every_snapshot_full() -> None:
    assert kind(interval=0) == FULL


@pytest.mark.parametrize(("incrementals", "expected"), [(0, INCREMENTAL), (2, INCREMENTAL), (3, FULL), (4, FULL)])
def test_interval_n_takes_a_full_after_n_incrementals(incrementals: int, expected: str) -> None:
    assert kind(interval=3, incrementals=incrementals) == expected
