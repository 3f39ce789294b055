"""What every route needs: the runtime, the caller's context, links, JSON responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request
from fastapi.security import APIKeyHeader
from starlette.responses import Response

from cairn.api.render_cache import WorkloadViewCache
from cairn.api.views import Links
from cairn.auth.context import RequestContext
from cairn.errors import CairnError, InvalidInput, NotAuthenticated
from cairn.runtime import Runtime

auth_token = APIKeyHeader(name="X-Auth-Token", auto_error=False,
                          description="A Cairn token (`cairn token create`).")

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def view_cache_of(request: Request) -> WorkloadViewCache:
    return request.app.state.view_cache  # type: ignore[no-any-return]


def authenticate(request: Request, token: str | None, project_id: str) -> RequestContext:
    """The caller's context; enforces the token and the project-in-URL rule."""
    if not token:
        raise NotAuthenticated("The request you have made requires authentication.")
    identity = runtime_of(request).validator.validate(token)
    if identity.project_id != project_id and not identity.is_admin:
        raise InvalidInput("Malformed request url", "project_id")
    return RequestContext(identity=identity, project_id=project_id,
                          request_id=request.scope.get("state", {}).get("request_id", "-"))


def links_for(request: Request) -> Links:
    endpoint = runtime_of(request).settings.public_endpoint
    if not endpoint:
        endpoint = f"{request.url.scheme}://{request.url.netloc}"
    return Links(endpoint)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def accepted() -> Response:
    """The seed's empty 202: no body, Content-Length 0."""
    return Response(status_code=202)


def parse_bool(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"{name}: {value!r} is not a boolean (true or false).", name)


def parse_limit(value: int | None, maximum: int) -> int:
    if value is None:
        return maximum
    if value < 1:
        raise InvalidInput("limit: must be a positive integer.", "limit")
    return min(value, maximum)


def target_label(runtime: Runtime, ctx: RequestContext, project_id: str) -> Callable[[str], str] | None:
    """How to show a workload's backup target, for callers allowed to see it (admins)."""
    if not runtime.enforcer.allows("workload:view_backup_target", ctx, project_id):
        return None

    def label(name: str) -> str:
        try:
            return runtime.targets.get(name).label
        except CairnError:
            return name
    return label
