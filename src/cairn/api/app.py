"""The ASGI application: routers, middleware and fault handlers around a `Runtime`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cairn import __version__
from cairn.api import faults, models
from cairn.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from cairn.api.render_cache import WorkloadViewCache
from cairn.api.routes import (
    backup_targets,
    global_scheduler,
    ops,
    policies,
    project_ops,
    quotas,
    restores,
    settings,
    snapshots,
    trusts,
    usage,
    workload_ops,
    workload_types,
    workloads,
)
from cairn.runtime import Runtime

_ERRORS = {status: {"description": name, "content": {"application/json": {"schema": models.fault_schema(name)}}}
           for status, name in ((400, "badRequest"), (403, "forbidden"), (404, "itemNotFound"),
                                (409, "conflictingRequest"), (413, "overLimit"))}
_ERRORS[401] = {"description": "Unauthorized", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "title", "message"], "properties": {
            "code": {"type": "integer"}, "title": {"type": "string"},
            "message": {"type": "string"}}}}}}}}


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Cairn workloadmgr API", version=__version__,
                  description="Backup and recovery of workloads of virtual machines "
                              "(Trilio workloadmgr v1 compatible).",
                  responses=_ERRORS)  # type: ignore[arg-type]
    app.state.runtime = runtime
    app.state.view_cache = WorkloadViewCache(runtime.settings.timezone)
    # fixed paths under /workloads/ (usage's /workloads/metrics/..., project_ops'
    # import_workloads, ...) first: they must not be read as a workload's id
    for module in (usage, project_ops, settings, workloads, snapshots, restores, workload_types, policies,
                   global_scheduler, quotas, workload_ops, trusts):
        app.include_router(module.router)
    for router in backup_targets.routers:
        app.include_router(router)
    faults.install(app, auth_uri=runtime.settings.www_authenticate_uri)
    ops.install(app)
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, limit=runtime.settings.max_request_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 on every operation; Cairn answers bad input with 400
    badRequest (the OpenStack convention), so the document says that instead."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
