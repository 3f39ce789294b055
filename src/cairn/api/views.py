"""Views: the exact JSON shapes of the workloadmgr API, built from domain records.

The key order and types follow the seed document's examples; `tests/api` compares
them key by key.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cairn.clock import isoformat
from cairn.workloads.audit import AuditRecord
from cairn.workloads.jobschedule import JobSchedule, next_fire_time
from cairn.workloads.policies import FIELDS as POLICY_FIELDS
from cairn.workloads.policies import PolicyRecord
from cairn.workloads.project_settings import SettingRecord
from cairn.workloads.quotas import QuotaRecord, QuotaType
from cairn.workloads.records import StorageUsage, WorkloadRecord, WorkloadSummary
from cairn.workloads.restore_records import RestoreRecord
from cairn.workloads.snapshot_records import SnapshotRecord
from cairn.workloads.trust_records import TrustRecord


class Links:
    """Builds `links` for a resource from the endpoint the client sees."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def __call__(self, project_id: str, kind: str, resource_id: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{self.endpoint}/v1/{project_id}/{kind}/{resource_id}"},
                {"rel": "bookmark", "href": f"{self.endpoint}/{project_id}/{kind}/{resource_id}"}]


def workload_summary(w: WorkloadSummary | WorkloadRecord, links: Links) -> dict[str, Any]:
    return {
        "project_id": w.project_id,
        "user_id": w.user_id,
        "id": w.id,
        "name": w.name,
        "snapshots_info": "",
        "description": w.description,
        "workload_type_id": w.workload_type_id,
        "status": w.status,
        "created_at": isoformat(w.created_at),
        "updated_at": isoformat(w.updated_at),
        "scheduler_trust": None,
        "links": links(w.project_id, "workloads", w.id),
    }


def workload_detail(w: WorkloadRecord, links: Links, *, appliance_timezone: str,
                    global_jobscheduler: bool, backup_target_label: Callable[[str], str] | None,
                    now: datetime) -> dict[str, Any]:
    """`backup_target_label` (admins only) names the target in `metadata.backup_media_target`."""
    metadata = dict(w.metadata)
    if backup_target_label is not None and w.backup_target:
        metadata["backup_media_target"] = backup_target_label(w.backup_target)
    return {
        "created_at": isoformat(w.created_at),
        "updated_at": isoformat(w.updated_at),
        "id": w.id,
        "user_id": w.user_id,
        "project_id": w.project_id,
        "availability_zone": w.availability_zone,
        "workload_type_id": w.workload_type_id,
        "name": w.name,
        "description": w.description,
        "interval": None,
        "storage_usage": storage_usage_view(w.storage),
        "instances": [{"id": i.id, "name": i.name, "metadata": i.metadata} for i in w.instances],
        "metadata": metadata,
        "jobschedule": jobschedule_view(w, appliance_timezone, global_jobscheduler, now),
        "status": w.status,
        "error_msg": w.error_msg,
        "links": links(w.project_id, "workloads", w.id),
        "scheduler_trust": scheduler_trust_view(w),
        "encryption": w.encryption,
        "secret_uuid": w.secret_uuid,
    }


def scheduler_trust_view(w: WorkloadRecord) -> dict[str, Any] | None:
    """The trust a workload's scheduled work acts through: whether the schedule is on,
    the trust's id (as /trusts names it) and whether Keystone still honours it."""
    if not w.scheduler_trust:
        return None
    return {"scheduler_enabled": bool((w.jobschedule or {}).get("enabled", False)),
            "trust": w.scheduler_trust.get("trust"), "is_valid": bool(w.scheduler_trust.get("is_valid"))}


def trust_view(t: TrustRecord) -> dict[str, Any]:
    """A Keystone trust to Cairn as Trilio's /trusts shows one: a setting of category
    `identity` whose `value` is the Keystone trust id, its role in `metadata`."""
    facts = [("role_name", ",".join(t.role_names)), ("is_cloud_trust", str(t.is_cloud_trust))]
    if t.workload_id:
        facts.append(("workload_id", t.workload_id))
    return {
        "id": t.id,
        "name": t.id,
        "project_id": t.project_id,
        "user_id": t.user_id,
        "value": t.keystone_trust_id,
        "description": f"token id for user {t.user_id} project {t.project_id}",
        "category": "identity",
        "type": "trust_id",
        "public": False,
        "hidden": t.hidden,
        "status": t.status,
        "created_at": isoformat(t.created_at),
        "updated_at": isoformat(t.updated_at) if t.updated_at else None,
        "deleted_at": None,
        "deleted": False,
        "metadata": [{"id": f"{t.id}-{key}", "settings_name": t.id, "settings_project_id": t.project_id,
                      "key": key, "value": value} for key, value in facts],
    }


def storage_usage_view(usage: StorageUsage) -> dict[str, Any]:
    return {
        "usage": usage.full_bytes + usage.incremental_bytes,
        "full": {"snap_count": usage.full_count, "usage": usage.full_bytes},
        "incremental": {"snap_count": usage.incremental_count, "usage": usage.incremental_bytes},
    }


def jobschedule_view(w: WorkloadRecord, appliance_timezone: str, global_jobscheduler: bool,
                     now: datetime) -> dict[str, Any]:
    """The workload's jobschedule as shown (`global_jobscheduler` then `nextrun` last)."""
    view = dict(_static_view(_frozen(w.jobschedule), appliance_timezone))
    view["global_jobscheduler"] = global_jobscheduler
    if global_jobscheduler and view["enabled"] and w.schedule_paused_at is None:  # paused: nothing runs next
        seconds = nextrun(w.next_fire_at, w.jobschedule, now)
        if seconds is not None:
            view["nextrun"] = seconds
    return view


def nextrun(next_fire_at: datetime | None, stored_schedule: dict[str, Any], now: datetime) -> int | None:
    """Whole seconds (rounded up) until an enabled schedule next fires. They come from the
    workload's stored next fire time (kept by the scheduler) while that is ahead;
    computing it from the schedule is the rare case."""
    if next_fire_at is not None and next_fire_at > now:
        return math.ceil((next_fire_at - now).total_seconds())
    aware_now = now.replace(tzinfo=UTC)
    upcoming = next_fire_time(JobSchedule.from_storage(stored_schedule), aware_now)
    if upcoming is None:
        return None
    return math.ceil((upcoming - aware_now).total_seconds())


def _frozen(stored: dict[str, Any]) -> str:
    # a tiered schedule nests objects: its canonical JSON is the hashable key
    return json.dumps(stored, sort_keys=True)


@functools.lru_cache(maxsize=4096)
def _static_view(stored: str, appliance_timezone: str) -> dict[str, Any]:
    # Every field but nextrun depends on the stored schedule alone, and most workloads
    # share a handful of schedules: parse and format each one once.
    view = JobSchedule.from_storage(json.loads(stored)).wire(
        appliance_timezone=appliance_timezone, global_jobscheduler=False, now=datetime.now(UTC))
    view.pop("nextrun", None)
    return view


def workload_type(row: Any, project_id: str, links: Links) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description,
            "is_public": row.is_public, "status": row.status, "metadata": dict(row.meta or {}),
            "links": links(project_id, "workload_types", row.id)}


def policy(p: PolicyRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "field_values": [{"policy_field_name": name, "value": p.field_values[name]}
                         for name in POLICY_FIELDS if name in p.field_values],
        "policy_assignments": [{"project_id": project, "policy_name": p.name}
                               for project in p.assignments],
        "metadata": p.metadata,
        "created_at": isoformat(p.created_at),
    }


def snapshot_summary(s: SnapshotRecord, links: Links) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "workload_id": s.workload_id,
        "project_id": s.project_id,
        "user_id": s.user_id,
        "snapshot_type": s.snapshot_type,
        "status": s.status,
        "created_at": isoformat(s.created_at),
        "updated_at": isoformat(s.updated_at),
        "finished_at": isoformat(s.finished_at),
        "size": s.size,
        "restore_size": s.restore_size,
        "uploaded_size": s.uploaded_size,
        "progress_percent": s.progress_percent,
        "progress_msg": s.progress_msg,
        "error_msg": s.error_msg,
        "warning_msg": s.warning_msg,
        "time_taken": s.time_taken,
        "host": s.host,
        "pinned": s.pinned,
        "links": links(s.project_id, "snapshots", s.id),
    }


def snapshot_detail(s: SnapshotRecord, links: Links) -> dict[str, Any]:
    body = snapshot_summary(s, links)
    body["instances"] = [{"id": i.id, "name": i.name, "metadata": i.metadata,
                          "vdisks": [{"id": d.id, "name": d.name, "size": d.size, "format": d.format,
                                      "restore_size": d.restore_size, "bytes_read": d.bytes_read}
                                     for d in i.vdisks]}
                         for i in s.instances]
    body["metadata"] = s.metadata
    if s.schedule_tiers is not None:
        body["schedule_tiers"] = list(s.schedule_tiers)
    return body


def restore(r: RestoreRecord, links: Links) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "snapshot_id": r.snapshot_id,
        "status": r.status,
        "restore_type": r.restore_type,
        "size": r.size,
        "uploaded_size": r.uploaded_size,
        "progress_percent": r.progress_percent,
        "progress_msg": r.progress_msg,
        "error_msg": r.error_msg,
        "time_taken": r.time_taken,
        "created_at": isoformat(r.created_at),
        "finished_at": isoformat(r.finished_at),
        "instances": [dict(i) for i in r.instances],
        "links": links(r.project_id, "restores", r.id),
    }


# -- quotas, usage, audit log (docs/operations.md) -------------------------------------


def quota_type_view(t: QuotaType) -> dict[str, Any]:
    return {"id": t.id, "display_name": t.name, "display_description": t.description, "status": "available"}


def allowed_quota(q: QuotaRecord) -> dict[str, Any]:
    return {"id": q.id, "project_id": q.project_id, "quota_type_id": q.quota_type_id,
            "allowed_value": q.allowed_value, "high_watermark": q.high_watermark, "version": q.version,
            "quota_type_name": q.quota_type_name}


def humanized(size: int | None) -> str | None:
    """Bytes as a person reads them: `0 Bytes`, `1.5 KB`, `20.0 GB` (powers of 1024)."""
    if size is None:
        return None
    if size < 1024:
        return f"{size} Bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        value /= 1024
        if value < 1024 or unit == "PB":
            break
    return f"{value:.1f} {unit}"


def audit_line(entry: AuditRecord) -> dict[str, Any]:
    return {"Timestamp": isoformat(entry.created_at), "UserName": entry.user_id, "UserId": entry.user_id,
            "ProjectId": entry.project_id, "Action": entry.action, "ObjectType": entry.object_type,
            "ObjectId": entry.object_id, "ObjectName": entry.object_name, "Details": entry.details,
            "RequestId": entry.request_id}
def setting(s: SettingRecord) -> dict[str, Any]:
    """A project setting; a secret's value is masked, whoever asks."""
    return {"id": s.id, "name": s.name, "value": s.shown_value, "description": s.description,
            "category": s.category, "type": s.type, "is_public": s.is_public, "is_hidden": s.is_hidden,
            "metadata": s.metadata, "project_id": s.project_id, "user_id": s.user_id,
            "created_at": isoformat(s.created_at), "updated_at": isoformat(s.updated_at)}
