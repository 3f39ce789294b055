"""Every route checks its caller through one dependency, on a registered policy rule, and
in one order: a valid token (401), the project in the URL (400), the rule (403)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from cairn.api.app import create_app
from cairn.api.deps import Allowed, auth_token
from cairn.auth.policy import REGISTERED
from tests.conftest import Service


def allowed_in(dependant: Dependant) -> list[Allowed]:
    found = [dependant.call] if isinstance(dependant.call, Allowed) else []
    for sub in dependant.dependencies:
        found.extend(allowed_in(sub))
    return found


def token_readers_outside_allowed(dependant: Dependant) -> int:
    if isinstance(dependant.call, Allowed):
        return 0
    own = 1 if dependant.call is auth_token else 0
    return own + sum(token_readers_outside_allowed(sub) for sub in dependant.dependencies)


def flat_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers whole
        if included is not None:
            yield from flat_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_route_names_one_registered_rule(api: Service) -> None:
    app = create_app(api.runtime)
    routes = [r for r in flat_routes(app.routes) if r.path.startswith("/v1/")]
    documented = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
                  for method in operations}
    assert {(m, r.path) for r in routes for m in r.methods or ()} == documented  # the walk saw every one
    for route in routes:
        checks = allowed_in(route.dependant)
        where = f"{sorted(route.methods or ())} {route.path}"
        assert len(checks) == 1, f"{where} checks its caller {len(checks)} times"
        assert checks[0].rule.name in REGISTERED, where
        if checks[0].target is not None:  # the project the rule is checked on is in the path
            assert f"{{{checks[0].target}}}" in route.path, where
        assert token_readers_outside_allowed(route.dependant) == 0, f"{where} reads the token itself"


def fault(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


def test_checks_run_in_order_token_then_project_then_rule(api: Service) -> None:
    member = api.token("p1", "u1")
    policy_body = {"workload_policy": {"display_name": "gold", "field_values": {
        "interval": "1", "retention_policy_type": "Number of Snapshots to Keep",
        "retention_policy_value": "3", "fullbackup_interval": "-1"}}}
    with api.client(None) as anonymous:
        no_token = anonymous.post("/v1/p2/workload_policy", json=policy_body)
    with api.client("not-a-token") as stranger:
        unknown = stranger.post("/v1/p2/workload_policy", json=policy_body)
    with api.client(member) as client:
        wrong_project = client.post("/v1/p2/workload_policy", json=policy_body)
        refused = client.post("/v1/p1/workload_policy", json=policy_body)
        assigned_elsewhere = client.get("/v1/p1/workload_policy/assigned/p2")
        own_assigned = client.get("/v1/p1/workload_policy/assigned/p1")
    for response in (no_token, unknown):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == 401
        assert response.headers["www-authenticate"].startswith("Keystone uri=")
    assert fault(wrong_project) == (400, {"badRequest": {"code": 400, "message": "Malformed request url"}})
    assert fault(refused) == (403, {"forbidden": {"code": 403, "message":
                              "Policy doesn't allow workload:policy_create to be performed."}})
    # The assigned list is checked against the project it names, not the URL's.
    assert fault(assigned_elsewhere) == (403, {"forbidden": {"code": 403, "message":
                                         "Policy doesn't allow workload:policy_get_assigned to be performed."}})
    assert fault(own_assigned) == (200, {"policies": []})


def test_an_expired_token_is_refused_when_looked_up_and_when_remembered(api: Service) -> None:
    token = api.token(ttl=timedelta(microseconds=1))
    with api.client(token) as client:
        first = client.get("/v1/p1/workloads")
        again = client.get("/v1/p1/workloads")
    for response in (first, again):
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "The token has expired."


def test_the_caller_is_checked_before_the_body_and_query(api: Service) -> None:
    member = api.token("p1", "u1")
    with api.client(None) as anonymous:
        bad_body = anonymous.post("/v1/p1/workloads", json={"workload": {"name": 5}})
        bad_query = anonymous.get("/v1/p1/workloads", params={"limit": "ten"})
    with api.client(member) as client:
        admin_only = client.post("/v1/p1/workload_policy", json={"nothing": "valid"})
        own_bad_body = client.post("/v1/p1/workloads", json={"workload": {"name": 5}})
    assert bad_body.status_code == 401 and bad_query.status_code == 401
    assert fault(admin_only) == (403, {"forbidden": {"code": 403, "message":
                                 "Policy doesn't allow workload:policy_create to be performed."}})
    assert own_bad_body.status_code == 400 and "workload.name" in own_bad_body.json()["badRequest"]["message"]
