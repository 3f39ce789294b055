"""Catalog documents: what the writers put on a target is what import reads back, and a
document that is not of its format is refused naming the file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cairn.errors import InvalidInput
from cairn.targets.filesystem import FilesystemTarget
from cairn.workloads import catalog
from cairn.workloads.catalog import SnapshotDocument, WorkloadDocument
from cairn.workloads.records import MemberInstance
from cairn.workloads.snapshot_records import SnapshotDisk, SnapshotInstance

CREATED = datetime(2026, 11, 30, 21, 0, 0, 123456)

WORKLOAD = WorkloadDocument(
    id="w1", project_id="p1", user_id="u1", name="web", description="front end",
    workload_type_id="f82ce76f-17fe-438b-aa37-7a023058e50d", availability_zone="nova",
    jobschedule={"enabled": True, "interval": "24hr"}, metadata={"team": "web"},
    instances=(MemberInstance("i1", "vm1", {"role": "db"}),), created_at=CREATED)

SNAPSHOT = SnapshotDocument(
    id="s1", workload_id="w1", project_id="p1", user_id="u1", name="nightly", description="",
    snapshot_type="incremental", created_at=CREATED, finished_at=datetime(2026, 11, 30, 21, 1),
    size=123, restore_size=1 << 30, time_taken=60, warning_msg=None, metadata={},
    instances=(SnapshotInstance("i1", "vm1", {}, (SnapshotDisk(
        id="i1-0", name="vm1.raw", size=1 << 30, format="raw", restore_size=1 << 30, path="/d/vm1.raw",
        manifest_key="w1/s1/i1/0", bytes_read=4096, device="vda"),), {"checkpoint": "cairn-s1"}),))


def test_documents_written_are_the_documents_read(tmp_path: Path) -> None:
    target = FilesystemTarget(tmp_path)
    catalog.write_workload(target, WORKLOAD)
    catalog.write_snapshot(target, SNAPSHOT)
    (entry,) = catalog.read_catalog(target)
    assert entry.workload == WORKLOAD
    assert entry.snapshots == [SNAPSHOT]
    assert entry.snapshots[0].manifest_keys == ["w1/s1/i1/0"]


def test_a_removed_snapshot_is_no_longer_read(tmp_path: Path) -> None:
    target = FilesystemTarget(tmp_path)
    catalog.write_workload(target, WORKLOAD)
    catalog.write_snapshot(target, SNAPSHOT)
    catalog.remove_snapshot(target, "w1", "s1")
    catalog.remove_snapshot(target, "w1", "s1")  # twice: a retried step
    (entry,) = catalog.read_catalog(target)
    assert entry.snapshots == []


@pytest.mark.parametrize(("content", "says"), [
    (b'{"format": "cairn-workload/9", "id": "w1"}', "unknown catalog format 'cairn-workload/9'"),
    (b'{"format": "cairn-workload/1", "id": "w1"}', "missing field"),
    (b'[1, 2]', "not a JSON object"),
    (b'{"format": ', "cannot be read"),
])
def test_an_unreadable_workload_document_is_refused_naming_the_file(tmp_path: Path, content: bytes,
                                                                    says: str) -> None:
    target = FilesystemTarget(tmp_path)
    target.put("workloads/w1/workload.json", content)
    with pytest.raises(InvalidInput) as caught:
        list(catalog.read_catalog(target))
    assert "workloads/w1/workload.json" in caught.value.message and says in caught.value.message
