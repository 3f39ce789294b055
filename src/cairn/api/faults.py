"""The one place errors become HTTP: OpenStack fault bodies for every failure.

    {"<faultName>": {"code": N, "message": "..."}}

400 badRequest, 403 forbidden, 404 itemNotFound, 409 conflictingRequest, 413 overLimit,
503 serviceUnavailable, anything else computeFault. Every kind of `CairnError` has its
status in `STATUS_OF` (tests/api/test_fault_mapping.py walks the class tree to keep it
so); damaged stored data is 500 on purpose: it is neither the caller's mistake nor an
outage that retrying mends. 401 uses the Keystone shape
`{"error": {"code": 401, "title": "Unauthorized", "message": ...}}` with a
`WWW-Authenticate` header.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cairn import errors
from cairn.engine.errors import IntegrityError
from cairn.jobs.runner import JobCancelled

log = logging.getLogger(__name__)

FAULT_NAMES = {400: "badRequest", 403: "forbidden", 404: "itemNotFound",
               405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
               503: "serviceUnavailable"}

STATUS_OF: tuple[tuple[type[errors.CairnError], int], ...] = (
    (errors.InvalidInput, 400),
    (errors.NotAuthenticated, 401),
    (errors.NotAuthorized, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.TooLarge, 413),
    (errors.Unavailable, 503),
    (JobCancelled, 409),
    (IntegrityError, 500),
)

WWW_AUTHENTICATE = 'Keystone uri="{uri}"'


def fault_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if status == 401:
        body = {"error": {"code": 401, "title": "Unauthorized", "message": message}}
    else:
        body = {FAULT_NAMES.get(status, "computeFault"): {"code": status, "message": message}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def status_of(exc: errors.CairnError) -> int:
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            return status
    return 500


def _field_path(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    path = _field_path(tuple(first.get("loc", ())))
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return f"{path}: unknown field."
    if kind == "missing":
        return f"{path}: required."
    if kind in ("json_invalid", "value_error.jsondecode"):
        return "body: the request body is not valid JSON."
    return f"{path}: {first.get('msg', 'invalid value')}."


def install(app: FastAPI, auth_uri: str) -> None:
    @app.exception_handler(errors.CairnError)
    async def _cairn_error(_request: Request, exc: errors.CairnError) -> Response:
        status = status_of(exc)
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE.format(uri=auth_uri)} if status == 401 else None
        return fault_response(status, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> Response:
        return fault_response(400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        message = {404: "The resource could not be found.",
                   405: "The method is not allowed for this resource."}.get(exc.status_code, str(exc.detail))
        return fault_response(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return fault_response(500, "The server has either erred or is incapable of performing "
                                   "the requested operation.")
