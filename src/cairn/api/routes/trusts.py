"""Keystone trusts to Cairn's service user: list, create, show, delete (`/trusts`).

A workload's own trust (made when it is created, `hidden`) is listed with
`get_hidden=true`; deleting it makes that workload's scheduled snapshots fail until the
workload is modified with a valid token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.workloads.trust_records import get_trust, list_trusts

router = APIRouter(prefix="/v1/{project_id}/trusts", tags=["trusts"])


@router.get("", response_model=models.TrustList, summary="List the project's trusts")
def list_all(request: Request, project_id: str,
             ctx: Annotated[RequestContext, deps.allowed(rules.TRUST_GET_ALL)],
             get_hidden: str | None = Query(None, max_length=16)) -> Response:
    runtime = deps.runtime_of(request)
    hidden = deps.parse_bool("get_hidden", get_hidden)
    with runtime.database.reader() as session:
        trusts = list_trusts(session, project_id, include_hidden=hidden)
    return deps.json_response({"trust": [views.trust_view(t) for t in trusts]})


@router.post("", response_model=models.TrustList, summary="Create a trust to Cairn's service user")
def create(request: Request, project_id: str, body: models.TrustCreateRequest,
           ctx: Annotated[RequestContext, deps.allowed(rules.TRUST_CREATE)]) -> Response:
    runtime = deps.runtime_of(request)
    cloud = body.trusts.is_cloud_trust in (True, "True", "true")
    if cloud:
        runtime.enforcer.authorize(rules.TRUST_CREATE_CLOUD_TRUST, ctx)
    trust = runtime.trusts.create(ctx, body.trusts.role_name, cloud)
    return deps.json_response({"trust": [views.trust_view(trust)]})


@router.get("/{trust_id}", response_model=models.TrustOne, summary="Show a trust")
def show(request: Request, project_id: str, trust_id: str,
         ctx: Annotated[RequestContext, deps.allowed(rules.TRUST_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        trust = get_trust(session, trust_id, project_id)
    return deps.json_response({"trust": views.trust_view(trust)})


@router.delete("/{trust_id}", status_code=202, response_class=Response, summary="Delete a trust")
def delete(request: Request, project_id: str, trust_id: str,
           ctx: Annotated[RequestContext, deps.allowed(rules.TRUST_DELETE)]) -> Response:
    deps.runtime_of(request).trusts.delete(trust_id, project_id)
    return deps.accepted()
