"""Notifications (`workload.create.start`, `snapshot.create.end`, ...) from the job layer.

`NotifyingHandler` wraps a job handler: `<event>.start` when a worker begins the job,
`<event>.end` or `<event>.error` once the job's closing transaction has committed (so a
listener never hears of an ending that rolled back). The reaper settles expired jobs
through the same handler, so a worker that died still yields `<event>.error`. The domain
code is not touched: which job kinds notify, under which event name, and what each kind
adds to its payload are mappings given by whoever builds the handlers (`cairn.runtime`).

A payload is built from the job record (ids, project, kind), the outcome (state, error),
how long this process ran the job, and, at the end, the `Facts` of the job's kind: a
function given with the handler that says what the job's subject became (for snapshots
and restores their status, sizes and times, from `cairn.workloads.notices`). This module
reads no domain table itself: the jobs layer sits below the domain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session

from cairn.db.database import Database, after_commit
from cairn.jobs import records
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobHandler, Outcome

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """What `oslo_messaging.Notifier` offers that this module uses."""

    def info(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None: ...

    def error(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None: ...


#: What a job's subject became, for its end notification: called in the job's closing
#: transaction, after the handler settled it; the keys join the payload.
Facts = Callable[[Session, JobRecord], Mapping[str, Any]]


class NotifyingHandler:
    """A job handler that announces its job's start and end."""

    def __init__(self, inner: JobHandler, event: str, notifier: Notifier, database: Database,
                 facts: Facts | None = None) -> None:
        self.inner = inner
        self.event = event
        self._notifier = notifier
        self._database = database
        self._facts = facts
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
        if session is not None and self._facts is not None:
            try:
                payload.update(self._facts(session, job))
            except Exception:  # the job's end must commit even when its notice is poorer
                log.warning("could not gather the facts of job %s for its notification", job.id, exc_info=True)
        return payload

    def _send(self, level: str, event_type: str, payload: dict[str, Any]) -> None:
        try:
            getattr(self._notifier, level)({}, event_type, payload)
        except Exception:  # a notification is never worth failing a job over
            log.warning("could not send notification %s", event_type, exc_info=True)


class FanOut:
    """One notifier that tells each of several (the broker's, the mailer) in turn; one
    that fails does not keep the others from hearing."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    def info(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        self._each("info", ctxt, event_type, payload)

    def error(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        self._each("error", ctxt, event_type, payload)

    def _each(self, level: str, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        for notifier in self.notifiers:
            try:
                getattr(notifier, level)(ctxt, event_type, payload)
            except Exception:  # a notification is never worth failing a job over
                log.warning("could not send notification %s", event_type, exc_info=True)


def notifying(handlers: Mapping[str, JobHandler], events: Mapping[str, str], notifier: Notifier,
              database: Database, facts: Mapping[str, Facts] | None = None) -> dict[str, JobHandler]:
    """`handlers` with those whose kind is in `events` wrapped to notify under that name,
    their end payloads completed by `facts[kind]` when there is one."""
    facts = facts or {}
    return {kind: NotifyingHandler(handler, events[kind], notifier, database, facts.get(kind))
            if kind in events else handler
            for kind, handler in handlers.items()}
