"""What a snapshot or restore job's end notification says about its subject.

The jobs layer announces jobs (`cairn.jobs.notify`) but reads no domain table; these
functions, given to it per job kind by `cairn.runtime`, read the subject's row in the
job's closing transaction, after its handler settled it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cairn.db.models import Restore, Snapshot
from cairn.jobs.notify import Facts
from cairn.jobs.records import JobRecord
from cairn.workloads.restore_job import JOB_RESTORE
from cairn.workloads.snapshot_job import JOB_SNAPSHOT


def snapshot_facts(session: Session, job: JobRecord) -> dict[str, Any]:
    """The snapshot's id, status, sizes and times; nothing if it is gone."""
    # populate_existing: settle may have changed the row with a bulk UPDATE
    snapshot = session.get(Snapshot, job.subject_id, populate_existing=True) if job.subject_id else None
    if snapshot is None:
        return {}
    return {"snapshot_id": snapshot.id, "status": snapshot.status, "size": snapshot.size,
            "uploaded_size": snapshot.uploaded_size, "restore_size": snapshot.restore_size,
            "created_at": _iso(snapshot.created_at), "finished_at": _iso(snapshot.finished_at)}


def restore_facts(session: Session, job: JobRecord) -> dict[str, Any]:
    """The restore's id, its snapshot, status, sizes and times; nothing if it is gone."""
    restore = session.get(Restore, job.subject_id, populate_existing=True) if job.subject_id else None
    if restore is None:
        return {}
    return {"restore_id": restore.id, "snapshot_id": restore.snapshot_id, "status": restore.status,
            "size": restore.size, "uploaded_size": restore.uploaded_size,
            "created_at": _iso(restore.created_at), "finished_at": _iso(restore.finished_at)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


#: job kind → the facts its end notification carries
NOTICE_FACTS: Mapping[str, Facts] = {JOB_SNAPSHOT: snapshot_facts, JOB_RESTORE: restore_facts}
