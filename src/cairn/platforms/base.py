"""The platform interface and the data it hands to the rest of Cairn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class DiskInfo:
    """One disk of an instance: where it is, its format and virtual size in bytes."""

    path: str
    format: str
    size: int


@dataclass(frozen=True)
class InstanceInfo:
    id: str
    project_id: str
    name: str
    disks: tuple[DiskInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(disk.size for disk in self.disks)


class Platform(Protocol):
    """Answers which instances a project has and what their disks are."""

    def find_instances(self, project_id: str, instance_ids: list[str]) -> dict[str, InstanceInfo]:
        """The instances of `project_id` among `instance_ids` (missing ones are absent)."""
        ...

    def confirm(self, instance: InstanceInfo) -> None:
        """Check the instance can be protected now (its disks are there and readable);
        raise a CairnError naming the problem otherwise."""
        ...

    def create_instance(self, project_id: str, name: str, disk_paths: list[str]) -> InstanceInfo:
        """Make a new instance from restored disks (a restore's `oneclick`/`selective`)."""
        ...
