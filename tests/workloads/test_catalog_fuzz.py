"""The catalog documents on a target (`workload.json`, `snapshots/<id>.json`), fed damaged bytes.

The property is the one tests/engine/test_decoder_fuzz.py checks for the repository's
files: a damaged catalog file is refused with a Cairn error naming it, never an
exception of the JSON parser or of a wrong document shape (the reader once leaked
`UnicodeDecodeError`, `JSONDecodeError`, `AttributeError` and `RecursionError`, and took
a document holding only its `format` for an empty workload).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cairn.errors import CairnError
from cairn.targets import FilesystemTarget
from cairn.workloads import catalog
from tests.workloads.test_catalog import SNAPSHOT, WORKLOAD

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


@FUZZ
@example(document=b"\xff", name="workload.json")
@example(document=b"[]", name="snapshots/s1.json")
@example(document=b'{"format": "cairn-workload/1"}', name="workload.json")
@given(document=documents, name=st.sampled_from(["workload.json", "snapshots/s1.json"]))
def test_damaged_catalog_file_is_refused_with_a_cairn_error_naming_it(document: bytes, name: str) -> None:
    with scratch_target() as target:
        catalog.write_workload(target, WORKLOAD)
        target.put(f"workloads/w1/{name}", document)
        try:
            list(catalog.read_catalog(target))
        except CairnError as exc:
            assert f"workloads/w1/{name}" in exc.message


@FUZZ
@given(name=st.text(max_size=20), metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3))
def test_workload_and_snapshot_documents_round_trip(name: str, metadata: dict[str, str]) -> None:
    workload = replace(WORKLOAD, name=name, metadata=metadata)
    snapshot = replace(SNAPSHOT, name=name, metadata=metadata)
    with scratch_target() as target:
        catalog.write_workload(target, workload)
        catalog.write_snapshot(target, snapshot)
        (entry,) = catalog.read_catalog(target)
        assert entry.workload == workload and entry.snapshots == [snapshot]
