"""The catalog documents on a target (`workload.json`, `snapshots/<id>.json`), fed damaged bytes.

The property is the one tests/engine/test_decoder_fuzz.py checks for the repository's
files: a damaged catalog file is refused with a Cairn error naming it, never an
exception of the JSON parser or of a wrong document shape. Today's reader does not hold
to it (it leaks `UnicodeDecodeError`, `JSONDecodeError`, `AttributeError` and
`RecursionError`), so that test is a strict expected failure: it starts passing, and
then fails as a reminder to drop the mark, once the reader refuses damage itself.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cairn.errors import CairnError
from cairn.targets import FilesystemTarget
from cairn.workloads import catalog

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def scratch_target() -> Iterator[FilesystemTarget]:
    with tempfile.TemporaryDirectory() as root:
        yield FilesystemTarget(Path(root), fsync=False)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3),
                           max_leaves=8)
documents = st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps(v).encode()),
                      st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n))


@pytest.mark.xfail(strict=True, raises=(ValueError, AttributeError, RecursionError),
                   reason="workloads/catalog.py lets parser and shape errors of a damaged file escape")
@settings(FUZZ, report_multiple_bugs=False)  # one error, so `raises` can match it
@example(document=b"\xff")
@example(document=b"[]")
@given(document=documents)
def test_damaged_catalog_file_is_refused_with_a_cairn_error(document: bytes) -> None:
    with scratch_target() as target:
        target.put("workloads/w1/workload.json", document)
        try:
            list(catalog.read_catalog(target))
        except CairnError:
            pass


@FUZZ
@given(name=st.text(max_size=20), metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
def test_workload_and_snapshot_documents_round_trip(name: str, metadata: dict[str, str]) -> None:
    workload: dict[str, Any] = {"id": "w1", "name": name, "metadata": metadata}
    snapshot: dict[str, Any] = {"id": "s1", "workload_id": "w1", "name": name, "metadata": metadata}
    with scratch_target() as target:
        catalog.write_workload(target, workload)
        catalog.write_snapshot(target, snapshot)
        (entry,) = catalog.read_catalog(target)
        assert entry.workload == workload and entry.snapshots == [snapshot]
