"""The global job scheduler switch (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cairn.api import deps, models
from cairn.workloads import global_scheduler

router = APIRouter(prefix="/v1/{project_id}/global_job_scheduler", tags=["global job scheduler"])
Token = Depends(deps.auth_token)


@router.get("", response_model=models.GlobalSchedulerOut, summary="Is the global job scheduler on?")
def status(request: Request, project_id: str, token: str | None = Token) -> Response:
    runtime = deps.runtime_of(request)
    ctx = deps.authenticate(request, token, project_id)
    runtime.enforcer.authorize("workload:get_global_job_scheduler", ctx)
    with runtime.database.reader() as session:
        return deps.json_response({"global_job_scheduler": global_scheduler.is_enabled(session)})


def _switch(request: Request, project_id: str, token: str | None, enabled: bool) -> Response:
    runtime = deps.runtime_of(request)
    ctx = deps.authenticate(request, token, project_id)
    rule = "enable" if enabled else "disable"
    runtime.enforcer.authorize(f"workload:global_job_scheduler_{rule}", ctx)
    with runtime.database.unit_of_work() as session:
        global_scheduler.set_enabled(session, enabled)
    return deps.json_response({"global_job_scheduler": enabled})


@router.post("/enable", response_model=models.GlobalSchedulerOut, summary="Turn the global job scheduler on")
def enable(request: Request, project_id: str, token: str | None = Token) -> Response:
    return _switch(request, project_id, token, True)


@router.post("/disable", response_model=models.GlobalSchedulerOut, summary="Turn the global job scheduler off")
def disable(request: Request, project_id: str, token: str | None = Token) -> Response:
    return _switch(request, project_id, token, False)
