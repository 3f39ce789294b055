"""Pause and resume a workload's schedule; reset a running snapshot.

    POST /workloads/{id}/pause      202: nothing fires until resumed
    POST /workloads/{id}/resume     202: the schedule fires again from its next time
    POST /snapshots/{id}/reset      202: a running snapshot ends 'error', its workload unlocked
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.api import deps
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.workloads import audit, schedule_pause
from cairn.workloads.snapshot_reset import reset_snapshot

router = APIRouter(prefix="/v1/{project_id}", tags=["workloads"])


def _scope(ctx: RequestContext, project_id: str) -> str | None:
    return None if ctx.is_admin else project_id


@router.post("/workloads/{workload_id}/pause", status_code=202, response_class=Response,
             summary="Pause a workload's schedule")
def pause(request: Request, project_id: str, workload_id: str,
          ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_PAUSE)]) -> Response:
    now = utcnow()
    with deps.runtime_of(request).database.unit_of_work() as session:
        row = schedule_pause.pause(session, workload_id, _scope(ctx, project_id), now)
        audit.record(session, ctx, "workload.pause", row.id, row.name,
                     f"Schedule of workload '{row.name}' paused", now, project_id=row.project_id)
    return deps.accepted()


@router.post("/workloads/{workload_id}/resume", status_code=202, response_class=Response,
             summary="Resume a paused workload's schedule")
def resume(request: Request, project_id: str, workload_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_RESUME)]) -> Response:
    now = utcnow()
    with deps.runtime_of(request).database.unit_of_work() as session:
        row = schedule_pause.resume(session, workload_id, _scope(ctx, project_id), now)
        audit.record(session, ctx, "workload.resume", row.id, row.name,
                     f"Schedule of workload '{row.name}' resumed", now, project_id=row.project_id)
    return deps.accepted()


@router.post("/snapshots/{snapshot_id}/reset", status_code=202, response_class=Response,
             summary="Reset a running snapshot")
def reset(request: Request, project_id: str, snapshot_id: str,
          ctx: Annotated[RequestContext, deps.allowed(rules.SNAPSHOT_RESET)]) -> Response:
    now = utcnow()
    with deps.runtime_of(request).database.unit_of_work() as session:
        row = reset_snapshot(session, snapshot_id, _scope(ctx, project_id), now)
        audit.record(session, ctx, "snapshot.reset", row.id, row.name,
                     f"Snapshot '{row.name}' of workload {row.workload_id} reset to error", now,
                     project_id=row.project_id)
    return deps.accepted()
