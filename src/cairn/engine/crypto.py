"""Key material and the key files under `keys/`: how a repository's secrets are kept.

An encrypted repository has one random 64-byte master secret, split in two keys:

- `data_key` (32 bytes): AES-256-GCM key for every chunk payload;
- `id_key` (32 bytes): BLAKE3 key for chunk ids, so equal plaintexts get equal ids
  inside the repository but ids reveal nothing to whoever lacks the key; a MAC key for
  index segments and manifests is derived from it.

The master secret is stored only wrapped: each `keys/<id>` file holds it encrypted with
AES-256-GCM under a key derived by scrypt from a passphrase, from a key file's bytes,
or from a key manager's secret (`SecretPayload`: an encrypted workload's Barbican secret).
The key-file layout (all little-endian) is `KEYFILE_HEADER` followed by the 80-byte
wrapped secret and a 32-byte BLAKE3 checksum of everything before it; see docs/format.md.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cairn.engine.errors import CorruptObject, UnsupportedFormat, WrongKey

KEYFILE_MAGIC = b"CAIRNKEY"
KEYFILE_VERSION = 1
KDF_SCRYPT = 1
# magic, version, kdf, log2(N), r, p, salt, nonce
KEYFILE_HEADER = "<8sHHB3xII32s12s"
KEYFILE_HEADER_SIZE = struct.calcsize(KEYFILE_HEADER)
MASTER_SIZE = 64
WRAPPED_SIZE = MASTER_SIZE + 16
KEYFILE_SIZE = KEYFILE_HEADER_SIZE + WRAPPED_SIZE + 32
NONCE_SIZE = 12
TAG_SIZE = 16

# scrypt N=2^15, r=8, p=1: 32 MiB and ~0.1 s per open on this class of machine, the
# parameters RFC 7914 suggests for interactive use.
DEFAULT_SCRYPT_LOG2_N = 15
DEFAULT_SCRYPT_R = 8
DEFAULT_SCRYPT_P = 1
# What a reader accepts from a key file, whose header anyone who can write the target can
# forge (its checksum is unkeyed): scrypt needs 128 * r * (N + p + 2) bytes and time in
# proportion to N * r * p, so without limits one forged file would exhaust a host's memory
# or hold `open` for hours. 1 GiB is 32 times what Cairn's own parameters need.
MIN_SCRYPT_LOG2_N, MAX_SCRYPT_LOG2_N = 10, 24
MAX_SCRYPT_R = 64
MAX_SCRYPT_P = 16
MAX_SCRYPT_MEMORY = 1 << 30

# cryptography added the *_into methods in a recent release; older ones copy once more.
_DECRYPT_INTO = hasattr(AESGCM, "decrypt_into")


@dataclass(frozen=True)
class Passphrase:
    """A passphrase that unwraps the repository key."""

    secret: str

    def material(self) -> bytes:
        return self.secret.encode("utf-8")


@dataclass(frozen=True)
class KeyFile:
    """A file whose whole content is the secret that unwraps the repository key."""

    path: str

    def material(self) -> bytes:
        try:
            data = Path(self.path).read_bytes()
        except OSError as exc:
            raise WrongKey(f"cannot read key file {self.path}: {exc.strerror}") from exc
        if len(data) < 16:
            raise WrongKey(f"key file {self.path} holds fewer than 16 bytes")
        return data


@dataclass(frozen=True)
class SecretPayload:
    """A secret's bytes held by a key manager (a Barbican secret's payload): the material
    that unwraps the key of an encrypted workload's repository. It is never written
    anywhere; scrypt stretches it as it does a passphrase, since a key manager may hold a
    short passphrase as readily as a random key."""

    payload: bytes = field(repr=False)

    def material(self) -> bytes:
        if not self.payload:
            raise WrongKey("the key manager's secret has an empty payload")
        return self.payload


KeySource = Passphrase | KeyFile | SecretPayload


@dataclass(frozen=True)
class RepoKeys:
    """The unwrapped secrets of an encrypted repository."""

    data_key: bytes
    id_key: bytes

    @classmethod
    def from_master(cls, master: bytes) -> RepoKeys:
        return cls(data_key=master[:32], id_key=master[32:64])

    def mac_key(self) -> bytes:
        return blake3.blake3(self.id_key, derive_key_context="cairn 2026 metadata mac").digest()


class Sealer:
    """Chunk ids, metadata checksums and payload encryption for one repository.

    With `keys is None` (unencrypted repository) ids and checksums are plain BLAKE3-256
    and nothing is encrypted.
    """

    def __init__(self, keys: RepoKeys | None) -> None:
        self.keys = keys
        self._aead = AESGCM(keys.data_key) if keys else None
        self._mac_key = keys.mac_key() if keys else None

    @property
    def encrypted(self) -> bool:
        return self.keys is not None

    def chunk_id(self, data: bytes | bytearray | memoryview) -> bytes:
        if self.keys is None:
            return blake3.blake3(data).digest()
        return blake3.blake3(data, key=self.keys.id_key).digest()

    def checksum(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._mac_key is None:
            return blake3.blake3(data).digest()
        return blake3.blake3(data, key=self._mac_key).digest()

    def seal(self, payload: bytes | bytearray | memoryview, aad: bytes) -> bytes:
        assert self._aead is not None
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, payload, aad)

    def open(self, sealed: bytes | memoryview, aad: bytes) -> bytes:
        """Decrypt `sealed` (nonce || ciphertext || tag); raises `InvalidTag` when forged."""
        assert self._aead is not None
        view = memoryview(sealed)
        return self._aead.decrypt(bytes(view[:NONCE_SIZE]), view[NONCE_SIZE:], aad)

    def open_into(self, sealed: memoryview, aad: bytes | memoryview, out: memoryview) -> None:
        """Decrypt `sealed` into `out` (exactly `len(sealed) - 28` bytes); `InvalidTag` when
        forged, and then `out` holds no trustworthy byte."""
        assert self._aead is not None
        if _DECRYPT_INTO:
            self._aead.decrypt_into(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad, out)
        else:
            out[:] = self._aead.decrypt(bytes(sealed[:NONCE_SIZE]), sealed[NONCE_SIZE:], aad)


def _scrypt_memory(log2_n: int, r: int, p: int) -> int:
    """Bytes OpenSSL's scrypt allocates for these parameters (its V and B arrays)."""
    return 128 * r * ((1 << log2_n) + p + 2)


def _derive(material: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(material, salt=salt, n=n, r=r, p=p, maxmem=_scrypt_memory(log2_n, r, p) + (1 << 20),
                          dklen=32)


def new_master() -> bytes:
    return os.urandom(MASTER_SIZE)


def wrap_master(master: bytes, source: KeySource, *, log2_n: int = DEFAULT_SCRYPT_LOG2_N,
                r: int = DEFAULT_SCRYPT_R, p: int = DEFAULT_SCRYPT_P) -> bytes:
    """Return the bytes of a key file holding `master` wrapped under `source`."""
    salt = os.urandom(32)
    nonce = os.urandom(NONCE_SIZE)
    header = struct.pack(KEYFILE_HEADER, KEYFILE_MAGIC, KEYFILE_VERSION, KDF_SCRYPT, log2_n, r, p, salt, nonce)
    wrapping = _derive(source.material(), salt, log2_n, r, p)
    wrapped = AESGCM(wrapping).encrypt(nonce, master, header)
    body = header + wrapped
    return body + blake3.blake3(body).digest()


def check_key_file(blob: bytes, name: str) -> None:
    """Check a key file's framing and checksum without any secret; raise if damaged."""
    if len(blob) < 8 or blob[:8] != KEYFILE_MAGIC:
        raise CorruptObject(f"{name}: not a Cairn key file (bad magic)", file=name)
    if len(blob) < KEYFILE_HEADER_SIZE:
        raise CorruptObject(f"{name}: truncated key file", file=name)
    version = struct.unpack_from("<H", blob, 8)[0]
    if version != KEYFILE_VERSION:
        raise UnsupportedFormat(f"{name}: key file version {version} is not supported "
                                f"(this code reads {KEYFILE_VERSION})")
    if len(blob) != KEYFILE_SIZE or blake3.blake3(blob[:-32]).digest() != blob[-32:]:
        raise CorruptObject(f"{name}: key file checksum mismatch", file=name)


def unwrap_master(blob: bytes, source: KeySource, name: str) -> bytes:
    """Return the master secret in key file `blob`; `WrongKey` if `source` does not fit."""
    check_key_file(blob, name)
    _magic, _version, kdf, log2_n, r, p, salt, nonce = struct.unpack_from(KEYFILE_HEADER, blob)
    if kdf != KDF_SCRYPT:
        raise UnsupportedFormat(f"{name}: unknown key derivation {kdf}")
    if (not MIN_SCRYPT_LOG2_N <= log2_n <= MAX_SCRYPT_LOG2_N or not 1 <= r <= MAX_SCRYPT_R
            or not 1 <= p <= MAX_SCRYPT_P or _scrypt_memory(log2_n, r, p) > MAX_SCRYPT_MEMORY):
        raise UnsupportedFormat(f"{name}: scrypt parameters N=2^{log2_n}, r={r}, p={p} are outside what this "
                                f"code accepts (r <= {MAX_SCRYPT_R}, p <= {MAX_SCRYPT_P}, "
                                f"at most {MAX_SCRYPT_MEMORY >> 20} MiB)")
    wrapping = _derive(source.material(), salt, log2_n, r, p)
    try:
        return AESGCM(wrapping).decrypt(nonce, blob[KEYFILE_HEADER_SIZE:KEYFILE_HEADER_SIZE + WRAPPED_SIZE],
                                        blob[:KEYFILE_HEADER_SIZE])
    except InvalidTag:
        raise WrongKey("wrong passphrase or key file: it does not unlock this repository") from None
