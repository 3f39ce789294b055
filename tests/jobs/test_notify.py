"""Job notifications: built from the job record, the outcome and the facts its kind's
handler gives; the jobs layer reads no domain table to build them."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cairn.clock import utcnow
from cairn.db.database import Database
from cairn.db.models import Job
from cairn.errors import Unavailable
from cairn.jobs import notify, records
from cairn.jobs.notify import notifying
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, JobRunner, Outcome
from cairn.workloads.notices import NOTICE_FACTS
from cairn.workloads.snapshot_job import JOB_SNAPSHOT
from tests.api.test_snapshots import take_snapshot, wait_snapshot
from tests.api.test_workloads import create_workload, wait_status
from tests.conftest import Service


class RecordingNotifier:
    """Keeps every notification in the order sent, as oslo's Notifier would send them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        self.sent.append(("info", event_type, payload))

    def error(self, ctxt: dict[str, Any], event_type: str, payload: dict[str, Any]) -> None:
        self.sent.append(("error", event_type, payload))


class CopyJob:
    """A job kind that succeeds, or fails with `failure`, and records how it was settled."""

    def __init__(self, failure: str | None = None) -> None:
        self.failure = failure
        self.settled: list[str] = []

    def run(self, job: JobContext) -> None:
        if self.failure:
            raise Unavailable(self.failure)

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        self.settled.append(outcome.state)


def copied_bytes(session: Session, job: JobRecord) -> Mapping[str, Any]:
    return {"size": job.payload["bytes"], "label": f"copy of {job.subject_id}"}


def run_copy(database: Database, handler: CopyJob, facts: Mapping[str, notify.Facts]) -> tuple[str, RecordingNotifier]:
    notifier = RecordingNotifier()
    with database.unit_of_work() as session:
        job_id = records.create_job(session, "copy", "p1", utcnow(), workload_id="w1", subject_id="s1",
                                    payload={"bytes": 4096})
    handlers = notifying({"copy": handler}, {"copy": "copy.run"}, notifier, database, facts)
    JobRunner(database, handlers, "host:1", timedelta(seconds=30), utcnow).run(job_id)
    return job_id, notifier


def test_end_notification_carries_the_job_record_and_the_facts_its_kind_gives(sqlite_database: Database) -> None:
    handler = CopyJob()
    job_id, notifier = run_copy(sqlite_database, handler, {"copy": copied_bytes})
    ids = {"job_id": job_id, "kind": "copy", "project_id": "p1", "workload_id": "w1", "subject_id": "s1"}
    (start_level, start, start_payload), (end_level, end, end_payload) = notifier.sent
    assert (start_level, start, start_payload) == ("info", "copy.run.start", ids)
    assert (end_level, end) == ("info", "copy.run.end")
    duration = end_payload.pop("duration_seconds")
    assert duration >= 0
    assert end_payload == {**ids, "state": "succeeded", "error": None, "size": 4096, "label": "copy of s1"}
    assert handler.settled == ["succeeded"]


def test_a_failed_job_notifies_an_error_with_its_message_and_facts(sqlite_database: Database) -> None:
    _job_id, notifier = run_copy(sqlite_database, CopyJob(failure="the target went away"), {"copy": copied_bytes})
    level, event, payload = notifier.sent[-1]
    assert (level, event) == ("error", "copy.run.error")
    assert payload["state"] == "failed" and payload["error"] == "the target went away" and payload["size"] == 4096


def test_facts_that_fail_leave_the_job_ended_and_the_notice_without_them(sqlite_database: Database) -> None:
    def broken(session: Session, job: JobRecord) -> Mapping[str, Any]:
        raise KeyError("no such field")

    job_id, notifier = run_copy(sqlite_database, CopyJob(), {"copy": broken})
    level, event, payload = notifier.sent[-1]
    assert (level, event) == ("info", "copy.run.end") and "size" not in payload
    with sqlite_database.reader() as session:
        assert session.scalar(sa.select(Job.state).where(Job.id == job_id)) == "succeeded"


def test_a_kind_without_facts_notifies_the_job_record_alone(sqlite_database: Database) -> None:
    _job_id, notifier = run_copy(sqlite_database, CopyJob(), {})
    payload = notifier.sent[-1][2]
    assert set(payload) == {"job_id", "kind", "project_id", "workload_id", "subject_id", "state", "error",
                            "duration_seconds"}


def test_the_notifier_reads_no_domain_table() -> None:
    tree = ast.parse(Path(notify.__file__).read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in imported if m.startswith(("cairn.db.models", "cairn.workloads"))], imported


def test_snapshot_facts_say_what_the_api_shows_of_the_snapshot(api: Service) -> None:
    token = api.token()
    workload = create_workload(api, token, [api.add_instance()])["id"]
    wait_status(api, token, workload, "available")
    snapshot_id = take_snapshot(api, token, workload)["id"]
    shown = wait_snapshot(api, token, snapshot_id)
    with api.runtime.database.reader() as session:
        row = session.scalars(sa.select(Job).where(Job.subject_id == snapshot_id, Job.kind == JOB_SNAPSHOT)).one()
        facts = NOTICE_FACTS[JOB_SNAPSHOT](session, records._record(row))
    assert facts["snapshot_id"] == snapshot_id and facts["status"] == "available"
    assert facts["size"] == shown["size"] and facts["restore_size"] == shown["restore_size"]
    assert facts["size"] > 0 and facts["created_at"] and facts["finished_at"]
