"""The workload lifecycle: create, modify, delete, unlock, reset.

`WorkloadService` decides what may happen (state rules, instance ownership, policies,
jobschedule) and writes the rows in the caller's unit of work; the slow parts run as
jobs (`cairn.jobs`), whose handlers are in `lifecycle_jobs.py`. The platform is asked
about instances before the workload's row is locked, never while it is.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cairn.auth.context import RequestContext
from cairn.config import TrusteeSettings
from cairn.db.database import Database
from cairn.db.models import Workload, WorkloadInstance, WorkloadType
from cairn.errors import Conflict, InvalidInput, NotFound
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.platforms.base import InstanceInfo, Platform
from cairn.workloads import global_scheduler, states
from cairn.workloads.backup_targets import BackupTargetService
from cairn.workloads.encryption import SECRET_FIELD, requested_secret
from cairn.workloads.jobschedule import POLICY_FIELDS, JobSchedule, next_fire_time, parse_jobschedule
from cairn.workloads.placement import routing, worker_for
from cairn.workloads.policies import assigned_policies, get_policy
from cairn.workloads.quotas import VMS, VOLUMES, WORKLOADS, QuotaGuard
from cairn.workloads.records import (
    WorkloadSummary,
    get_workload,
    instance_owners,
    lock_workload,
    secret_holder,
)
from cairn.workloads.snapshot_records import count_live
from cairn.workloads.storage import BackupTargets
from cairn.workloads.tiers import TIER_NAMES
from cairn.workloads.trusts import NewTrust, TrustService, replace_workload_trust

SERIAL_TYPE_ID = "f82ce76f-17fe-438b-aa37-7a023058e50d"
DEFAULT_DESCRIPTION = "no-description"
#: metadata keys the service maintains; a client cannot set them.
SERVICE_KEYS = ("workload_approx_backup_size", "backup_target_types")
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
    #: create only: Trilio 4.2+'s per-workload encryption (workloads/encryption.py)
    encryption: bool | None = None
    secret_uuid: str | None = None
    #: the backup target type (id or name) the workload is to live on
    backup_target_types: str | None = None


class WorkloadService:
    def __init__(self, database: Database, platform: Platform, targets: BackupTargets,
                 dispatcher: Dispatcher, clock: Callable[[], datetime], service_timezone: str,
                 quotas: QuotaGuard | None = None, placement: BackupTargetService | None = None,
                 trusts: TrustService | None = None) -> None:
        self.trusts = trusts or TrustService(database, None, TrusteeSettings(), clock)
        self.database = database
        self.quotas = quotas
        self.platform = platform
        self.targets = targets
        self.placement = placement or BackupTargetService(targets, Path("."), clock)
        self.dispatcher = dispatcher
        self.clock = clock
        self.service_timezone = service_timezone

    # -- create ---------------------------------------------------------------------

    def create(self, session: Session, ctx: RequestContext, data: WorkloadInput,
               confirm_secret: Callable[[str], None] | None = None,
               trust: NewTrust | None = None) -> WorkloadSummary:
        """`confirm_secret` asks Barbican about an encrypted workload's secret (as the
        caller); it is called once every other field has passed, before anything is written.
        `trust`: the Keystone trust made for it (`TrustService.open_for_workload`)."""
        now = self.clock()
        secret = requested_secret(data.encryption, data.secret_uuid)
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
        target, placed_by = self.placement.place(session, ctx.project_id, data.backup_target_types,
                                                 wanted_target or None)
        if placed_by:
            metadata["backup_target_types"] = placed_by
        policy_id = self._check_policy(session, ctx.project_id, metadata.get("policy_id"), creating=True)
        schedule = self._schedule(session, data.jobschedule or {}, policy_id, base=None, now=now)
        metadata.setdefault("hostnames", "[]")
        metadata.setdefault("preferredgroup", "[]")
        if policy_id:
            metadata["policy_id"] = policy_id
        if secret is not None:
            if secret_holder(session, secret):
                raise InvalidInput(f"{SECRET_FIELD}: secret {secret} already encrypts another workload; "
                                   "each encrypted workload needs a secret of its own.", SECRET_FIELD)
            if confirm_secret is None:
                raise InvalidInput(f"{SECRET_FIELD}: this service cannot check secrets with a key manager.",
                                   SECRET_FIELD)
            confirm_secret(secret)
        if self.quotas is not None:  # last of the checks: it locks the quotas until the commit
            self.quotas.check(session, ctx.project_id, {
                WORKLOADS: 1, VMS: len(instances), VOLUMES: sum(len(i.disks) for i in instances)})
        workload_id = str(uuid.uuid4())
        description = data.description if data.description is not None else DEFAULT_DESCRIPTION
        session.add(Workload(
            id=workload_id, project_id=ctx.project_id, user_id=ctx.user_id, name=name,
            description=description,
            workload_type_id=type_id, status=states.CREATING, error_msg=None,
            availability_zone=data.availability_zone or "nova",
            jobschedule=schedule.to_storage(), meta=metadata, policy_id=policy_id,
            backup_target=target.name, next_fire_at=_next_fire(schedule, now),
            created_at=now, updated_at=now, deleted=False, full_required=False,
            encryption=secret is not None, secret_uuid=secret, secret_claim=secret,
            scheduler_trust={"trust": trust.id, "is_valid": True} if trust is not None else None))
        try:
            session.flush()
        except IntegrityError as exc:
            if secret is None:
                raise
            # the only unique column of a new row: a concurrent create won the secret
            raise InvalidInput(f"{SECRET_FIELD}: secret {secret} already encrypts another workload.",
                               SECRET_FIELD) from exc
        if trust is not None:
            self.trusts.add(session, trust, ctx, workload_id=workload_id, hidden=True)
        self._claim_instances(session, workload_id, instances)
        enqueue(session, self.dispatcher, JOB_CREATE, ctx.project_id, now, workload_id=workload_id,
                payload=route)
        return WorkloadSummary(workload_id, ctx.project_id, ctx.user_id, name, description, type_id,
                               states.CREATING, now, now)

    # -- modify ---------------------------------------------------------------------

    def update(self, session: Session, ctx: RequestContext, workload_id: str, data: WorkloadInput,
               project_scope: str | None, trust: NewTrust | None = None) -> Workload:
        """`trust`: a new Keystone trust replacing a missing or refused one
        (`TrustService.open_for_update`)."""
        instances = None
        if data.instance_ids is not None:  # asked of the platform before the row is locked
            current = get_workload(session, workload_id, project_scope)
            _require(current.status, states.MODIFIABLE, "modified")
            instances = self._check_instances(session, ctx, data.instance_ids, workload_id=current.id,
                                              project_id=current.project_id)
        row = lock_workload(session, workload_id, project_scope)
        _require(row.status, states.MODIFIABLE, "modified")
        if instances is not None and self.quotas is not None:
            members, disks = session.execute(
                select(func.count(), func.coalesce(func.sum(WorkloadInstance.quota_disks), 0))
                .where(WorkloadInstance.workload_id == row.id)).one()
            self.quotas.check(session, row.project_id, {
                VMS: len(instances) - int(members),
                VOLUMES: sum(len(i.disks) for i in instances) - int(disks)})
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
            # a paused schedule stays paused: resume computes its next fire time
            row.next_fire_at = _next_fire(schedule, now) if row.schedule_paused_at is None else None
        if instances is not None:
            session.execute(delete(WorkloadInstance).where(
                WorkloadInstance.workload_id == row.id))
            session.flush()
            self._claim_instances(session, row.id, instances)
            metadata["workload_approx_backup_size"] = approx_size_gb(instances)
        row.meta = metadata
        row.policy_id = policy_id
        row.updated_at = now
        if trust is not None:
            replace_workload_trust(session, row, trust, ctx, self.trusts, now)
        return row

    # -- delete, unlock, reset ----------------------------------------------------------

    def delete(self, session: Session, workload_id: str, project_scope: str | None,
               database_only: bool) -> Workload:
        row = lock_workload(session, workload_id, project_scope)
        _require(row.status, states.DELETABLE, "deleted")
        if not database_only and count_live(session, workload_id):
            raise Conflict("This workload contains snapshots. Delete all its snapshots first.")
        now = self.clock()
        row.status = states.DELETING
        row.updated_at = now
        enqueue(session, self.dispatcher, JOB_DELETE, row.project_id, now, workload_id=row.id,
                payload={"database_only": database_only})
        return row

    def unlock(self, session: Session, workload_id: str, project_scope: str | None) -> Workload:
        """Make the workload available whatever its state; running jobs are cancelled."""
        row = lock_workload(session, workload_id, project_scope)
        now = self.clock()
        for job in jobs.request_cancel(session, row.id, now):
            if job.state == jobs.QUEUED:
                jobs.cancel_queued(session, job.id, now, "Cancelled by an unlock of the workload.")
        row.status = states.AVAILABLE
        row.error_msg = None
        row.updated_at = now
        return row

    def reset(self, session: Session, workload_id: str, project_scope: str | None) -> Workload:
        row = lock_workload(session, workload_id, project_scope)
        _require(row.status, states.RESETTABLE, "reset")
        now = self.clock()
        row.status = states.RESETTING
        row.updated_at = now
        enqueue(session, self.dispatcher, JOB_RESET, row.project_id, now, workload_id=row.id)
        return row

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
                                         position=position, quota_disks=len(instance.disks)))
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
            # the policy's form replaces both forms of what the body said
            values = get_policy(session, policy_id).field_values
            for name in POLICY_FIELDS + TIER_NAMES:
                merged.pop(name, None)
            if any(name in values for name in TIER_NAMES):
                merged.update({name: values.get(name) for name in TIER_NAMES})
            else:
                merged.update({name: values[name] for name in POLICY_FIELDS if name in values})
        return parse_jobschedule(merged, service_timezone=self.service_timezone,
                                 now=now.replace(tzinfo=UTC), base=base)


def _require(status: str, allowed: tuple[str, ...], action: str) -> None:
    if status not in allowed:
        wanted = " or ".join(f"'{s}'" for s in allowed)
        raise Conflict(f"Invalid state: Workload must be in the {wanted} state to be {action}; "
                       f"it is '{status}'.")


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
    upcoming = next_fire_time(schedule, now.replace(tzinfo=UTC))
    return upcoming.astimezone(UTC).replace(tzinfo=None) if upcoming else None


def approx_size_gb(instances: list[InstanceInfo]) -> str:
    return str(math.ceil(sum(i.size for i in instances) / 2**30))
