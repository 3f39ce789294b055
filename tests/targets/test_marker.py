"""The target marker file: what `inspect` makes of each content, and what `initialise`
refuses (format: docs/format.md, section 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.errors import Conflict
from cairn.targets.errors import TargetNotReady
from cairn.targets.marker import MARKER_NAME, initialise, inspect
from cairn.workloads.storage import BackupTarget


def write(root: Path, document: object) -> bytes:
    root.mkdir(parents=True, exist_ok=True)
    data = json.dumps(document).encode()
    (root / MARKER_NAME).write_bytes(data)
    return data


def test_marker_holds_exactly_the_documented_fields(tmp_path: Path) -> None:
    marker, written = initialise("nfs1", tmp_path / "nfs1")
    document = json.loads((tmp_path / "nfs1" / MARKER_NAME).read_text())
    assert written and document == {"format": "cairn-target", "version": 1, "name": "nfs1",
                                     "id": marker.id, "created_at": marker.created_at}
    assert len(marker.id) == 36 and marker.created_at.endswith("Z")
    assert initialise("nfs1", tmp_path / "nfs1") == (marker, False)


@pytest.mark.parametrize(("content", "detail"), [
    ({"format": "cairn-target", "version": 2, "name": "nfs1", "id": "x", "created_at": "t"}, "version 2"),
    ({"format": "something-else", "version": 1}, "not a Cairn target marker"),
    ({"format": "cairn-target", "version": 1, "name": "", "id": "x", "created_at": "t"}, "'name'"),
    ("not an object", "not a Cairn target marker"),
])
def test_an_unknown_or_damaged_marker_is_unreadable_and_never_replaced(
        tmp_path: Path, content: object, detail: str) -> None:
    before = write(tmp_path, content)
    state = inspect("nfs1", tmp_path)
    assert state.state == "unreadable" and detail in state.detail, state.detail
    with pytest.raises(Conflict):
        initialise("nfs1", tmp_path)
    assert (tmp_path / MARKER_NAME).read_bytes() == before


def test_check_names_the_target_and_its_path(tmp_path: Path) -> None:
    target = BackupTarget("nfs1", tmp_path / "gone", None, None)
    with pytest.raises(TargetNotReady) as raised:
        target.check()
    assert raised.value.state == "missing" and raised.value.target == "nfs1"
    assert "nfs1" in raised.value.message and str(tmp_path / "gone") in raised.value.message
    assert not (tmp_path / "gone").exists()
