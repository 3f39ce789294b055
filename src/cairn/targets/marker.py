"""The target marker: `<target root>/cairn-target.json`, the file that makes a directory
a backup target on purpose (format in docs/format.md, "Target marker").

A target's root is often a mount point. When the share is not mounted, the mount point
is an empty directory of the local disk, indistinguishable from a fresh target by its
contents; writing there would put backups on the wrong disk. So Cairn writes into a
target only after reading its marker and finding its own name in it, and the marker is
written only by an explicit act (`cairn target init`, or `cairn serve` setting up its
embedded default). `inspect` reads and classifies; it never writes.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cairn.errors import Conflict
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound, TargetError, TargetMissing, TargetNotReady, map_os_error
from cairn.targets.filesystem import FilesystemTarget

MARKER_NAME = "cairn-target.json"
MARKER_FORMAT = "cairn-target"
MARKER_VERSION = 1

#: states of a target as `inspect` finds it
READY, MISSING, UNMARKED, FOREIGN, UNREADABLE = "ready", "missing", "unmarked", "foreign", "unreadable"


@dataclass(frozen=True)
class TargetMarker:
    """The content of a marker file."""

    name: str
    id: str
    created_at: str
    version: int = MARKER_VERSION

    def to_json(self) -> bytes:
        return (json.dumps({"format": MARKER_FORMAT, "version": self.version, "name": self.name,
                            "id": self.id, "created_at": self.created_at}, indent=2) + "\n").encode()


@dataclass(frozen=True)
class TargetState:
    """What `inspect` found at a target's path: `state` is one of the module's states."""

    name: str
    #: the target's directory, or its bucket's URL (`s3://bucket/prefix`)
    path: Path | str
    state: str
    detail: str
    marker: TargetMarker | None = None

    @property
    def ready(self) -> bool:
        return self.state == READY

    def required(self) -> TargetMarker:
        """The marker, when the target is ready; else its `TargetNotReady`."""
        if not self.ready:
            raise self.error()
        assert self.marker is not None
        return self.marker

    def error(self) -> TargetNotReady:
        return TargetNotReady(f"Backup target {self.name} at {self.path} is not usable: {self.detail}",
                              self.name, str(self.path), self.state)


def _parse(data: bytes, path: Path | str) -> TargetMarker:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != MARKER_FORMAT:
        raise ValueError(f"{path} is not a Cairn target marker (no \"format\": \"{MARKER_FORMAT}\")")
    if document.get("version") != MARKER_VERSION:
        raise ValueError(f"{path} has marker version {document.get('version')!r}; this Cairn reads "
                         f"version {MARKER_VERSION}")
    for key in ("name", "id", "created_at"):
        value = document.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{path}: field {key!r} must be a non-empty string")
    return TargetMarker(name=document["name"], id=document["id"], created_at=document["created_at"])


def inspect(name: str, root: Path) -> TargetState:
    """Classify the target `name` configured at the directory `root`, without writing."""
    if not root.is_dir():
        return TargetState(name, root, MISSING, "the path does not exist or is not a directory "
                           "(is the share mounted?)")
    return inspect_store(name, root, FilesystemTarget(root))


def inspect_store(name: str, where: Path | str, store: Target) -> TargetState:
    """Classify the target `name` whose objects `store` holds (`where` names it in
    messages: a path, or a bucket's URL), without writing anything."""
    try:
        data = store.get(MARKER_NAME)
    except ObjectNotFound:
        return TargetState(name, where, UNMARKED, f"it has no {MARKER_NAME} (if it is a mount point, "
                           f"the share may not be mounted; to set it up, run `cairn target init {name}`)")
    except TargetMissing as exc:
        return TargetState(name, where, MISSING, exc.message)
    except TargetError as exc:
        return TargetState(name, where, UNREADABLE, f"{where}/{MARKER_NAME} cannot be read: {exc.message}")
    try:
        marker = _parse(data, f"{where}/{MARKER_NAME}")
    except ValueError as exc:
        return TargetState(name, where, UNREADABLE, str(exc))
    if marker.name != name:
        return TargetState(name, where, FOREIGN, f"its {MARKER_NAME} belongs to target {marker.name!r} "
                           f"(id {marker.id}), not {name!r}", marker)
    return TargetState(name, where, READY, f"marker id {marker.id}", marker)


def initialise(name: str, root: Path) -> tuple[TargetMarker, bool]:
    """Write the marker of target `name` at the directory `root` (creating it); see
    `initialise_store`."""
    state = inspect(name, root)
    if state.state == MISSING:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise map_os_error(exc, f"creating backup target {name} at {root}") from exc
    return initialise_store(name, root, FilesystemTarget(root))


def initialise_store(name: str, where: Path | str, store: Target) -> tuple[TargetMarker, bool]:
    """Write the marker of target `name` into `store`; returns the marker and whether it
    was written now. Idempotent for the same name; a store holding another target's
    marker, or an unreadable one, is refused and left as it is."""
    state = inspect_store(name, where, store)
    if state.state == READY:
        assert state.marker is not None
        return state.marker, False
    if state.state in (FOREIGN, UNREADABLE, MISSING):
        raise Conflict(f"Backup target {name}: {where} is not initialised: {state.detail}. Nothing was "
                       "written; fix the configuration or remove that file on purpose.")
    marker = TargetMarker(name=name, id=str(uuid.uuid4()),
                          created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if not store.create_exclusive(MARKER_NAME, marker.to_json()):
        return initialise_store(name, where, store)  # someone initialised it meanwhile: judge theirs
    return marker, True


def is_mount_point(root: Path) -> bool:
    """Whether `root` is a mount point (what an operator expects of an NFS target)."""
    try:
        return os.path.ismount(root)
    except OSError:
        return False
