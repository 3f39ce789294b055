"""Every decoder of a repository file, fed damaged and hostile bytes.

The property for each file type of docs/format.md: whatever the bytes, decoding either
gives the value that was encoded or raises the engine's own error (`IntegrityError` for
damage, `UnsupportedFormat` for a version or parameter this code does not read,
`WrongKey` for a key that does not fit); never an `IndexError`, `struct.error`,
`UnicodeDecodeError`, zstd or cryptography error leaking out, never a hang. Valid values
round-trip. Three kinds of input: arbitrary bytes; a valid encoding with bytes flipped,
cut off or appended (what a bad disk or a torn copy does); and files forged with a
correct unkeyed checksum over arbitrary fields (what someone who can write the target,
but holds no key, can do).

Example counts are kept small so the file runs in seconds; the regressions hypothesis
found are pinned with `@example`.
"""

from __future__ import annotations

import json
import struct
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import blake3
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cairn.engine import config, crypto, index, locks, manifest
from cairn.engine.chunks import (
    BLOB_HEADER,
    BLOB_MAGIC,
    ENC_AESGCM,
    ENC_ZSTD,
    ZERO_ID,
    decode_blob,
    decode_blob_into,
    encode_chunk,
)
from cairn.engine.config import CONFIG_FORMAT, CONFIG_MAGIC, RepositoryConfig, decode_config, encode_config
from cairn.engine.crypto import KEYFILE_HEADER, KEYFILE_MAGIC, Passphrase, RepoKeys, Sealer
from cairn.engine.errors import CorruptObject, IntegrityError, UnsupportedFormat, WrongKey
from cairn.engine.index import IndexEntry, decode_segment, encode_segment, segment_key
from cairn.engine.manifest import MANIFEST_HEADER, MANIFEST_MAGIC, Manifest, decode_manifest, encode_manifest
from cairn.engine.packs import PACK_HEADER, PACK_MAGIC, BlobLocation, check_pack_header, pack_key, walk_pack
from cairn.targets import FilesystemTarget

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# What a decoder may raise: the engine's own errors, nothing else.
ENGINE_ERRORS = (IntegrityError, UnsupportedFormat)

PLAIN = Sealer(None)
SEALED = Sealer(RepoKeys.from_master(bytes(range(64))))
sealers = st.sampled_from([PLAIN, SEALED])


@st.composite
def damaged(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` with some bytes flipped, cut off at the end, and/or bytes appended."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(0, 3))):
        if data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    if draw(st.booleans()):
        data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def decodes_or_refuses(decode: Callable[[bytes], Any], data: bytes, valid: bytes | None = None,
                       value: Any = None, allowed: tuple[type[BaseException], ...] = ENGINE_ERRORS) -> None:
    """The property: `decode(data)` is `value` when `data` is the valid encoding, and
    otherwise returns or raises one of `allowed`."""
    try:
        got = decode(data)
    except allowed:
        assert data != valid, "the valid encoding was refused"
        return
    if data == valid:
        assert got == value


# --- config -----------------------------------------------------------------------------

configs = st.builds(RepositoryConfig,
                    chunk_size=st.integers(config.MIN_CHUNK_SIZE // 4096, config.MAX_CHUNK_SIZE // 4096)
                    .map(lambda n: n * 4096),
                    pack_size=st.integers(0, 2**32 - 1), encrypted=st.booleans(),
                    repo_id=st.binary(min_size=16, max_size=16), created_ns=st.integers(0, 2**64 - 1))


@FUZZ
@given(cfg=configs)
def test_config_round_trips(cfg: RepositoryConfig) -> None:
    assert decode_config(encode_config(cfg)) == cfg


@FUZZ
@given(data=st.data(), cfg=configs)
def test_damaged_config_decodes_or_raises_corruption(data: st.DataObject, cfg: RepositoryConfig) -> None:
    valid = encode_config(cfg)
    decodes_or_refuses(decode_config, data.draw(damaged(valid)), valid, cfg)


@FUZZ
@given(blob=st.binary(max_size=200))
def test_arbitrary_bytes_are_no_config(blob: bytes) -> None:
    decodes_or_refuses(decode_config, blob)


@FUZZ
@example(flags=0, chunk_size=65537)  # a chunk size not a multiple of 4096 was accepted
@given(flags=st.integers(0, 0xFFFF), chunk_size=st.integers(0, 2**32 - 1))
def test_forged_config_is_refused_unless_its_fields_are_valid(flags: int, chunk_size: int) -> None:
    body = struct.pack(CONFIG_FORMAT, CONFIG_MAGIC, 1, flags, chunk_size, 1 << 20, bytes(16), 0)
    try:
        cfg = decode_config(body + blake3.blake3(body).digest())
    except CorruptObject:
        return
    assert flags in (0, 1)
    assert config.MIN_CHUNK_SIZE <= cfg.chunk_size <= config.MAX_CHUNK_SIZE and cfg.chunk_size % 4096 == 0


# --- key files --------------------------------------------------------------------------

# The cheapest scrypt this code accepts, so wrapping and unwrapping stay fast here.
CHEAP = {"log2_n": 10, "r": 1, "p": 1}
KEY = Passphrase("fuzz")
MASTER = bytes(range(64, 128))
KEY_FILE = crypto.wrap_master(MASTER, KEY, **CHEAP)


def test_key_file_round_trips() -> None:
    assert crypto.unwrap_master(KEY_FILE, KEY, "keys/k.key") == MASTER


@FUZZ
@given(data=st.data())
def test_damaged_key_file_is_corruption_never_a_crash(data: st.DataObject) -> None:
    decodes_or_refuses(lambda b: crypto.unwrap_master(b, KEY, "keys/k.key"), data.draw(damaged(KEY_FILE)),
                       KEY_FILE, MASTER, allowed=ENGINE_ERRORS + (WrongKey,))


@FUZZ
@given(blob=st.binary(max_size=256))
def test_arbitrary_bytes_are_no_key_file(blob: bytes) -> None:
    decodes_or_refuses(lambda b: crypto.check_key_file(b, "keys/k.key"), blob)


def _forged_key_file(kdf: int, log2_n: int, r: int, p: int, wrapped: bytes) -> bytes:
    body = struct.pack(KEYFILE_HEADER, KEYFILE_MAGIC, 1, kdf, log2_n, r, p, bytes(32), bytes(12)) + wrapped
    return body + blake3.blake3(body).digest()


# Parameters are drawn either out of the accepted range or cheap, so no example runs a
# long scrypt; the @examples are the expensive forgeries that must be refused up front.
@FEW
@example(kdf=1, log2_n=20, r=8, p=1, wrapped=bytes(80))  # hashlib's ValueError (maxmem) leaked
@example(kdf=1, log2_n=24, r=8, p=1, wrapped=bytes(80))  # 16 GiB asked for
@example(kdf=1, log2_n=10, r=0, p=1, wrapped=bytes(80))  # r = 0: hashlib's ValueError leaked
@example(kdf=1, log2_n=10, r=1, p=2**32 - 1, wrapped=bytes(80))  # hours of work
@given(kdf=st.integers(0, 0xFFFF),
       log2_n=st.one_of(st.integers(0, 9), st.integers(10, 11), st.integers(25, 255)),
       r=st.one_of(st.integers(0, 2), st.integers(65, 2**32 - 1)),
       p=st.one_of(st.integers(0, 2), st.integers(17, 2**32 - 1)),
       wrapped=st.binary(min_size=80, max_size=80))
def test_forged_key_file_parameters_are_refused_or_tried(kdf: int, log2_n: int, r: int, p: int,
                                                         wrapped: bytes) -> None:
    forged = _forged_key_file(kdf, log2_n, r, p, wrapped)
    try:
        crypto.unwrap_master(forged, KEY, "keys/k.key")
    except (UnsupportedFormat, WrongKey):
        return
    raise AssertionError("a forged key file unwrapped")


# --- blobs ------------------------------------------------------------------------------

chunks = st.one_of(st.binary(min_size=1, max_size=2048),
                   st.integers(1, 8192).map(lambda n: b"cairn" * n))  # compressible


@FUZZ
@given(chunk=chunks, sealer=sealers)
def test_blob_round_trips(chunk: bytes, sealer: Sealer) -> None:
    cid = sealer.chunk_id(chunk)
    header, payload = encode_chunk(chunk, cid, sealer)
    assert decode_blob(header + payload, sealer, "b", cid) == chunk


def _decode_into(blob: bytes, sealer: Sealer) -> bytes:
    # The restore path: reused buffers sized for a 64 KiB chunk.
    out = memoryview(bytearray(65536))
    n = decode_blob_into(memoryview(blob), sealer, "b", None, out, memoryview(bytearray(65536 + 28)))
    return bytes(out[:n])


@FUZZ
@given(data=st.data(), chunk=chunks, sealer=sealers, into=st.booleans())
def test_damaged_blob_decodes_or_raises_corruption(data: st.DataObject, chunk: bytes, sealer: Sealer,
                                                   into: bool) -> None:
    header, payload = encode_chunk(chunk, sealer.chunk_id(chunk), sealer)
    valid = header + payload
    decode = (lambda b: _decode_into(b, sealer)) if into else (lambda b: decode_blob(b, sealer, "b"))
    decodes_or_refuses(decode, data.draw(damaged(valid)), valid, chunk)


def _zstd_frames(data: bytes) -> list[bytes]:
    frame = zstandard.ZstdCompressor(write_content_size=True).compress(data)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    return [frame, unsized, frame[:-1], frame + frame, frame + b"\0"]


@FUZZ
@given(encoding=st.integers(0, 255), pad=st.binary(min_size=3, max_size=3), raw_len=st.integers(0, 2**32 - 1),
       plain=st.binary(max_size=512), which=st.integers(0, 5), sealer=sealers, into=st.booleans(),
       stored_len_delta=st.sampled_from([0, 0, 0, -1, 1, 2**31]))
def test_forged_blob_header_is_corruption(encoding: int, pad: bytes, raw_len: int, plain: bytes, which: int,
                                          sealer: Sealer, into: bool, stored_len_delta: int) -> None:
    # Arbitrary header fields in front of a raw or zstd payload (whole, cut, doubled,
    # trailed): no combination may decode to anything but the chunk its id names.
    payload = ([plain] + _zstd_frames(plain))[which]
    if sealer.encrypted and encoding & ENC_AESGCM:
        payload = bytes(12) + payload + bytes(16)  # a seal that cannot authenticate
    stored_len = max(0, min(len(payload) + stored_len_delta, 2**32 - 1))
    cid = sealer.chunk_id(plain)
    blob = struct.pack("<4sB", BLOB_MAGIC, encoding) + pad + struct.pack("<II32s", stored_len, raw_len, cid) + payload
    try:
        got = _decode_into(blob, sealer) if into else decode_blob(blob, sealer, "b")
    except IntegrityError:
        return
    assert got == plain and not sealer.encrypted and encoding & ~ENC_ZSTD == 0


@FUZZ
@given(blob=st.binary(max_size=200), sealer=sealers)
def test_arbitrary_bytes_are_no_blob(blob: bytes, sealer: Sealer) -> None:
    decodes_or_refuses(lambda b: decode_blob(b, sealer, "b"), blob)
    decodes_or_refuses(lambda b: decode_blob(BLOB_MAGIC + b, sealer, "b"), blob)


# --- packs ------------------------------------------------------------------------------

PACK_ID = bytes(range(16))
PACK_KEY = pack_key(PACK_ID)


def _pack(chunk_list: list[bytes], sealer: Sealer) -> bytes:
    parts = [struct.pack(PACK_HEADER, PACK_MAGIC, 1, 0, bytes(4), PACK_ID)]
    for c in chunk_list:
        parts.extend(encode_chunk(c, sealer.chunk_id(c), sealer))
    return b"".join(parts)


def _walk(data: bytes) -> list[tuple[int, Any]]:
    return list(walk_pack(data, PACK_KEY))


@FUZZ
@given(chunk_list=st.lists(chunks, max_size=4), sealer=sealers)
def test_pack_walks_to_its_blobs(chunk_list: list[bytes], sealer: Sealer) -> None:
    data = _pack(chunk_list, sealer)
    walked = _walk(data)
    assert [info.chunk_id for _, info in walked] == [sealer.chunk_id(c) for c in chunk_list]
    for offset, info in walked:
        blob = data[offset:offset + 48 + info.stored_len]
        assert decode_blob(blob, sealer, "b", info.chunk_id) in chunk_list


@FUZZ
@given(data=st.data(), chunk_list=st.lists(chunks, max_size=3), sealer=sealers)
def test_damaged_pack_walks_or_raises_corruption(data: st.DataObject, chunk_list: list[bytes],
                                                 sealer: Sealer) -> None:
    valid = _pack(chunk_list, sealer)
    damaged_pack = data.draw(damaged(valid))
    decodes_or_refuses(_walk, damaged_pack, valid, _walk(valid))
    decodes_or_refuses(lambda b: check_pack_header(b, PACK_KEY), damaged_pack, valid, PACK_ID)


@FUZZ
@given(blob=st.binary(max_size=200))
def test_arbitrary_bytes_are_no_pack(blob: bytes) -> None:
    decodes_or_refuses(_walk, blob)
    decodes_or_refuses(_walk, PACK_MAGIC + blob)


# --- index segments ---------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
entries = st.lists(st.builds(IndexEntry, chunk_id=st.binary(min_size=32, max_size=32),
                             location=st.builds(BlobLocation, st.binary(min_size=16, max_size=16), u32, u32),
                             raw_len=u32), max_size=5)


def _segment(entry_list: list[IndexEntry], sealer: Sealer) -> tuple[str, bytes]:
    segment_id, data = encode_segment(entry_list, sealer)
    return segment_key(segment_id), data


@FUZZ
@given(entry_list=entries, sealer=sealers)
def test_index_segment_round_trips(entry_list: list[IndexEntry], sealer: Sealer) -> None:
    key, data = _segment(entry_list, sealer)
    assert decode_segment(data, sealer, key) == entry_list


@FUZZ
@given(data=st.data(), entry_list=entries, sealer=sealers)
def test_damaged_index_segment_decodes_or_raises_corruption(data: st.DataObject, entry_list: list[IndexEntry],
                                                            sealer: Sealer) -> None:
    key, valid = _segment(entry_list, sealer)
    decodes_or_refuses(lambda b: decode_segment(b, sealer, key), data.draw(damaged(valid)), valid, entry_list)


@FUZZ
@given(version=st.integers(0, 0xFFFF), flags=st.integers(0, 0xFFFF), count=u32,
       body=st.binary(max_size=300), segment_id=st.binary(min_size=16, max_size=16))
def test_forged_index_segment_is_refused_or_consistent(version: int, flags: int, count: int, body: bytes,
                                                       segment_id: bytes) -> None:
    # An unencrypted segment's checksum is plain BLAKE3: anyone can forge one.
    data = struct.pack(index.INDEX_HEADER, index.INDEX_MAGIC, version, flags, count, segment_id) + body
    data += PLAIN.checksum(data)
    try:
        got = decode_segment(data, PLAIN, segment_key(segment_id))
    except ENGINE_ERRORS:
        return
    assert version == 1 and flags == 0 and len(got) == count


@FUZZ
@given(blob=st.binary(max_size=200), sealer=sealers)
def test_arbitrary_bytes_are_no_index_segment(blob: bytes, sealer: Sealer) -> None:
    decodes_or_refuses(lambda b: decode_segment(b, sealer, "index/x.idx"), blob)
    decodes_or_refuses(lambda b: decode_segment(index.INDEX_MAGIC + b, sealer, "index/x.idx"), blob)


# --- manifests --------------------------------------------------------------------------

@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    chunk_size = draw(st.sampled_from([65536, 1 << 20, 4 << 20]))
    count = draw(st.integers(0, 6))
    disk_size = 0 if count == 0 else (count - 1) * chunk_size + draw(st.integers(1, chunk_size))
    ids = bytearray(b"".join(draw(st.sampled_from([ZERO_ID, bytes(range(32))]) | st.binary(min_size=32,
                                                                                            max_size=32))
                             for _ in range(count)))
    return Manifest(chunk_size, disk_size, ids, draw(st.integers(0, 2**64 - 1)), draw(st.binary(min_size=16,
                                                                                                 max_size=16)))


@FUZZ
@given(m=manifests(), sealer=sealers)
def test_manifest_round_trips(m: Manifest, sealer: Sealer) -> None:
    assert decode_manifest(encode_manifest(m, sealer), sealer, "manifests/a.manifest") == m


@FUZZ
@given(data=st.data(), m=manifests(), sealer=sealers)
def test_damaged_manifest_decodes_or_raises_corruption(data: st.DataObject, m: Manifest, sealer: Sealer) -> None:
    valid = encode_manifest(m, sealer)
    decodes_or_refuses(lambda b: decode_manifest(b, sealer, "manifests/a.manifest"), data.draw(damaged(valid)),
                       valid, m)


@FUZZ
@given(flags=st.integers(0, 0xFFFF), chunk_size=u32, disk_size=st.integers(0, 2**64 - 1),
       count=st.integers(0, 2**64 - 1), ids=st.binary(max_size=200), tail=st.binary(max_size=8))
def test_forged_manifest_is_refused_or_consistent(flags: int, chunk_size: int, disk_size: int, count: int,
                                                  ids: bytes, tail: bytes) -> None:
    header = struct.pack(MANIFEST_HEADER, MANIFEST_MAGIC, 1, flags, chunk_size, disk_size, count, 0, bytes(16))
    data = header + ids
    data += PLAIN.checksum(data)
    try:
        got = decode_manifest(data, PLAIN, "manifests/a.manifest")
    except ENGINE_ERRORS:
        return
    assert got.chunk_count == manifest.chunk_count_for(got.disk_size, got.chunk_size) == count


@FUZZ
@given(blob=st.binary(max_size=200), sealer=sealers)
def test_arbitrary_bytes_are_no_manifest(blob: bytes, sealer: Sealer) -> None:
    decodes_or_refuses(lambda b: decode_manifest(b, sealer, "manifests/a.manifest"), blob)
    decodes_or_refuses(lambda b: decode_manifest(MANIFEST_MAGIC + b, sealer, "manifests/a.manifest"), blob)


# --- locks, beat files and the GC plan ---------------------------------------------------

@contextmanager
def scratch_target() -> Iterator[FilesystemTarget]:
    # A directory per example: hypothesis runs many examples inside one test call.
    with tempfile.TemporaryDirectory() as root:
        yield FilesystemTarget(Path(root), fsync=False)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3),
                           max_leaves=8)
# Numbers JSON can carry that no float or int conversion takes kindly.
awkward_numbers = st.sampled_from([b"1" + b"0" * 400, b"Infinity", b"-Infinity", b"NaN", b"1e999", b"-0"])


def _json_with(fields: dict[str, Any], raw: dict[str, bytes]) -> bytes:
    # json.dumps for the drawn fields, then fields whose raw JSON text is given.
    text = json.dumps(fields).encode()
    for name, value in raw.items():
        text = text[:-1] + (b", " if len(text) > 2 else b"") + json.dumps(name).encode() + b": " + value + b"}"
    return text


LOCK_FIELDS = ("kind", "id", "host", "pid", "created", "heartbeat")
lock_documents = st.one_of(
    st.binary(max_size=120),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(_json_with, st.fixed_dictionaries({}, optional={k: json_values for k in LOCK_FIELDS}),
              st.dictionaries(st.sampled_from(LOCK_FIELDS), awkward_numbers, max_size=2)),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
)


def _assert_lock_is_usable(rec: locks.LockRecord) -> None:
    # Whatever was read must work where locks are used: staleness, messages.
    assert isinstance(rec.pid, int) and isinstance(rec.kind, str)
    rec.is_stale(locks.LockTiming())


@FUZZ
@example(lock=b'{"kind": "backup", "id": "a", "host": "h", "pid": Infinity, "created": 1, "heartbeat": 1}',
         beat=b"{}")  # int(inf): OverflowError leaked
@example(lock=b'{"kind": "backup", "id": "a", "host": "h", "pid": 1, "created": 1' + b"0" * 400 +
         b', "heartbeat": 1}', beat=b"{}")  # float(10**400): OverflowError leaked
@example(lock=b"[" * 3000 + b"]" * 3000, beat=b"{}")  # RecursionError leaked
@example(lock=b'{"kind": "backup", "id": "a", "host": "h", "pid": 1, "created": 1, "heartbeat": NaN}',
         beat=b"{}")  # a NaN heartbeat made a lock that never goes stale
@given(lock=lock_documents, beat=lock_documents)
def test_damaged_lock_or_beat_reads_as_a_lock_never_a_crash(lock: bytes, beat: bytes) -> None:
    with scratch_target() as target:
        target.put("locks/backup-0123456789abcdef.lock", lock)
        target.put("locks/backup-0123456789abcdef.beat", beat)
        rec = locks.read_lock(target, "locks/backup-0123456789abcdef.lock")
        assert rec is not None
        _assert_lock_is_usable(rec)
        assert rec.heartbeat == rec.heartbeat and abs(rec.heartbeat) != float("inf")


@FEW
@example(beat=b'{"id": "0123456789abcdef", "heartbeat": 1' + b"0" * 400 + b"}")  # OverflowError leaked
@given(beat=lock_documents)
def test_damaged_beat_file_is_no_beat(beat: bytes) -> None:
    with scratch_target() as target:
        lock = locks.LockRecord("backup", "0123456789abcdef", "elsewhere", 1, 100.0, 100.0)
        target.put("locks/backup-0123456789abcdef.lock", locks._encode(lock))
        target.put("locks/backup-0123456789abcdef.beat", beat)
        rec = locks.read_lock(target, "locks/backup-0123456789abcdef.lock")
        assert rec is not None and rec.kind == "backup"
        assert rec.heartbeat >= 100.0 and abs(rec.heartbeat) != float("inf")


@FEW
@given(heartbeat=st.floats(0, 2e9), beat=st.floats(0, 2e9), pid=st.integers(0, 2**31))
def test_lock_and_beat_round_trip(heartbeat: float, beat: float, pid: int) -> None:
    with scratch_target() as target:
        lock = locks.LockRecord("restore", "fedcba9876543210", "elsewhere", pid, heartbeat, heartbeat)
        target.put("locks/restore-fedcba9876543210.lock", locks._encode(lock))
        assert locks.read_lock(target, "locks/restore-fedcba9876543210.lock") == lock
        target.put("locks/restore-fedcba9876543210.beat", locks._encode_beat(lock.id, beat))
        got = locks.read_lock(target, "locks/restore-fedcba9876543210.lock")
        assert got is not None and got.heartbeat == max(heartbeat, beat)


PLAN_FIELDS = ("id", "created", "doomed_packs", "waits_for")
plan_documents = st.one_of(
    st.binary(max_size=120),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(_json_with, st.fixed_dictionaries({k: json_values for k in PLAN_FIELDS}),
              st.dictionaries(st.sampled_from(["created"]), awkward_numbers, max_size=1)),
    st.builds(lambda doomed: json.dumps({"id": "a", "created": 1, "doomed_packs": doomed,
                                         "waits_for": []}).encode(),
              st.lists(st.text(alphabet="0123456789abcdefABCDEF g", min_size=30, max_size=33), max_size=3)),
)


@FUZZ
@example(plan=b'{"id": "a", "created": 1, "doomed_packs": ["zz"], "waits_for": []}')  # fromhex's ValueError in backups
@example(plan=b'{"id": "a", "created": 1, "doomed_packs": "ab", "waits_for": []}')  # a string read as a list
@example(plan=b'{"id": "a", "created": 1' + b"0" * 400 + b', "doomed_packs": [], "waits_for": []}')
@example(plan=b"[" * 3000 + b"]" * 3000)  # RecursionError leaked
@given(plan=plan_documents)
def test_damaged_gc_plan_is_corruption_and_a_read_plan_is_usable(plan: bytes) -> None:
    with scratch_target() as target:
        target.put(locks.PLAN_KEY, plan)
        try:
            got = locks.read_plan(target)
        except CorruptObject:
            return
        assert got is not None
        assert all(len(p) == 16 for p in got.doomed_ids())


@FEW
@given(doomed=st.lists(st.binary(min_size=16, max_size=16).map(bytes.hex), max_size=4),
       waits_for=st.lists(st.text(max_size=20), max_size=3), created=st.floats(0, 2e9))
def test_gc_plan_round_trips(doomed: list[str], waits_for: list[str], created: float) -> None:
    with scratch_target() as target:
        plan = locks.GcPlan("0123456789abcdef", created, doomed, waits_for)
        locks.write_plan(target, plan)
        assert locks.read_plan(target) == plan


def test_engine_errors_are_the_only_errors_allowed() -> None:
    # The allowed set must not quietly include what the property forbids.
    for leaked in (IndexError, struct.error, KeyError, UnicodeDecodeError, ValueError, OverflowError,
                   zstandard.ZstdError):
        assert not issubclass(leaked, ENGINE_ERRORS + (WrongKey,))
    assert ENC_ZSTD | ENC_AESGCM == 3 and struct.calcsize(BLOB_HEADER) == 48
