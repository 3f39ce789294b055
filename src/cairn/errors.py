"""The domain exceptions every layer raises, and what kind of failure each one is.

Inner layers (engine, targets, platforms, workloads, jobs) raise these; only the API
layer turns them into HTTP faults (`cairn.api.faults`), and only the CLI turns them
into exit messages. Each class carries the *kind* of failure, never an HTTP detail, so
the engine stays free of HTTP while the API maps each kind to exactly one status.
The whole tree, with the module of each class beyond this one and its HTTP status
(`cairn.api.faults.STATUS_OF`; tests/api/test_fault_mapping.py keeps the two in step)::

    CairnError                      anything Cairn reports on purpose
    ├── InvalidInput           400  a request or argument is wrong (names the field)
    │   ├── BadManifestKey          engine: a manifest key escapes the tree or is malformed
    │   ├── WrongKey                engine: the passphrase or key file does not open the repository
    │   ├── UnsupportedFormat       engine: magic, version or parameters this code cannot read
    │   └── SourceError             engine: a disk cannot be opened or read (OS, NBD)
    ├── NotFound               404  the thing asked for does not exist (for this caller)
    │   ├── ObjectNotFound          targets: a key is absent on the target (ENOENT)
    │   ├── RepositoryNotFound      engine: no repository `config` at that place
    │   ├── RepositoryMissing       workloads.storage: a project has no repository on a ready target
    │   └── ManifestNotFound        engine: no manifest under that key
    ├── Conflict               409  the thing exists but its state forbids the action
    │   ├── RepositoryExists        engine: `init` where a repository already is
    │   ├── ManifestExists          engine: a manifest key is taken; manifests are immutable
    │   ├── RepositoryBusy          engine: GC or verify holds the exclusive lock; a lock was lost
    │   └── Cancelled               engine: the caller cancelled a backup or restore
    ├── NotAuthenticated       401  no credentials, or credentials that are not valid
    │   └── TrustRefused            auth.acting: Keystone gives no token through a trust
    ├── NotAuthorized          403  valid credentials, but a policy rule says no
    │   └── TrustUnusable           workloads.trusts: a job's trust was refused (its message names it)
    ├── TooLarge               413  a body or value above a configured limit
    │   └── QuotaExceeded           workloads.quotas: a request would pass a project's allowed quota
    ├── Unavailable            503  a dependency (database, identity, target, libvirt) is down
    │   ├── TargetNotReady          targets: the target's path does not hold its own marker
    │   ├── TargetError             targets: the target failed an operation
    │   │   ├── TargetFull          targets: ENOSPC / EDQUOT
    │   │   └── TargetIOError       targets: EIO, EACCES, ESTALE, ... every other OSError
    │   │       └── TargetMissing   targets: the place a target lives in does not exist
    │   │           └── BucketNotFound  targets.s3: the configured bucket does not exist
    │   ├── ToolFailed              engine: qemu-img / qemu-nbd / an NBD write failed
    │   ├── CleanupFailed           workloads.cleanup: a file a failed job wrote could not be removed
    │   └── ConnectionLost          db.database: a DBAPIError that invalidated the connection
    ├── IntegrityError         500  engine: stored data is damaged; never retried, never ignored
    │   ├── CorruptObject           a config, key file, pack, segment, manifest or GC plan fails its checks
    │   ├── CorruptChunk            a chunk does not authenticate, decompress or re-hash to its id
    │   └── MissingChunk            a manifest names a chunk the index cannot find
    ├── JobCancelled           409  jobs.runner: raised inside a job's handler when it must stop
    └── NotReady               CLI  commands.roles: a role cannot start (schema, broker setting)

Lower-level errors become these where Cairn meets them: `OSError` on a target through
`cairn.targets.errors.map_os_error`, on a source disk as `SourceError`; a DBAPIError
whose connection was invalidated as `ConnectionLost` (other database errors are bugs or
races and surface as 500); `libvirtError` as `Unavailable` (`NotFound` for a missing
domain); `nbd.Error` as `SourceError` (reads) or `ToolFailed` (writes).
"""

from __future__ import annotations


class CairnError(Exception):
    """Base of every error Cairn raises on purpose; `message` is written for a human."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CairnError):
    """A request body, query or argument is wrong; `field` names it (dotted path)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(CairnError):
    """The resource does not exist, or the caller may not know that it exists."""


class Conflict(CairnError):
    """The resource exists but its current state forbids the action."""


class NotAuthenticated(CairnError):
    """Credentials are missing, unknown or expired."""


class NotAuthorized(CairnError):
    """The caller is known but a policy rule refuses the action."""


class TooLarge(CairnError):
    """A request body or value is above a configured limit."""


class Unavailable(CairnError):
    """A service Cairn depends on could not be reached; retrying later may work."""
