"""The web dashboard: its static files at `/dashboard/`, and its login endpoint.

The dashboard is plain HTML, CSS and JavaScript modules kept in `cairn/api/dashboard/`
and served as they are (nothing is built). In the browser it calls only the public v1
API, with the token it got at login. The one endpoint of its own is the login:

- `GET /dashboard/login` → `{"login": {"auth_strategy": "keystone"|"local", "methods": [...]}}`
  tells the page which forms to offer.
- `POST /dashboard/login` `{"login": {"method": "password", "username", "password",
  "project_name", "user_domain_name", "project_domain_name"}}` (auth_strategy =
  keystone) asks Keystone for a project-scoped token server-side (`cairn.auth.login`);
  `{"login": {"method": "token", "token"}}` checks a token the user already has (a
  `cairn token create` token, or a Keystone one). Both answer 200
  `{"login": {"token", "project_id", "user_id", "roles", "auth_strategy"}}`, or the
  fault of the API (401 for refused credentials, 400 naming a missing field, 503 when
  Keystone cannot be reached).

None of it is in the OpenAPI document: it is not part of the workloadmgr API.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from cairn.api import deps, models
from cairn.auth.login import PasswordLogin, keystone_token
from cairn.errors import InvalidInput, NotFound

router = APIRouter(prefix="/dashboard", include_in_schema=False)

FILES = resources.files("cairn.api") / "dashboard"
#: what the browser may load from where: only this origin, no inline script or style, no framing
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # revalidated on every load, so an upgraded Cairn is seen at once
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _file(name: str) -> Response:
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    entry = FILES / name
    # only plain names of the files shipped: no paths, no dot files
    if "/" in name or name.startswith(".") or suffix not in MEDIA_TYPES or not entry.is_file():
        raise NotFound(f"The dashboard has no file {name!r}.")
    return Response(entry.read_bytes(), media_type=MEDIA_TYPES[suffix], headers=SECURITY_HEADERS)


@router.get("")
def dashboard_root() -> Response:
    # the page's relative module paths resolve against /dashboard/
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/")
def dashboard_index() -> Response:
    return _file("index.html")


@router.get("/login")
def login_methods(request: Request) -> Response:
    strategy = deps.runtime_of(request).settings.auth_strategy
    methods = ["password", "token"] if strategy == "keystone" else ["token"]
    return deps.json_response({"login": {"auth_strategy": strategy, "methods": methods}})


@router.post("/login")
async def login(request: Request, body: models.DashboardLoginRequest) -> Response:
    runtime = deps.runtime_of(request)
    given = body.login
    strategy = runtime.settings.auth_strategy
    if given.method == "password":
        if strategy != "keystone":
            raise InvalidInput("login.method: this Cairn uses local tokens (auth_strategy = local); "
                               "log in with a token from `cairn token create`.", "login.method")
        for field in ("username", "password", "project_name"):
            if getattr(given, field) is None:
                raise InvalidInput(f"login.{field}: required.", f"login.{field}")
        assert given.username and given.password and given.project_name
        credentials = PasswordLogin(given.username, given.password, given.project_name,
                                    given.user_domain_name, given.project_domain_name)
        token = await run_in_threadpool(keystone_token, runtime.settings.keystone, credentials)
    else:
        if given.token is None:
            raise InvalidInput("login.token: required.", "login.token")
        token = given.token
    identity = await run_in_threadpool(runtime.validator.validate, token)
    answer: dict[str, Any] = {"token": token, "project_id": identity.project_id, "user_id": identity.user_id,
                              "roles": sorted(identity.roles), "auth_strategy": strategy}
    response = deps.json_response({"login": answer})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/{name}")
def dashboard_file(name: str) -> Response:
    return _file(name)
