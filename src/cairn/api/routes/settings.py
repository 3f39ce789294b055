"""Project settings: create or change, list, show, delete (`/settings`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from cairn.api import deps, models, views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.clock import utcnow
from cairn.workloads import project_settings
from cairn.workloads.project_settings import SettingInput

router = APIRouter(prefix="/v1/{project_id}/settings", tags=["settings"])

SettingName = Annotated[str, Path(min_length=1, max_length=255)]


def _value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@router.post("", response_model=models.SettingList, summary="Create or change settings")
def create(request: Request, project_id: str, body: models.SettingsCreateRequest,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_SETTING_CREATE)]) -> Response:
    runtime = deps.runtime_of(request)
    inputs = [SettingInput(name=s.name, value=_value(s.value), description=s.description or "",
                           category=s.category or "", type=s.type or "", is_public=s.is_public,
                           is_hidden=s.is_hidden, metadata=dict(s.metadata or {}))
              for s in body.settings]
    with runtime.database.unit_of_work() as session:
        stored = project_settings.store_settings(session, project_id, ctx.identity.user_id, inputs, utcnow())
    return deps.json_response({"settings": [views.setting(s) for s in stored]})


@router.get("", response_model=models.SettingList, summary="List the project's settings")
def list_all(request: Request, project_id: str,
             ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_SETTING_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        found = project_settings.list_settings(session, project_id)
    return deps.json_response({"settings": [views.setting(s) for s in found]})


@router.get("/{name}", response_model=models.SettingOne, summary="Show a setting")
def show(request: Request, project_id: str, name: SettingName,
         ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_SETTING_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        found = project_settings.get_setting(session, project_id, name)
    return deps.json_response({"setting": views.setting(found)})


@router.delete("/{name}", response_class=Response, summary="Delete a setting")
def delete(request: Request, project_id: str, name: SettingName,
           ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_SETTING_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        project_settings.delete_setting(session, project_id, name)
    return Response(status_code=200)


@router.delete("", response_class=Response, summary="Delete every setting of the project")
def delete_all(request: Request, project_id: str,
               ctx: Annotated[RequestContext, deps.allowed(rules.WORKLOAD_SETTING_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        project_settings.delete_all(session, project_id)
    return Response(status_code=200)
