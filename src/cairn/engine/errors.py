"""Every error the data engine raises on purpose, and what kind of failure each one is.

The engine raises only subclasses of the domain bases in `cairn.errors`, so the API and
CLI can render them without knowing the engine::

    CairnError
    ├── InvalidInput
    │   ├── BadManifestKey          a manifest key escapes the tree or is malformed
    │   ├── WrongKey                the passphrase or key file does not open the repository
    │   ├── UnsupportedFormat       magic or version of a file this code cannot read
    │   └── SourceError             a disk cannot be opened or read (qemu-img/NBD/OS)
    ├── NotFound
    │   ├── ObjectNotFound          (cairn.targets) a key is absent on the target
    │   ├── RepositoryNotFound      no repository `config` at that place
    │   └── ManifestNotFound        no manifest under that key
    ├── Conflict
    │   ├── RepositoryExists        `init` on a place that already holds a repository
    │   ├── ManifestExists          a backup would overwrite an existing manifest
    │   ├── RepositoryBusy          an exclusive operation (GC, verify) is already running
    │   └── Cancelled               the caller's `cancel()` returned true; only garbage left
    ├── Unavailable
    │   ├── TargetError             (cairn.targets) the target failed an operation
    │   │   ├── TargetFull          ENOSPC / EDQUOT
    │   │   └── TargetIOError       EIO and every other OSError
    │   └── ToolFailed              qemu-img / qemu-nbd exited with an error
    └── IntegrityError              stored data is damaged; never retried, never ignored
        ├── CorruptObject           a pack, index segment, manifest or config fails its checks
        ├── CorruptChunk            a chunk's bytes do not authenticate or re-hash to its id
        └── MissingChunk            a manifest names a chunk the index cannot find

`IntegrityError` derives from `CairnError` directly: damaged data is neither the
caller's mistake nor a passing outage.
"""

from __future__ import annotations

from cairn.errors import CairnError, Conflict, InvalidInput, NotFound, Unavailable
from cairn.targets.errors import ObjectNotFound, TargetError, TargetFull, TargetIOError

__all__ = [
    "BackupCancelled",
    "Cancelled",
    "BadManifestKey",
    "CorruptChunk",
    "CorruptObject",
    "IntegrityError",
    "ManifestExists",
    "ManifestNotFound",
    "MissingChunk",
    "ObjectNotFound",
    "RepositoryBusy",
    "RepositoryExists",
    "RepositoryNotFound",
    "SourceError",
    "TargetError",
    "TargetFull",
    "TargetIOError",
    "ToolFailed",
    "UnsupportedFormat",
    "WrongKey",
]


class BadManifestKey(InvalidInput):
    """A manifest key is absolute, contains `..`, or is otherwise not a safe key."""


class WrongKey(InvalidInput):
    """The passphrase or key file given does not unwrap any key of the repository."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="key")


class UnsupportedFormat(InvalidInput):
    """A file has an unknown magic or a version this code does not understand."""


class SourceError(InvalidInput):
    """A source disk cannot be opened, probed or read."""

    def __init__(self, message: str, field: str | None = "disk") -> None:
        super().__init__(message, field)


class RepositoryNotFound(NotFound):
    """There is no repository at the given place on the target."""


class ManifestNotFound(NotFound):
    """No manifest is stored under the given key."""


class RepositoryExists(Conflict):
    """`init` was asked to create a repository where one already exists."""


class ManifestExists(Conflict):
    """A manifest key is already taken; manifests are immutable."""


class RepositoryBusy(Conflict):
    """Another exclusive operation holds the repository."""


class Cancelled(Conflict):
    """A backup or restore was cancelled by its caller; nothing was committed."""


BackupCancelled = Cancelled


class ToolFailed(Unavailable):
    """An external tool (qemu-img, qemu-nbd) failed; its stderr is in the message."""


class IntegrityError(CairnError):
    """Stored data is damaged or missing; `file` and `chunk_id` say where when known."""

    def __init__(self, message: str, *, file: str | None = None, chunk_id: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.chunk_id = chunk_id


class CorruptObject(IntegrityError):
    """A repository file fails its magic, version, length or checksum checks."""


class CorruptChunk(IntegrityError):
    """A chunk does not authenticate, decompress, or re-hash to its id."""


class MissingChunk(IntegrityError):
    """A manifest names a chunk that no index segment (or pack) provides."""
