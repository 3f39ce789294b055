"""What every route needs: the runtime, the caller and their right to act (`Allowed`),
links, JSON responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cairn.api.render_cache import WorkloadViewCache
from cairn.api.views import Links
from cairn.auth.caller import caller_token
from cairn.auth.context import RequestContext
from cairn.auth.policy import WORKLOAD_VIEW_BACKUP_TARGET, Rule, check_registered
from cairn.errors import CairnError, InvalidInput, NotAuthenticated
from cairn.runtime import Runtime

auth_token = APIKeyHeader(name="X-Auth-Token", auto_error=False,
                          description="A Cairn token (`cairn token create`).")

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def view_cache_of(request: Request) -> WorkloadViewCache:
    return request.app.state.view_cache


async def authenticate(request: Request, token: str | None, project_id: str) -> RequestContext:
    """The caller's context; enforces the token and the project-in-URL rule.

    A token the validator remembers is answered here, on the event loop; only a token it
    must look up (database, Keystone) costs a trip to a worker thread.
    """
    if not token:
        raise NotAuthenticated("The request you have made requires authentication.")
    validator = runtime_of(request).validator
    identity = validator.remembered(token)
    if identity is None:
        identity = await run_in_threadpool(validator.validate, token)
    if identity.project_id != project_id and not identity.is_admin:
        raise InvalidInput("Malformed request url", "project_id")
    caller_token.set(token)  # the openstack platform asks Nova with it
    return RequestContext(identity=identity, project_id=project_id,
                          request_id=request.scope.get("state", {}).get("request_id", "-"), auth_token=token)


class Allowed:
    """The dependency of every authenticated route: who calls, and may they do `rule`.

    `Depends(Allowed(policy.WORKLOAD_GET))` gives the handler the caller's context once
    three checks have passed, in this order: a valid token (else 401), the URL's project
    is the caller's own unless they are an administrator (else 400), and `rule` allows
    them on the target project (else 403). The target is the URL's project, or the path
    parameter `target` names. It is a coroutine so that a remembered caller costs no
    thread of its own; the handler's thread is the only one a request takes.
    """

    def __init__(self, rule: Rule, target: str | None = None) -> None:
        check_registered(rule)  # at import of the route, not at its first request
        self.rule = rule
        self.target = target

    async def __call__(self, request: Request, token: str | None = Depends(auth_token)) -> RequestContext:
        path = request.path_params
        ctx = await authenticate(request, token, path["project_id"])
        runtime_of(request).enforcer.authorize(self.rule, ctx, path[self.target] if self.target else None)
        return ctx


def allowed(rule: Rule, target: str | None = None) -> Any:
    """`Depends(Allowed(rule, target))`, the default of a handler's `ctx` parameter."""
    return Depends(Allowed(rule, target))


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
    if not runtime.enforcer.allows(WORKLOAD_VIEW_BACKUP_TARGET, ctx, project_id):
        return None

    def label(name: str) -> str:
        try:
            return runtime.targets.get(name).label
        except CairnError:
            return name
    return label
