"""Workload types: the two fixed types, Serial and Parallel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.db.models import WorkloadType
from cairn.errors import NotFound

router = APIRouter(prefix="/v1/{project_id}/workload_types", tags=["workload types"])
Token = Depends(deps.auth_token)


def _all(request: Request, project_id: str, token: str | None) -> Response:
    runtime = deps.runtime_of(request)
    ctx = deps.authenticate(request, token, project_id)
    runtime.enforcer.authorize("workload_type:get", ctx)
    links = deps.links_for(request)
    with runtime.database.reader() as session:
        rows = session.scalars(select(WorkloadType).order_by(WorkloadType.name.desc())).all()
        return deps.json_response({"workload_types": [views.workload_type(r, project_id, links) for r in rows]})


@router.get("", response_model=models.WorkloadTypeList, summary="List workload types")
def list_types(request: Request, project_id: str, token: str | None = Token) -> Response:
    return _all(request, project_id, token)


@router.get("/detail", response_model=models.WorkloadTypeList, summary="List workload types with details")
def list_type_details(request: Request, project_id: str, token: str | None = Token) -> Response:
    return _all(request, project_id, token)


@router.get("/{type_id}", response_model=models.WorkloadTypeOne, summary="Show a workload type")
def show_type(request: Request, project_id: str, type_id: str, token: str | None = Token) -> Response:
    runtime = deps.runtime_of(request)
    ctx = deps.authenticate(request, token, project_id)
    runtime.enforcer.authorize("workload_type:get", ctx)
    with runtime.database.reader() as session:
        row = session.get(WorkloadType, type_id)
        if row is None:
            raise NotFound(f"Workload type {type_id} could not be found.")
        return deps.json_response({"workload_type": views.workload_type(row, project_id,
                                                                        deps.links_for(request))})
