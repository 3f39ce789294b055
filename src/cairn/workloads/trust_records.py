"""Queries over `keystone_trusts`, and the record they return to the API layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.models import KeystoneTrust, Workload
from cairn.errors import NotFound

AVAILABLE, INVALID = "available", "invalid"


@dataclass(frozen=True)
class TrustRecord:
    id: str
    project_id: str
    user_id: str
    keystone_trust_id: str
    role_names: tuple[str, ...]
    is_cloud_trust: bool
    hidden: bool
    workload_id: str | None
    status: str
    created_at: datetime
    updated_at: datetime | None


def _record(row: KeystoneTrust) -> TrustRecord:
    return TrustRecord(row.id, row.project_id, row.user_id, row.keystone_trust_id, tuple(row.role_names or ()),
                       row.is_cloud_trust, row.hidden, row.workload_id, row.status, row.created_at,
                       row.updated_at)


def list_trusts(session: Session, project_id: str, include_hidden: bool) -> list[TrustRecord]:
    """A project's live trusts, oldest first; workloads' own (hidden) ones on request."""
    query = select(KeystoneTrust).where(KeystoneTrust.project_id == project_id, KeystoneTrust.deleted.is_(False))
    if not include_hidden:
        query = query.where(KeystoneTrust.hidden.is_(False))
    return [_record(row) for row in session.scalars(query.order_by(KeystoneTrust.created_at, KeystoneTrust.id))]


def get_trust(session: Session, trust_id: str, project_id: str | None) -> TrustRecord:
    """A live trust; `project_id` None means any project (an admin asking)."""
    row = session.get(KeystoneTrust, trust_id)
    if row is None or row.deleted or (project_id is not None and row.project_id != project_id):
        raise NotFound(f"Trust {trust_id} could not be found.")
    return _record(row)


def workload_trusts(session: Session, workload_id: str) -> list[TrustRecord]:
    """The live trusts made for a workload (normally one)."""
    return [_record(row) for row in session.scalars(select(KeystoneTrust).where(
        KeystoneTrust.workload_id == workload_id, KeystoneTrust.deleted.is_(False))
        .order_by(KeystoneTrust.created_at))]


def mark_invalid(session: Session, trust_id: str, now: datetime) -> None:
    """Keystone refused the trust: say so on it and on the workload that uses it."""
    session.execute(update(KeystoneTrust).where(KeystoneTrust.id == trust_id)
                    .values(status=INVALID, updated_at=now))
    _show_on_workload(session, trust_id, is_valid=False, now=now)


def mark_deleted(session: Session, trust_id: str, now: datetime) -> None:
    session.execute(update(KeystoneTrust).where(KeystoneTrust.id == trust_id)
                    .values(deleted=True, deleted_at=now, updated_at=now))
    _show_on_workload(session, trust_id, is_valid=False, now=now)


def _show_on_workload(session: Session, trust_id: str, is_valid: bool, now: datetime) -> None:
    workload_id = session.scalar(select(KeystoneTrust.workload_id).where(KeystoneTrust.id == trust_id))
    if workload_id is None:
        return
    row = session.get(Workload, workload_id)
    if row is not None and row.scheduler_trust and row.scheduler_trust.get("trust") == trust_id \
            and row.scheduler_trust.get("is_valid") != is_valid:
        row.scheduler_trust = {**row.scheduler_trust, "is_valid": is_valid}
        row.updated_at = now  # the detail view shows it: a new version
