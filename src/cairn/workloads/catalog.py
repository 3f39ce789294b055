"""The catalog on a backup target: typed descriptions of workloads and snapshots.

They make a target self-describing: with only the target, `cairn workload import`
rebuilds the database rows. Files, under `projects/<project>/` of the target (UTF-8
JSON objects, keys sorted, written atomically)::

    workloads/<workload id>/workload.json            a WorkloadDocument
        {"format": "cairn-workload/1", "id", "project_id", "user_id", "name",
         "description", "workload_type_id", "availability_zone", "jobschedule": {...},
         "metadata": {...}, "instances": [{"id", "name", "metadata"}], "created_at"}
    workloads/<workload id>/snapshots/<snapshot id>.json    a SnapshotDocument
        {"format": "cairn-snapshot/1", "id", "workload_id", "project_id", "user_id",
         "name", "description", "snapshot_type", "created_at", "finished_at", "size",
         "restore_size", "time_taken", "warning_msg", "metadata",
         "instances": [{"id", "name", "metadata", "platform": {...},
                        "vdisks": [{"id", "name", "size", "format", "restore_size",
                                    "path", "manifest_key", "bytes_read", "device"}]}]}

A snapshot file is written after every manifest of the snapshot and before its row
becomes `available`; it is removed before the snapshot's manifests are. Timestamps are
the API's form (`YYYY-MM-DDTHH:MM:SS.ffffff`, UTC, no zone). Readers refuse an unknown
`format` and a document missing a field, naming the file; fields a reader does not know
are ignored, so a later minor addition stays readable. The same classes serve the
writers (the snapshot job, workload publishing) and the reader (`importer.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cairn.clock import isoformat
from cairn.errors import InvalidInput
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound
from cairn.workloads.records import MemberInstance, WorkloadRecord
from cairn.workloads.snapshot_records import SnapshotInstance

WORKLOAD_FORMAT = "cairn-workload/1"
SNAPSHOT_FORMAT = "cairn-snapshot/1"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


class MalformedDocument(ValueError):
    """A catalog document that does not have the shape its format promises."""


def _time(text: str | None) -> datetime | None:
    return datetime.strptime(text, _TIME_FORMAT) if text else None


@dataclass(frozen=True)
class WorkloadDocument:
    """`workload.json`: what import needs to bring a workload's row back."""

    id: str
    project_id: str
    user_id: str
    name: str
    description: str
    workload_type_id: str
    availability_zone: str
    jobschedule: dict[str, Any]
    metadata: dict[str, str]
    instances: tuple[MemberInstance, ...]
    created_at: datetime | None
    #: an encrypted workload: its repository is its own, its key wrapped under this
    #: Barbican secret (the id only; docs/encryption.md)
    encryption: bool = False
    secret_uuid: str | None = None

    @classmethod
    def from_record(cls, workload: WorkloadRecord) -> WorkloadDocument:
        return cls(id=workload.id, project_id=workload.project_id, user_id=workload.user_id,
                   name=workload.name, description=workload.description,
                   workload_type_id=workload.workload_type_id,
                   availability_zone=workload.availability_zone,
                   jobschedule=dict(workload.jobschedule), metadata=dict(workload.metadata),
                   instances=tuple(workload.instances), created_at=workload.created_at,
                   encryption=workload.encryption, secret_uuid=workload.secret_uuid)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"format": WORKLOAD_FORMAT, "id": self.id, "project_id": self.project_id,
                                      "user_id": self.user_id, "name": self.name,
                                      "description": self.description,
                                      "workload_type_id": self.workload_type_id,
                                      "availability_zone": self.availability_zone,
                                      "jobschedule": self.jobschedule, "metadata": self.metadata,
                                      "instances": [{"id": i.id, "name": i.name, "metadata": i.metadata}
                                                    for i in self.instances],
                                      "created_at": isoformat(self.created_at)}
        if self.encryption:  # only then: unencrypted workloads' files are as they always were
            document["encryption"] = True
            document["secret_uuid"] = self.secret_uuid
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkloadDocument:
        _check_format(data, WORKLOAD_FORMAT)
        return cls(id=data["id"], project_id=data["project_id"], user_id=data["user_id"],
                   name=data["name"], description=data.get("description", ""),
                   workload_type_id=data["workload_type_id"],
                   availability_zone=data.get("availability_zone") or "nova",
                   jobschedule=dict(data["jobschedule"]), metadata=dict(data.get("metadata") or {}),
                   instances=tuple(MemberInstance(i["id"], i["name"], dict(i.get("metadata") or {}))
                                   for i in data.get("instances", [])),
                   created_at=_time(data.get("created_at")),
                   encryption=bool(data.get("encryption", False)),
                   secret_uuid=data.get("secret_uuid") or None)


@dataclass(frozen=True)
class SnapshotDocument:
    """`snapshots/<id>.json`: an available snapshot, with every manifest key it needs."""

    id: str
    workload_id: str
    project_id: str
    user_id: str
    name: str
    description: str
    snapshot_type: str
    created_at: datetime
    finished_at: datetime | None
    size: int
    restore_size: int
    time_taken: int
    warning_msg: str | None
    metadata: dict[str, str]
    instances: tuple[SnapshotInstance, ...]

    @property
    def manifest_keys(self) -> list[str]:
        return [disk.manifest_key for instance in self.instances for disk in instance.vdisks]

    def instances_json(self) -> list[dict[str, Any]]:
        """The instances as the snapshot row's `instances` column stores them."""
        return [instance.to_json() for instance in self.instances]

    def to_json(self) -> dict[str, Any]:
        return {"format": SNAPSHOT_FORMAT, "id": self.id, "workload_id": self.workload_id,
                "project_id": self.project_id, "user_id": self.user_id, "name": self.name,
                "description": self.description, "snapshot_type": self.snapshot_type,
                "created_at": isoformat(self.created_at),
                "finished_at": isoformat(self.finished_at),
                "size": self.size, "restore_size": self.restore_size, "time_taken": self.time_taken,
                "warning_msg": self.warning_msg, "metadata": self.metadata,
                "instances": self.instances_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SnapshotDocument:
        _check_format(data, SNAPSHOT_FORMAT)
        created = _time(data["created_at"])
        if created is None:
            raise MalformedDocument("created_at is empty")
        return cls(id=data["id"], workload_id=data["workload_id"], project_id=data["project_id"],
                   user_id=data["user_id"], name=data["name"], description=data.get("description", ""),
                   snapshot_type=data["snapshot_type"], created_at=created,
                   finished_at=_time(data.get("finished_at")), size=int(data["size"]),
                   restore_size=int(data["restore_size"]), time_taken=int(data.get("time_taken", 0)),
                   warning_msg=data.get("warning_msg"), metadata=dict(data.get("metadata") or {}),
                   instances=tuple(SnapshotInstance.from_json(i) for i in data["instances"]))


@dataclass(frozen=True)
class CatalogEntry:
    workload: WorkloadDocument
    snapshots: list[SnapshotDocument]


def _check_format(data: dict[str, Any], expected: str) -> None:
    if data.get("format") != expected:
        raise MalformedDocument(f"unknown catalog format {data.get('format')!r} (expected {expected!r})")


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True).encode()


def workload_key(workload_id: str) -> str:
    return f"workloads/{workload_id}/workload.json"


def snapshot_key(workload_id: str, snapshot_id: str) -> str:
    return f"workloads/{workload_id}/snapshots/{snapshot_id}.json"


def write_workload(catalog: Target, document: WorkloadDocument) -> None:
    catalog.put(workload_key(document.id), _dump(document.to_json()))


def write_snapshot(catalog: Target, document: SnapshotDocument) -> None:
    catalog.put(snapshot_key(document.workload_id, document.id), _dump(document.to_json()))


def remove_snapshot(catalog: Target, workload_id: str, snapshot_id: str) -> None:
    try:
        catalog.delete(snapshot_key(workload_id, snapshot_id))
    except ObjectNotFound:
        pass


def remove_workload(catalog: Target, workload_id: str) -> None:
    for key in list(catalog.list(f"workloads/{workload_id}")):
        catalog.delete(key)


def _load(catalog: Target, key: str, kind: type[WorkloadDocument] | type[SnapshotDocument]) -> Any:
    try:
        data = json.loads(catalog.get(key))
        if not isinstance(data, dict):
            raise MalformedDocument("not a JSON object")
        return kind.from_json(data)
    except (MalformedDocument, ValueError, KeyError, TypeError, RecursionError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InvalidInput(f"Catalog file {key} cannot be read: {detail}.", "format") from None


def read_catalog(catalog: Target, workload_id: str | None = None) -> Iterator[CatalogEntry]:
    """Every workload on the catalog (or just `workload_id`) with its snapshots."""
    keys = sorted(catalog.list(f"workloads/{workload_id}" if workload_id else "workloads"))
    for key in keys:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "workload.json":
            snapshots = [_load(catalog, k, SnapshotDocument) for k in keys
                         if k.startswith(f"workloads/{parts[1]}/snapshots/") and k.endswith(".json")]
            yield CatalogEntry(_load(catalog, key, WorkloadDocument), snapshots)
