"""Pack files under `packs/`: many blobs appended to one object of tens of MiB.

Layout: `PACK_HEADER` (32 bytes: magic, version, flags, pack id) then blobs back to
back, each a `chunks.BLOB_HEADER` and its payload, up to the end of the object. There is
no trailer: the index segments say where each blob is, and `walk_pack` re-derives the
same list from the pack alone (for deep verify and disaster recovery).

A pack is named `packs/<first two hex digits>/<32 hex digits>.pack` after its random
16-byte id, and is written once (see `PackWriter`), never modified.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from cairn.engine.chunks import BLOB_HEADER_SIZE, BlobInfo, parse_blob_header
from cairn.engine.errors import CorruptObject, UnsupportedFormat
from cairn.targets.base import Target, TargetWriter

PACK_MAGIC = b"CAIRNPAK"
PACK_VERSION = 1
# magic, version, flags, reserved, pack id
PACK_HEADER = "<8sHH4s16s"
PACK_HEADER_SIZE = struct.calcsize(PACK_HEADER)
PACK_ID_SIZE = 16


def pack_key(pack_id: bytes) -> str:
    h = pack_id.hex()
    return f"packs/{h[:2]}/{h}.pack"


def pack_id_from_key(key: str) -> bytes | None:
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".pack") or len(name) != 37:
        return None
    try:
        return bytes.fromhex(name[:32])
    except ValueError:
        return None


@dataclass(frozen=True)
class BlobLocation:
    """Where a blob lives: pack id, byte offset of its header, total length."""

    pack_id: bytes
    offset: int
    length: int


class PackWriter:
    """Appends blobs to one new pack; nothing is visible until `commit`."""

    def __init__(self, target: Target) -> None:
        self.pack_id = os.urandom(PACK_ID_SIZE)
        self.key = pack_key(self.pack_id)
        self._writer: TargetWriter = target.writer(self.key)
        self._writer.write(struct.pack(PACK_HEADER, PACK_MAGIC, PACK_VERSION, 0, b"\0" * 4, self.pack_id))
        self.size = PACK_HEADER_SIZE
        self.blobs = 0

    def add(self, header: bytes, payload: bytes) -> BlobLocation:
        offset = self.size
        self._writer.write(header)
        self._writer.write(payload)
        length = len(header) + len(payload)
        self.size += length
        self.blobs += 1
        return BlobLocation(self.pack_id, offset, length)

    def commit(self) -> None:
        self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


def check_pack_header(data: bytes | memoryview, key: str) -> bytes:
    """Validate a pack header and return the pack id it carries."""
    if len(data) < PACK_HEADER_SIZE or bytes(data[:8]) != PACK_MAGIC:
        raise CorruptObject(f"{key}: not a Cairn pack (bad magic)", file=key)
    _magic, version, flags, reserved, pack_id = struct.unpack_from(PACK_HEADER, data)
    if version != PACK_VERSION:
        raise UnsupportedFormat(f"{key}: pack version {version} is not supported (this code reads {PACK_VERSION})")
    if flags != 0 or reserved != b"\0" * 4:
        raise CorruptObject(f"{key}: pack header has unknown flags", file=key)
    if pack_id_from_key(key) not in (None, pack_id):
        raise CorruptObject(f"{key}: pack header names another pack ({pack_id.hex()})", file=key)
    return pack_id


def walk_pack(data: bytes, key: str) -> Iterator[tuple[int, BlobInfo]]:
    """Yield (offset, header) of every blob in a whole pack; raise on any inconsistency."""
    check_pack_header(data, key)
    pos = PACK_HEADER_SIZE
    end = len(data)
    view = memoryview(data)
    while pos < end:
        info = parse_blob_header(view[pos:pos + BLOB_HEADER_SIZE], f"{key}@{pos}")
        if pos + BLOB_HEADER_SIZE + info.stored_len > end:
            raise CorruptObject(f"{key}: blob at offset {pos} runs past the end of the pack", file=key,
                                chunk_id=info.chunk_id.hex())
        yield pos, info
        pos += BLOB_HEADER_SIZE + info.stored_len
