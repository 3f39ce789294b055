"""Import as a job (`POST /workloads/import_workloads`): the workloads a backup target
describes come back as rows, one workload per transaction, with progress on the job.

The request is checked and the job queued in the caller's unit of work; the job lists
the catalogs of the chosen targets (every configured one unless the request names one),
then imports each workload (`importer.import_entry`) in a transaction of its own that
also records the job's progress and report: a crash loses at most the workload being
imported, and a job run again skips the workloads it imported already (their rows are
live). The job's payload carries, for `GET /workloads/import_workloads/{job_id}`:

    {"target": NAME | null, "workload_ids": [...], "progress_percent": 0..100,
     "progress_msg": "...", "imported_workloads": [...], "imported_snapshots": [...],
     "skipped": ["workload ID: why", ...]}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cairn.db.database import reconnecting
from cairn.db.models import Job
from cairn.errors import NotFound
from cairn.jobs import records as jobs
from cairn.jobs.dispatch import Dispatcher, enqueue
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobContext, Outcome
from cairn.workloads.importer import ImportReport, ManifestCache, import_entry, target_entries
from cairn.workloads.storage import BackupTargets

JOB_IMPORT = "import"


@dataclass(frozen=True)
class ImportStatus:
    id: str
    state: str
    progress_percent: int
    progress_msg: str
    imported_workloads: list[str]
    imported_snapshots: list[str]
    skipped: list[str]
    error_msg: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def status(self) -> str:
        """The job's state as the API says it (queued, running, available, error, cancelled)."""
        return {jobs.SUCCEEDED: "available", jobs.FAILED: "error"}.get(self.state, self.state)


def request_import(session: Session, dispatcher: Dispatcher, targets: BackupTargets, project_id: str,
                   workload_ids: list[str], target: str | None, now: datetime) -> str:
    """Check the request and queue the import job; its id."""
    if target is not None:
        targets.get(target)  # NotFound names an unknown target
    payload: dict[str, Any] = {"target": target, "workload_ids": sorted(set(workload_ids)),
                               "progress_percent": 0, "progress_msg": "Waiting to start.",
                               "imported_workloads": [], "imported_snapshots": [], "skipped": []}
    return enqueue(session, dispatcher, JOB_IMPORT, project_id, now, payload=payload)


def import_status(session: Session, job_id: str) -> ImportStatus:
    row = session.get(Job, job_id)
    if row is None or row.kind != JOB_IMPORT:
        raise NotFound(f"Import job {job_id} could not be found.")
    payload = dict(row.payload or {})
    return ImportStatus(id=row.id, state=row.state, progress_percent=int(payload.get("progress_percent", 0)),
                        progress_msg=str(payload.get("progress_msg", "")),
                        imported_workloads=list(payload.get("imported_workloads", [])),
                        imported_snapshots=list(payload.get("imported_snapshots", [])),
                        skipped=list(payload.get("skipped", [])), error_msg=row.error,
                        created_at=row.created_at, finished_at=row.finished_at)


def _save(session: Session, job_id: str, report: ImportReport, percent: int, message: str) -> None:
    payload = dict(session.scalar(select(Job.payload).where(Job.id == job_id)) or {})
    payload.update(progress_percent=percent, progress_msg=message, imported_workloads=list(report.workloads),
                   imported_snapshots=list(report.snapshots), skipped=list(report.skipped))
    session.execute(update(Job).where(Job.id == job_id).values(payload=payload))


class ImportJob:
    """Imports the workloads a request named (all when none) from the chosen targets."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime]) -> None:
        self.targets = targets
        self.clock = clock

    def run(self, job: JobContext) -> None:
        payload = job.record.payload
        names = [payload["target"]] if payload.get("target") else [t.name for t in self.targets]
        wanted = set(payload.get("workload_ids") or []) or None
        items = target_entries(self.targets, names, wanted)
        report = ImportReport()
        if wanted:
            described = {item.entry.workload.id for item in items}
            report.skipped.extend(f"workload {w}: no backup target describes it" for w in sorted(wanted - described))
        manifests = ManifestCache(self.targets)
        total = len(items)
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                _save(session, job.record.id, report, 0, f"Importing {total} workload(s).")
        for done, item in enumerate(items, start=1):
            job.checkpoint()
            attempt_report = ImportReport(list(report.workloads), list(report.snapshots), list(report.skipped))
            for attempt in reconnecting():
                with attempt, job.database.unit_of_work() as session:
                    attempt_report = ImportReport(list(report.workloads), list(report.snapshots),
                                                  list(report.skipped))
                    import_entry(session, item, manifests, self.clock(), attempt_report)
                    _save(session, job.record.id, attempt_report, int(100 * done / total) if done < total else 99,
                          f"Imported {done} of {total} workload(s).")
            report = attempt_report
        for attempt in reconnecting():
            with attempt, job.database.unit_of_work() as session:
                _save(session, job.record.id, report, 100,
                      f"{len(report.workloads)} workload(s), {len(report.snapshots)} snapshot(s) imported.")

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        """Nothing to put right: each imported workload committed with its progress."""
