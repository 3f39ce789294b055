"""The repository `config` object: the parameters every other file depends on.

Layout: `CONFIG_FORMAT` (64 bytes: magic, version, flags, chunk size, pack size,
repository id, creation time) followed by a 32-byte BLAKE3 checksum (never keyed: the
config must be readable before any key is known). Written once by `init`.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

import blake3

from cairn.engine.errors import CorruptObject, UnsupportedFormat

CONFIG_KEY = "config"
CONFIG_MAGIC = b"CAIRNREP"
CONFIG_VERSION = 1
FLAG_ENCRYPTED = 0x0001
# magic, version, flags, chunk size, pack size, repository id, created (ns), reserved
CONFIG_FORMAT = "<8sHHII16sQ20x"
CONFIG_SIZE = struct.calcsize(CONFIG_FORMAT)

MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
# See docs/engine.md for the measurements behind both defaults.
DEFAULT_CHUNK_SIZE = 1024 * 1024
DEFAULT_PACK_SIZE = 32 * 1024 * 1024


@dataclass(frozen=True)
class RepositoryConfig:
    """Immutable parameters of one repository."""

    chunk_size: int = DEFAULT_CHUNK_SIZE
    pack_size: int = DEFAULT_PACK_SIZE
    encrypted: bool = False
    repo_id: bytes = b""
    created_ns: int = 0

    @classmethod
    def new(cls, chunk_size: int, pack_size: int, encrypted: bool) -> RepositoryConfig:
        return cls(chunk_size, pack_size, encrypted, os.urandom(16), time.time_ns())


def encode_config(cfg: RepositoryConfig) -> bytes:
    body = struct.pack(CONFIG_FORMAT, CONFIG_MAGIC, CONFIG_VERSION, FLAG_ENCRYPTED if cfg.encrypted else 0,
                       cfg.chunk_size, cfg.pack_size, cfg.repo_id, cfg.created_ns)
    return body + blake3.blake3(body).digest()


def decode_config(data: bytes) -> RepositoryConfig:
    if len(data) < 8 or data[:8] != CONFIG_MAGIC:
        raise CorruptObject("config: not a Cairn repository config (bad magic)", file=CONFIG_KEY)
    if len(data) >= 10:
        version = struct.unpack_from("<H", data, 8)[0]
        if version != CONFIG_VERSION:
            raise UnsupportedFormat(f"config: repository format version {version} is not supported "
                                    f"(this code reads {CONFIG_VERSION})")
    if len(data) != CONFIG_SIZE + 32 or blake3.blake3(data[:CONFIG_SIZE]).digest() != data[CONFIG_SIZE:]:
        raise CorruptObject("config: checksum mismatch", file=CONFIG_KEY)
    _magic, _version, flags, chunk_size, pack_size, repo_id, created = struct.unpack_from(CONFIG_FORMAT, data)
    if flags & ~FLAG_ENCRYPTED or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE or chunk_size % 4096:
        raise CorruptObject("config: unknown flags or chunk size out of range", file=CONFIG_KEY)
    return RepositoryConfig(chunk_size, pack_size, bool(flags & FLAG_ENCRYPTED), repo_id, created)
