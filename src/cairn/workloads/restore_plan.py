"""Restore planning: what each instance and disk of a snapshot becomes in a restore.

- `oneclick`: every instance of the snapshot comes back as a new instance, its disks
  written as new files beside the original disks (`<stem>-restore-<id8>.<ext>`).
- `selective`: only the instances marked `include`, under the names given, and only the
  disks listed in `vdisks` when that list is given.
- `inplace`: the chosen disks are written back over the original instance's disk files,
  which must still be the instance's disks.

`plan_restore` is pure (the platform's view of the instances is given to it);
`plan_on` asks the platform first, and has it check the options that name its
resources (an OpenStack flavor, network or volume type). Every refusal names the request field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from cairn.errors import Conflict, InvalidInput
from cairn.platforms.base import InstanceInfo, Platform
from cairn.workloads.snapshot_records import SnapshotDisk, SnapshotInstance

RESTORE_TYPES = ("oneclick", "selective", "inplace")


@dataclass(frozen=True)
class InstanceChoice:
    id: str
    include: bool = True
    name: str | None = None
    vdisks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RestoreRequest:
    name: str = "restore"
    description: str = ""
    restore_type: str = "oneclick"
    instances: tuple[InstanceChoice, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedDisk:
    """One disk to write: from which manifest, to which path, in which format."""

    source: SnapshotDisk
    destination: str
    creates_file: bool


@dataclass(frozen=True)
class PlannedInstance:
    source: SnapshotInstance
    name: str
    disks: tuple[PlannedDisk, ...]
    inplace: bool
    #: the instance as the platform knows it now (in-place restores only)
    live: InstanceInfo | None = None


def plan_restore(request: RestoreRequest, instances: tuple[SnapshotInstance, ...], restore_id: str,
                 current: dict[str, InstanceInfo]) -> list[PlannedInstance]:
    """Decide what each instance and disk of the snapshot becomes; refuses bad choices.
    `current` is the platform's view of the snapshot's instances now (in-place only)."""
    by_id = {i.id: i for i in instances}
    for choice in request.instances:
        if choice.id not in by_id:
            raise InvalidInput(f"restore.options.openstack.instances: instance {choice.id} is not in the "
                               "snapshot.", "restore.options.openstack.instances")
    chosen: list[tuple[SnapshotInstance, InstanceChoice]]
    if request.restore_type == "oneclick" or not request.instances:
        chosen = [(i, InstanceChoice(i.id)) for i in instances]
    else:
        chosen = [(by_id[c.id], c) for c in request.instances if c.include]
    if not chosen:
        raise InvalidInput("restore.options.openstack.instances: no instance is included.",
                           "restore.options.openstack.instances")
    inplace = request.restore_type == "inplace"
    plan = []
    for instance, choice in chosen:
        disks = instance.vdisks
        if choice.vdisks is not None:
            known = _disk_ids(instance)
            unknown = [v for v in choice.vdisks if v not in known]
            if unknown:
                raise InvalidInput(f"restore.options.openstack.instances: disk {unknown[0]} is not a disk "
                                   f"of instance {instance.id} in the snapshot.",
                                   "restore.options.openstack.instances.vdisks")
            wanted = {known[v] for v in choice.vdisks}
            disks = tuple(d for d in instance.vdisks if d.id in wanted)
        if inplace:
            live = current.get(instance.id)
            if live is None:
                raise Conflict(f"Instance {instance.id} no longer exists; restore it with 'oneclick' "
                               "or 'selective' instead.")
            live_paths = {d.path for d in live.disks}
            # a platform that sees the instance from its API only (no local domain) knows
            # its disks' devices, not their paths: the worker of its host checks those
            unlocated = {d.device for d in live.disks if not d.path and d.device}
            for disk in disks:
                if disk.path not in live_paths and not (disk.device and disk.device in unlocated):
                    raise Conflict(f"Disk {disk.path} is no longer a disk of instance {instance.name}.")
            planned = tuple(PlannedDisk(d, d.path, creates_file=False) for d in disks)
        else:
            planned = tuple(PlannedDisk(d, _beside(d.path, restore_id), creates_file=True) for d in disks)
        plan.append(PlannedInstance(instance, choice.name or instance.name, planned, inplace,
                                    current.get(instance.id)))
    return plan


def _disk_ids(instance: SnapshotInstance) -> dict[str, str]:
    """The names a restore request may give each disk of `instance`, to its disk id: the
    id, and for an OpenStack server the Cinder volume's id (what Trilio's clients send)."""
    known = {d.id: d.id for d in instance.vdisks}
    by_device = {d.device: d.id for d in instance.vdisks if d.device}
    described = instance.platform.get("openstack") or {}
    for disk in described.get("disks") or []:
        volume = disk.get("volume") or {}
        if volume.get("id") and disk.get("device") in by_device:
            known[str(volume["id"])] = by_device[disk["device"]]
    return known


def _beside(path: str, restore_id: str) -> str:
    directory, name = os.path.split(path)
    stem, dot, extension = name.partition(".")
    return os.path.join(directory, f"{stem}-restore-{restore_id[:8]}{dot}{extension}")




def plan_on(platform: Platform, request: RestoreRequest, instances: tuple[SnapshotInstance, ...],
            restore_id: str, project_id: str) -> list[PlannedInstance]:
    """`plan_restore` with what the platform says now: for an in-place restore, the live
    instances, and whether each may be written over as the request asks."""
    inplace = request.restore_type == "inplace"
    current = platform.find_instances(project_id, [i.id for i in instances]) if inplace else {}
    plan = plan_restore(request, instances, restore_id, current)
    for item in plan:
        if item.live is not None:
            platform.check_inplace(item.live, request.options)
    # what the options name (flavors, networks, volume types) must exist: refused here,
    # in the request, before anything is created
    platform.check_restore(project_id, request.restore_type, request.options,
                           [(item.source.id, item.source.platform) for item in plan])
    return plan
