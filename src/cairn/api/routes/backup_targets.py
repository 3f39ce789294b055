"""Backup targets (admin) and backup target types: create, list, show, delete, set
default; a type's projects (docs/backup_targets.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from cairn.api import deps, target_models, target_views
from cairn.auth import policy as rules
from cairn.auth.context import RequestContext
from cairn.workloads.backup_targets import TargetInput, TargetTypeRecord, TypeInput, flag
from cairn.workloads.s3_credentials import share_with_service

targets = APIRouter(prefix="/v1/{project_id}/backup_targets", tags=["backup targets"])
types = APIRouter(prefix="/v1/{project_id}/backup_target_types", tags=["backup target types"])
routers = (targets, types)


def _target_input(body: target_models.BackupTargetBody) -> TargetInput:
    return TargetInput(
        type=body.type, filesystem_export=body.filesystem_export,
        mount_path=body.filesystem_export_mount_path, nfs_mount_opts=body.nfs_mount_opts,
        s3_endpoint_url=body.s3_endpoint_url, s3_bucket=body.s3_bucket, s3_region=body.s3_region_name,
        s3_prefix=body.s3_prefix, secret_ref=body.secret_ref,
        immutable=flag("backup_target.immutable", body.immutable),
        is_default=flag("backup_target.is_default", body.is_default),
        btt_name=body.btt_name, metadata=dict(body.metadata or {}))


# -- backup targets ----------------------------------------------------------------------


@targets.post("", response_model=target_models.BackupTargetOne, summary="Create a backup target")
def create_target(request: Request, project_id: str, body: target_models.BackupTargetCreateRequest,
                  ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_CREATE)]) -> Response:
    runtime = deps.runtime_of(request)
    data = _target_input(body.backup_target)
    if data.secret_ref:  # asked of Barbican before the unit of work: no row locked meanwhile
        share_with_service(runtime.key_manager, data.secret_ref, ctx.auth_token, ctx.identity.project_id)
    with runtime.database.unit_of_work() as session:
        record = runtime.target_resources.create_target(session, data)
    return deps.json_response({"backup_targets": target_views.target(record)})


def _list_targets(request: Request, detail: bool) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        records = runtime.target_resources.list_targets(session)
    return deps.json_response({"backup_targets": [target_views.target(r, detail) for r in records]})


@targets.get("", response_model=target_models.BackupTargetSummaryList, summary="List backup targets")
def list_targets(request: Request, project_id: str,
                 ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_GET)]) -> Response:
    return _list_targets(request, detail=False)


@targets.get("/detail", response_model=target_models.BackupTargetList,
             summary="List backup targets with details")
def list_target_details(request: Request, project_id: str,
                        ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_GET)]) -> Response:
    return _list_targets(request, detail=True)


@targets.get("/{target_id}", response_model=target_models.BackupTargetOne, summary="Show a backup target")
def show_target(request: Request, project_id: str, target_id: str,
                ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        record = runtime.target_resources.get_target(session, target_id)
    return deps.json_response({"backup_targets": target_views.target(record)})


@targets.delete("/{target_id}", status_code=202, response_class=Response, summary="Delete a backup target")
def delete_target(request: Request, project_id: str, target_id: str,
                  ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        runtime.target_resources.delete_target(session, target_id)
    return deps.accepted()


def _set_default_target(request: Request, target_id: str) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.target_resources.set_default_target(session, target_id)
    return deps.json_response({"backup_targets": target_views.target(record)})


@targets.post("/{target_id}/set_default", response_model=target_models.BackupTargetOne,
              summary="Make a backup target the default")
def set_default_target(request: Request, project_id: str, target_id: str,
                       ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_SET_DEFAULT)]) -> Response:
    return _set_default_target(request, target_id)


# Trilio's clients call set_default with GET; the same action, the same rule.
@targets.get("/{target_id}/set_default", response_model=target_models.BackupTargetOne,
             summary="Make a backup target the default (Trilio's GET form)")
def set_default_target_get(request: Request, project_id: str, target_id: str,
                           ctx: Annotated[RequestContext,
                                          deps.allowed(rules.BACKUP_TARGET_SET_DEFAULT)]) -> Response:
    return _set_default_target(request, target_id)


# -- backup target types -------------------------------------------------------------------


@types.post("", response_model=target_models.BackupTargetTypeOne, summary="Create a backup target type")
def create_type(request: Request, project_id: str, body: target_models.BackupTargetTypeCreateRequest,
                ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_TYPE_CREATE)]) -> Response:
    runtime = deps.runtime_of(request)
    given = body.backup_target_type
    data = TypeInput(name=given.name, backup_target=given.backup_targets_id, description=given.description,
                     is_public=flag("backup_target_type.is_public", given.is_public, default=True),
                     is_default=flag("backup_target_type.is_default", given.is_default),
                     projects=tuple(given.project_list or ()),
                     metadata=dict(given.backup_target_type_metadata or given.metadata or {}))
    with runtime.database.unit_of_work() as session:
        record = runtime.target_resources.create_type(session, data, ctx.user_id)
    return deps.json_response({"backup_target_types": target_views.target_type(record)})


def _seen_by(record: TargetTypeRecord, ctx: RequestContext, project_id: str) -> TargetTypeRecord:
    """A member sees whether the type is assigned to their own project, never which other
    projects it is assigned to."""
    if ctx.is_admin:
        return record
    return replace(record, projects=tuple(p for p in record.projects if p == project_id))


def _list_types(request: Request, ctx: RequestContext, project_id: str, detail: bool) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        records = runtime.target_resources.list_types(session, None if ctx.is_admin else project_id)
    return deps.json_response({"backup_target_types": [target_views.target_type(_seen_by(r, ctx, project_id), detail)
                                                       for r in records]})


@types.get("", response_model=target_models.BackupTargetTypeSummaryList, summary="List backup target types")
def list_types(request: Request, project_id: str,
               ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_TYPE_GET)]) -> Response:
    return _list_types(request, ctx, project_id, detail=False)


@types.get("/detail", response_model=target_models.BackupTargetTypeList,
           summary="List backup target types with details")
def list_type_details(request: Request, project_id: str,
                      ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_TYPE_GET)]) -> Response:
    return _list_types(request, ctx, project_id, detail=True)


@types.get("/{type_id}", response_model=target_models.BackupTargetTypeOne, summary="Show a backup target type")
def show_type(request: Request, project_id: str, type_id: str,
              ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_TYPE_GET)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.reader() as session:
        record = runtime.target_resources.get_type(session, type_id, None if ctx.is_admin else project_id)
    return deps.json_response({"backup_target_types": target_views.target_type(_seen_by(record, ctx, project_id))})


@types.delete("/{type_id}", status_code=202, response_class=Response, summary="Delete a backup target type")
def delete_type(request: Request, project_id: str, type_id: str,
                ctx: Annotated[RequestContext, deps.allowed(rules.BACKUP_TARGET_TYPE_DELETE)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        runtime.target_resources.delete_type(session, type_id)
    return deps.accepted()


@types.post("/{type_id}/add_projects", response_model=target_models.BackupTargetTypeOne,
            summary="Assign a backup target type to projects")
def add_projects(request: Request, project_id: str, type_id: str, body: target_models.AddProjectsRequest,
                 ctx: Annotated[RequestContext,
                                deps.allowed(rules.BACKUP_TARGET_TYPE_ADD_PROJECTS)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.target_resources.change_projects(session, type_id, body.add_projects, [],
                                                          "add_projects")
    return deps.json_response({"backup_target_types": target_views.target_type(record)})


@types.post("/{type_id}/remove_projects", response_model=target_models.BackupTargetTypeOne,
            summary="Take a backup target type from projects")
def remove_projects(request: Request, project_id: str, type_id: str, body: target_models.RemoveProjectsRequest,
                    ctx: Annotated[RequestContext,
                                   deps.allowed(rules.BACKUP_TARGET_TYPE_REMOVE_PROJECTS)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.target_resources.change_projects(session, type_id, [], body.remove_projects,
                                                          "remove_projects")
    return deps.json_response({"backup_target_types": target_views.target_type(record)})


@types.post("/{type_id}/set_default", response_model=target_models.BackupTargetTypeOne,
            summary="Make a backup target type the default")
def set_default_type(request: Request, project_id: str, type_id: str,
                     ctx: Annotated[RequestContext,
                                    deps.allowed(rules.BACKUP_TARGET_TYPE_SET_DEFAULT)]) -> Response:
    runtime = deps.runtime_of(request)
    with runtime.database.unit_of_work() as session:
        record = runtime.target_resources.set_default_type(session, type_id)
    return deps.json_response({"backup_target_types": target_views.target_type(record)})
