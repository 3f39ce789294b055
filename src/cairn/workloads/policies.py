"""Workload policies: admin-defined scheduling and retention values, assigned to projects.

A policy's field values are either the 4.x four (interval, retention_policy_type,
retention_policy_value, fullbackup_interval) or tiers (hourly, daily, weekly, monthly,
yearly, manual, as in a tiered jobschedule). They are validated with the jobschedule
rules and, once a workload names the policy in `metadata.policy_id`, replace whatever
its jobschedule said: a tiered policy replaces the schedule's tiers (and its 4.x
fields), a 4.x policy its four fields (and drops any tiers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cairn.clock import utcnow
from cairn.db.models import Policy, PolicyAssignment, Workload
from cairn.errors import Conflict, InvalidInput, NotFound
from cairn.workloads.jobschedule import POLICY_FIELDS, parse_policy_fields
from cairn.workloads.tiers import TIER_NAMES, Tiers, check_dependencies, parse_tier

FIELDS = POLICY_FIELDS + TIER_NAMES


@dataclass(frozen=True)
class PolicyRecord:
    id: str
    name: str
    description: str
    field_values: dict[str, Any]
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    assignments: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyInput:
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    field_values: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def normalise_field_values(values: dict[str, Any], base: dict[str, Any] | None = None,
                           prefix: str = "field_values") -> dict[str, Any]:
    """Validate policy field values (over `base` for a partial update) with the
    jobschedule rules; returns them in their stored form: the 4.x four as strings, or
    the tiers as objects. The form `values` uses replaces the other form of `base`; a
    tier given as null is removed."""
    given_tiers = [name for name in TIER_NAMES if name in values]
    given_cadence = [name for name in POLICY_FIELDS if name in values]
    if given_tiers and given_cadence:
        raise InvalidInput(f"{prefix}.{given_cadence[0]}: a field of the 4.x form cannot be "
                           f"combined with tiers ({', '.join(given_tiers)}); send one form",
                           field=f"{prefix}.{given_cadence[0]}")
    kept = (TIER_NAMES if given_tiers else POLICY_FIELDS if given_cadence else FIELDS)
    combined = {**{key: value for key, value in (base or {}).items() if key in kept}, **values}
    if any(name in combined for name in TIER_NAMES):
        tiers = Tiers(**{name: parse_tier(name, raw, prefix)
                         for name, raw in combined.items() if raw is not None})
        check_dependencies(tiers, enabled=True, prefix=prefix)
        return tiers.wire()
    parsed = parse_policy_fields(combined, field_prefix=prefix)
    return {"interval": str(parsed["interval_hours"]),
            "retention_policy_type": parsed["retention_policy_type"],
            "retention_policy_value": str(parsed["retention_policy_value"]),
            "fullbackup_interval": str(parsed["fullbackup_interval"])}


def _record(row: Policy, assignments: tuple[str, ...]) -> PolicyRecord:
    return PolicyRecord(id=row.id, name=row.name, description=row.description,
                        field_values=dict(row.field_values), metadata=dict(row.meta or {}),
                        created_at=row.created_at, updated_at=row.updated_at,
                        assignments=assignments)


def _live(session: Session, policy_id: str) -> Policy:
    row = session.get(Policy, policy_id)
    if row is None or row.deleted:
        raise NotFound(f"Policy {policy_id} could not be found.")
    return row


def _assignments(session: Session, policy_ids: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {pid: [] for pid in policy_ids}
    if policy_ids:
        for row in session.execute(select(PolicyAssignment.policy_id, PolicyAssignment.project_id)
                                   .where(PolicyAssignment.policy_id.in_(policy_ids))
                                   .order_by(PolicyAssignment.id)):
            found[row.policy_id].append(row.project_id)
    return {pid: tuple(projects) for pid, projects in found.items()}


def create_policy(session: Session, data: PolicyInput) -> PolicyRecord:
    if not data.name or not data.name.strip():
        raise InvalidInput("workload_policy.display_name: required, 1 to 255 characters.",
                           "workload_policy.display_name")
    values = normalise_field_values(data.field_values or {}, prefix="workload_policy.field_values")
    now = utcnow()
    row = Policy(id=str(uuid.uuid4()), name=data.name, description=data.description or "",
                 field_values=values, meta=data.metadata or {}, created_at=now,
                 updated_at=now, deleted=False)
    session.add(row)
    return _record(row, ())


def get_policy(session: Session, policy_id: str) -> PolicyRecord:
    row = _live(session, policy_id)
    return _record(row, _assignments(session, [row.id])[row.id])


def list_policies(session: Session) -> list[PolicyRecord]:
    rows = list(session.scalars(select(Policy).where(Policy.deleted.is_(False))
                                .order_by(Policy.created_at)))
    assigned = _assignments(session, [row.id for row in rows])
    return [_record(row, assigned[row.id]) for row in rows]


def _refuse_in_use(session: Session, policy_id: str, action: str) -> None:
    users = session.scalar(select(func.count()).select_from(Workload).where(
        Workload.policy_id == policy_id, Workload.deleted.is_(False)))
    if users:
        raise Conflict(f"Cannot {action} policy {policy_id}: {users} workload(s) use it.")


def update_policy(session: Session, policy_id: str, data: PolicyInput) -> PolicyRecord:
    row = _live(session, policy_id)
    _refuse_in_use(session, policy_id, "update")
    if data.name is not None:
        if not data.name.strip():
            raise InvalidInput("policy.display_name: must not be empty.", "policy.display_name")
        row.name = data.name
    if data.description is not None:
        row.description = data.description
    if data.metadata is not None:
        row.meta = data.metadata
    if data.field_values is not None:
        row.field_values = normalise_field_values(data.field_values, base=dict(row.field_values),
                                                  prefix="policy.field_values")
    row.updated_at = utcnow()
    return _record(row, _assignments(session, [row.id])[row.id])


def delete_policy(session: Session, policy_id: str) -> None:
    row = _live(session, policy_id)
    _refuse_in_use(session, policy_id, "delete")
    session.execute(delete(PolicyAssignment).where(PolicyAssignment.policy_id == policy_id))
    row.deleted = True
    row.deleted_at = utcnow()


def assign_policy(session: Session, policy_id: str, add: list[str], remove: list[str]
                  ) -> tuple[PolicyRecord, list[str]]:
    """Add and remove project assignments; returns the policy and the ids that failed.

    Removing a project whose workloads still use the policy fails for that project.
    """
    row = _live(session, policy_id)
    current = set(_assignments(session, [policy_id])[policy_id])
    failed: list[str] = []
    now = utcnow()
    for project in add:
        if project not in current:
            session.add(PolicyAssignment(policy_id=policy_id, project_id=project, created_at=now))
            current.add(project)
    for project in remove:
        in_use = session.scalar(select(func.count()).select_from(Workload).where(
            Workload.policy_id == policy_id, Workload.project_id == project,
            Workload.deleted.is_(False)))
        if in_use or project not in current:
            failed.append(project)
            continue
        session.execute(delete(PolicyAssignment).where(
            PolicyAssignment.policy_id == policy_id, PolicyAssignment.project_id == project))
        current.discard(project)
    session.flush()
    return _record(row, _assignments(session, [policy_id])[policy_id]), failed


def assigned_policies(session: Session, project_id: str) -> list[PolicyRecord]:
    rows = session.scalars(select(Policy).join(PolicyAssignment, PolicyAssignment.policy_id == Policy.id)
                           .where(PolicyAssignment.project_id == project_id, Policy.deleted.is_(False))
                           .order_by(PolicyAssignment.id))
    return [_record(row, (project_id,)) for row in rows]
