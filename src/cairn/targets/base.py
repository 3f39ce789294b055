"""The backup-target interface: what the engine may ask of any store of named objects.

A target holds objects under slash-separated relative keys. The operations are the ones
an object store offers too (S3 has each of them), so a filesystem, an NFS mount and a
bucket can all sit behind the same protocol:

- `put` publishes a whole object atomically: a reader sees the old object, or none, or
  the complete new one, never a prefix;
- `writer` streams a large object and publishes it atomically on `commit`
  (a temporary file + rename here, a multipart upload on S3);
- `create_exclusive` publishes only if the key is absent (O_EXCL here, a conditional
  put with `If-None-Match: *` on S3);
- `get`, `get_range`, `read_range` (a range read into a caller's buffer, so a reader
  of many ranges allocates nothing per read), `list`, `delete`, `exists`, `size`,
  `free_space`.

Every failure of the underlying store leaves as a `cairn.targets.errors` error (a missing
object as `ObjectNotFound`, ENOSPC as `TargetFull`, other I/O as `TargetIOError`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from cairn.errors import InvalidInput

#: `read_range` needs this many bytes of `buf` beyond the length asked for: room to
#: widen the read to whole pages, which lets a store bypass its cache (O_DIRECT).
READ_SLACK = 2 * 4096


@runtime_checkable
class TargetWriter(Protocol):
    """A streaming upload; nothing is visible under the key until `commit` returns."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def tell(self) -> int: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


@runtime_checkable
class Target(Protocol):
    """A store of immutable named objects (see the module docstring for the contract)."""

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None: ...

    def create_exclusive(self, key: str, data: bytes) -> bool: ...

    def writer(self, key: str) -> TargetWriter: ...

    def get(self, key: str) -> bytes: ...

    def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    def read_range(self, key: str, offset: int, length: int, buf: memoryview) -> memoryview: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def free_space(self) -> int | None: ...

    def describe(self) -> str: ...


def validate_key(key: str, field: str = "key") -> str:
    """Return `key` if it is a safe relative object key, else raise `InvalidInput`.

    Keys come from callers (manifest names), so they must never escape the repository:
    no absolute paths, no `.` or `..` segments, no empty segments, no backslashes or
    NUL bytes, and no segment starting with `.tmp-` (reserved for unfinished uploads).
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput("an object key must be a non-empty string", field)
    if key.startswith("/") or "\\" in key or "\0" in key:
        raise InvalidInput(f"object key {key!r} must be relative, without '\\' or NUL", field)
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidInput(f"object key {key!r} has an empty, '.' or '..' segment", field)
        if part.startswith(".tmp-"):
            raise InvalidInput(f"object key {key!r} uses the reserved prefix '.tmp-'", field)
    if len(key) > 1024:
        raise InvalidInput("an object key is at most 1024 characters", field)
    return posixpath.normpath(key)
