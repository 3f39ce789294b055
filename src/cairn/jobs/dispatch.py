"""Dispatchers: how a committed job reaches a runner.

`InProcessDispatcher` (the embedded default) hands job ids to a thread pool in this
process. A broker-backed dispatcher implements the same one-method interface.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from cairn.db.database import after_commit
from cairn.jobs import records
from cairn.jobs.records import WORKER_KEY
from cairn.jobs.runner import JobRunner

__all__ = ["WORKER_KEY", "Dispatcher", "InProcessDispatcher", "enqueue"]

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, job_id: str) -> None:
        """Ring the doorbell for a committed job (at most a hint: the row is the truth)."""
        ...


class InProcessDispatcher:
    def __init__(self, runner: JobRunner, threads: int) -> None:
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="job")

    def dispatch(self, job_id: str) -> None:
        future = self._pool.submit(self._runner.run, job_id)
        future.add_done_callback(_log_crash)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _log_crash(future) -> None:  # type: ignore[no-untyped-def]
    if not future.cancelled() and future.exception() is not None:
        log.error("job runner crashed", exc_info=future.exception())


def enqueue(session: Session, dispatcher: Dispatcher, kind: str, project_id: str, now: datetime,
            **fields: Any) -> str:
    """Create a job row in `session` and ring the doorbell once the session commits."""
    job_id = records.create_job(session, kind, project_id, now, **fields)
    after_commit(session, lambda: dispatcher.dispatch(job_id))
    return job_id
