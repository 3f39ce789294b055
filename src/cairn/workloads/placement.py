"""Where a workload's disk jobs run: on the worker that reaches its instances' disks.

A platform says, per instance, which worker host reaches its disks (`InstanceInfo.host`,
None when every worker does). Jobs that read or write those disks (confirming a new
workload, a snapshot, a restore) carry that host in their payload as `worker`, and the
broker dispatcher casts them to that worker's own queue (`cairn.jobs.messaging`). Jobs
that only touch the backup target (deleting a snapshot or a workload, reset) run on any
worker. The embedded default runs every job in its own process and ignores the field.

One job runs on one worker, so a workload's instances must share one host (or name
none); instances on several hosts are refused with the hosts named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.db.models import WorkloadInstance
from cairn.errors import Conflict
from cairn.jobs.dispatch import WORKER_KEY
from cairn.platforms.base import InstanceInfo, Platform


def worker_for(instances: Iterable[InstanceInfo]) -> str | None:
    """The one host reaching every disk of `instances`, or None when any worker can."""
    by_host: dict[str, list[str]] = {}
    for instance in instances:
        if instance.host:
            by_host.setdefault(instance.host, []).append(instance.name)
    if len(by_host) > 1:
        where = "; ".join(f"{host}: {', '.join(sorted(names))}" for host, names in sorted(by_host.items()))
        raise Conflict(f"The instances are on different worker hosts ({where}); one job reads every disk of "
                       "a workload on one host, so make one workload per host.")
    return next(iter(by_host), None)


def routing(worker: str | None) -> dict[str, Any]:
    """The job payload entries that send a job to `worker` (none: any worker)."""
    return {WORKER_KEY: worker} if worker else {}


def workload_routing(session: Session, platform: Platform, project_id: str, workload_id: str) -> dict[str, Any]:
    """The payload entries routing a job on `workload_id`'s disks, asked of the platform now
    (an instance may have moved since the workload was made)."""
    instance_ids = list(session.scalars(select(WorkloadInstance.instance_id)
                                        .where(WorkloadInstance.workload_id == workload_id)
                                        .order_by(WorkloadInstance.position)))
    return instances_routing(platform, project_id, instance_ids)


def instances_routing(platform: Platform, project_id: str, instance_ids: list[str]) -> dict[str, Any]:
    """The payload entries routing a job on the disks of these instances (those that still exist)."""
    if not instance_ids:
        return {}
    return routing(worker_for(platform.find_instances(project_id, instance_ids).values()))
