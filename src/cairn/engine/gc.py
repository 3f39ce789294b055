"""Garbage collection: plan, publish, wait, then execute (restic's prune, made concurrent).

1. Mark: read every manifest (GC refuses to run if one is damaged: liveness unknown).
2. Plan: from the index, each pack's live bytes. Doomed packs: no live chunk (delete),
   mostly dead (repack: live fraction below `repack_below`), or named by no index
   segment (leftovers of crashed or cancelled runs).
3. Publish the plan (`locks/gc-plan.json`) and note the locks present *after* publishing.
   From now on new backups treat chunks in doomed packs as absent.
4. Wait until every noted lock is released or stale (`gc_wait_seconds` at most; if they
   are still there the plan stays pending for the next run).
5. Execute: mark again (backups that were running may have committed manifests), copy
   every chunk that is live and has no copy outside the doomed packs into new packs, write
   one index segment for all surviving entries, delete the segments it replaces, delete
   the doomed packs, remove the plan. The reverse of the backup order, so a crash at any
   step leaves every manifest restorable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cairn.engine.catalog import read_manifests, read_segments
from cairn.engine.chunks import decode_blob
from cairn.engine.crypto import Sealer
from cairn.engine.errors import CorruptObject
from cairn.engine.index import IndexEntry, write_segment
from cairn.engine.locks import (
    PLAN_KEY,
    GcPlan,
    Lock,
    LockTiming,
    list_locks,
    read_lock,
    remove_lock,
    remove_orphan_beats,
    write_plan,
)
from cairn.engine.packs import PackWriter, pack_id_from_key, pack_key
from cairn.targets.base import Target

# Repack a pack when less than half of it is live: a repack rewrites the live half to
# free the dead half, so each byte freed costs at most one byte copied.
DEFAULT_REPACK_BELOW = 0.5


@dataclass
class GcReport:
    """What one GC run found and did; `pending` when it had to leave its plan waiting."""

    manifests: int = 0
    packs_before: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    chunks_copied: int = 0
    bytes_freed: int = 0
    bytes_copied: int = 0
    segments_replaced: int = 0
    stale_locks_removed: int = 0
    temporary_files_removed: int = 0
    pending: bool = False
    waited_for: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _owned_live_bytes(by_pack: dict[bytes, list[IndexEntry]], live: set[bytes]) -> dict[bytes, int]:
    """Live bytes per pack, each live chunk counted in one pack only (its first copy)."""
    owner: dict[bytes, bytes] = {}
    result = {pid: 0 for pid in by_pack}
    for pid in sorted(by_pack):
        for e in by_pack[pid]:
            if e.chunk_id in live and e.chunk_id not in owner:
                owner[e.chunk_id] = pid
                result[pid] += e.location.length
    return result


def run_gc(target: Target, sealer: Sealer, pack_size: int, timing: LockTiming,
           repack_below: float = DEFAULT_REPACK_BELOW, wait_seconds: float | None = None) -> GcReport:
    started = time.monotonic()
    report = GcReport()
    wait_seconds = timing.gc_wait_seconds if wait_seconds is None else wait_seconds
    with Lock(target, "gc", timing, exclusive=True) as lock:
        remove_orphan_beats(target)
        plan, temporaries, unindexed = _make_plan(target, sealer, repack_below, report, lock)
        if plan is not None:
            if not _wait(target, plan, timing, wait_seconds):
                report.pending = True
                report.waited_for = list(plan.waits_for)
            else:
                _execute(target, sealer, pack_size, plan, unindexed, report)
                target.delete(PLAN_KEY)
        if not report.pending:
            deleter = getattr(target, "delete_temporary", None)
            if deleter is not None:
                for rel in temporaries:
                    deleter(rel)
                    report.temporary_files_removed += 1
    report.seconds = time.monotonic() - started
    return report


def _make_plan(target: Target, sealer: Sealer, repack_below: float, report: GcReport,
               lock: Lock) -> tuple[GcPlan | None, list[str], set[bytes]]:
    lister = getattr(target, "list_temporary", None)
    temporaries = [t for prefix in ("packs", "index", "manifests") for t in lister(prefix)] if lister else []
    mset = read_manifests(target, sealer)
    if mset.damaged:
        raise CorruptObject(f"GC refused: {mset.damaged[0].file} is damaged ({mset.damaged[0].message}); "
                            f"run verify and repair first", file=mset.damaged[0].file)
    sset = read_segments(target, sealer)
    if sset.damaged:
        raise CorruptObject(f"GC refused: {sset.damaged[0].file} is damaged; run verify first",
                            file=sset.damaged[0].file)
    report.manifests = len(mset.manifests)
    live = mset.live()
    by_pack = sset.by_pack()
    owned = _owned_live_bytes(by_pack, live)
    stored = {}
    for key in target.list("packs"):
        pid = pack_id_from_key(key)
        if pid is not None:
            stored[pid] = key
    report.packs_before = len(stored)
    doomed: list[str] = []
    unindexed: set[bytes] = set()
    for pid, key in stored.items():
        entries = by_pack.get(pid)
        if entries is None:
            unindexed.add(pid)
        if entries is None or owned[pid] == 0:
            doomed.append(pid.hex())
            continue
        size = target.size(key)
        if owned[pid] < repack_below * size:
            doomed.append(pid.hex())
    if not doomed and not temporaries:
        return None, [], set()
    plan = GcPlan(id=lock.record.id, created=time.time(), doomed_packs=sorted(doomed))
    write_plan(target, plan)
    # Locks are listed only after the plan is visible: a backup whose lock is not in this
    # list took it after the plan was published, so it reads the plan and avoids doomed packs.
    for key, rec in list_locks(target).items():
        if key == lock.key:
            continue
        if rec.is_stale(lock.timing):
            again = read_lock(target, key)
            if again is not None and again.heartbeat == rec.heartbeat:
                remove_lock(target, key)
                report.stale_locks_removed += 1
        else:
            plan.waits_for.append(key)
    write_plan(target, plan)
    return plan, temporaries, unindexed


def _wait(target: Target, plan: GcPlan, timing: LockTiming, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    pending = list(plan.waits_for)
    while True:
        still = []
        for key in pending:
            rec = read_lock(target, key)
            if rec is not None and not rec.is_stale(timing):
                still.append(key)
        if not still:
            return True
        if time.monotonic() >= deadline:
            plan.waits_for = still
            write_plan(target, plan)
            return False
        pending = still
        time.sleep(min(0.2, max(0.01, timing.heartbeat_seconds / 10)))


def _execute(target: Target, sealer: Sealer, pack_size: int, plan: GcPlan, unindexed: set[bytes],
             report: GcReport) -> None:
    # Mark again: backups that ran while we waited have committed their manifests now.
    mset = read_manifests(target, sealer)
    if mset.damaged:
        raise CorruptObject(f"GC stopped: {mset.damaged[0].file} is damaged", file=mset.damaged[0].file)
    live = mset.live()
    sset = read_segments(target, sealer)
    if sset.damaged:
        raise CorruptObject(f"GC stopped: {sset.damaged[0].file} is damaged", file=sset.damaged[0].file)
    by_pack = sset.by_pack()
    # A pack that had no segment at planning time but has one now belonged to a backup
    # that was still running: keeping it is always safe, and the next GC judges it.
    doomed = set(plan.doomed_ids()) - {pid for pid in unindexed if pid in by_pack}
    safe_copies = {e.chunk_id for pid, entries in by_pack.items() if pid not in doomed for e in entries}
    to_copy: dict[bytes, list[IndexEntry]] = {}
    for pid in sorted(doomed):
        for e in by_pack.get(pid, []):
            if e.chunk_id in live and e.chunk_id not in safe_copies:
                to_copy.setdefault(pid, []).append(e)
                safe_copies.add(e.chunk_id)
    new_entries: list[IndexEntry] = []
    writer: PackWriter | None = None
    try:
        for pid, entries in to_copy.items():
            data = target.get(pack_key(pid))
            for e in entries:
                loc = e.location
                blob = data[loc.offset:loc.offset + loc.length]
                # Never carry damage forward: a blob that does not decode stops GC here.
                decode_blob(blob, sealer, f"{pack_key(pid)}@{loc.offset}", e.chunk_id)
                if writer is None:
                    writer = PackWriter(target)
                new_loc = writer.add(blob[:48], blob[48:])
                new_entries.append(IndexEntry(e.chunk_id, new_loc, e.raw_len))
                report.chunks_copied += 1
                report.bytes_copied += loc.length
                if writer.size >= pack_size:
                    writer.commit()
                    report.packs_written += 1
                    writer = None
            report.packs_repacked += 1
        if writer is not None:
            writer.commit()
            report.packs_written += 1
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    survivors = [e for pid, entries in by_pack.items() if pid not in doomed for e in entries]
    survivors.extend(new_entries)
    if survivors:
        write_segment(target, survivors, sealer)
    for key in sset.segments:
        target.delete(key)
        report.segments_replaced += 1
    for pid in sorted(doomed):
        key = pack_key(pid)
        try:
            size = target.size(key)
        except Exception:  # noqa: BLE001 - already gone: nothing to free
            continue
        target.delete(key)
        report.packs_deleted += 1
        report.bytes_freed += size
