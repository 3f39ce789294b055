"""HTTP to Cairn's workloadmgr v1 API over the keystoneauth session OpenStackClient made.

Every path is relative to the `workloads` endpoint from the Keystone catalog, which
already ends in `/v1/<project_id>` (Cairn registers `<URL>/v1/$(project_id)s`). An answer
of 400 or above becomes a `Fault` whose text is the fault body's message, the status and
the request id, as OpenStackClient prints other services' errors:

    Workload 0b0c… could not be found. (HTTP 404) (Request-ID: req-…)

Anything the server did not say (no route to it, a body that is not a fault) becomes a
`Fault` that says what was asked of whom.
"""

from __future__ import annotations

import json
from typing import Any

from keystoneauth1 import adapter, session
from keystoneauth1 import exceptions as ks_exceptions
from osc_lib import exceptions

#: the service type Cairn registers in the Keystone catalog (cairn.auth.catalog)
SERVICE_TYPE = "workloads"


class Fault(exceptions.CommandError):
    """A refusal or failure from Cairn, carrying the fault's message and status."""

    def __init__(self, message: str, status: int | None = None, request_id: str | None = None) -> None:
        self.message = message
        self.status = status
        self.request_id = request_id
        text = message
        if status is not None:
            text += f" (HTTP {status})"
        if request_id:
            text += f" (Request-ID: {request_id})"
        super().__init__(text)


def fault_message(body: Any) -> str | None:
    """The message of an OpenStack fault body (`{"itemNotFound": {"code": 404, "message":
    …}}`), of Keystone's `{"error": {…}}` shape, or of a validation error's `detail`."""
    if not isinstance(body, dict):
        return None
    for value in body.values():
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"]
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    return None


class WorkloadsClient:
    """The workloads API of one project, at `endpoint` (`…/v1/<project_id>`)."""

    def __init__(self, sess: session.Session, endpoint: str, *, interface: str | None = None,
                 region_name: str | None = None, project_id: str | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.project_id = project_id
        self._adapter = adapter.Adapter(sess, service_type=SERVICE_TYPE, interface=interface,
                                        region_name=region_name, endpoint_override=self.endpoint)

    def request(self, method: str, path: str, *, body: Any = None,
                params: dict[str, Any] | None = None) -> Any:
        """`method path`; the decoded JSON body, or None for an empty answer (a 202)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"raise_exc": False, "params": query,
                                  "headers": {"Accept": "application/json"}}
        if body is not None:
            kwargs["json"] = body
        try:
            response = self._adapter.request(path, method, **kwargs)
        except ks_exceptions.ConnectFailure as exc:
            raise Fault(f"Cairn cannot be reached at {self.endpoint}: {exc}") from None
        except ks_exceptions.ConnectionError as exc:
            raise Fault(f"The request to Cairn at {self.endpoint} failed: {exc}") from None
        request_id = response.headers.get("X-Openstack-Request-Id") or response.headers.get(
            "X-Compute-Request-Id")
        decoded: Any = None
        if response.content:
            try:
                decoded = response.json()
            except json.JSONDecodeError:
                decoded = None
        if response.status_code >= 400:
            message = fault_message(decoded)
            if message is None:
                text = response.text.strip()[:500] or response.reason
                message = f"{method} {self.endpoint}{path} answered: {text}"
            raise Fault(message, response.status_code, request_id)
        return decoded

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, body=body, params=params)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params)
