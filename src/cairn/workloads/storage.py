"""Backup targets as the service sees them: which exist, where a workload goes, and
where on a target each project's data lives.

Layout of a target (self-describing, so `cairn workload import` can rebuild the
database from it)::

    <target path>/projects/<project>/repo/                  the project's chunk store (engine)
    <target path>/projects/<project>/workloads/<workload>/workload.json
    <target path>/projects/<project>/workloads/<workload>/snapshots/<snapshot>.json

One repository per project: deduplication inside a project, no leak across projects.
A disk's manifest key in the repository is `<workload>/<snapshot>/<instance>/<disk index>`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cairn.config import TargetSettings
from cairn.engine import KeyFile, Repository
from cairn.engine.errors import RepositoryExists, RepositoryNotFound
from cairn.errors import InvalidInput, NotFound
from cairn.targets.filesystem import FilesystemTarget
from cairn.workloads.storage_s3 import S3BackupTarget


@dataclass(frozen=True)
class BackupTarget:
    name: str
    path: Path
    export: str | None
    passphrase_file: Path | None

    @classmethod
    def from_settings(cls, settings: TargetSettings) -> BackupTarget:
        assert settings.path is not None, "a filesystem target has a path"
        return cls(settings.name, settings.path, settings.export, settings.passphrase_file)

    @property
    def label(self) -> str:
        """What admins see as `metadata.backup_media_target`: the export, else the path."""
        return self.export or str(self.path)

    def matches(self, share: str) -> bool:
        return share in (self.name, self.export, str(self.path))

    def free_space(self) -> int:
        probe = self.path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        stats = os.statvfs(probe)
        return stats.f_bavail * stats.f_frsize

    def project_dir(self, project_id: str) -> Path:
        return self.path / "projects" / project_id

    def catalog(self, project_id: str) -> FilesystemTarget:
        """The project's directory, whose `workloads/` tree is the catalog (`catalog.py`)."""
        path = self.project_dir(project_id)
        (path / "workloads").mkdir(parents=True, exist_ok=True)
        return FilesystemTarget(path)

    def projects(self) -> list[str]:
        root = self.path / "projects"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def repository_target(self, project_id: str) -> FilesystemTarget:
        path = self.project_dir(project_id) / "repo"
        path.mkdir(parents=True, exist_ok=True)
        return FilesystemTarget(path)


class BackupTargets:
    """The configured targets; opens (creating on first use) each project's repository."""

    def __init__(self, targets: tuple[TargetSettings, ...]) -> None:
        if len({t.name for t in targets}) != len(targets):
            raise InvalidInput("Two backup targets have the same name.", "target")
        self._targets: dict[str, BackupTarget | S3BackupTarget] = {
            t.name: S3BackupTarget(t) if t.type == "s3" else BackupTarget.from_settings(t) for t in targets}
        self._init_lock = threading.Lock()

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._targets.values())

    def get(self, name: str) -> BackupTarget | S3BackupTarget:
        try:
            return self._targets[name]
        except KeyError:
            raise NotFound(f"Backup target {name} is not configured.") from None

    def resolve(self, wanted: str) -> BackupTarget | S3BackupTarget:
        """The target an admin named by name, export string or path."""
        for target in self._targets.values():
            if target.matches(wanted):
                return target
        raise InvalidInput(f"metadata.backup_media_target: no backup target is named {wanted!r}; "
                           f"configured: {', '.join(self._targets)}.", "workload.metadata.backup_media_target")

    def choose(self) -> BackupTarget | S3BackupTarget:
        """The target with the most free space (a bucket's is unbounded)."""
        def space(t: BackupTarget | S3BackupTarget) -> float:
            free = t.free_space()
            return float("inf") if free is None else free
        return max(self._targets.values(), key=space)

    def names_matching(self, share: str) -> list[str]:
        return [t.name for t in self._targets.values() if t.matches(share)]

    def repository(self, target_name: str, project_id: str) -> Repository:
        target = self.get(target_name)
        store = target.repository_target(project_id)
        key = KeyFile(str(target.passphrase_file)) if target.passphrase_file else None
        try:
            return Repository.open(store, key=key)
        except RepositoryNotFound:
            pass
        with self._init_lock:
            try:
                return Repository.init(store, encryption=key)
            except RepositoryExists:  # another process made it first
                return Repository.open(store, key=key)
