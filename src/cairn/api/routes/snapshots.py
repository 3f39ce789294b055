"""Snapshots: take one now, list, show, delete, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.errors import InvalidInput
from cairn.workloads import audit
from cairn.workloads.snapshot_records import SnapshotFilter, get_snapshot, list_snapshots
from cairn.workloads.snapshot_type import SnapshotRequest

router = APIRouter(prefix="/v1/{project_id}", tags=["snapshots"])


def _date(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise InvalidInput(f"{name}: {value!r} is not a time of the form YYYY-MM-DDTHH:MM:SS.", name) from None


@router.post("/workloads/{workload_id}", response_model=models.SnapshotOne, summary="Take a snapshot now")
def take(request: Request, project_id: str, workload_id: str,
         ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_CREATE)],
         body: models.SnapshotCreateRequest | None = None, full: str | None = None) -> Response:
    runtime = deps.runtime_of(request)
    snap = body.snapshot if body else models.SnapshotBody()
    wanted = SnapshotRequest(name=snap.name, description=snap.description,
                             snapshot_type=snap.snapshot_type, full=deps.parse_bool("full", full))
    scope = None if ctx.is_admin else project_id
    route = runtime.snapshots.routes([workload_id], scope).get(workload_id)
    with runtime.database.unit_of_work() as session:
        record = runtime.snapshots.take(session, workload_id, scope, ctx.user_id, wanted, route=route)
        audit.record(session, ctx, "snapshot.create", record.id, record.name,
                     f"Snapshot '{record.name}' ({record.snapshot_type}) of workload {workload_id} requested",
                     record.created_at, project_id=record.project_id)
    return deps.json_response({"snapshot": views.snapshot_summary(record, deps.links_for(request))})


def _list(request: Request, project_id: str, ctx: RequestContext, detail: bool, workload_id: str | None,
          status: str | None, date_from: str | None, date_to: str | None, all_: str | None,
          limit: int | None, marker: str | None) -> Response:
    runtime = deps.runtime_of(request)
    scope: str | None = project_id
    # `all` from a caller the all-projects rule does not allow means their own project,
    # as from the original API, not a 403.
    if (deps.parse_bool("all", all_)
            and runtime.enforcer.allows(rules.SNAPSHOT_GET_ALL_TENANTS, ctx, project_id)):
        scope = None
    wanted = SnapshotFilter(project_id=scope, workload_id=workload_id, status=status,
                            date_from=_date("date_from", date_from), date_to=_date("date_to", date_to),
                            limit=deps.parse_limit(limit, runtime.settings.max_list_limit), marker=marker)
    with runtime.database.reader() as session:
        records = list_snapshots(session, wanted)
    links = deps.links_for(request)
    view = views.snapshot_detail if detail else views.snapshot_summary
    return deps.json_response({"snapshots": [view(r, links) for r in records]})


@router.get("/snapshots", response_model=models.SnapshotList, summary="List snapshots")
def list_summaries(request: Request, project_id: str,
                   ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_GET_ALL)],
                   workload_id: str | None = Query(None, max_length=64),
                   status: str | None = Query(None, max_length=32),
                   date_from: str | None = Query(None, max_length=32), date_to: str | None = Query(None, max_length=32),
                   all: str | None = None, limit: int | None = None,
                   marker: str | None = Query(None, max_length=64)) -> Response:
    return _list(request, project_id, ctx, False, workload_id, status, date_from, date_to, all, limit, marker)


@router.get("/snapshots/detail", response_model=models.SnapshotDetailList, summary="List snapshots with details")
def list_details(request: Request, project_id: str,
                 ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_GET_ALL)],
                 workload_id: str | None = Query(None, max_length=64), status: str | None = Query(None, max_length=32),
                 date_from: str | None = Query(None, max_length=32), date_to: str | None = Query(None, max_length=32),
                 all: str | None = None, limit: int | None = None,
                 marker: str | None = Query(None, max_length=64)) -> Response:
    return _list(request, project_id, ctx, True, workload_id, status, date_from, date_to, all, limit, marker)


def _show(request: Request, project_id: str, snapshot_id: str, ctx: RequestContext,
          workload_id: str | None = None) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        record = get_snapshot(session, snapshot_id, None if ctx.is_admin else project_id, workload_id)
    return deps.json_response({"snapshot": views.snapshot_detail(record, deps.links_for(request))})


@router.get("/snapshots/{snapshot_id}", response_model=models.SnapshotDetailOne, summary="Show a snapshot")
def show(request: Request, project_id: str, snapshot_id: str,
         ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_GET)]) -> Response:
    return _show(request, project_id, snapshot_id, ctx)


@router.get("/workloads/{workload_id}/snapshots/{snapshot_id}", response_model=models.SnapshotDetailOne,
            summary="Show a snapshot of a workload")
def show_of_workload(request: Request, project_id: str, workload_id: str, snapshot_id: str,
                     ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_GET)]) -> Response:
    return _show(request, project_id, snapshot_id, ctx, workload_id)


@router.delete("/snapshots/{snapshot_id}", status_code=202, response_class=Response, summary="Delete a snapshot")
def delete(request: Request, project_id: str, snapshot_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        row = runtime.snapshots.delete(session, snapshot_id, None if ctx.is_admin else project_id)
        audit.record(session, ctx, "snapshot.delete", row.id, row.name,
                     f"Snapshot '{row.name}' of workload {row.workload_id} deleted", row.updated_at,
                     project_id=row.project_id)
    return deps.accepted()


def _cancel(request: Request, project_id: str, snapshot_id: str, ctx: RequestContext) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.snapshots.cancel(session, snapshot_id, None if ctx.is_admin else project_id)
        audit.record(session, ctx, "snapshot.cancel", record.id, record.name,
                     f"Snapshot '{record.name}' of workload {record.workload_id} cancelled", utcnow(),
                     project_id=record.project_id)
    return deps.json_response({"snapshot": views.snapshot_summary(record, deps.links_for(request))})


@router.get("/snapshots/{snapshot_id}/cancel", response_model=models.SnapshotOne, summary="Cancel a snapshot")
def cancel_get(request: Request, project_id: str, snapshot_id: str,
               ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_CANCEL)]) -> Response:
    return _cancel(request, project_id, snapshot_id, ctx)


@router.post("/snapshots/{snapshot_id}/cancel", response_model=models.SnapshotOne, summary="Cancel a snapshot")
def cancel_post(request: Request, project_id: str, snapshot_id: str,
                ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_CANCEL)]) -> Response:
    return _cancel(request, project_id, snapshot_id, ctx)
