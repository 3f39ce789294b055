"""Restore reads packs in merged runs and writes each chunk to every place that holds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.engine import Repository
from cairn.engine.chunks import ZERO_ID
from cairn.engine.manifest import Manifest
from cairn.engine.packs import BlobLocation
from cairn.engine.restore_plan import PlannedBlob, merge_runs, plan_runs
from tests.engine.conftest import MakeRepo
from tests.engine.diskutil import MIB, sha256

PACK = b"p" * 16


def _blob(offset: int, length: int, chunk: int) -> PlannedBlob:
    return PlannedBlob(bytes([chunk]) * 32, offset, length, (chunk,))


def test_neighbouring_blobs_merge_into_one_run_up_to_the_limits() -> None:
    blobs = [_blob(32, 100, 0), _blob(132, 100, 1), _blob(300, 100, 2), _blob(2000, 100, 3)]
    runs = list(merge_runs(PACK, blobs, max_run=1000, max_gap=100))
    assert [(r.offset, r.length, len(r.blobs)) for r in runs] == [(32, 368, 3), (2000, 100, 1)]
    runs = list(merge_runs(PACK, blobs, max_run=250, max_gap=100))
    assert [(r.offset, r.length) for r in runs] == [(32, 200), (300, 100), (2000, 100)]


def test_a_blob_longer_than_a_run_is_read_alone() -> None:
    blobs = [_blob(32, 10, 0), _blob(42, 5000, 1), _blob(5042, 10, 2)]
    runs = list(merge_runs(PACK, blobs, max_run=1000, max_gap=0))
    assert [(r.offset, r.length) for r in runs] == [(32, 10), (42, 5000), (5042, 10)]


def test_every_non_zero_chunk_is_planned_once_per_window_with_all_its_places() -> None:
    a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
    order = [a, ZERO_ID, b, a, c, ZERO_ID, a, b]
    manifest = Manifest(chunk_size=4096, disk_size=4096 * len(order), ids=bytearray(b"".join(order)),
                        created_ns=0, repo_id=bytes(16))
    where = {a: BlobLocation(PACK, 32, 50), b: BlobLocation(PACK, 82, 50), c: BlobLocation(b"q" * 16, 32, 50)}
    located: list[bytes] = []

    def locate(cid: bytes) -> BlobLocation:
        located.append(cid)
        return where[cid]

    runs = list(plan_runs(manifest, locate, max_run=1 << 20, max_gap=0, window=4))
    places = sorted((blob.chunk_id, blob.chunks) for run in runs for blob in run.blobs)
    assert places == sorted([(a, (0, 3)), (b, (2,)), (c, (4,)), (a, (6,)), (b, (7,))])
    assert sorted(located) == sorted([a, b, a, b, c])  # once per window, zeros never
    # Within a window, one pack's neighbouring blobs are one read.
    assert [(r.pack_id, r.offset, r.length) for r in runs[:1]] == [(PACK, 32, 100)]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_repeated_chunks_and_an_unaligned_tail_restore_bit_exact(tmp_path: Path, make_repo: MakeRepo,
                                                                  encrypted: bool) -> None:
    # 1 MiB chunks take the O_DIRECT path; the last 1000 bytes go through the page cache.
    repo: Repository = make_repo(encrypted=encrypted, chunk_size=MIB, pack_size=4 * MIB)
    same = os.urandom(MIB)
    disk = tmp_path / "d.raw"
    with open(disk, "wb") as handle:
        handle.truncate(9 * MIB + 1000)
        for i in (0, 2, 3, 7):
            handle.seek(i * MIB)
            handle.write(same)
        handle.seek(5 * MIB)
        handle.write(os.urandom(MIB))
        handle.seek(9 * MIB)
        handle.write(os.urandom(1000))
    result = repo.backup(str(disk), "d/1")
    assert result.chunks_new == 3
    out = tmp_path / "out.raw"
    repo.restore("d/1", out)
    assert sha256(out) == sha256(disk)
    # Zero chunks stay holes: only the five data chunks and the tail are allocated.
    assert os.stat(out).st_blocks * 512 <= 5 * MIB + 4096 + 64 * 1024
