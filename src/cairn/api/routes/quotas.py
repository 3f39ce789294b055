"""Project quotas (admin): the quota types, and each project's allowed quotas.

    GET    /project_quota_types                   the five types
    POST   /project_allowed_quotas/{project}      set quotas of a project (200, the list)
    GET    /project_allowed_quotas/{project}      a project's quotas
    GET    /project_allowed_quota/{id}            one quota
    PUT    /update_allowed_quota/{id}             change one (202, the list of the one)
    DELETE /project_allowed_quotas/{id}           remove one (202, empty)

GET and DELETE on `/project_allowed_quotas/...` take a project id and a quota id in the
same place (the original's routes); the path parameter is `target_id` for both.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.errors import InvalidInput
from cairn.workloads import audit, quotas

router = APIRouter(prefix="/v1/{project_id}", tags=["quotas"])


@router.get("/project_quota_types", response_model=models.QuotaTypeList, summary="List the quota types")
def quota_types(ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_QUOTA_TYPES)]) -> Response:
    return deps.json_response({"quota_types": [views.quota_type_view(t) for t in quotas.QUOTA_TYPES]})


@router.post("/project_allowed_quotas/{target_id}", response_model=models.AllowedQuotaList,
             summary="Set allowed quotas of a project")
def create(request: Request, target_id: str, body: models.AllowedQuotaCreateRequest,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_CREATE_ALLOWED_QUOTA)]) -> Response:
    wanted = []
    for n, item in enumerate(body.allowed_quotas):
        if item.project_id is not None and item.project_id != target_id:
            raise InvalidInput(f"allowed_quotas.{n}.project_id: {item.project_id} is not the project of the "
                               f"URL ({target_id}).", f"allowed_quotas.{n}.project_id")
        wanted.append(quotas.QuotaInput(item.quota_type_id, item.allowed_value,
                                        item.allowed_value if item.high_watermark is None else item.high_watermark))
    runtime = deps.runtime_of(request)
    now = utcnow()
    with runtime.database.unit_of_work() as session:
        created = quotas.create_quotas(session, target_id, wanted, now)
        for q in created:
            audit.record(session, ctx, "quota.create", q.id, q.quota_type_name,
                         f"{q.quota_type_name} quota of project {target_id} set to {q.allowed_value} "
                         f"(high watermark {q.high_watermark})", now, project_id=target_id)
    return deps.json_response({"allowed_quotas": [views.allowed_quota(q) for q in created]})


@router.get("/project_allowed_quotas/{target_id}", response_model=models.AllowedQuotaList,
            summary="List the allowed quotas of a project")
def list_of_project(request: Request, target_id: str,
                    ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_ALLOWED_QUOTAS)]) -> Response:
    with deps.runtime_of(request).database.reader() as session:
        found = quotas.list_quotas(session, target_id)
    return deps.json_response({"allowed_quotas": [views.allowed_quota(q) for q in found]})


@router.get("/project_allowed_quota/{quota_id}", response_model=models.AllowedQuotaOne,
            summary="Show an allowed quota")
def show(request: Request, quota_id: str,
         ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_GET_ALLOWED_QUOTA)]) -> Response:
    with deps.runtime_of(request).database.reader() as session:
        found = quotas.get_quota(session, quota_id)
    return deps.json_response({"allowed_quotas": views.allowed_quota(found)})


@router.put("/update_allowed_quota/{quota_id}", status_code=202, response_model=models.AllowedQuotaList,
            summary="Change an allowed quota")
def update(request: Request, quota_id: str, body: models.AllowedQuotaUpdateRequest,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_UPDATE_ALLOWED_QUOTA)]) -> Response:
    change = body.allowed_quotas
    runtime = deps.runtime_of(request)
    now = utcnow()
    with runtime.database.unit_of_work() as session:
        q = quotas.update_quota(session, quota_id, change.project_id, change.allowed_value,
                                change.high_watermark, now)
        audit.record(session, ctx, "quota.update", q.id, q.quota_type_name,
                     f"{q.quota_type_name} quota of project {q.project_id} changed to {q.allowed_value} "
                     f"(high watermark {q.high_watermark})", now, project_id=q.project_id)
    return deps.json_response({"allowed_quotas": [views.allowed_quota(q)]}, 202)


@router.delete("/project_allowed_quotas/{target_id}", status_code=202, response_class=Response,
               summary="Delete an allowed quota")
def delete(request: Request, target_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_DELETE_ALLOWED_QUOTA)]) -> Response:
    runtime = deps.runtime_of(request)
    now = utcnow()
    with runtime.database.unit_of_work() as session:
        q = quotas.delete_quota(session, target_id)
        audit.record(session, ctx, "quota.delete", q.id, q.quota_type_name,
                     f"{q.quota_type_name} quota of project {q.project_id} removed", now, project_id=q.project_id)
    return deps.accepted()
