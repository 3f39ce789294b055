"""An S3 bucket as a backup target of the service: the layout of storage.py under the
bucket's prefix, every project's repository and catalog sharing one connection pool.

    <prefix>/cairn-target.json                               the target's marker
    <prefix>/projects/<project>/repo/...                     the project's chunk store
    <prefix>/projects/<project>/workloads/<workload>/...     its catalog

As for a directory, nothing is written under the prefix until it holds this target's
own marker (`cairn target init NAME`); a missing bucket is never created.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cairn.config import TargetSettings
from cairn.targets import marker
from cairn.targets.marker import TargetMarker, TargetState

if TYPE_CHECKING:
    from cairn.targets.s3 import S3Target


class S3BackupTarget:
    """A `[target:NAME]` with `type = s3`; the same interface as storage.BackupTarget."""

    export: str | None = None

    def __init__(self, settings: TargetSettings) -> None:
        assert settings.s3 is not None, "an S3 target's settings carry its S3 options"
        # boto3 takes a third of a second to import: only services with an S3 target pay.
        from cairn.targets.s3 import S3Settings, S3Target

        s3 = settings.s3
        self.name = settings.name
        self.passphrase_file: Path | None = settings.passphrase_file
        self.root = S3Target(S3Settings(endpoint=s3.endpoint, bucket=s3.bucket, access_key=s3.access_key,
                                        secret_key=s3.secret_key, prefix=s3.prefix, region=s3.region))
        where = f"{s3.bucket}/{s3.prefix}" if s3.prefix else s3.bucket
        self.label = f"s3://{where}"
        #: what messages name the target by (a directory target's is its path)
        self.path = self.label

    def matches(self, share: str) -> bool:
        return share in (self.name, self.label)

    def free_space(self) -> int | None:
        return None  # a bucket has no size

    def state(self) -> TargetState:
        """What the prefix holds (its marker state); reads only."""
        return marker.inspect_store(self.name, self.label, self.root)

    def check(self) -> TargetMarker:
        """The target's marker; `TargetNotReady` unless the prefix holds this target's own."""
        return self.state().required()

    def init(self) -> tuple[TargetMarker, bool]:
        """Write this target's marker (an operator's act); idempotent."""
        return marker.initialise_store(self.name, self.label, self.root)

    def catalog(self, project_id: str) -> S3Target:
        """The project's folder, whose `workloads/` tree is the catalog (`catalog.py`)."""
        self.check()
        return self.root.within(f"projects/{project_id}")

    def projects(self) -> list[str]:
        self.check()
        return self.root.folders("projects")

    def repository_target(self, project_id: str) -> S3Target:
        self.check()
        return self.root.within(f"projects/{project_id}/repo")

    def workload_repository_target(self, project_id: str, workload_id: str) -> S3Target:
        """An encrypted workload's own repository (storage.encrypted_repo_path)."""
        self.check()
        return self.root.within(f"projects/{project_id}/encrypted/{workload_id}/repo")
