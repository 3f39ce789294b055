"""Backup targets: where repositories live (`Target` protocol, `FilesystemTarget`)."""

from cairn.targets.base import Target, TargetWriter, validate_key
from cairn.targets.errors import (
    ObjectNotFound,
    TargetError,
    TargetFull,
    TargetIOError,
    TargetNotReady,
    map_os_error,
)
from cairn.targets.filesystem import FilesystemTarget

__all__ = [
    "FilesystemTarget",
    "ObjectNotFound",
    "Target",
    "TargetError",
    "TargetFull",
    "TargetIOError",
    "TargetNotReady",
    "TargetWriter",
    "map_os_error",
    "validate_key",
]
