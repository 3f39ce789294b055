"""The platform interface and the data it hands to the rest of Cairn.

A platform answers which instances a project has, hands the snapshot job a
point-in-time view of each disk (with the ranges changed since the parent snapshot when
it knows them), and makes instances from restored disks. `FileDisksPlatform` holds the
behaviour of a platform whose disks are plain files read as they are (the `local`
platform); a platform that does more (libvirt: live views, checkpoints, domains)
overrides the hooks it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from cairn.engine.sources import Source, open_source
from cairn.errors import CairnError


@dataclass(frozen=True)
class DiskInfo:
    """One disk of an instance: where it is, its format and virtual size in bytes."""

    path: str
    format: str
    size: int
    #: the platform's name for the disk inside its instance (libvirt: the target, `vda`)
    device: str = ""
    #: the disk's own metadata (the volume's, on a cloud): `exclude_from_backup` leaves
    #: it out of snapshots
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class InstanceInfo:
    id: str
    project_id: str
    name: str
    disks: tuple[DiskInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    #: the worker (`cairn worker --name`) that reaches the disks; None: every worker does
    host: str | None = None

    @property
    def size(self) -> int:
        return sum(disk.size for disk in self.disks)


@dataclass
class DiskView:
    """One disk as the snapshot job reads it: a source and, when the platform knows it,
    the ranges changed since the parent snapshot (None: read every data extent)."""

    disk: DiskInfo
    source: Source
    changed_ranges: list[tuple[int, int]] | None = None


@dataclass
class InstanceView:
    """An instance captured at one point in time.

    `state` is what the platform wants back with the next snapshot (kept in the
    snapshot's instance record: libvirt keeps the checkpoint name and the domain
    description there); `full` says the platform had a change history but could not
    trust it and read everything instead (the snapshot is then reported as full)."""

    instance: InstanceInfo
    disks: list[DiskView]
    state: dict[str, Any] = field(default_factory=dict)
    full: bool = False


class Capture:
    """The point-in-time views of a group of instances, open while their disks are read.

    `close()` is called once the disks are read (always); then either `commit()`, once
    the snapshot is recorded (a platform drops what only the previous snapshot needed),
    or `discard()`, when the snapshot failed (a platform undoes what it created).
    `warnings` end up in the snapshot's `warning_msg`."""

    def __init__(self, views: list[InstanceView], warnings: list[str] | None = None) -> None:
        self.views = views
        self.warnings = warnings if warnings is not None else []

    def close(self) -> None:
        for view in self.views:
            for disk in view.disks:
                disk.source.close()

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass


#: records, durably and before it is made, what a restore creates outside the database
#: (a cloud volume, port or server: JSON objects the platform's `remove_created` takes)
Recorder = Callable[[list[dict[str, Any]]], None]


@dataclass(frozen=True)
class RestoreDisk:
    """One disk a restore writes: the device it is in its instance, its virtual size, and
    where and in which format the restore writes it. `creates_file`: the restore makes the
    file (a clean-up removes it); otherwise it exists already (an original disk, or a cloud
    volume the platform made and its `remove_created` deletes)."""

    device: str
    size: int
    path: str
    format: str
    creates_file: bool = True


class Platform(Protocol):
    """Answers which instances a project has and what their disks are."""

    def find_instances(self, project_id: str, instance_ids: list[str]) -> dict[str, InstanceInfo]:
        """The instances of `project_id` among `instance_ids` (missing ones are absent)."""
        ...

    def confirm(self, instance: InstanceInfo) -> None:
        """Check the instance can be protected now (its disks are there and readable);
        raise a CairnError naming the problem otherwise."""
        ...

    def capture(self, instances: list[InstanceInfo], parents: dict[str, dict[str, Any]],
                label: str) -> Capture:
        """Point-in-time views of `instances`, taken together (one consistency group).
        `parents` maps an instance id to the `state` its parent snapshot kept (absent:
        no parent, a full snapshot); `label` names the snapshot being taken."""
        ...

    def forget_history(self, instance_ids: list[str]) -> None:
        """Drop what the platform keeps for incrementals (a workload reset)."""
        ...

    def check_inplace(self, instance: InstanceInfo, options: dict[str, Any]) -> None:
        """Refuse (Conflict) an in-place restore the instance's state forbids now."""
        ...

    def inplace_window(self, instance: InstanceInfo, options: dict[str, Any]) -> Any:
        """A context manager around the writes of an in-place restore of `instance`."""
        ...

    def check_restore(self, project_id: str, restore_type: str, options: dict[str, Any],
                      instances: list[tuple[str, dict[str, Any]]]) -> None:
        """Refuse (InvalidInput naming the field) restore options that name what does not
        exist (a flavor, network, volume type), before anything is created; `instances`
        are the (id, snapshot state) of the instances the restore makes."""
        ...

    def prepare_disks(self, project_id: str, instance_id: str, state: dict[str, Any], disks: list[RestoreDisk],
                      options: dict[str, Any], label: str, record: Recorder) -> list[RestoreDisk]:
        """Where a new instance's disks are written (`disks` as planned: files beside the
        originals), one for each in `disks`; an empty path leaves that disk unwritten. A
        cloud platform makes its volumes here, each recorded with `record` before it is
        made."""
        ...

    def restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, str]],
                         state: dict[str, Any], label: str, host: str | None,
                         options: dict[str, Any] | None = None, record: Recorder | None = None) -> InstanceInfo:
        """A new instance from restored disks (a restore's `oneclick`/`selective`),
        (device, path, format) each, and the `state` its snapshot kept; `label` (the
        restore id) tells its files apart; `host` is the worker that wrote the disks
        (None: storage every worker reaches), where jobs on the new instance must run;
        `options` are the restore's; `record` records what it creates (cloud platforms).
        Called again with the same arguments (after a lost database connection), it
        returns the instance the first call made."""
        ...

    def remove_created(self, resource: dict[str, Any]) -> None:
        """Delete one resource a failed restore recorded (`Recorder`); gone already is fine."""
        ...


class DiskReader(Protocol):
    """A snapshot's disk readable at any offset (the engine's `SnapshotReader`)."""

    size: int

    def read_into(self, buf: memoryview, offset: int) -> None: ...

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        """The range as consecutive runs (length, zero), without reading it: zero runs
        read as zeros (the snapshot's zero chunks), the others are data."""
        ...


@dataclass(frozen=True)
class StreamProgress:
    """The background copy of an instantly restored instance's disks."""

    copied: int  # bytes, over every disk
    total: int
    complete: bool  # every disk copied and free of the snapshot
    failure: str | None  # why the copy stopped, when it did


class InstantCopy(Protocol):
    """An instance running before its disks are copied, and the copy going on."""

    instance: InstanceInfo

    def start_copy(self) -> None:
        """Begin copying the snapshot into the instance's disks, in the background."""
        ...

    def progress(self) -> StreamProgress: ...

    def close(self) -> None:
        """After `complete`: stop serving the snapshot."""
        ...

    def abandon(self) -> None:
        """Remove the instance (its copy cannot complete) and stop serving the snapshot."""
        ...


class InstantRestorer(Protocol):
    """A platform that can start a restored instance before its data is copied
    (`restore.options.instant`); `supports_instant_restore` says whether it can."""

    supports_instant_restore: bool

    def instant_restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, DiskReader]],
                                 state: dict[str, Any], label: str, host: str | None, options: dict[str, Any],
                                 record: Recorder) -> InstantCopy:
        """As `prepare_disks` then `restore_instance`, with disks (device, new disk path as
        planned, reader of the snapshot's disk): the instance runs on the snapshot until
        `start_copy()` of the handle has copied it in. What it creates besides the planned
        files (cloud volumes, ports, servers, files of its own) is recorded with `record`
        before it is made."""
        ...


class NoCloudResources:
    """The restore hooks of a platform that creates nothing but files: no option to check,
    disks written where planned, nothing of its own for a clean-up to remove."""

    def check_restore(self, project_id: str, restore_type: str, options: dict[str, Any],
                      instances: list[tuple[str, dict[str, Any]]]) -> None:
        pass

    def prepare_disks(self, project_id: str, instance_id: str, state: dict[str, Any], disks: list[RestoreDisk],
                      options: dict[str, Any], label: str, record: Recorder) -> list[RestoreDisk]:
        return disks

    def remove_created(self, resource: dict[str, Any]) -> None:
        raise CairnError(f"This platform creates no {sorted(resource)} resources to remove.")


class FileDisksPlatform(NoCloudResources):
    """The hooks of a platform whose disks are files read as they are: no change map (the
    engine hashes every data extent and stores only new chunks), nothing kept between
    snapshots, in-place restores allowed at any time."""

    def capture(self, instances: list[InstanceInfo], parents: dict[str, dict[str, Any]],
                label: str) -> Capture:
        views: list[InstanceView] = []
        capture = Capture(views)
        try:
            for instance in instances:
                view = InstanceView(instance, [])
                views.append(view)
                for disk in instance.disks:
                    try:
                        view.disks.append(DiskView(disk, open_source(disk.path)))
                    except CairnError as exc:
                        raise type(exc)(f"Disk {disk.path} of instance {instance.name}: {exc.message}") from exc
        except CairnError:
            capture.close()
            raise
        return capture

    def forget_history(self, instance_ids: list[str]) -> None:
        pass

    def check_inplace(self, instance: InstanceInfo, options: dict[str, Any]) -> None:
        pass

    @contextmanager
    def inplace_window(self, instance: InstanceInfo, options: dict[str, Any]) -> Iterator[None]:
        yield
