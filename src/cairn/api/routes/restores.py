"""Restores: restore a snapshot, list, show, delete the record, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.workloads import audit
from cairn.workloads.restore_plan import InstanceChoice, RestoreRequest
from cairn.workloads.restore_records import get_restore, list_restores

router = APIRouter(prefix="/v1/{project_id}", tags=["restores"])


def _request(body: models.RestoreBody) -> RestoreRequest:
    options = body.options
    openstack = options.openstack or models.OpenstackRestoreOptions()
    if options.oneclickrestore:
        restore_type = "oneclick"
    elif options.restore_type:
        restore_type = options.restore_type
    else:
        restore_type = "selective" if openstack.instances else "oneclick"
    choices = tuple(InstanceChoice(i.id, i.include, i.name,
                                   tuple(d.id for d in i.vdisks) if i.vdisks is not None else None)
                    for i in openstack.instances)
    extra = {k: v for k, v in options.model_dump(exclude={"openstack", "restore_type"}).items() if v is not None}
    if options.openstack is not None:
        # the platform reads the rest (flavor, availability_zone, networks_mapping, ...)
        extra["openstack"] = options.openstack.model_dump(exclude_none=True)
    return RestoreRequest(name=body.name or "restore", description=body.description or "",
                          restore_type=restore_type, instances=choices, options=extra)


def _start(request: Request, project_id: str, snapshot_id: str, body: models.RestoreCreateRequest,
           ctx: RequestContext, workload_id: str | None) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.restores.start(session, snapshot_id, None if ctx.is_admin else project_id,
                                        ctx.user_id, _request(body.restore), workload_id)
        audit.record(session, ctx, "restore.create", record.id, record.name,
                     f"Restore '{record.name}' ({record.restore_type}) of snapshot {snapshot_id} started",
                     utcnow(), project_id=record.project_id)
    return deps.json_response({"restore": views.restore(record, deps.links_for(request))}, 202)


@router.post("/workloads/{workload_id}/snapshots/{snapshot_id}/restores", status_code=202,
             response_model=models.RestoreOne, summary="Restore a snapshot")
def start(request: Request, project_id: str, workload_id: str, snapshot_id: str,
          body: models.RestoreCreateRequest,
          ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_CREATE)]) -> Response:
    return _start(request, project_id, snapshot_id, body, ctx, workload_id)


@router.post("/snapshots/{snapshot_id}", status_code=202, response_model=models.RestoreOne,
             summary="Restore a snapshot (the original's short form)")
def start_short(request: Request, project_id: str, snapshot_id: str, body: models.RestoreCreateRequest,
                ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_CREATE)]) -> Response:
    return _start(request, project_id, snapshot_id, body, ctx, None)


def _list(request: Request, project_id: str, ctx: RequestContext, snapshot_id: str | None,
          limit: int | None) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        records = list_restores(session, project_id, snapshot_id,
                                deps.parse_limit(limit, runtime.settings.max_list_limit))
    links = deps.links_for(request)
    return deps.json_response({"restores": [views.restore(r, links) for r in records]})


@router.get("/restores", response_model=models.RestoreList, summary="List restores")
def list_summaries(request: Request, project_id: str,
                   ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_GET_ALL)],
                   snapshot_id: str | None = Query(None, max_length=64), limit: int | None = None) -> Response:
    return _list(request, project_id, ctx, snapshot_id, limit)


@router.get("/restores/detail", response_model=models.RestoreList, summary="List restores with details")
def list_details(request: Request, project_id: str,
                 ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_GET_ALL)],
                 snapshot_id: str | None = Query(None, max_length=64), limit: int | None = None) -> Response:
    return _list(request, project_id, ctx, snapshot_id, limit)


def _show(request: Request, project_id: str, restore_id: str, ctx: RequestContext,
          snapshot_id: str | None = None) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        record = get_restore(session, restore_id, None if ctx.is_admin else project_id, snapshot_id)
    return deps.json_response({"restore": views.restore(record, deps.links_for(request))})


@router.get("/restores/{restore_id}", response_model=models.RestoreOne, summary="Show a restore")
def show(request: Request, project_id: str, restore_id: str,
         ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_GET)]) -> Response:
    return _show(request, project_id, restore_id, ctx)


@router.get("/workloads/{workload_id}/snapshots/{snapshot_id}/restores/{restore_id}",
            response_model=models.RestoreOne, summary="Show a restore of a snapshot")
def show_of_snapshot(request: Request, project_id: str, workload_id: str, snapshot_id: str, restore_id: str,
                     ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_GET)]) -> Response:
    return _show(request, project_id, restore_id, ctx, snapshot_id)


@router.delete("/restores/{restore_id}", status_code=202, response_class=Response,
               summary="Delete a restore record (restored instances stay)")
def delete(request: Request, project_id: str, restore_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        row = runtime.restores.delete(session, restore_id, None if ctx.is_admin else project_id)
        audit.record(session, ctx, "restore.delete", row.id, row.name, f"Restore record '{row.name}' deleted",
                     row.updated_at, project_id=row.project_id)
    return deps.accepted()


def _cancel(request: Request, project_id: str, restore_id: str, ctx: RequestContext) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.restores.cancel(session, restore_id, None if ctx.is_admin else project_id)
    return deps.json_response({"restore": views.restore(record, deps.links_for(request))})


@router.get("/restores/{restore_id}/cancel", response_model=models.RestoreOne, summary="Cancel a restore")
def cancel_get(request: Request, project_id: str, restore_id: str,
               ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_CANCEL)]) -> Response:
    return _cancel(request, project_id, restore_id, ctx)


@router.post("/restores/{restore_id}/cancel", response_model=models.RestoreOne, summary="Cancel a restore")
def cancel_post(request: Request, project_id: str, restore_id: str,
                ctx: Annotated[RequestContext, deps.allowed(rules.RESTORE_CANCEL)]) -> Response:
    return _cancel(request, project_id, restore_id, ctx)
