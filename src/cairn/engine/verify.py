"""Verify: prove that every manifest restores, or name what is broken and who needs it.

Quick verify resolves every reference: each manifest parses and passes its checksum,
each chunk it names is in an index segment, each segment passes its checksum, and each
pack an entry points into exists and is long enough. Deep verify also reads every
indexed pack whole, walks all its blobs and decodes each one (authenticate, decompress,
re-hash), and checks that every index entry points at the blob it claims.

Each `Problem` names the damaged file, the chunk when there is one, and the manifests
(snapshots) that depend on it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cairn.engine.catalog import read_manifests, read_segments
from cairn.engine.chunks import decode_blob
from cairn.engine.crypto import Sealer, check_key_file
from cairn.engine.errors import CairnError
from cairn.engine.index import IndexEntry
from cairn.engine.packs import pack_key, walk_pack
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the repository."""

    kind: str  # corrupt-manifest, corrupt-index, corrupt-key, missing-chunk, missing-pack, corrupt-pack, corrupt-chunk
    file: str | None
    chunk_id: str | None
    manifests: tuple[str, ...]
    message: str


@dataclass
class VerifyReport:
    ok: bool
    deep: bool
    problems: list[Problem] = field(default_factory=list)
    manifests_checked: int = 0
    chunks_checked: int = 0
    packs_checked: int = 0
    seconds: float = 0.0


def run_verify(target: Target, sealer: Sealer, deep: bool, workers: int = 2) -> VerifyReport:
    started = time.monotonic()
    problems: list[Problem] = []
    mset = read_manifests(target, sealer)
    for d in mset.damaged:
        problems.append(Problem("corrupt-manifest", d.file, None, (d.file,), d.message))
    for key in target.list("keys"):
        try:
            check_key_file(target.get(key), key)
        except CairnError as exc:
            problems.append(Problem("corrupt-key", key, None, (), exc.message))
    sset = read_segments(target, sealer)
    for d in sset.damaged:
        problems.append(Problem("corrupt-index", d.file, None, (), d.message))
    users = mset.users()
    by_pack = sset.by_pack()
    indexed: dict[bytes, list[IndexEntry]] = {}
    for entries in by_pack.values():
        for e in entries:
            indexed.setdefault(e.chunk_id, []).append(e)

    def needs(cid: bytes) -> tuple[str, ...]:
        return tuple(sorted(users.get(cid, ())))

    for cid in sorted(users):
        if cid not in indexed:
            problems.append(Problem("missing-chunk", None, cid.hex(), needs(cid),
                                    f"chunk {cid.hex()} is named by a manifest but is in no index segment"))
    bad_copies: dict[bytes, list[Problem]] = {}

    def check_pack(pack_id: bytes) -> list[tuple[bytes | None, Problem]]:
        key = pack_key(pack_id)
        entries = by_pack[pack_id]
        found: list[tuple[bytes | None, Problem]] = []
        if not deep:
            try:
                size = target.size(key)
            except ObjectNotFound:
                size = -1
            for e in entries:
                if e.location.offset + e.location.length > size:
                    kind = "missing-pack" if size < 0 else "corrupt-pack"
                    found.append((e.chunk_id, Problem(kind, key, e.chunk_id.hex(), needs(e.chunk_id),
                                                      f"{key} does not hold chunk {e.chunk_id.hex()}")))
            return found
        try:
            data = target.get(key)
        except ObjectNotFound:
            return [(e.chunk_id, Problem("missing-pack", key, e.chunk_id.hex(), needs(e.chunk_id),
                                         f"{key} is missing")) for e in entries]
        good: set[tuple[int, bytes]] = set()
        try:
            for offset, info in walk_pack(data, key):
                where = f"{key}@{offset}"
                end = offset + 48 + info.stored_len
                try:
                    decode_blob(memoryview(data)[offset:end], sealer, where)
                    good.add((offset, info.chunk_id))
                except CairnError as exc:
                    found.append((info.chunk_id, Problem("corrupt-chunk", key, info.chunk_id.hex(),
                                                         needs(info.chunk_id), exc.message)))
        except CairnError as exc:
            found.append((None, Problem("corrupt-pack", key, None, (), exc.message)))
        for e in entries:
            loc = e.location
            if (loc.offset, e.chunk_id) in good and loc.offset + loc.length <= len(data):
                continue
            if any(p.chunk_id == e.chunk_id.hex() for _c, p in found):
                continue
            try:
                if loc.offset + loc.length > len(data):
                    raise CairnError(f"{key} is shorter than the index says")
                decode_blob(memoryview(data)[loc.offset:loc.offset + loc.length], sealer,
                            f"{key}@{loc.offset}", e.chunk_id)
            except CairnError as exc:
                found.append((e.chunk_id, Problem("corrupt-chunk", key, e.chunk_id.hex(), needs(e.chunk_id),
                                                  exc.message)))
        return found

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result in pool.map(check_pack, sorted(by_pack)):
            for bad_chunk, problem in result:
                if bad_chunk is None:
                    problems.append(problem)
                else:
                    bad_copies.setdefault(bad_chunk, []).append(problem)
    for plist in bad_copies.values():
        # A chunk stored twice is only lost if every copy is bad, but each bad copy is
        # still damage a restore may trip over, so all are reported.
        problems.extend(plist)
    return VerifyReport(ok=not problems, deep=deep, problems=problems, manifests_checked=len(mset.manifests),
                        chunks_checked=len(indexed), packs_checked=len(by_pack),
                        seconds=time.monotonic() - started)
