"""Which disks of an instance a snapshot leaves out, and how the snapshot says so.

Two metadata keys, as on the original service: the instance's
`exclude_boot_disk_from_backup` leaves out its boot disk (its first disk), and a disk's
(a volume's) `exclude_from_backup` leaves out that disk. A value of `true`, `1`, `yes`
or `on` (any case) turns either on; anything else leaves the disk in.

The snapshot records what it left out in its metadata under `excluded_disks`: a JSON
list of `{"instance_id", "instance_name", "path", "device", "reason"}` (metadata values
are strings), shown in the snapshot's detail view and kept in its catalog file. A
left-out disk is neither read nor stored, so a restore brings its instance back without
it. An excluded disk keeps its position number: the others' manifest keys and vdisk ids
are the same whether or not it is left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from cairn.platforms.base import DiskInfo, InstanceInfo

BOOT_KEY = "exclude_boot_disk_from_backup"
DISK_KEY = "exclude_from_backup"
METADATA_KEY = "excluded_disks"
_ON = ("1", "true", "yes", "on")


def _on(value: str | None) -> bool:
    return value is not None and str(value).strip().lower() in _ON


@dataclass(frozen=True)
class ExcludedDisk:
    instance_id: str
    instance_name: str
    path: str
    device: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"instance_id": self.instance_id, "instance_name": self.instance_name, "path": self.path,
                "device": self.device, "reason": self.reason}


def split(instance: InstanceInfo) -> tuple[InstanceInfo, list[ExcludedDisk], dict[str, int]]:
    """The instance with only the disks to back up, the disks left out, and each kept
    disk's position among all the instance's disks (by path)."""
    kept: list[DiskInfo] = []
    left: list[ExcludedDisk] = []
    positions: dict[str, int] = {}
    for index, disk in enumerate(instance.disks):
        reason = None
        if index == 0 and _on(instance.metadata.get(BOOT_KEY)):
            reason = f"instance metadata {BOOT_KEY}"
        elif _on(disk.metadata.get(DISK_KEY)):
            reason = f"disk metadata {DISK_KEY}"
        if reason is None:
            kept.append(disk)
            positions[disk.path] = index
        else:
            left.append(ExcludedDisk(instance.id, instance.name, disk.path, disk.device, reason))
    return replace(instance, disks=tuple(kept)), left, positions


def record(metadata: dict[str, str], excluded: list[ExcludedDisk]) -> dict[str, str]:
    """The snapshot's metadata with what was left out (unchanged when nothing was)."""
    if not excluded:
        return metadata
    return {**metadata, METADATA_KEY: json.dumps([e.to_json() for e in excluded], sort_keys=True)}
