"""The workload lifecycle: create, modify, delete, unlock, reset, and the jobs behind them.

`WorkloadService` decides what may happen (state rules, instance ownership, policies,
jobschedule) and writes the rows in the caller's unit of work; the slow parts run as
jobs (`cairn.jobs`), whose handlers are at the bottom of this module. Reset and delete
run through `WorkloadHooks`, lists of callables that later capabilities (snapshots,
backup targets) extend without this module knowing them.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cairn.auth.context import RequestContext
from cairn.db.database import Database, reconnecting
from cairn.db.models import Snapshot, Workload, WorkloadInstance, WorkloadType
from cairn.errors import Conflict, InvalidInput, NotFound
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, Outcome
from cairn.platforms.base import InstanceInfo, Platform
from cairn.workloads import global_scheduler, states
from cairn.workloads.jobschedule import JobSchedule, next_fire_time, parse_jobschedule
from cairn.workloads.placement import routing, worker_for
from cairn.workloads.policies import FIELDS as POLICY_FIELDS
from cairn.workloads.policies import assigned_policies, get_policy
from cairn.workloads.records import (
    WorkloadRecord, WorkloadSummary, get_workload, instance_owners, lock_workload)
from cairn.workloads.storage import BackupTargets

SERIAL_TYPE_ID = "f82ce76f-17fe-438b-aa37-7a023058e50d"
DEFAULT_DESCRIPTION = "no-description"
#: metadata keys the service maintains; a client cannot set them.
SERVICE_KEYS = ("workload_approx_backup_size",)
#: an admin may name the backup target at creation (name, export string or path)
TARGET_KEY = "backup_media_target"
MAX_METADATA_KEYS = 64

JOB_CREATE, JOB_DELETE, JOB_RESET = "workload_create", "workload_delete", "workload_reset"


@dataclass(frozen=True)
class WorkloadInput:
    """A create or modify request after wire validation; None means "not given"."""

    name: str | None = None
    description: str | None = None
    workload_type_id: str | None = None
    instance_ids: list[str] | None = None
    jobschedule: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    availability_zone: str | None = None


@dataclass
class WorkloadHooks:
    """Steps other capabilities add to reset and delete (each gets the session's work)."""

    #: in the create job, before the workload becomes available (its repository is made)
    on_create: list[Callable[[WorkloadRecord], None]] = field(default_factory=list)
    on_available: list[Callable[[WorkloadRecord], None]] = field(default_factory=list)
    on_reset: list[Callable[[JobContext, str], None]] = field(default_factory=list)
    on_delete_data: list[Callable[[JobContext, str], None]] = field(default_factory=list)
    before_delete: list[Callable[[Session, WorkloadRecord], None]] = field(default_factory=list)


class WorkloadService:
    def __init__(self, database: Database, platform: Platform, targets: BackupTargets,
                 dispatcher: Dispatcher, clock: Callable[[], datetime], service_timezone: str,
                 hooks: WorkloadHooks | None = None) -> None:
        self.database = database
        self.platform = platform
        self.targets = targets
        self.dispatcher = dispatcher
        self.clock = clock
        self.service_timezone = service_timezone
        self.hooks = hooks or WorkloadHooks()

    # -- create ---------------------------------------------------------------------

    def create(self, session: Session, ctx: RequestContext, data: WorkloadInput) -> WorkloadSummary:
        now = self.clock()
        name = _check_name(data.name)
        type_id = data.workload_type_id or SERIAL_TYPE_ID
        if session.get(WorkloadType, type_id) is None:
            raise InvalidInput(f"workload_type_id: workload type {type_id} could not be found.",
                               "workload.workload_type_id")
        instances = self._check_instances(session, ctx, data.instance_ids, workload_id=None)
        # the create job reads the disks (to confirm them): it runs where they are
        route = routing(worker_for(instances))
        metadata = _check_metadata(data.metadata or {})
        wanted_target = metadata.pop(TARGET_KEY, None)
        target = self.targets.resolve(wanted_target) if wanted_target else self.targets.choose()
        policy_id = self._check_policy(session, ctx.project_id, metadata.get("policy_id"), creating=True)
        schedule = self._schedule(session, data.jobschedule or {}, policy_id, base=None, now=now)
        metadata.setdefault("hostnames", "[]")
        metadata.setdefault("preferredgroup", "[]")
        if policy_id:
            metadata["policy_id"] = policy_id
        workload_id = str(uuid.uuid4())
        description = data.description if data.description is not None else DEFAULT_DESCRIPTION
        session.add(Workload(
            id=workload_id, project_id=ctx.project_id, user_id=ctx.user_id, name=name,
            description=description,
            workload_type_id=type_id, status=states.CREATING, error_msg=None,
            availability_zone=data.availability_zone or "nova",
            jobschedule=schedule.to_storage(), meta=metadata, policy_id=policy_id,
            backup_target=target.name, next_fire_at=_next_fire(schedule, now),
            created_at=now, updated_at=now, deleted=False, full_required=False))
        session.flush()
        self._claim_instances(session, workload_id, instances)
        enqueue(session, self.dispatcher, JOB_CREATE, ctx.project_id, now, workload_id=workload_id,
                payload=route)
        return WorkloadSummary(workload_id, ctx.project_id, ctx.user_id, name, description, type_id,
                               states.CREATING, now, now)

    # -- modify ---------------------------------------------------------------------

    def update(self, session: Session, ctx: RequestContext, workload_id: str, data: WorkloadInput,
               project_scope: str | None) -> None:
        row = lock_workload(session, workload_id, project_scope)
        _require(row, states.MODIFIABLE, "modified")
        now = self.clock()
        if data.name is not None:
            row.name = _check_name(data.name)
        if data.description is not None:
            row.description = data.description
        metadata = dict(row.meta or {})
        if data.metadata is not None:
            changes = _check_metadata(data.metadata)
            if TARGET_KEY in changes:
                raise InvalidInput(f"metadata.{TARGET_KEY}: the backup target of a workload cannot be "
                                   "changed after it is created.", f"workload.metadata.{TARGET_KEY}")
            metadata.update(changes)
        policy_id = self._check_policy(session, row.project_id, metadata.get("policy_id"), creating=False)
        if policy_id:
            metadata["policy_id"] = policy_id
        else:
            metadata.pop("policy_id", None)
        if data.jobschedule or policy_id != row.policy_id:
            if data.jobschedule and not global_scheduler.is_enabled(session):
                raise InvalidInput("Cannot update scheduler related fields when global "
                                   "jobscheduler is disabled.", "workload.jobschedule")
            base = JobSchedule.from_storage(row.jobschedule)
            schedule = self._schedule(session, data.jobschedule or {}, policy_id, base=base, now=now)
            row.jobschedule = schedule.to_storage()
            row.next_fire_at = _next_fire(schedule, now)
        if data.instance_ids is not None:
            instances = self._check_instances(session, ctx, data.instance_ids, workload_id=row.id,
                                              project_id=row.project_id)
            session.execute(WorkloadInstance.__table__.delete().where(
                WorkloadInstance.workload_id == row.id))
            session.flush()
            self._claim_instances(session, row.id, instances)
            metadata["workload_approx_backup_size"] = _approx_size_gb(instances)
        row.meta = metadata
        row.policy_id = policy_id
        row.updated_at = now

    # -- delete, unlock, reset ----------------------------------------------------------

    def delete(self, session: Session, workload_id: str, project_scope: str | None,
               database_only: bool) -> None:
        row = lock_workload(session, workload_id, project_scope)
        _require(row, states.DELETABLE, "deleted")
        record = get_workload(session, workload_id, None)
        if not database_only:
            for check in self.hooks.before_delete:
                check(session, record)
        now = self.clock()
        row.status = states.DELETING
        row.updated_at = now
        enqueue(session, self.dispatcher, JOB_DELETE, row.project_id, now, workload_id=row.id,
                payload={"database_only": database_only})

    def unlock(self, session: Session, workload_id: str, project_scope: str | None) -> None:
        """Make the workload available whatever its state; running jobs are cancelled."""
        row = lock_workload(session, workload_id, project_scope)
        now = self.clock()
        for job in jobs.request_cancel(session, row.id, now):
            if job.state == jobs.QUEUED:
                jobs.cancel_queued(session, job.id, now, "Cancelled by an unlock of the workload.")
        row.status = states.AVAILABLE
        row.error_msg = None
        row.updated_at = now

    def reset(self, session: Session, workload_id: str, project_scope: str | None) -> None:
        row = lock_workload(session, workload_id, project_scope)
        _require(row, states.RESETTABLE, "reset")
        now = self.clock()
        row.status = states.RESETTING
        row.updated_at = now
        enqueue(session, self.dispatcher, JOB_RESET, row.project_id, now, workload_id=row.id)

    # -- rules ----------------------------------------------------------------------

    def _check_instances(self, session: Session, ctx: RequestContext, instance_ids: list[str] | None,
                         workload_id: str | None, project_id: str | None = None) -> list[InstanceInfo]:
        if not instance_ids:
            raise InvalidInput("instances: at least one instance is required.", "workload.instances")
        seen: set[str] = set()
        for instance_id in instance_ids:
            if instance_id in seen:
                raise InvalidInput(f"instances: instance {instance_id} is listed twice.",
                                   "workload.instances")
            seen.add(instance_id)
        found = self.platform.find_instances(project_id or ctx.project_id, instance_ids)
        for instance_id in instance_ids:
            if instance_id not in found:
                raise InvalidInput(f"Instance {instance_id} could not be found.", "workload.instances")
        owners = instance_owners(session, instance_ids, exclude_workload=workload_id)
        for instance_id in instance_ids:
            if instance_id in owners:
                raise Conflict(f"Instance {instance_id} is already part of workload "
                               f"'{owners[instance_id]}'")
        return [found[instance_id] for instance_id in instance_ids]

    def _claim_instances(self, session: Session, workload_id: str, instances: list[InstanceInfo]) -> None:
        for position, instance in enumerate(instances):
            session.add(WorkloadInstance(workload_id=workload_id, instance_id=instance.id,
                                         name=instance.name, meta={}, claim=instance.id,
                                         position=position))
        try:
            session.flush()
        except IntegrityError as exc:  # a concurrent request claimed one first
            raise Conflict("One of the instances was just added to another workload.") from exc

    def _check_policy(self, session: Session, project_id: str, policy_id: str | None,
                      creating: bool) -> str | None:
        if policy_id:
            try:
                policy = get_policy(session, policy_id)
            except NotFound:
                raise InvalidInput(f"Policy {policy_id} could not be found.",
                                   "workload.metadata.policy_id") from None
            if project_id not in policy.assignments:
                raise InvalidInput(f"Policy {policy_id} is not assigned to project {project_id}",
                                   "workload.metadata.policy_id")
            return policy_id
        if creating:
            assigned = assigned_policies(session, project_id)
            if assigned:
                ids = ", ".join(p.id for p in assigned)
                raise InvalidInput("metadata.policy_id: this project has policies assigned; "
                                   f"choose one of: {ids}", "workload.metadata.policy_id")
        return None

    def _schedule(self, session: Session, raw: dict[str, Any], policy_id: str | None,
                  base: JobSchedule | None, now: datetime) -> JobSchedule:
        merged = dict(raw)
        if policy_id:
            values = get_policy(session, policy_id).field_values
            merged.update({name: values[name] for name in POLICY_FIELDS if name in values})
        return parse_jobschedule(merged, service_timezone=self.service_timezone,
                                 now=now.replace(tzinfo=timezone.utc), base=base)


def _require(row: Workload, allowed: tuple[str, ...], action: str) -> None:
    if row.status not in allowed:
        wanted = " or ".join(f"'{s}'" for s in allowed)
        raise Conflict(f"Invalid state: Workload must be in the {wanted} state to be {action}; "
                       f"it is '{row.status}'.")


def _check_name(name: str | None) -> str:
    if name is None or not name.strip():
        raise InvalidInput("name: required, 1 to 255 characters.", "workload.name")
    return name


def _check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidInput(f"metadata: at most {MAX_METADATA_KEYS} keys.", "workload.metadata")
    for key in metadata:
        if key in SERVICE_KEYS:
            raise InvalidInput(f"metadata.{key}: maintained by the service; it cannot be set.",
                               f"workload.metadata.{key}")
    return dict(metadata)


def _next_fire(schedule: JobSchedule, now: datetime) -> datetime | None:
    """The next fire time as stored (naive UTC), or None when nothing is scheduled."""
    if not schedule.enabled:
        return None
    upcoming = next_fire_time(schedule, now.replace(tzinfo=timezone.utc))
    return upcoming.astimezone(timezone.utc).replace(tzinfo=None) if upcoming else None


def _approx_size_gb(instances: list[InstanceInfo]) -> str:
    return str(math.ceil(sum(i.size for i in instances) / 2**30))


# -- jobs ------------------------------------------------------------------------------


def _set_status(session: Session, workload_id: str, expected: tuple[str, ...], status: str,
                now: datetime, error: str | None = None, **values: Any) -> bool:
    """Move the workload to `status` if it is in one of `expected`; whether it was."""
    result = session.execute(update(Workload).where(Workload.id == workload_id, Workload.status.in_(expected))
                             .values(status=status, error_msg=error, updated_at=now, **values))
    return bool(result.rowcount == 1)


class CreateWorkloadJob:
    """Confirms the workload's instances with the platform: `creating → available | error`."""

    def __init__(self, platform: Platform, hooks: WorkloadHooks, clock: Callable[[], datetime]) -> None:
        self.platform = platform
        self.hooks = hooks
        self.clock = clock

    def run(self, job: JobContext) -> None:
        workload_id = job.record.workload_id
        assert workload_id is not None
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                record = get_workload(session, workload_id, None)
        for attempt in reconnecting():
            with attempt:
                found = self.platform.find_instances(record.project_id, [i.id for i in record.instances])
        instances = []
        for member in record.instances:
            if member.id not in found:
                raise NotFound(f"Instance {member.id} could not be found.")
            self.platform.confirm(found[member.id])
            instances.append(found[member.id])
        for prepare in self.hooks.on_create:
            prepare(record)
        # The write is one statement: writers take turns, and everything else was read
        # before (a creating workload's metadata cannot change: modify waits for available).
        metadata = {**record.metadata, "workload_approx_backup_size": _approx_size_gb(instances)}
        now = self.clock()
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                available = _set_status(session, workload_id, (states.CREATING,), states.AVAILABLE, now,
                                        meta=metadata)
        if available:
            record = dataclasses.replace(record, status=states.AVAILABLE, metadata=metadata, updated_at=now)
        for step in self.hooks.on_available:
            step(record)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        if outcome.state != jobs.SUCCEEDED and job.workload_id:
            _set_status(session, job.workload_id, (states.CREATING,), states.ERROR, self.clock(),
                        error=outcome.error)


class ResetWorkloadJob:
    """Runs the reset steps other capabilities registered, then `resetting → available`."""

    def __init__(self, hooks: WorkloadHooks, clock: Callable[[], datetime]) -> None:
        self.hooks = hooks
        self.clock = clock

    def run(self, job: JobContext) -> None:
        assert job.record.workload_id is not None
        for step in self.hooks.on_reset:
            job.checkpoint()
            step(job, job.record.workload_id)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        assert job.workload_id is not None
        if outcome.state == jobs.SUCCEEDED:
            _set_status(session, job.workload_id, (states.RESETTING,), states.AVAILABLE, self.clock())
        else:
            _set_status(session, job.workload_id, (states.RESETTING,), states.ERROR, self.clock(),
                        error=f"Reset did not complete: {outcome.error}")


class DeleteWorkloadJob:
    """Removes the workload's data (unless database_only), then `deleting → deleted`."""

    def __init__(self, hooks: WorkloadHooks, clock: Callable[[], datetime]) -> None:
        self.hooks = hooks
        self.clock = clock

    def run(self, job: JobContext) -> None:
        assert job.record.workload_id is not None
        if not job.record.payload.get("database_only"):
            for step in self.hooks.on_delete_data:
                job.checkpoint()
                step(job, job.record.workload_id)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        assert job.workload_id is not None
        now = self.clock()
        if outcome.state == jobs.SUCCEEDED:
            _set_status(session, job.workload_id, (states.DELETING,), states.DELETED, now,
                        deleted=True, deleted_at=now, next_fire_at=None)
            session.execute(update(Snapshot).where(Snapshot.workload_id == job.workload_id,
                                                   Snapshot.deleted.is_(False))
                            .values(deleted=True, deleted_at=now, status=states.SNAP_DELETED,
                                    deleted_reason="the workload was deleted from the database only"))
            # Release the instances: NULL claims never collide, so they may join a new workload.
            session.execute(update(WorkloadInstance)
                            .where(WorkloadInstance.workload_id == job.workload_id)
                            .values(claim=None))
        else:
            _set_status(session, job.workload_id, (states.DELETING,), states.ERROR, now,
                        error=f"Delete did not complete: {outcome.error}")
