"""Cairn's data engine: disks in, manifests out, and back, on a backup target.

It knows nothing of HTTP, databases or workloads. Public surface::

    Repository.init(target, encryption=None | Passphrase | KeyFile, chunk_size=..., pack_size=...)
    Repository.open(target, key=...)
    repo.backup(source, manifest_key, parent_key=None, changed_ranges=None, progress=None, cancel=None)
    repo.restore(manifest_key, destination_path, format="raw" | "qcow2")
    repo.delete_manifest(key); repo.list_manifests(); repo.verify(deep=False); repo.gc(); repo.stats()

The on-disk format is specified in docs/format.md; constants are justified in docs/engine.md.
"""

from cairn.engine.backup import BackupResult
from cairn.engine.config import RepositoryConfig
from cairn.engine.crypto import KeyFile, Passphrase, SecretPayload
from cairn.engine.gc import GcReport
from cairn.engine.locks import LockTiming
from cairn.engine.repository import Repository, RepoStats
from cairn.engine.sources import Extent, Source, open_source
from cairn.engine.verify import Problem, VerifyReport

__all__ = [
    "BackupResult",
    "Extent",
    "GcReport",
    "KeyFile",
    "LockTiming",
    "Passphrase",
    "Problem",
    "RepoStats",
    "Repository",
    "RepositoryConfig",
    "SecretPayload",
    "Source",
    "VerifyReport",
    "open_source",
]
