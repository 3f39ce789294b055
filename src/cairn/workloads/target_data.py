"""A workload's data on its backup target: its catalog files, its manifests in the
project's repository, and the garbage collection that gives their space back.

`WorkloadData` is opened once per job and opens the project's repository at most once
(an encrypted repository costs an scrypt per open). Removal follows the target's commit
order in reverse: a snapshot's catalog file goes before its manifests, so a target
never describes a snapshot it cannot restore; the chunks only the removed manifests
named become garbage for the next collection.
"""

from __future__ import annotations

import logging

from cairn.engine import Repository
from cairn.engine.errors import ManifestNotFound
from cairn.errors import Conflict
from cairn.targets.base import Target
from cairn.workloads import catalog
from cairn.workloads.catalog import SnapshotDocument, WorkloadDocument
from cairn.workloads.records import WorkloadRecord
from cairn.workloads.storage import BackupTargets, EncryptedWorkload

log = logging.getLogger(__name__)


def manifest_key(workload_id: str, snapshot_id: str, instance_id: str, index: int) -> str:
    """A disk's manifest key in the project's repository."""
    return f"{workload_id}/{snapshot_id}/{instance_id}/{index}"


def target_name(workload: WorkloadRecord) -> str:
    if not workload.backup_target:
        raise Conflict(f"Workload {workload.id} has no backup target.")
    return workload.backup_target


class WorkloadData:
    """One workload's files on its target, for the length of one job."""

    def __init__(self, targets: BackupTargets, target: str, project_id: str, workload_id: str,
                 secret_uuid: str | None = None) -> None:
        self.targets = targets
        self.target = targets.get(target)
        self.project_id = project_id
        self.workload_id = workload_id
        #: set for an encrypted workload, whose repository is its own (docs/encryption.md)
        self.encrypted = EncryptedWorkload(workload_id, secret_uuid) if secret_uuid else None
        self._repository: Repository | None = None

    @classmethod
    def of(cls, targets: BackupTargets, workload: WorkloadRecord) -> WorkloadData:
        encrypted = EncryptedWorkload.of(workload)
        return cls(targets, target_name(workload), workload.project_id, workload.id,
                   encrypted.secret_uuid if encrypted else None)

    @property
    def repository(self) -> Repository:
        """The project's repository (an encrypted workload's own), opened on first use."""
        if self._repository is None:
            self._repository = self.targets.repository(self.target.name, self.project_id, self.encrypted)
        return self._repository

    @property
    def catalog(self) -> Target:
        return self.target.catalog(self.project_id)

    def publish_workload(self, workload: WorkloadRecord) -> None:
        """Write the workload's description to the catalog (for import)."""
        catalog.write_workload(self.catalog, WorkloadDocument.from_record(workload))

    def publish_snapshot(self, workload: WorkloadRecord, document: SnapshotDocument) -> None:
        """The workload's description, then the snapshot's: after this the target alone
        can bring the snapshot back."""
        self.publish_workload(workload)
        catalog.write_snapshot(self.catalog, document)

    def snapshot_ids_with_manifests(self) -> set[str]:
        """Every snapshot of this workload that has at least one manifest on the target."""
        prefix = f"{self.workload_id}/"
        return {key.split("/")[1] for key in self.repository.list_manifests() if key.startswith(prefix)}

    def remove_snapshot(self, snapshot_id: str) -> None:
        """Catalog file first, then manifests; safe to repeat."""
        catalog.remove_snapshot(self.catalog, self.workload_id, snapshot_id)
        self._delete_manifests(f"{self.workload_id}/{snapshot_id}/")

    def remove_all(self) -> None:
        """The workload's catalog, then every manifest it has (those of failed snapshots too)."""
        catalog.remove_workload(self.catalog, self.workload_id)
        self._delete_manifests(f"{self.workload_id}/")

    def collect_garbage(self, wait_seconds: float) -> None:
        report = self.repository.gc(wait_seconds=wait_seconds)
        log.info("garbage collection for project %s: %d packs deleted, %d repacked, %d bytes freed%s",
                 self.project_id, report.packs_deleted, report.packs_repacked, report.bytes_freed,
                 " (plan pending: backups still running)" if report.pending else "")

    def _delete_manifests(self, prefix: str) -> None:
        for key in self.repository.list_manifests():
            if key.startswith(prefix):
                try:
                    self.repository.delete_manifest(key)
                except ManifestNotFound:  # removed by a run of this step that did not finish
                    pass
