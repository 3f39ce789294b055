"""Operators' workload actions: reassign to another project, the import list, import
as a job (and its progress), and the orphaned workloads (`/workloads/...` fixed paths,
routed before the workload id routes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from cairn.api import deps, models
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import isoformat, utcnow
from cairn.errors import InvalidInput
from cairn.workloads import reassign, target_workloads
from cairn.workloads.import_job import ImportStatus, import_status, request_import
from cairn.workloads.target_workloads import TargetWorkload

router = APIRouter(prefix="/v1/{project_id}/workloads", tags=["workload operations"])


def _described(w: TargetWorkload) -> dict[str, Any]:
    return {"id": w.id, "name": w.name, "project_id": w.project_id, "user_id": w.user_id,
            "backup_target": w.backup_target, "snapshots": w.snapshots,
            "created_at": isoformat(w.created_at), "reason": w.reason}


def _import_view(s: ImportStatus) -> dict[str, Any]:
    return {"id": s.id, "status": s.status, "progress_percent": s.progress_percent,
            "progress_msg": s.progress_msg, "imported_workloads": s.imported_workloads,
            "imported_snapshots": s.imported_snapshots, "skipped": s.skipped, "error_msg": s.error_msg,
            "created_at": isoformat(s.created_at), "finished_at": isoformat(s.finished_at)}


def _target_names(request: Request, target: str | None) -> list[str] | None:
    if target is None:
        return None
    deps.runtime_of(request).targets.get(target)  # NotFound names an unknown target
    return [target]


@router.post("/reasign_workloads", response_model=models.ReassignOut,
             summary="Move workloads and their data to another project and user")
def reassign_workloads(request: Request, project_id: str, body: list[models.ReassignIn],
                       ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_REASSIGN_WORKLOADS)]) -> Response:
    runtime = deps.runtime_of(request)
    requests = [reassign.ReassignRequest(workload_ids=list(r.workload_ids), old_project_ids=list(r.old_tenant_ids),
                                         new_project_id=r.new_tenant_id, new_user_id=r.user_id,
                                         migrate_cloud=r.migrate_cloud) for r in body]
    if not requests:
        raise InvalidInput("body: at least one reassignment is required.", "body")
    with runtime.database.unit_of_work() as session:
        outcome = reassign.request_reassign(session, runtime.dispatcher, runtime.projects, requests, utcnow())
    return deps.json_response({"workloads": {
        "reassigned_workloads": [{"id": r.id, "name": r.name, "status": r.status, "project_id": r.project_id,
                                  "user_id": r.user_id} for r in outcome.reassigned],
        "failed_workloads": [{"id": wid, "error": why} for wid, why in outcome.failed]}})


@router.get("/get_list/import_workloads", response_model=models.TargetWorkloadList,
            summary="The workloads the backup targets describe that can be imported")
def import_list(request: Request, project_id: str,
                ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_IMPORT_WORKLOADS_LIST)],
                target: str | None = Query(None, min_length=1, max_length=255),
                project: str | None = Query(None, alias="project_id", min_length=1, max_length=64)) -> Response:
    runtime = deps.runtime_of(request)
    names = _target_names(request, target)
    with runtime.database.reader() as session:
        found = target_workloads.importable(session, runtime.targets, names, project)
    return deps.json_response({"workloads": [_described(w) for w in found]})


@router.get("/orphan_workloads", response_model=models.TargetWorkloadList,
            summary="Workloads on the backup targets that the database does not hold or whose project is gone")
def orphans(request: Request, project_id: str,
            ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_ORPHANED_WORKLOADS_LIST)],
            target: str | None = Query(None, min_length=1, max_length=255)) -> Response:
    runtime = deps.runtime_of(request)
    names = _target_names(request, target)
    with runtime.database.reader() as session:
        found = target_workloads.orphaned(session, runtime.targets, runtime.projects, names)
    return deps.json_response({"workloads": [_described(w) for w in found]})


@router.post("/import_workloads", status_code=202, response_model=models.ImportJobOne,
             summary="Import workloads from the backup targets (a job)")
def import_workloads(request: Request, project_id: str, body: models.ImportRequest,
                     ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_IMPORT_WORKLOADS)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        job_id = request_import(session, runtime.dispatcher, runtime.targets, project_id, body.workload_ids,
                                body.target, utcnow())
        status = import_status(session, job_id)
    return deps.json_response({"import_workloads": _import_view(status)}, 202)


@router.get("/import_workloads/{job_id}", response_model=models.ImportJobOne,
            summary="The progress and outcome of an import")
def import_progress(request: Request, project_id: str, job_id: Annotated[str, Path(max_length=64)],
                    ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_IMPORT_WORKLOADS)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        status = import_status(session, job_id)
    return deps.json_response({"import_workloads": _import_view(status)})
