"""Lock files and the GC plan under `locks/`: how concurrent processes stay out of harm.

Every operation that reads chunk locations or may reference stored chunks holds a lock
file `locks/<kind>-<id>.lock` (kind `backup` or `restore`); GC and verify also take
`locks/exclusive.lock`, created only if absent. A lock file is written once, when it is
taken; its heartbeat thread refreshes a beat file beside it (`.beat` for `.lock`), so a
lock removed as stale is never written back by a late heartbeat. GC
publishes its plan as `locks/gc-plan.json` (the packs it will delete) and deletes
nothing until every lock that existed when the plan was published is released or stale.
A lock is stale when its heartbeat is older than `stale_seconds`, or at once when it
names a process on this host that no longer exists. The full argument is in
docs/format.md ("Concurrency").
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field

from cairn.engine.errors import CorruptObject, RepositoryBusy
from cairn.targets.base import Target
from cairn.targets.errors import ObjectNotFound

LOCK_PREFIX = "locks"
LOCK_SUFFIX = ".lock"
BEAT_SUFFIX = ".beat"
EXCLUSIVE_KEY = "locks/exclusive.lock"
PLAN_KEY = "locks/gc-plan.json"
HOST = socket.gethostname()
_PACK_HEX = re.compile(r"[0-9a-f]{32}")
# What json.loads and the field conversions raise on a damaged file: bad JSON or UTF-8
# (ValueError), a missing key or a wrong shape (KeyError, TypeError), a number too big
# for a float or an int (OverflowError), nesting deeper than the parser recurses.
_DAMAGE = (ValueError, KeyError, TypeError, OverflowError, RecursionError)


def _finite(value: object) -> float:
    """`value` as a finite float: a NaN heartbeat would make a lock never go stale."""
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class LockTiming:
    """Heartbeat period and staleness limit; docs/engine.md derives the defaults."""

    heartbeat_seconds: float = 15.0
    stale_seconds: float = 120.0
    # How long one `gc()` waits for older operations before leaving its plan pending.
    gc_wait_seconds: float = 150.0


@dataclass
class LockRecord:
    kind: str
    id: str
    host: str
    pid: int
    created: float
    heartbeat: float

    def is_stale(self, timing: LockTiming, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - self.heartbeat > timing.stale_seconds:
            return True
        if self.host == HOST and self.pid != os.getpid():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False


def _encode(rec: LockRecord) -> bytes:
    return json.dumps(asdict(rec), sort_keys=True).encode()


def _encode_beat(lock_id: str, heartbeat: float) -> bytes:
    return json.dumps({"heartbeat": heartbeat, "id": lock_id}, sort_keys=True).encode()


def beat_key(lock_key: str) -> str:
    """The beat file of the lock file `lock_key`."""
    return lock_key.removesuffix(LOCK_SUFFIX) + BEAT_SUFFIX


def read_lock(target: Target, key: str) -> LockRecord | None:
    """Return the lock at `key`, its heartbeat the newer of its own and its beat file's;
    None if it vanished; a damaged lock reads as long stale."""
    try:
        data = target.get(key)
    except ObjectNotFound:
        return None
    try:
        obj = json.loads(data)
        rec = LockRecord(str(obj["kind"]), str(obj["id"]), str(obj["host"]), int(obj["pid"]),
                         _finite(obj["created"]), _finite(obj["heartbeat"]))
    except _DAMAGE:
        return LockRecord("damaged", key, "", 0, 0.0, 0.0)
    try:
        beat = json.loads(target.get(beat_key(key)))
        # The exclusive lock's name is reused: only a beat of this holder counts.
        if beat["id"] == rec.id:
            rec.heartbeat = max(rec.heartbeat, _finite(beat["heartbeat"]))
    except ObjectNotFound:
        pass
    except _DAMAGE:
        pass  # a damaged beat is no beat: the lock ages, which costs its holder a retry at worst
    return rec


def remove_lock(target: Target, key: str) -> None:
    """Delete a lock file, then its beat file."""
    target.delete(key)
    target.delete(beat_key(key))


def remove_orphan_beats(target: Target) -> int:
    """Delete beat files whose lock file is gone (a holder that died after its lock was
    removed as stale); returns how many."""
    keys = set(target.list(LOCK_PREFIX))
    orphans = [key for key in keys if key.endswith(BEAT_SUFFIX)
               and key.removesuffix(BEAT_SUFFIX) + LOCK_SUFFIX not in keys]
    for key in orphans:
        target.delete(key)
    return len(orphans)


def list_locks(target: Target) -> dict[str, LockRecord]:
    found = {}
    for key in target.list(LOCK_PREFIX):
        if key.endswith(LOCK_SUFFIX):
            rec = read_lock(target, key)
            if rec is not None:
                found[key] = rec
    return found


class Lock:
    """A held lock file with its heartbeat thread; use as a context manager."""

    def __init__(self, target: Target, kind: str, timing: LockTiming, exclusive: bool = False) -> None:
        self.target = target
        self.timing = timing
        now = time.time()
        self.record = LockRecord(kind, os.urandom(8).hex(), HOST, os.getpid(), now, now)
        self.key = EXCLUSIVE_KEY if exclusive else f"{LOCK_PREFIX}/{kind}-{self.record.id}{LOCK_SUFFIX}"
        self._beat_key = beat_key(self.key)
        self.exclusive = exclusive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        # The longest time, by this process's clock, that the lock went without a fresh
        # heartbeat on the target: if it ever nears `stale_seconds`, a GC may have judged
        # the lock stale and gone ahead, so the holder must not commit.
        self._last_beat = time.monotonic()
        self._max_gap = 0.0

    def acquire(self) -> Lock:
        if self.exclusive:
            self._acquire_exclusive()
        else:
            self.target.put(self.key, _encode(self.record))
        self._thread = threading.Thread(target=self._beat, name=f"cairn-lock-{self.record.kind}", daemon=True)
        self._thread.start()
        return self

    def _acquire_exclusive(self) -> None:
        for _attempt in range(3):
            if self.target.create_exclusive(self.key, _encode(self.record)):
                return
            holder = read_lock(self.target, self.key)
            if holder is None:
                continue
            if not holder.is_stale(self.timing):
                raise RepositoryBusy(f"repository is busy: a {holder.kind} (pid {holder.pid} on {holder.host}) "
                                     f"holds the exclusive lock")
            # Re-read right before deleting so a lock that was just replaced is not removed.
            again = read_lock(self.target, self.key)
            if again is not None and again.id == holder.id:
                remove_lock(self.target, self.key)
        raise RepositoryBusy("repository is busy: could not take the exclusive lock")

    def _beat(self) -> None:
        while not self._stop.wait(self.timing.heartbeat_seconds):
            try:
                if not self.target.exists(self.key):
                    raise RepositoryBusy("the lock of this operation was removed as stale")
                # Only the beat file is written: were the lock file rewritten here, a GC
                # removing it between the check above and the write would see it come back.
                self.target.put(self._beat_key, _encode_beat(self.record.id, time.time()))
            except Exception as exc:  # noqa: BLE001 - reported by check(), never lost
                self.error = exc
                return
            now = time.monotonic()
            self._max_gap = max(self._max_gap, now - self._last_beat)
            self._last_beat = now

    def check(self) -> None:
        """Raise unless the lock was kept fresh all along (call before committing)."""
        if self.error is not None:
            raise RepositoryBusy(f"lost the repository lock ({self.error}); nothing was committed") from self.error
        gap = max(self._max_gap, time.monotonic() - self._last_beat)
        if gap > self.timing.stale_seconds / 2:
            raise RepositoryBusy(f"this operation's lock went {gap:.0f} s without a heartbeat and may have been "
                                 f"judged stale; nothing was committed")
        if not self.target.exists(self.key):
            raise RepositoryBusy("the lock of this operation was removed as stale; nothing was committed")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            remove_lock(self.target, self.key)
        except Exception:  # noqa: BLE001 - a lock left behind only goes stale
            pass

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class GcPlan:
    """What a GC run will delete, published before it deletes anything."""

    id: str
    created: float
    doomed_packs: list[str] = field(default_factory=list)
    waits_for: list[str] = field(default_factory=list)

    def doomed_ids(self) -> frozenset[bytes]:
        return frozenset(bytes.fromhex(p) for p in self.doomed_packs)


def write_plan(target: Target, plan: GcPlan) -> None:
    target.put(PLAN_KEY, json.dumps(asdict(plan), sort_keys=True).encode())


def read_plan(target: Target) -> GcPlan | None:
    """The published plan, or None. A damaged plan is an error: backups must not guess."""
    try:
        data = target.get(PLAN_KEY)
    except ObjectNotFound:
        return None
    try:
        obj = json.loads(data)
        doomed, waits_for = obj["doomed_packs"], obj["waits_for"]
        # A string or an object would iterate as characters or keys; a pack name that is
        # not 32 hex digits would fail later, in the backup that reads the plan.
        if not isinstance(doomed, list) or not isinstance(waits_for, list):
            raise TypeError("doomed_packs and waits_for must be lists")
        if not all(isinstance(p, str) and _PACK_HEX.fullmatch(p) for p in doomed):
            raise ValueError("doomed_packs must name packs by 32 lowercase hex digits")
        return GcPlan(str(obj["id"]), _finite(obj["created"]), list(doomed), [str(w) for w in waits_for])
    except _DAMAGE:
        raise CorruptObject(f"{PLAN_KEY}: damaged GC plan; run `cairn repo gc` to replace it", file=PLAN_KEY) from None
