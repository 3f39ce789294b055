"""Usage, chargeback and the audit log.

    GET /workloads/metrics/storage_usage         each backup target: capacity and use (admin)
    GET /workloads/metrics/tenants_usage         each project: protected VMs, stored bytes (admin)
    GET /workloads/metrics/tenants_chargeback    each project's workloads, VMs and bytes (admin)
    GET /workloads/metrics/vms_protected         the VMs the URL project's workloads protect
    GET /workloads/audit/auditlog?time_in_minutes=N   who did what, the last N minutes (admin)

Each reads the database with one SQL statement (`cairn.workloads.usage`), whatever the
number of workloads; a target's capacity comes from the file system (`statvfs`), and is
null for a bucket.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.workloads import audit, usage
from cairn.workloads.storage import BackupTarget

router = APIRouter(prefix="/v1/{project_id}/workloads", tags=["usage"])

#: the longest window the audit log is read over: ten years
MAX_MINUTES = 10 * 366 * 24 * 60


def _capacity(target: Any) -> tuple[int | None, int | None, int | None]:
    """(total, used, available) bytes of a directory target's file system; None for a
    bucket or a file system that cannot be asked."""
    if not isinstance(target, BackupTarget):
        return None, None, None
    try:
        stats = os.statvfs(target.path)
    except OSError:
        return None, None, None
    return (stats.f_blocks * stats.f_frsize, (stats.f_blocks - stats.f_bfree) * stats.f_frsize,
            stats.f_bavail * stats.f_frsize)


@router.get("/metrics/storage_usage", response_model=models.StorageUsageList,
            summary="Capacity and use of each backup target")
def storage_usage(request: Request,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_STORAGE_USAGE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        used = usage.usage_by_target(session)
    entries = []
    known = set()
    for target in runtime.targets:
        known.add(target.name)
        entries.append((target.name, "nfs" if isinstance(target, BackupTarget) else "s3", target.label,
                        _capacity(target), used.get(target.name, usage.TargetUse())))
    for name in sorted(set(used) - known):  # workloads on a target no longer configured
        entries.append((name, "unknown", name, (None, None, None), used[name]))
    body = [{"storage_type": kind, "name": name, "nfs_share": label,
             "total_capacity": total, "total_capacity_humanized": views.humanized(total),
             "total_utilization": in_use, "total_utilization_humanized": views.humanized(in_use),
             "available_capacity": free, "available_capacity_humanized": views.humanized(free),
             "backup_usage": use.stored_bytes, "backup_usage_humanized": views.humanized(use.stored_bytes),
             "workloads": use.workloads, "snapshots": use.snapshots}
            for name, kind, label, (total, in_use, free), use in entries]
    return deps.json_response({"storage_usage": body})


def _project_use(use: usage.ProjectUse) -> dict[str, Any]:
    return {"vms_protected": use.vms_protected, "total_vms": use.total_vms, "workloads": use.workloads,
            "snapshots": use.snapshots, "used_capacity": use.stored_bytes,
            "used_capacity_humanized": views.humanized(use.stored_bytes)}


@router.get("/metrics/tenants_usage", response_model=models.TenantsUsage,
            summary="Protected VMs and stored bytes of each project")
def tenants_usage(request: Request,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_TENANTS_USAGE)]) -> Response:
    runtime = deps.runtime_of(request)
    inventory = runtime.settings.platform == "local"
    with runtime.database.reader() as session:
        found = usage.usage_by_project(session, count_inventory=inventory)
    total = usage.ProjectUse(total_vms=0 if inventory else None)
    for use in found.values():
        total.workloads += use.workloads
        total.vms_protected += use.vms_protected
        total.snapshots += use.snapshots
        total.stored_bytes += use.stored_bytes
        if total.total_vms is not None and use.total_vms is not None:
            total.total_vms += use.total_vms
    return deps.json_response({"global_usage": _project_use(total),
                               "tenants_usage": {p: _project_use(u) for p, u in sorted(found.items())}})


@router.get("/metrics/tenants_chargeback", response_model=dict[str, models.TenantChargebackOut],
            summary="Each project's workloads, their VMs and stored bytes")
def tenants_chargeback(request: Request,
                       ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_TENANTS_CHARGEBACK)]
                       ) -> Response:
    with deps.runtime_of(request).database.reader() as session:
        charged = usage.chargeback(session)
    body: dict[str, dict[str, Any]] = {}
    for w in charged:
        tenant = body.setdefault(w.project_id, {"tenant_id": w.project_id, "tenant_name": w.project_id,
                                                "workloads": {}, "vms_protected": 0, "size": 0})
        tenant["workloads"][w.id] = {
            "id": w.id, "name": w.name, "snapshots": w.snapshots, "size": w.stored_bytes,
            "size_humanized": views.humanized(w.stored_bytes),
            "protected_vms": {vm: {"id": vm, "name": name} for vm, name in w.vms.items()}}
        tenant["vms_protected"] += len(w.vms)
        tenant["size"] += w.stored_bytes
    for tenant in body.values():
        tenant["size_humanized"] = views.humanized(tenant["size"])
    return deps.json_response(body)


@router.get("/metrics/vms_protected", response_model=models.ProtectedVms,
            summary="The VMs the project's workloads protect")
def vms_protected(request: Request, project_id: str,
                  ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_PROTECTED_VMS)]) -> Response:
    with deps.runtime_of(request).database.reader() as session:
        found = usage.protected_vms(session, project_id)
    return deps.json_response({"protected_vms": [
        {"id": v.id, "name": v.name, "workload_id": v.workload_id, "workload_name": v.workload_name,
         "project_id": v.project_id} for v in found]})


@router.get("/audit/auditlog", response_model=models.AuditLog, summary="The audit log of the last minutes")
def auditlog(request: Request,
             ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_AUDITLOG)],
             time_in_minutes: int = Query(1440, ge=1, le=MAX_MINUTES)) -> Response:
    since = utcnow() - timedelta(minutes=time_in_minutes)
    with deps.runtime_of(request).database.reader() as session:
        entries = audit.entries_since(session, since)
    return deps.json_response({"auditlog": [views.audit_line(e) for e in entries]})
