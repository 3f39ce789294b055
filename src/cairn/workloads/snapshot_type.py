"""The full-or-incremental rule: what a requested snapshot will be.

Pure: the request is asked first (`full`, `snapshot_type`), then what the workload's
history allows (no parent, or a reset that demands a full), then the schedule's
`fullbackup_interval` (-1: never forced; 0: always full; N: a full after N incrementals).
"""

from __future__ import annotations

from dataclasses import dataclass

FULL, INCREMENTAL = "full", "incremental"


@dataclass(frozen=True)
class SnapshotRequest:
    name: str | None = None
    description: str | None = None
    snapshot_type: str | None = None
    full: bool = False


def choose_type(request: SnapshotRequest, *, has_parent: bool, full_required: bool,
                fullbackup_interval: int, incrementals: int) -> str:
    """full or incremental: the request first, then what the schedule's rule says."""
    if request.full or request.snapshot_type == FULL or not has_parent or full_required:
        return FULL
    if request.snapshot_type == INCREMENTAL:
        return INCREMENTAL
    if fullbackup_interval == 0 or (fullbackup_interval > 0 and incrementals >= fullbackup_interval):
        return FULL
    return INCREMENTAL
