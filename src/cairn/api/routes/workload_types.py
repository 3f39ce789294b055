"""Workload types: the two fixed types, Serial and Parallel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.db.models import WorkloadType
from cairn.errors import NotFound

router = APIRouter(prefix="/v1/{project_id}/workload_types", tags=["workload types"])


def _all(request: Request, project_id: str, ctx: RequestContext) -> Response:
    runtime = deps.runtime_of(request)
    links = deps.links_for(request)
    with runtime.database.reader() as session:
        rows = session.scalars(select(WorkloadType).order_by(WorkloadType.name.desc())).all()
        return deps.json_response({"workload_types": [views.workload_type(r, project_id, links) for r in rows]})


@router.get("", response_model=models.WorkloadTypeList, summary="List workload types")
def list_types(request: Request, project_id: str,
               ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_TYPE_GET)]) -> Response:
    return _all(request, project_id, ctx)


@router.get("/detail", response_model=models.WorkloadTypeList, summary="List workload types with details")
def list_type_details(request: Request, project_id: str,
                      ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_TYPE_GET)]) -> Response:
    return _all(request, project_id, ctx)


@router.get("/{type_id}", response_model=models.WorkloadTypeOne, summary="Show a workload type")
def show_type(request: Request, project_id: str, type_id: str,
              ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_TYPE_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        row = session.get(WorkloadType, type_id)
        if row is None:
            raise NotFound(f"Workload type {type_id} could not be found.")
        return deps.json_response({"workload_type": views.workload_type(row, project_id,
                                                                        deps.links_for(request))})
