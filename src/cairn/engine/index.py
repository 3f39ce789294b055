"""Index segments under `index/`: which pack holds each chunk.

A segment is immutable: `INDEX_HEADER` (32 bytes), `count` entries of `INDEX_ENTRY`
(64 bytes: chunk id, pack id, offset, length, raw length) and a 32-byte checksum of all
that precedes it (BLAKE3, keyed with the metadata MAC key when encrypted). A backup
writes one segment after its packs and before its manifest; GC writes replacement
segments before it deletes the ones they replace. The index is the union of all
segments; a chunk listed twice (two backups stored it concurrently) may be read from
either copy.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cairn.engine.crypto import Sealer
from cairn.engine.errors import CorruptObject, UnsupportedFormat
from cairn.engine.packs import BlobLocation
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound

INDEX_MAGIC = b"CAIRNIDX"
INDEX_VERSION = 1
# magic, version, flags, entry count, segment id
INDEX_HEADER = "<8sHHI16s"
INDEX_HEADER_SIZE = struct.calcsize(INDEX_HEADER)
# chunk id, pack id, blob offset, blob length, plaintext length, reserved
INDEX_ENTRY = "<32s16sIII4x"
INDEX_ENTRY_SIZE = struct.calcsize(INDEX_ENTRY)
CHECKSUM_SIZE = 32


@dataclass(frozen=True)
class IndexEntry:
    chunk_id: bytes
    location: BlobLocation
    raw_len: int


def segment_key(segment_id: bytes) -> str:
    return f"index/{segment_id.hex()}.idx"


def encode_segment(entries: list[IndexEntry], sealer: Sealer) -> tuple[bytes, bytes]:
    """Return (segment id, file bytes)."""
    segment_id = os.urandom(16)
    parts = [struct.pack(INDEX_HEADER, INDEX_MAGIC, INDEX_VERSION, 0, len(entries), segment_id)]
    pack = struct.Struct(INDEX_ENTRY).pack
    parts.extend(pack(e.chunk_id, e.location.pack_id, e.location.offset, e.location.length, e.raw_len)
                 for e in entries)
    body = b"".join(parts)
    return segment_id, body + sealer.checksum(body)


def decode_segment(data: bytes, sealer: Sealer, key: str) -> list[IndexEntry]:
    if len(data) < INDEX_HEADER_SIZE + CHECKSUM_SIZE or data[:8] != INDEX_MAGIC:
        raise CorruptObject(f"{key}: not a Cairn index segment (bad magic or truncated)", file=key)
    _magic, version, flags, count, segment_id = struct.unpack_from(INDEX_HEADER, data)
    if version != INDEX_VERSION:
        raise UnsupportedFormat(f"{key}: index version {version} is not supported (this code reads {INDEX_VERSION})")
    if flags != 0 or len(data) != INDEX_HEADER_SIZE + count * INDEX_ENTRY_SIZE + CHECKSUM_SIZE:
        raise CorruptObject(f"{key}: index segment length or flags wrong", file=key)
    if sealer.checksum(memoryview(data)[:-CHECKSUM_SIZE]) != data[-CHECKSUM_SIZE:]:
        raise CorruptObject(f"{key}: index segment checksum mismatch", file=key)
    if key.startswith("index/") and key != segment_key(segment_id):
        raise CorruptObject(f"{key}: index segment names another segment ({segment_id.hex()})", file=key)
    entries = []
    for cid, pid, off, length, raw in struct.Struct(INDEX_ENTRY).iter_unpack(
            memoryview(data)[INDEX_HEADER_SIZE:-CHECKSUM_SIZE]):
        entries.append(IndexEntry(cid, BlobLocation(pid, off, length), raw))
    return entries


def write_segment(target: Target, entries: list[IndexEntry], sealer: Sealer) -> str:
    segment_id, data = encode_segment(entries, sealer)
    key = segment_key(segment_id)
    target.put(key, data)
    return key


@dataclass
class Index:
    """The union of index segments, in memory: chunk id → one location of it.

    `avoid` names packs that must not be chosen when another copy exists (the packs a
    published GC plan will delete); `segments` lists the segment keys that were read.
    """

    locations: dict[bytes, BlobLocation] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)

    def add(self, entries: Iterable[IndexEntry], avoid: frozenset[bytes] = frozenset()) -> None:
        locs = self.locations
        for e in entries:
            old = locs.get(e.chunk_id)
            if old is None or (old.pack_id in avoid and e.location.pack_id not in avoid):
                locs[e.chunk_id] = e.location

    def get(self, chunk_id: bytes) -> BlobLocation | None:
        return self.locations.get(chunk_id)

    def __contains__(self, chunk_id: bytes) -> bool:
        return chunk_id in self.locations

    def __len__(self) -> int:
        return len(self.locations)


def load_index(target: Target, sealer: Sealer, avoid: frozenset[bytes] = frozenset()) -> Index:
    """Read every segment; a segment deleted while listing (GC replaced it) is skipped."""
    index = Index()
    for key in target.list("index"):
        if not key.endswith(".idx"):
            continue
        try:
            data = target.get(key)
        except ObjectNotFound:
            continue
        index.add(decode_segment(data, sealer, key), avoid)
        index.segments.append(key)
    return index
