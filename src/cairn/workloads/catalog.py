"""The catalog on a backup target: JSON descriptions of workloads and snapshots.

They make a target self-describing: with only the target, `cairn workload import`
rebuilds the database rows. Files, under `projects/<project>/` of the target (UTF-8
JSON objects, written atomically)::

    workloads/<workload id>/workload.json
        {"format": "cairn-workload/1", "id", "project_id", "user_id", "name",
         "description", "workload_type_id", "availability_zone", "jobschedule": {...},
         "metadata": {...}, "instances": [{"id", "name", "metadata"}], "created_at"}
    workloads/<workload id>/snapshots/<snapshot id>.json
        {"format": "cairn-snapshot/1", "id", "workload_id", "project_id", "user_id",
         "name", "description", "snapshot_type", "created_at", "finished_at", "size",
         "restore_size", "time_taken", "warning_msg", "metadata",
         "instances": [{"id", "name", "metadata", "vdisks": [{"id", "name", "size",
                        "format", "restore_size", "path", "manifest_key"}]}]}

A snapshot file is written after every manifest of the snapshot and before its row
becomes `available`; it is removed before the snapshot's manifests are. Timestamps are
the API's form (`YYYY-MM-DDTHH:MM:SS.ffffff`, UTC). Readers refuse an unknown `format`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cairn.errors import InvalidInput
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound

WORKLOAD_FORMAT = "cairn-workload/1"
SNAPSHOT_FORMAT = "cairn-snapshot/1"


@dataclass(frozen=True)
class CatalogEntry:
    workload: dict[str, Any]
    snapshots: list[dict[str, Any]]


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True).encode()


def write_workload(catalog: Target, document: dict[str, Any]) -> None:
    catalog.put(f"workloads/{document['id']}/workload.json", _dump({"format": WORKLOAD_FORMAT, **document}))


def write_snapshot(catalog: Target, document: dict[str, Any]) -> None:
    key = f"workloads/{document['workload_id']}/snapshots/{document['id']}.json"
    catalog.put(key, _dump({"format": SNAPSHOT_FORMAT, **document}))


def remove_snapshot(catalog: Target, workload_id: str, snapshot_id: str) -> None:
    try:
        catalog.delete(f"workloads/{workload_id}/snapshots/{snapshot_id}.json")
    except ObjectNotFound:
        pass


def remove_workload(catalog: Target, workload_id: str) -> None:
    for key in list(catalog.list(f"workloads/{workload_id}")):
        catalog.delete(key)


def _load(catalog: Target, key: str, expected: str) -> dict[str, Any]:
    document = json.loads(catalog.get(key))
    if document.get("format") != expected:
        raise InvalidInput(f"{key}: unknown catalog format {document.get('format')!r}", "format")
    document.pop("format")
    return document


def read_catalog(catalog: Target, workload_id: str | None = None) -> Iterator[CatalogEntry]:
    """Every workload on the catalog (or just `workload_id`) with its snapshots."""
    keys = sorted(catalog.list(f"workloads/{workload_id}" if workload_id else "workloads"))
    for key in keys:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "workload.json":
            snapshots = [_load(catalog, k, SNAPSHOT_FORMAT) for k in keys
                         if k.startswith(f"workloads/{parts[1]}/snapshots/") and k.endswith(".json")]
            yield CatalogEntry(_load(catalog, key, WORKLOAD_FORMAT), snapshots)
