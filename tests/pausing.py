"""Disks whose reading stops at a chosen byte until the test lets it go on.

A test that acts while a job runs (cancels it, unlocks its workload, cuts its disk short,
kills its process) must know the job is running when it acts, however fast the machine.
`PausingPlatform` wraps the platform a runtime would have built (given to
`build_runtime(..., platform=...)`) and passes every call through, except that a disk
with a gate armed on it (`hold(path, at)`) has its source wrapped in the next capture:
the read that reaches byte `at` waits there until the test releases the gate. The test
waits until the gate is reached, acts, and releases it.

A gate fires once, for the next capture of its disk; later snapshots read freely.
`hold_instant(at)` holds the next instant restore's export of its first disk (the
background copy and the guest read through it) at byte `at`; `hold_instant_copy()`
lets its instance run on the snapshot and holds the start of its background copy.
`hold_restore(name)` holds a restore in the same way, after its disks are written and
before the restored instance named `name` is made (its progress stays where it is);
`hold_made(name)` just after that instance is made. `DiskGate.fail(message)` lets the
held call go on by raising instead: a restore that fails at that point. A gate
never released gives up after `HOLD_SECONDS` with a SourceError, so a broken test fails
its job instead of hanging the service.

A cancel or an unlock reaches a running job through its runner's heartbeat, which reads
the job's cancel flag a fraction of a second later. `JobWatch` lets the test wait until
the job itself sees the flag, before it releases the gate: after that the job cannot
miss it.

Across processes (`tests/pausing_role.py`) a `FileGate` does the same with two files in a
directory the test chooses: the held read creates `reached`, and waits for `release`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy.orm import Session

from cairn.engine.errors import SourceError
from cairn.engine.sources import Extent, Source
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobHandler, Outcome
from cairn.platforms.base import (
    Capture,
    DiskReader,
    InstanceInfo,
    InstantCopy,
    InstantRestorer,
    Platform,
    Recorder,
    RestoreDisk,
    StreamProgress,
)

#: how long a held read waits for its release before failing the job
HOLD_SECONDS = 120.0


class Gate(Protocol):
    """Where a disk's reading stops, and what it waits for there."""

    at: int

    def hold(self) -> None:
        """Called once, in the reading thread, by the first read that reaches `at`;
        returns when the read may go on (raises to fail it)."""
        ...


class DiskGate:
    """A gate in this process: `wait_reached()` returns once a read waits at `at`;
    `release()` lets it go on."""

    def __init__(self, at: int, hold_seconds: float = HOLD_SECONDS) -> None:
        self.at = at
        self.hold_seconds = hold_seconds
        self._reached = threading.Event()
        self._released = threading.Event()
        self._failure: str | None = None

    def hold(self) -> None:
        self._reached.set()
        if not self._released.wait(self.hold_seconds):
            raise SourceError(f"the test held this disk at byte {self.at} and never released it")
        if self._failure is not None:
            raise SourceError(self._failure)

    def fail(self, message: str) -> None:
        """Release the held call with an error (`SourceError(message)`)."""
        self._failure = message
        self._released.set()

    @property
    def reached(self) -> bool:
        return self._reached.is_set()

    def wait_reached(self, timeout: float = 60) -> None:
        if not self._reached.wait(timeout):
            raise AssertionError(f"no read reached byte {self.at} within {timeout:.0f} s")

    def release(self) -> None:
        self._released.set()


class FileGate:
    """A gate another process holds: the held read creates `directory/reached` and waits
    until `directory/release` exists."""

    def __init__(self, at: int, directory: Path, hold_seconds: float = HOLD_SECONDS) -> None:
        self.at = at
        self.directory = directory
        self.hold_seconds = hold_seconds

    def hold(self) -> None:
        (self.directory / "reached").touch()
        deadline = time.monotonic() + self.hold_seconds
        while not (self.directory / "release").exists():
            if time.monotonic() > deadline:
                raise SourceError(f"the test held this disk at byte {self.at} and never released it")
            time.sleep(0.01)

    @staticmethod
    def wait_reached(directory: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (directory / "reached").exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"no read reached its gate within {timeout:.0f} s ({directory})")
            time.sleep(0.01)

    @staticmethod
    def release(directory: Path) -> None:
        (directory / "release").touch()


class GatedSource:
    """A disk source whose first read reaching `gate.at` waits on the gate."""

    def __init__(self, inner: Source, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.path = inner.path
        self.kind = inner.kind
        self.size = inner.size
        self._passed = False

    def data_extents(self) -> list[Extent]:
        return self.inner.data_extents()

    def read_into(self, buf: memoryview, offset: int) -> None:
        if not self._passed and offset + len(buf) > self.gate.at:
            self._passed = True
            self.gate.hold()
        self.inner.read_into(buf, offset)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class GatedReader:
    """A snapshot reader (an instant restore's export) whose first read reaching
    `gate.at` waits on the gate."""

    def __init__(self, inner: DiskReader, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.size = inner.size
        self._passed = False

    def read_into(self, buf: memoryview, offset: int) -> None:
        if not self._passed and offset + len(buf) > self.gate.at:
            self._passed = True
            self.gate.hold()
        self.inner.read_into(buf, offset)

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        return self.inner.extents(offset, length)


class _HeldCopy:
    """An instant restore's copy whose start waits on a gate."""

    def __init__(self, inner: InstantCopy, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.instance = inner.instance

    def start_copy(self) -> None:
        self.gate.hold()
        self.inner.start_copy()

    def progress(self) -> StreamProgress:
        return self.inner.progress()

    def close(self) -> None:
        self.inner.close()

    def abandon(self) -> None:
        self.inner.abandon()


class PausingPlatform:
    """A platform that reads its disks through gates the test arms; otherwise `inner`.

    `inner` may be attached after the runtime is built (`attach`), so that it uses the
    runtime's own database."""

    def __init__(self, inner: Platform | None = None) -> None:
        self._inner = inner
        self._armed: dict[str, Gate] = {}
        self._restores: dict[str, DiskGate] = {}
        self._made: dict[str, DiskGate] = {}
        self._instant: DiskGate | None = None
        self._instant_copy: DiskGate | None = None
        self._given: list[Gate] = []
        self._lock = threading.Lock()

    def attach(self, inner: Platform) -> None:
        self._inner = inner

    @property
    def inner(self) -> Platform:
        assert self._inner is not None, "PausingPlatform used before attach()"
        return self._inner

    def arm(self, path: str | Path, gate: Gate) -> Gate:
        """Hold the next capture's reading of the disk at `path` at `gate`."""
        with self._lock:
            self._armed[str(path)] = gate
        return gate

    def hold(self, path: str | Path, at: int) -> DiskGate:
        """A gate on the disk at `path`: its next snapshot's read stops at byte `at`."""
        gate = DiskGate(at)
        self.arm(path, gate)
        return gate

    def hold_restore(self, name: str) -> DiskGate:
        """A gate on the next restore of an instance under `name`: it waits, its disks
        written and the instance not made yet, until the gate is released."""
        gate = DiskGate(0)
        with self._lock:
            self._restores[name] = gate
        return gate

    def hold_made(self, name: str) -> DiskGate:
        """A gate just after the next restore makes its instance `name` (`fail` it to
        fail the restore with that instance made)."""
        gate = DiskGate(0)
        with self._lock:
            self._made[name] = gate
        return gate

    @contextmanager
    def holding(self, path: str | Path, at: int) -> Iterator[DiskGate]:
        """`hold`, released on the way out whatever happens (so no job stays held)."""
        gate = self.hold(path, at)
        try:
            yield gate
        finally:
            gate.release()

    def release_all(self) -> None:
        """Release every gate given out or armed and disarm them (between tests)."""
        with self._lock:
            gates = [*self._armed.values(), *self._restores.values(), *self._made.values(), *self._given]
            self._armed.clear()
            self._restores.clear()
            self._made.clear()
            self._given.clear()
        for gate in gates:
            if isinstance(gate, DiskGate):
                gate.release()

    def capture(self, instances: list[InstanceInfo], parents: dict[str, dict[str, Any]],
                label: str) -> Capture:
        capture = self.inner.capture(instances, parents, label)
        with self._lock:
            for view in capture.views:
                for disk in view.disks:
                    gate = self._armed.pop(disk.disk.path, None)
                    if gate is not None:
                        self._given.append(gate)
                        disk.source = GatedSource(disk.source, gate)
        return capture

    def find_instances(self, project_id: str, instance_ids: list[str]) -> dict[str, InstanceInfo]:
        return self.inner.find_instances(project_id, instance_ids)

    def confirm(self, instance: InstanceInfo) -> None:
        self.inner.confirm(instance)

    def forget_history(self, instance_ids: list[str]) -> None:
        self.inner.forget_history(instance_ids)

    def check_inplace(self, instance: InstanceInfo, options: dict[str, Any]) -> None:
        self.inner.check_inplace(instance, options)

    def inplace_window(self, instance: InstanceInfo, options: dict[str, Any]) -> Any:
        return self.inner.inplace_window(instance, options)

    def check_restore(self, project_id: str, restore_type: str, options: dict[str, Any],
                      instances: list[tuple[str, dict[str, Any]]]) -> None:
        self.inner.check_restore(project_id, restore_type, options, instances)

    def prepare_disks(self, project_id: str, instance_id: str, state: dict[str, Any], disks: list[RestoreDisk],
                      options: dict[str, Any], label: str, record: Recorder) -> list[RestoreDisk]:
        return self.inner.prepare_disks(project_id, instance_id, state, disks, options, label, record)

    def remove_created(self, resource: dict[str, Any]) -> None:
        self.inner.remove_created(resource)

    @property
    def supports_instant_restore(self) -> bool:
        return bool(getattr(self.inner, "supports_instant_restore", False))

    def hold_instant_copy(self) -> DiskGate:
        """The next instant restore's instance runs on the snapshot, and its background
        copy does not begin until the gate is released."""
        gate = DiskGate(0)
        with self._lock:
            self._instant_copy = gate
        return gate

    def hold_instant(self, at: int) -> DiskGate:
        """The next instant restore's export of its first disk stops at byte `at`."""
        gate = DiskGate(at)
        with self._lock:
            self._instant = gate
        return gate

    def instant_restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, DiskReader]],
                                 state: dict[str, Any], label: str, host: str | None, options: dict[str, Any],
                                 record: Recorder) -> InstantCopy:
        with self._lock:
            gate, self._instant = self._instant, None
            if gate is not None:
                self._given.append(gate)
        if gate is not None and disks:
            device, path, reader = disks[0]
            disks = [(device, path, GatedReader(reader, gate)), *disks[1:]]
        copy = cast(InstantRestorer, self.inner).instant_restore_instance(project_id, name, disks, state, label,
                                                                          host, options, record)
        with self._lock:
            held, self._instant_copy = self._instant_copy, None
            if held is not None:
                self._given.append(held)
        return copy if held is None else _HeldCopy(copy, held)

    def restore_instance(self, project_id: str, name: str, disks: list[tuple[str, str, str]],
                         state: dict[str, Any], label: str, host: str | None,
                         options: dict[str, Any] | None = None, record: Recorder | None = None) -> InstanceInfo:
        with self._lock:
            gate = self._restores.pop(name, None)
            made = self._made.pop(name, None)
            self._given.extend(g for g in (gate, made) if g is not None)
        if gate is not None:
            gate.hold()
        info = self.inner.restore_instance(project_id, name, disks, state, label, host, options, record)
        if made is not None:
            made.hold()
        return info


class _Watched:
    """A job handler that tells a `JobWatch` about each job it runs."""

    def __init__(self, inner: JobHandler, watch: JobWatch) -> None:
        self.inner = inner
        self.watch = watch

    def run(self, job: JobContext) -> None:
        self.watch._started(job)
        self.inner.run(job)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        self.inner.settle(session, job, outcome)


class JobWatch:
    """What a test sees of the jobs a runtime runs: each running job's own context, by
    the id of its subject (the snapshot, the restore)."""

    def __init__(self, handlers: dict[str, JobHandler]) -> None:
        self._contexts: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        for kind, handler in list(handlers.items()):
            handlers[kind] = _Watched(handler, self)

    def _started(self, job: JobContext) -> None:
        with self._lock:
            self._contexts[job.record.subject_id or job.record.id] = job

    def wait_cancel_seen(self, subject_id: str, timeout: float = 30) -> None:
        """Return once the job of `subject_id` has seen its cancel flag."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                job = self._contexts.get(subject_id)
            if job is not None and job.cancel_requested:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the job of {subject_id} did not see its cancel within {timeout:.0f} s")
            time.sleep(0.01)
