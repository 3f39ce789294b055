"""Chunks and their stored form, the blob: how one chunk is encoded inside a pack.

A chunk is `chunk_size` bytes of the disk at an aligned offset (the last one may be
shorter). Its id is BLAKE3-256 of the plaintext (keyed when encrypted, see crypto.py).
A chunk of zeros is never stored: manifests mark it with `ZERO_ID`.

A blob is `BLOB_HEADER` (48 bytes) followed by `stored_len` payload bytes. The payload
is the chunk, zstd-compressed when that makes it smaller, then sealed with AES-256-GCM
(nonce || ciphertext || tag) when the repository is encrypted, with the header as
associated data so no header byte can change unnoticed. `decode_blob` re-hashes every
plaintext, so a decoded chunk is the chunk its id names, or an exception.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

import zstandard
from cryptography.exceptions import InvalidTag

from cairn.engine.config import MAX_CHUNK_SIZE
from cairn.engine.crypto import Sealer
from cairn.engine.errors import CorruptChunk

BLOB_MAGIC = b"CBLB"
# magic, encoding flags, stored_len, raw_len, chunk id
BLOB_HEADER = "<4sB3xII32s"
BLOB_HEADER_SIZE = struct.calcsize(BLOB_HEADER)
ENC_ZSTD = 0x01
ENC_AESGCM = 0x02
KNOWN_ENCODINGS = ENC_ZSTD | ENC_AESGCM
ZERO_ID = bytes(32)
ID_SIZE = 32
# nonce (12) and GCM tag (16) around a sealed payload
SEAL_OVERHEAD = 12 + 16

# Level 3 stores ~9% fewer bytes than level 1 on an ext4 image for ~65% more CPU; the
# CPU is cheap next to the target's bytes (docs/engine.md has the table).
DEFAULT_ZSTD_LEVEL = 3


@dataclass(frozen=True)
class BlobInfo:
    """The parsed header of one blob."""

    encoding: int
    stored_len: int
    raw_len: int
    chunk_id: bytes


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # ZstdCompressor objects are not thread-safe; each worker keeps its own.
    comps = getattr(_local, "comps", None)
    if comps is None:
        comps = _local.comps = {}
    comp = comps.get(level)
    if comp is None:
        comp = comps[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    dec = getattr(_local, "dec", None)
    if dec is None:
        dec = _local.dec = zstandard.ZstdDecompressor()
    return dec


def is_zero(data: bytes | bytearray, _cache: dict[int, bytes] = {}) -> bool:  # noqa: B006 - the shared zero blocks
    """True if `data` is all zero bytes (one memcmp against a shared zero block)."""
    n = len(data)
    zero = _cache.get(n)
    if zero is None:
        zero = _cache.setdefault(n, bytes(n)) if len(_cache) < 8 else bytes(n)
    return data == zero


def encode_chunk(data: bytes | bytearray | memoryview, chunk_id: bytes, sealer: Sealer,
                 level: int = DEFAULT_ZSTD_LEVEL) -> tuple[bytes, bytes]:
    """Return (header, payload) of the blob for chunk `data`; payload never aliases `data`."""
    raw_len = len(data)
    encoding = 0
    payload: bytes = _compressor(level).compress(data)
    if len(payload) < raw_len:
        encoding |= ENC_ZSTD
    else:
        payload = bytes(data)
    if sealer.encrypted:
        encoding |= ENC_AESGCM
        stored_len = len(payload) + 12 + 16
        header = struct.pack(BLOB_HEADER, BLOB_MAGIC, encoding, stored_len, raw_len, chunk_id)
        payload = sealer.seal(payload, header)
    else:
        header = struct.pack(BLOB_HEADER, BLOB_MAGIC, encoding, len(payload), raw_len, chunk_id)
    return header, payload


def parse_blob_header(data: bytes | memoryview, where: str) -> BlobInfo:
    if len(data) < BLOB_HEADER_SIZE:
        raise CorruptChunk(f"{where}: truncated blob header", file=where)
    magic, encoding, stored_len, raw_len, chunk_id = struct.unpack_from(BLOB_HEADER, data)
    if magic != BLOB_MAGIC or encoding & ~KNOWN_ENCODINGS or bytes(data[5:8]) != b"\0\0\0":
        raise CorruptChunk(f"{where}: bad blob header", file=where, chunk_id=chunk_id.hex())
    return BlobInfo(encoding, stored_len, raw_len, chunk_id)


def _checked_header(blob: bytes | memoryview, sealer: Sealer, where: str, expected_id: bytes | None) -> BlobInfo:
    """The header checks every decoder makes first, in the order docs/format.md gives."""
    info = parse_blob_header(blob, where)
    cid = info.chunk_id.hex()
    if expected_id is not None and info.chunk_id != expected_id:
        raise CorruptChunk(f"{where}: blob holds chunk {cid}, expected {expected_id.hex()}",
                           file=where, chunk_id=expected_id.hex())
    if len(blob) != BLOB_HEADER_SIZE + info.stored_len:
        raise CorruptChunk(f"{where}: blob length mismatch for chunk {cid}", file=where, chunk_id=cid)
    if info.encoding & ENC_AESGCM:
        if not sealer.encrypted:
            raise CorruptChunk(f"{where}: encrypted blob in an unencrypted repository", file=where, chunk_id=cid)
        if info.stored_len < SEAL_OVERHEAD:
            raise CorruptChunk(f"{where}: chunk {cid} is too short to be sealed", file=where, chunk_id=cid)
    elif sealer.encrypted:
        raise CorruptChunk(f"{where}: unencrypted blob in an encrypted repository", file=where, chunk_id=cid)
    return info


def decode_blob(blob: bytes | memoryview, sealer: Sealer, where: str, expected_id: bytes | None = None) -> bytes:
    """Return the plaintext of a whole blob (header + payload), or raise `CorruptChunk`."""
    info = parse_blob_header(blob, where)
    # Sized from a header not yet authenticated: capped, so a forged length allocates
    # nothing large and fails in decode_blob_into's checks instead.
    out = bytearray(min(info.raw_len, MAX_CHUNK_SIZE))
    scratch = bytearray(min(info.stored_len, MAX_CHUNK_SIZE + SEAL_OVERHEAD)
                        if info.encoding == ENC_ZSTD | ENC_AESGCM else 0)
    n = decode_blob_into(memoryview(blob), sealer, where, expected_id, memoryview(out), memoryview(scratch))
    return bytes(memoryview(out)[:n])


def decode_blob_into(blob: memoryview, sealer: Sealer, where: str, expected_id: bytes | None,
                     out: memoryview, scratch: memoryview) -> int:
    """Decode a whole blob into `out` and return the plaintext's length; raise
    `CorruptChunk` on any damage, in the order docs/format.md gives.

    Nothing is allocated per blob: a sealed, compressed payload is decrypted into
    `scratch` (at least `stored_len` bytes) and decompressed from there into `out`
    (at least the chunk size); otherwise the payload goes straight into `out`. A caller
    reusing the two buffers pays no page faults and no copy for its plaintext.
    """
    info = _checked_header(blob, sealer, where, expected_id)
    cid = info.chunk_id.hex()
    raw_len = info.raw_len
    if raw_len > len(out):
        raise CorruptChunk(f"{where}: chunk {cid} claims {raw_len} bytes, more than a chunk",
                           file=where, chunk_id=cid)
    payload = blob[BLOB_HEADER_SIZE:]
    plain = out[:raw_len]
    if info.encoding & ENC_AESGCM:
        opened = len(payload) - SEAL_OVERHEAD
        if info.encoding & ENC_ZSTD:
            if opened > len(scratch):
                raise CorruptChunk(f"{where}: chunk {cid} is larger than any blob", file=where, chunk_id=cid)
            target = scratch[:opened]
        elif opened != raw_len:
            raise CorruptChunk(f"{where}: chunk {cid} has a stored length that does not fit its raw length",
                               file=where, chunk_id=cid)
        else:
            target = plain
        try:
            sealer.open_into(payload, blob[:BLOB_HEADER_SIZE], target)
        except InvalidTag:
            raise CorruptChunk(f"{where}: chunk {cid} fails authentication", file=where, chunk_id=cid) from None
        payload = target
    if info.encoding & ENC_ZSTD:
        try:
            reader = _decompressor().stream_reader(payload)
            got = reader.readinto(plain)
            # A frame that ends early, runs longer, or has bytes after it is damage.
            if got != raw_len or reader.read(1):
                raise CorruptChunk(f"{where}: chunk {cid} does not decompress to {raw_len} bytes",
                                   file=where, chunk_id=cid)
        except zstandard.ZstdError as exc:
            raise CorruptChunk(f"{where}: chunk {cid} does not decompress: {exc}", file=where, chunk_id=cid) from None
    elif not info.encoding & ENC_AESGCM:
        if len(payload) != raw_len:
            raise CorruptChunk(f"{where}: chunk {cid} has a stored length that does not fit its raw length",
                               file=where, chunk_id=cid)
        plain[:] = payload
    if sealer.chunk_id(plain) != info.chunk_id:
        raise CorruptChunk(f"{where}: chunk {cid} does not match its id", file=where, chunk_id=cid)
    return raw_len
