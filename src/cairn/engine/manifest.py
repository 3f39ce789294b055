"""Manifests under `manifests/`: one per disk per snapshot, the commit point of a backup.

Layout: `MANIFEST_HEADER` (64 bytes: magic, version, flags, chunk size, disk size,
chunk count, creation time, repository id), then `chunk_count` chunk ids of 32 bytes in
disk order (`ZERO_ID`, 32 zero bytes, for a chunk of zeros), then a 32-byte checksum of
all that precedes it (BLAKE3, keyed with the metadata MAC key when encrypted).

A manifest is complete: it names every chunk of the disk, so it restores without any
other manifest. Keys are caller-chosen relative paths (`w/s/i/d`), validated here.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from cairn.engine.chunks import ID_SIZE, ZERO_ID
from cairn.engine.crypto import Sealer
from cairn.engine.errors import BadManifestKey, CorruptObject, UnsupportedFormat
from cairn.errors import InvalidInput
from cairn.targets.base import validate_key

MANIFEST_MAGIC = b"CAIRNMAN"
MANIFEST_VERSION = 1
# magic, version, flags, chunk size, disk size, chunk count, created (ns), repository id
MANIFEST_HEADER = "<8sHHIQQQ16s8x"
MANIFEST_HEADER_SIZE = struct.calcsize(MANIFEST_HEADER)
CHECKSUM_SIZE = 32
PREFIX = "manifests/"
SUFFIX = ".manifest"


@dataclass
class Manifest:
    """A disk image as a list of chunk ids; `ids` is the packed 32-byte id array."""

    chunk_size: int
    disk_size: int
    ids: bytearray
    created_ns: int
    repo_id: bytes

    @property
    def chunk_count(self) -> int:
        return len(self.ids) // ID_SIZE

    def chunk_id(self, index: int) -> bytes:
        return bytes(self.ids[index * ID_SIZE:(index + 1) * ID_SIZE])

    def iter_ids(self) -> list[bytes]:
        raw = bytes(self.ids)
        return [raw[i:i + ID_SIZE] for i in range(0, len(raw), ID_SIZE)]

    def referenced(self) -> set[bytes]:
        found = set(self.iter_ids())
        found.discard(ZERO_ID)
        return found


def chunk_count_for(disk_size: int, chunk_size: int) -> int:
    return (disk_size + chunk_size - 1) // chunk_size


def manifest_object_key(manifest_key: str) -> str:
    """Map a caller's manifest key to its object key, refusing unsafe keys."""
    try:
        key = validate_key(manifest_key, field="manifest_key")
    except InvalidInput as exc:
        raise BadManifestKey(exc.message, "manifest_key") from None
    if key != manifest_key:
        raise BadManifestKey(f"manifest key {manifest_key!r} is not in normal form", "manifest_key")
    return f"{PREFIX}{key}{SUFFIX}"


def manifest_key_from_object(object_key: str) -> str | None:
    if object_key.startswith(PREFIX) and object_key.endswith(SUFFIX):
        return object_key[len(PREFIX):-len(SUFFIX)]
    return None


def encode_manifest(m: Manifest, sealer: Sealer) -> bytes:
    assert len(m.ids) == chunk_count_for(m.disk_size, m.chunk_size) * ID_SIZE
    header = struct.pack(MANIFEST_HEADER, MANIFEST_MAGIC, MANIFEST_VERSION, 0, m.chunk_size, m.disk_size,
                         m.chunk_count, m.created_ns, m.repo_id)
    body = header + bytes(m.ids)
    return body + sealer.checksum(body)


def decode_manifest(data: bytes, sealer: Sealer, key: str) -> Manifest:
    if len(data) < MANIFEST_HEADER_SIZE + CHECKSUM_SIZE or data[:8] != MANIFEST_MAGIC:
        raise CorruptObject(f"{key}: not a Cairn manifest (bad magic or truncated)", file=key)
    _m, version, flags, chunk_size, disk_size, count, created, repo_id = struct.unpack_from(MANIFEST_HEADER, data)
    if version != MANIFEST_VERSION:
        raise UnsupportedFormat(f"{key}: manifest version {version} is not supported "
                                f"(this code reads {MANIFEST_VERSION})")
    if sealer.checksum(memoryview(data)[:-CHECKSUM_SIZE]) != data[-CHECKSUM_SIZE:]:
        raise CorruptObject(f"{key}: manifest checksum mismatch", file=key)
    if (flags != 0 or chunk_size == 0 or count != chunk_count_for(disk_size, chunk_size)
            or len(data) != MANIFEST_HEADER_SIZE + count * ID_SIZE + CHECKSUM_SIZE
            or data[MANIFEST_HEADER_SIZE - 8:MANIFEST_HEADER_SIZE] != bytes(8)):
        raise CorruptObject(f"{key}: manifest header is inconsistent", file=key)
    ids = bytearray(memoryview(data)[MANIFEST_HEADER_SIZE:-CHECKSUM_SIZE])
    return Manifest(chunk_size, disk_size, ids, created, repo_id)


def new_manifest(chunk_size: int, disk_size: int, repo_id: bytes) -> Manifest:
    ids = bytearray(chunk_count_for(disk_size, chunk_size) * ID_SIZE)
    return Manifest(chunk_size, disk_size, ids, time.time_ns(), repo_id)
