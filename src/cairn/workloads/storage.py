"""Backup targets as the service sees them: which exist, where a workload goes, and
where on a target each project's data lives.

Layout of a target (self-describing, so `cairn workload import` can rebuild the
database from it)::

    <target path>/cairn-target.json                         the target's marker (targets/marker.py)
    <target path>/projects/<project>/repo/                  the project's chunk store (engine)
    <target path>/projects/<project>/workloads/<workload>/workload.json
    <target path>/projects/<project>/workloads/<workload>/snapshots/<snapshot>.json
    <target path>/projects/<project>/encrypted/<workload>/repo/   an encrypted workload's own store

One repository per project: deduplication inside a project, no leak across projects.
An encrypted workload (docs/encryption.md) has a repository of its own instead, whose
key is wrapped under its Barbican secret, read by `WorkloadKeys` when it is opened.
A disk's manifest key in the repository is `<workload>/<snapshot>/<instance>/<disk index>`.

Nothing is created by accident. Every access to a target first checks its marker
(`BackupTarget.check`): a path without its own marker (an unmounted share's empty mount
point, a missing directory, another target's path) raises `TargetNotReady` before
anything is written. A project's repository is created only by `create_repository` (the
workload create job); `repository` opens, and a missing one is `RepositoryMissing`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cairn.config import TargetSettings
from cairn.engine import KeyFile, Repository, SecretPayload
from cairn.engine.errors import RepositoryExists, RepositoryNotFound
from cairn.errors import Conflict, InvalidInput, NotFound, Unavailable
from cairn.targets import marker
from cairn.targets.base import Target
from cairn.targets.filesystem import FilesystemTarget
from cairn.targets.marker import TargetMarker, TargetState
from cairn.workloads.records import WorkloadRecord
from cairn.workloads.storage_s3 import S3BackupTarget

log = logging.getLogger(__name__)


class RepositoryMissing(NotFound):
    """A project has no repository on a (verified) target: it is created with the
    project's first workload on that target, never on first use."""

    def __init__(self, message: str, target: str, path: str) -> None:
        super().__init__(message)
        self.target = target
        self.path = path


@dataclass(frozen=True)
class EncryptedWorkload:
    """Which repository an encrypted workload's data lives in, and which Barbican secret
    unwraps its key (the secret's id only: its payload is read when the repository opens)."""

    workload_id: str
    secret_uuid: str

    @classmethod
    def of(cls, workload: WorkloadRecord) -> EncryptedWorkload | None:
        if not workload.encryption:
            return None
        if not workload.secret_uuid:
            raise Conflict(f"Encrypted workload {workload.id} names no Barbican secret.")
        return cls(workload.id, workload.secret_uuid)


class WorkloadKeys(Protocol):
    """Reads the payload of an encrypted workload's secret, as the service (no caller)."""

    def payload(self, secret_uuid: str) -> bytes: ...


def encrypted_repo_path(project_id: str, workload_id: str) -> str:
    """An encrypted workload's repository, relative to the target's root."""
    return f"projects/{project_id}/encrypted/{workload_id}/repo"


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

    def state(self) -> TargetState:
        """What the target's path holds (its marker state); reads only."""
        return marker.inspect(self.name, self.path)

    def check(self) -> TargetMarker:
        """The target's marker; `TargetNotReady` (naming target and path) unless the path
        holds this target's own marker. Called before anything touches the target."""
        return self.state().required()

    def init(self) -> tuple[TargetMarker, bool]:
        """Write this target's marker (an operator's act); idempotent, see `marker.initialise`."""
        return marker.initialise(self.name, self.path)

    def project_dir(self, project_id: str) -> Path:
        return self.path / "projects" / project_id

    def catalog(self, project_id: str) -> FilesystemTarget:
        """The project's directory, whose `workloads/` tree is the catalog (`catalog.py`);
        its folders are made by the first file written there, not by looking."""
        self.check()
        return FilesystemTarget(self.project_dir(project_id))

    def projects(self) -> list[str]:
        self.check()
        root = self.path / "projects"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def repository_target(self, project_id: str) -> FilesystemTarget:
        """The project's repository directory (not created: `Repository.init` makes it)."""
        self.check()
        return FilesystemTarget(self.project_dir(project_id) / "repo")

    def workload_repository_target(self, project_id: str, workload_id: str) -> FilesystemTarget:
        """An encrypted workload's own repository directory (not created here)."""
        self.check()
        return FilesystemTarget(self.path / encrypted_repo_path(project_id, workload_id))


def open_target(settings: TargetSettings) -> BackupTarget | S3BackupTarget:
    """The target object for a target's settings (configured, or built from a row)."""
    return S3BackupTarget(settings) if settings.type == "s3" else BackupTarget.from_settings(settings)


#: the settings of a target created over the API, by its id (None: no such target)
TargetLookup = Callable[[str], TargetSettings | None]


class BackupTargets:
    """The configured targets, and those created over the API (found through `lookup`,
    `cairn.workloads.backup_targets`); opens each project's repository, creates one on
    purpose. Iterating, `choose` and `names_matching` see the configured ones only."""

    def __init__(self, targets: tuple[TargetSettings, ...], keys: WorkloadKeys | None = None,
                 lookup: TargetLookup | None = None) -> None:
        #: reads encrypted workloads' secrets; None where no key manager is configured
        self.keys = keys
        if len({t.name for t in targets}) != len(targets):
            raise InvalidInput("Two backup targets have the same name.", "target")
        self._targets: dict[str, BackupTarget | S3BackupTarget] = {t.name: open_target(t) for t in targets}
        self._lookup = lookup
        # targets created over the API, opened on first use; a row never changes, so an
        # opened one stays right until the row is deleted (`forget`)
        self._created: dict[str, BackupTarget | S3BackupTarget] = {}
        self._created_lock = threading.Lock()
        self._init_lock = threading.Lock()

    def is_configured(self, name: str) -> bool:
        return name in self._targets

    def forget(self, name: str) -> None:
        """Drop an opened target created over the API (its row was deleted)."""
        with self._created_lock:
            self._created.pop(name, None)

    def __iter__(self) -> Iterator[BackupTarget | S3BackupTarget]:
        return iter(self._targets.values())

    def states(self) -> list[TargetState]:
        """Every target's marker state, in configuration order (reads only)."""
        return [target.state() for target in self._targets.values()]

    def get(self, name: str) -> BackupTarget | S3BackupTarget:
        configured = self._targets.get(name)
        if configured is not None:
            return configured
        with self._created_lock:
            opened = self._created.get(name)
        if opened is not None:
            return opened
        settings = self._lookup(name) if self._lookup is not None else None
        if settings is None:
            raise NotFound(f"Backup target {name} is not configured.")
        opened = open_target(settings)
        with self._created_lock:
            return self._created.setdefault(name, opened)

    def resolve(self, wanted: str) -> BackupTarget | S3BackupTarget:
        """The target an admin named by name, export string or path."""
        for target in self._targets.values():
            if target.matches(wanted):
                return target
        raise InvalidInput(f"metadata.backup_media_target: no backup target is named {wanted!r}; "
                           f"configured: {', '.join(self._targets)}.", "workload.metadata.backup_media_target")

    def choose(self) -> BackupTarget | S3BackupTarget:
        """The target with the most free space (a bucket's is unbounded) among those whose
        marker checks; when none does here (an API host that mounts no target), among
        all: the create job, which runs where the target is mounted, checks it again."""
        def space(t: BackupTarget | S3BackupTarget) -> float:
            free = t.free_space()
            return float("inf") if free is None else free
        ready = [t for t in self._targets.values() if t.state().ready]
        return max(ready or self._targets.values(), key=space)

    def names_matching(self, share: str) -> list[str]:
        return [t.name for t in self._targets.values() if t.matches(share)]

    def _key(self, target: BackupTarget | S3BackupTarget,
             encrypted: EncryptedWorkload | None = None) -> KeyFile | SecretPayload | None:
        if encrypted is not None:
            if self.keys is None:
                raise Unavailable(f"Workload {encrypted.workload_id} is encrypted, and this service has no "
                                  "key manager (auth_strategy = keystone and Barbican) to read its key.")
            return SecretPayload(self.keys.payload(encrypted.secret_uuid))
        return KeyFile(str(target.passphrase_file)) if target.passphrase_file else None

    def _store(self, target: BackupTarget | S3BackupTarget, project_id: str,
               encrypted: EncryptedWorkload | None) -> Target:
        if encrypted is not None:
            return target.workload_repository_target(project_id, encrypted.workload_id)
        return target.repository_target(project_id)

    def repository(self, target_name: str, project_id: str,
                   encrypted: EncryptedWorkload | None = None) -> Repository:
        """Open the project's repository on the target (an encrypted workload's own, with
        its key read from the key manager); `TargetNotReady` when the target's marker does
        not check, `RepositoryMissing` when there is no repository. Never creates."""
        target = self.get(target_name)
        store = self._store(target, project_id, encrypted)
        if encrypted is not None and not store.exists("config"):  # before Barbican is asked anything
            raise self._missing(target, project_id, store, encrypted)
        try:
            return Repository.open(store, key=self._key(target, encrypted))
        except RepositoryNotFound:
            raise self._missing(target, project_id, store, encrypted) from None

    def _missing(self, target: BackupTarget | S3BackupTarget, project_id: str, store: Target,
                 encrypted: EncryptedWorkload | None) -> RepositoryMissing:
        whose = (f"encrypted workload {encrypted.workload_id}" if encrypted is not None
                 else f"project {project_id}")
        return RepositoryMissing(
            f"Backup target {target.name} at {target.path} has no repository for {whose} "
            f"({store.describe()}); it is created when a workload is created there.",
            target.name, str(target.path))

    def create_repository(self, target_name: str, project_id: str,
                          encrypted: EncryptedWorkload | None = None) -> Repository:
        """The project's repository on the target (an encrypted workload's own), created if
        it has none yet (by the workload create job, on the host that reaches the target).
        The target's marker is checked first: an unmounted share gets nothing."""
        target = self.get(target_name)
        store = self._store(target, project_id, encrypted)
        key = self._key(target, encrypted)
        try:
            return Repository.open(store, key=key)
        except RepositoryNotFound:
            pass
        with self._init_lock:
            try:
                repository = Repository.init(store, encryption=key)
            except RepositoryExists:  # another process made it first
                return Repository.open(store, key=key)
        log.info("created the repository of %s on backup target %s (%s)",
                 f"encrypted workload {encrypted.workload_id}" if encrypted else f"project {project_id}",
                 target.name, store.describe())
        return repository

    def prepare_workload(self, workload: WorkloadRecord) -> None:
        """The create job's step: the workload's project gets its repository on the
        workload's target (checked first), so its snapshots have somewhere to go."""
        if not workload.backup_target:
            raise Conflict(f"Workload {workload.id} has no backup target.")
        self.create_repository(workload.backup_target, workload.project_id, EncryptedWorkload.of(workload))
