"""Clean-up after a job that did not finish: a `cleanup` job removes what it wrote.

A job that writes outside the database records *what* it will write in its job row
(`jobs.destinations`) before it writes it (`plan_destinations`). When such a job fails,
is cancelled, or is reaped after its worker died, its settlement (in the job's closing
transaction, wherever that runs: the worker, or the reaper in `cairn scheduler`) never
touches a disk or a target itself: it queues a `cleanup` job (`request_cleanup`) routed
like the job it cleans up after (same `worker`, so the host that wrote the files), and
that job removes every destination the row lists. The worker that settles its own job
runs the clean-up at once (`cairn.jobs.runner.follow_up`); after a worker died, the
clean-up waits, queued, until a worker of that name runs again.

Destinations (JSON objects in the list):

- `{"file": PATH}`: a file the job creates (a restored disk beside the original). Removed,
  with the data engine's temporary files of it (`.NAME.cairn-partial-*` in its directory,
  the name under which a disk is written until it is complete).
- `{"temporaries_of": PATH}`: a file the job overwrites in place (an in-place restore's
  original disk). Only the engine's temporary files of it are removed; the file itself
  never is.
- `{"snapshot": ID, "target": NAME, "project_id": P, "workload_id": W}` (and `secret_uuid`
  for an encrypted workload): a snapshot's data on a backup target. Its catalog file goes
  first, then its manifests, so the target never describes a snapshot it cannot restore;
  the chunks go at the next garbage collection.
- `{"workload": ID, "target": NAME, "project_id": P}`: all of a workload's data in one
  project on a target (its catalog, then every manifest it has there): the copy a
  failed reassign made in the new project, or the old project's after one succeeded.

- `{"openstack": KIND, ...}` (a volume, port or server a restore made in the cloud): the
  platform deletes it (`Platform.remove_created`), by its id once it is known, else by
  the restore's mark on it.

Destinations are removed newest first (a server before the ports and volumes it holds).
Every removal finds what is already gone and carries on, so a clean-up is safe to run
twice (a worker that died mid-clean-up, a doorbell rung twice). A clean-up whose worker
died is queued again; one that failed stays `failed` with the reason, and the files it
could not remove are named in the log.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cairn.db.database import reconnecting
from cairn.errors import Conflict, Unavailable
from cairn.jobs import records as jobs
from cairn.jobs.reaper import LEASE_LOST
from cairn.jobs.records import JobRecord
from cairn.jobs.runner import JobCancelled, JobContext, Outcome, follow_up
from cairn.platforms.base import Platform
from cairn.workloads.storage import BackupTargets, RepositoryMissing
from cairn.workloads.target_data import WorkloadData

log = logging.getLogger(__name__)

JOB_CLEANUP = "cleanup"
#: the clean-up job's payload key naming the job it cleans up after
ORIGIN_KEY = "of_job"
#: the key of a destination the platform made (a cloud resource: `Platform.remove_created`)
PLATFORM_KEY = "openstack"
#: how the data engine names a file it is still writing (cairn/engine/restore.py)
PARTIAL_INFIX = ".cairn-partial-"


class CleanupFailed(Unavailable):
    """Something a job wrote could not be removed (the disk or its directory refused);
    the clean-up may succeed when it runs again."""


def created_file(path: str) -> dict[str, Any]:
    """A destination: a file the job creates."""
    return {"file": path}


def overwritten_file(path: str) -> dict[str, Any]:
    """A destination: a file the job overwrites in place (never removed itself)."""
    return {"temporaries_of": path}


def snapshot_data(target: str, project_id: str, workload_id: str, snapshot_id: str,
                  secret_uuid: str | None = None) -> dict[str, Any]:
    """A destination: a snapshot's manifests and catalog file on a backup target (in an
    encrypted workload's own repository when `secret_uuid` names its secret)."""
    destination = {"snapshot": snapshot_id, "target": target, "project_id": project_id, "workload_id": workload_id}
    if secret_uuid:
        destination["secret_uuid"] = secret_uuid
    return destination


def workload_data(target: str, project_id: str, workload_id: str) -> dict[str, Any]:
    """A destination: all of a workload's catalog and manifests in one project on a target."""
    return {"workload": workload_id, "target": target, "project_id": project_id}


def plan_destinations(session: Session, job: JobRecord, destinations: list[dict[str, Any]]) -> None:
    """Record, before writing them, what a running job will write outside the database.

    Raises JobCancelled when the job is no longer this claim's (the reaper failed it):
    its settlement has already queued the clean-up of what it listed then."""
    if not jobs.record_destinations(session, job.id, job.owner, destinations):
        raise JobCancelled("The job's lease was lost.")


def request_cleanup(session: Session, job: JobRecord, now: datetime,
                    also: Iterable[dict[str, Any]] = ()) -> str | None:
    """From a settlement: queue the clean-up of what `job` recorded (and of `also`, which
    is added to its record first), routed like `job`. None when there is nothing to remove."""
    extra = list(also)
    if extra:
        jobs.add_destinations(session, job.id, extra)
    if not jobs.job_destinations(session, job.id):
        return None
    payload: dict[str, Any] = {ORIGIN_KEY: job.id}
    worker = job.payload.get(jobs.WORKER_KEY)
    if worker:
        payload[jobs.WORKER_KEY] = worker
    return follow_up(session, JOB_CLEANUP, job.project_id, now, payload=payload)


class CleanupJob:
    """Removes the destinations its origin job recorded (see the module's docstring)."""

    def __init__(self, targets: BackupTargets, clock: Callable[[], datetime], platform: Platform | None = None) -> None:
        self.targets = targets
        self.clock = clock
        self.platform = platform

    def run(self, job: JobContext) -> None:
        origin = job.record.payload.get(ORIGIN_KEY)
        if not origin:
            raise Conflict(f"Clean-up job {job.record.id} names no job to clean up after.")
        for attempt in reconnecting():
            with attempt, job.database.reader() as session:
                destinations = jobs.job_destinations(session, str(origin))
        for destination in reversed(destinations):  # undone newest first
            job.checkpoint()
            self.remove(destination)
        log.info("cleaned up after job %s: %d destinations", origin, len(destinations))

    def remove(self, destination: dict[str, Any]) -> None:
        """Remove one destination; what is already gone is skipped."""
        if "file" in destination:
            _remove_temporaries(destination["file"])
            _remove_file(destination["file"])
        elif "temporaries_of" in destination:
            _remove_temporaries(destination["temporaries_of"])
        elif PLATFORM_KEY in destination:
            if self.platform is None:
                raise CleanupFailed(f"No platform here removes {destination!r}.")
            self.platform.remove_created(destination)
        elif "workload" in destination:
            data = WorkloadData(self.targets, destination["target"], destination["project_id"],
                                destination["workload"])
            try:
                data.remove_all()
            except RepositoryMissing:  # nothing was copied there: the catalog went, that is all
                pass
        elif "snapshot" in destination:
            WorkloadData(self.targets, destination["target"], destination["project_id"],
                         destination["workload_id"], destination.get("secret_uuid")
                         ).remove_snapshot(destination["snapshot"])
        else:
            raise CleanupFailed(f"Unknown clean-up destination {destination!r}.")

    def settle(self, session: Session, job: JobRecord, outcome: Outcome) -> None:
        if outcome.state == jobs.SUCCEEDED:
            return
        if outcome.state == jobs.FAILED and outcome.error == LEASE_LOST:
            # its worker died mid-way: the next run finds what it removed already gone
            follow_up(session, JOB_CLEANUP, job.project_id, self.clock(), payload=dict(job.payload))
            return
        log.warning("clean-up after job %s ended %s: %s", job.payload.get(ORIGIN_KEY), outcome.state,
                    outcome.error)


def _remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CleanupFailed(f"Could not remove {path}: {exc.strerror or exc}.") from exc


def _remove_temporaries(path: str) -> None:
    directory, name = os.path.split(os.path.abspath(path))
    for partial in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}{PARTIAL_INFIX}*")):
        _remove_file(partial)
