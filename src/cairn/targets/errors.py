"""Errors a target raises, and the one function that maps `OSError` onto them.

    CairnError
    ├── NotFound
    │   └── ObjectNotFound      the key does not exist on the target
    └── Unavailable
        ├── TargetNotReady      the target's marker is missing, foreign or unreadable
        │                       (an unmounted share, a wrong path): nothing is written
        └── TargetError         the target failed an operation (retrying may work)
            ├── TargetFull      ENOSPC / EDQUOT: no room left
            └── TargetIOError   EIO, ESTALE, EACCES, ... anything else from the OS

`cairn.engine.errors` draws these inside the engine's full tree.
"""

from __future__ import annotations

import errno

from cairn.errors import NotFound, Unavailable


class ObjectNotFound(NotFound):
    """An object the caller named is not on the target."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class TargetNotReady(Unavailable):
    """A configured target's path does not hold its own marker (`cairn.targets.marker`);
    `state` is the marker state found (`missing`, `unmarked`, `foreign`, `unreadable`)."""

    def __init__(self, message: str, target: str, path: str, state: str) -> None:
        super().__init__(message)
        self.target = target
        self.path = path
        self.state = state


class TargetError(Unavailable):
    """The target could not complete an operation; `errno` is kept when there was one."""

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


class TargetFull(TargetError):
    """The target has no space (or quota) left for the object being written."""


class TargetIOError(TargetError):
    """Any other operating-system failure while talking to the target."""


def map_os_error(exc: OSError, what: str, key: str | None = None) -> Exception:
    """Turn an `OSError` raised while doing `what` into the target error it means."""
    detail = f"{what}: {exc.strerror or exc}"
    if isinstance(exc, FileNotFoundError) and key is not None:
        return ObjectNotFound(f"{detail} (object {key!r} does not exist)", key)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TargetFull(f"{detail}: the backup target is full", exc.errno)
    return TargetIOError(detail, exc.errno)


class TargetMissing(TargetIOError):
    """The place a target lives in does not exist (its bucket): never made implicitly."""

