"""The audit log: who did what to which object, when.

One row per action in the `audit_log` table, written by `record()` in the caller's own
unit of work, beside the change it records: the line exists exactly when the change was
committed (a refused or rolled-back request leaves none). Actions are named
`<object type>.<verb>` (`workload.create`, `snapshot.reset`, `quota.update`, ...);
`details` is a sentence for a human. Read back by time window (`entries_since`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.auth.context import RequestContext
from cairn.db.models import AuditEntry

#: longest name and details kept (the columns' sizes)
NAME_CHARS = 255
DETAILS_CHARS = 4000


@dataclass(frozen=True)
class AuditRecord:
    created_at: datetime
    project_id: str
    user_id: str
    action: str
    object_type: str
    object_id: str
    object_name: str
    details: str
    request_id: str


def record(session: Session, ctx: RequestContext, action: str, object_id: str, object_name: str,
           details: str, now: datetime, project_id: str | None = None) -> None:
    """Add one line for `ctx`'s caller to the session's unit of work. `project_id` is the
    project of the object (default: the caller's URL project)."""
    session.add(AuditEntry(
        id=str(uuid.uuid4()), created_at=now, project_id=project_id or ctx.project_id,
        user_id=ctx.user_id, action=action, object_type=action.split(".", 1)[0], object_id=object_id,
        object_name=(object_name or "")[:NAME_CHARS], details=details[:DETAILS_CHARS],
        request_id=ctx.request_id))


def entries_since(session: Session, since: datetime, project_id: str | None = None) -> list[AuditRecord]:
    """Lines written at or after `since`, oldest first; `project_id` None: every project's."""
    query = select(AuditEntry).where(AuditEntry.created_at >= since)
    if project_id is not None:
        query = query.where(AuditEntry.project_id == project_id)
    rows = session.scalars(query.order_by(AuditEntry.created_at, AuditEntry.id))
    return [AuditRecord(r.created_at, r.project_id, r.user_id, r.action, r.object_type, r.object_id,
                        r.object_name, r.details, r.request_id) for r in rows]
