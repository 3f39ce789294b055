"""Notifications (`workload.create.start`, `snapshot.create.end`, ...) from the job layer.

`NotifyingHandler` wraps a job handler: `<event>.start` when a worker begins the job,
`<event>.end` or `<event>.error` once the job's closing transaction has committed (so a
listener never hears of an ending that rolled back). The reaper settles expired jobs
through the same handler, so a worker that died still yields `<event>.error`. The domain
code is not touched: which job kinds notify, and under which event name, is a mapping
given by whoever builds the handlers (`cairn.runtime`).

Payloads carry the ids, the project, timings and, for snapshots and restores, the sizes
read from the subject's row after it settled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from cairn.db.database import Database, after_commit
from cairn.db.models import Restore, Snapshot
from cairn.jobs import records
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobHandler, Outcome

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """What `oslo_messaging.Notifier` offers that this module uses."""

    def info(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None: ...

    def error(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None: ...


class NotifyingHandler:
    """A job handler that announces its job's start and end."""

    def __init__(self, inner: JobHandler, event: str, notifier: Notifier, database: Database) -> None:
        self.inner = inner
        self.event = event
        self._notifier = notifier
        self._database = database
        # job id → when this process began it. An entry stays behind only when this
        # process lost the job's lease (another settled it): rare, and a float each.
        self._started: dict[str, float] = {}

    def run(self, job: JobContext) -> None:
        self._started[job.record.id] = time.monotonic()
        self._send("info", f"{self.event}.start", self._payload(job.record))
        self.inner.run(job)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        self.inner.settle(session, job, outcome)
        started = self._started.pop(job.id, None)
        payload = self._payload(job, outcome, session)
        if started is not None:  # unknown when the reaper settles another process's job
            payload["duration_seconds"] = round(time.monotonic() - started, 3)
        if outcome.state == records.SUCCEEDED:
            after_commit(session, lambda: self._send("info", f"{self.event}.end", payload))
        else:
            after_commit(session, lambda: self._send("error", f"{self.event}.error", payload))

    def _payload(self, job: JobRecord, outcome: Outcome | None = None,
                 session: Session | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"job_id": job.id, "kind": job.kind, "project_id": job.project_id,
                                   "workload_id": job.workload_id, "subject_id": job.subject_id}
        if outcome is not None:
            payload.update(state=outcome.state, error=outcome.error)
        if session is not None and job.subject_id:
            payload.update(_subject_facts(session, job.subject_id))
        return payload

    def _send(self, level: str, event_type: str, payload: dict[str, Any]) -> None:
        try:
            getattr(self._notifier, level)({}, event_type, payload)
        except Exception:  # a notification is never worth failing a job over
            log.warning("could not send notification %s", event_type, exc_info=True)


def _subject_facts(session: Session, subject_id: str) -> dict[str, Any]:
    # populate_existing: settle may have changed the row with a bulk UPDATE
    snapshot = session.get(Snapshot, subject_id, populate_existing=True)
    if snapshot is not None:
        return {"snapshot_id": snapshot.id, "status": snapshot.status, "size": snapshot.size,
                "uploaded_size": snapshot.uploaded_size, "restore_size": snapshot.restore_size,
                "created_at": _iso(snapshot.created_at), "finished_at": _iso(snapshot.finished_at)}
    restore = session.get(Restore, subject_id, populate_existing=True)
    if restore is not None:
        return {"restore_id": restore.id, "snapshot_id": restore.snapshot_id, "status": restore.status,
                "size": restore.size, "uploaded_size": restore.uploaded_size,
                "created_at": _iso(restore.created_at), "finished_at": _iso(restore.finished_at)}
    return {}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def notifying(handlers: Mapping[str, JobHandler], events: Mapping[str, str], notifier: Notifier,
              database: Database) -> dict[str, JobHandler]:
    """`handlers` with those whose kind is in `events` wrapped to notify under that name."""
    return {kind: NotifyingHandler(handler, events[kind], notifier, database) if kind in events else handler
            for kind, handler in handlers.items()}
