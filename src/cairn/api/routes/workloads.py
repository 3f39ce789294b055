"""Workloads: list, detail, create, show, modify, delete, unlock, reset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.workloads import audit, global_scheduler
from cairn.workloads.encryption import secret_confirmer
from cairn.workloads.lifecycle import WorkloadInput
from cairn.workloads.records import (
    get_workload,
    list_workload_versions,
    storage_usage,
    workload_summaries_by_id,
    workloads_by_id,
)

router = APIRouter(prefix="/v1/{project_id}/workloads", tags=["workloads"])


def _input(body: models.WorkloadCreateBody | models.WorkloadUpdateBody) -> WorkloadInput:
    return WorkloadInput(
        name=body.name, description=body.description,
        workload_type_id=getattr(body, "workload_type_id", None),
        instance_ids=[i.instance_id for i in body.instances] if body.instances is not None else None,
        jobschedule=body.jobschedule.model_dump(exclude_unset=True) if body.jobschedule else None,
        metadata=body.metadata, availability_zone=getattr(body, "availability_zone", None),
        encryption=getattr(body, "encryption", None), secret_uuid=getattr(body, "secret_uuid", None),
        backup_target_types=getattr(body, "backup_target_types", None))


def _list(request: Request, project_id: str, ctx: RequestContext, detail: bool,
          all_workloads: str | None, nfs_share: str | None, project_filter: str | None,
          limit: int | None, marker: str | None) -> Response:
    runtime = deps.runtime_of(request)
    scope: str | None = project_id
    # A caller the all-projects rule does not allow gets their own project, as from the
    # original API: clients send all_workloads (and all_tenants) whoever runs them.
    if (deps.parse_bool("all_workloads", all_workloads)
            and runtime.enforcer.allows(rules.WORKLOAD_GET_ALL_TENANTS, ctx, project_id)):
        scope = None
    if project_filter:
        if project_filter != project_id:
            runtime.enforcer.authorize(rules.WORKLOAD_GET_ALL_TENANTS, ctx)
        scope = project_filter
    links = deps.links_for(request)
    limit_value = deps.parse_limit(limit, runtime.settings.max_list_limit)
    cache = deps.view_cache_of(request)
    with runtime.database.reader() as session:
        targets = (runtime.target_resources.names_matching(session, nfs_share)
                   if nfs_share is not None else None)
        versions = list_workload_versions(session, project_id=scope, limit=limit_value, marker=marker,
                                          backup_targets=targets, next_fire=detail)
        if not detail:
            body = cache.summaries(versions, lambda ids: workload_summaries_by_id(session, ids), links)
        else:
            usage = storage_usage(session, [v[0] for v in versions], scope)
            enabled = global_scheduler.is_enabled(session)
            body = cache.details(versions, lambda ids: workloads_by_id(session, ids), usage, links,
                                 global_jobscheduler=enabled,
                                 backup_target_label=deps.target_label(runtime, ctx, project_id),
                                 now=utcnow())
    return Response(body, media_type="application/json")


@router.get("", response_model=models.WorkloadList, summary="List workloads")
def list_summaries(request: Request, project_id: str,
                   ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_ALL)],
                   all_workloads: str | None = None, nfs_share: str | None = Query(None, max_length=1024),
                   project: str | None = Query(None, alias="project_id", max_length=64),
                   limit: int | None = None, marker: str | None = Query(None, max_length=64)) -> Response:
    return _list(request, project_id, ctx, False, all_workloads, nfs_share, project, limit, marker)


@router.get("/detail", response_model=models.WorkloadDetailList, summary="List workloads with details")
def list_details(request: Request, project_id: str,
                 ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_ALL)],
                 all_workloads: str | None = None, nfs_share: str | None = Query(None, max_length=1024),
                 project: str | None = Query(None, alias="project_id", max_length=64),
                 limit: int | None = None, marker: str | None = Query(None, max_length=64)) -> Response:
    return _list(request, project_id, ctx, True, all_workloads, nfs_share, project, limit, marker)


@router.post("", status_code=202, response_model=models.WorkloadCreated, summary="Create a workload")
def create(request: Request, project_id: str, body: models.WorkloadCreateRequest,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_CREATE)]) -> Response:
    runtime = deps.runtime_of(request)
    if body.workload.metadata and "backup_media_target" in body.workload.metadata:
        runtime.enforcer.authorize(rules.WORKLOAD_CHOOSE_BACKUP_TARGET, ctx)
    # an encrypted workload's secret is checked with Barbican as the caller (its token)
    confirm = secret_confirmer(runtime.key_manager, ctx.auth_token, ctx.identity.project_id)
    # The caller's Keystone trust is made before the unit of work (no row locked while
    # Keystone answers) and undone if the workload is not created.
    trust = runtime.trusts.open_for_workload(ctx)
    try:
        with runtime.database.unit_of_work() as session:
            record = runtime.workloads.create(session, ctx, _input(body.workload), confirm, trust=trust)
            audit.record(session, ctx, "workload.create", record.id, record.name,
                         f"Workload '{record.name}' created with {len(body.workload.instances)} instance(s)",
                         record.created_at)
    except BaseException:
        runtime.trusts.discard(trust)
        raise
    return deps.json_response({"workload": views.workload_summary(record, deps.links_for(request))}, 202)


@router.get("/{workload_id}", response_model=models.WorkloadOne, summary="Show a workload")
def show(request: Request, project_id: str, workload_id: str,
         ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        record = get_workload(session, workload_id, None if ctx.is_admin else project_id)
        enabled = global_scheduler.is_enabled(session)
    runtime.enforcer.authorize(rules.WORKLOAD_GET, ctx, record.project_id)
    body = views.workload_detail(record, deps.links_for(request),
                                 appliance_timezone=runtime.settings.timezone,
                                 global_jobscheduler=enabled,
                                 backup_target_label=deps.target_label(runtime, ctx, record.project_id),
                                 now=utcnow())
    return deps.json_response({"workload": body})


def _scope(ctx_is_admin: bool, project_id: str) -> str | None:
    return None if ctx_is_admin else project_id


@router.put("/{workload_id}", status_code=202, response_class=Response, summary="Modify a workload")
def modify(request: Request, project_id: str, workload_id: str, body: models.WorkloadUpdateRequest,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_UPDATE)]) -> Response:
    runtime = deps.runtime_of(request)
    scope = _scope(ctx.is_admin, project_id)
    trust = runtime.trusts.open_for_update(ctx, workload_id, scope)  # replaces a refused one
    try:
        with runtime.database.unit_of_work() as session:
            row = runtime.workloads.update(session, ctx, workload_id, _input(body.workload), scope, trust=trust)
            changed = ", ".join(sorted(body.workload.model_dump(exclude_unset=True))) or "nothing"
            audit.record(session, ctx, "workload.modify", row.id, row.name,
                         f"Workload '{row.name}' modified: {changed}", row.updated_at, project_id=row.project_id)
    except BaseException:
        runtime.trusts.discard(trust)
        raise
    return deps.accepted()


@router.delete("/{workload_id}", status_code=202, response_class=Response, summary="Delete a workload")
def delete(request: Request, project_id: str, workload_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_DELETE)],
           database_only: str | None = None) -> Response:
    runtime = deps.runtime_of(request)
    keep_data = deps.parse_bool("database_only", database_only)
    if keep_data:
        runtime.enforcer.authorize(rules.WORKLOAD_DELETE_DATABASE_ONLY, ctx)
    with runtime.database.unit_of_work() as session:
        row = runtime.workloads.delete(session, workload_id, _scope(ctx.is_admin, project_id), keep_data)
        audit.record(session, ctx, "workload.delete", row.id, row.name,
                     f"Workload '{row.name}' deleted" + (" (database only)" if keep_data else ""),
                     row.updated_at, project_id=row.project_id)
    return deps.accepted()


@router.post("/{workload_id}/unlock", status_code=202, response_class=Response, summary="Unlock a workload")
def unlock(request: Request, project_id: str, workload_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_UNLOCK)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        row = runtime.workloads.unlock(session, workload_id, _scope(ctx.is_admin, project_id))
        audit.record(session, ctx, "workload.unlock", row.id, row.name, f"Workload '{row.name}' unlocked",
                     row.updated_at, project_id=row.project_id)
    return deps.accepted()


@router.post("/{workload_id}/reset", status_code=202, response_class=Response, summary="Reset a workload")
def reset(request: Request, project_id: str, workload_id: str,
          ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_RESET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        row = runtime.workloads.reset(session, workload_id, _scope(ctx.is_admin, project_id))
        audit.record(session, ctx, "workload.reset", row.id, row.name, f"Workload '{row.name}' reset",
                     row.updated_at, project_id=row.project_id)
    return deps.accepted()
