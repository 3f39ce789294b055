"""The global job scheduler switch (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.api import deps, models
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.workloads import global_scheduler

router = APIRouter(prefix="/v1/{project_id}/global_job_scheduler", tags=["global job scheduler"])


@router.get("", response_model=models.GlobalSchedulerOut, summary="Is the global job scheduler on?")
def status(request: Request, project_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_GLOBAL_JOB_SCHEDULER)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        return deps.json_response({"global_job_scheduler": global_scheduler.is_enabled(session)})


def _switch(request: Request, enabled: bool) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        global_scheduler.set_enabled(session, enabled)
    return deps.json_response({"global_job_scheduler": enabled})


@router.post("/enable", response_model=models.GlobalSchedulerOut, summary="Turn the global job scheduler on")
def enable(request: Request, project_id: str, ctx: Annotated[
        RequestContext, deps.allowed(rules.WORKLOAD_GLOBAL_JOB_SCHEDULER_ENABLE)]) -> Response:
    return _switch(request, True)


@router.post("/disable", response_model=models.GlobalSchedulerOut, summary="Turn the global job scheduler off")
def disable(request: Request, project_id: str, ctx: Annotated[
        RequestContext, deps.allowed(rules.WORKLOAD_GLOBAL_JOB_SCHEDULER_DISABLE)]) -> Response:
    return _switch(request, False)
