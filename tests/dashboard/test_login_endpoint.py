"""`/dashboard/login` and the dashboard's files over HTTP, with local tokens: what the
page is told, what it is refused and why, and the headers the files are served with."""

from __future__ import annotations

from tests.conftest import Service


def test_a_local_token_logs_in_as_its_project_and_user(sqlite_service: Service) -> None:
    token = sqlite_service.token("p7", "u7", roles=("member",))
    with sqlite_service.client(None) as client:
        assert client.get("/dashboard/login").json() == {"login": {"auth_strategy": "local", "methods": ["token"]}}
        answer = client.post("/dashboard/login", json={"login": {"method": "token", "token": token}})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"login": {"token": token, "project_id": "p7", "user_id": "u7", "roles": ["member"],
                                       "auth_strategy": "local"}}


def test_login_refusals_name_their_reason(sqlite_service: Service) -> None:
    cases = [
        ({"login": {"method": "token", "token": "nope"}}, 401, {"error": {
            "code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}),
        ({"login": {"method": "token"}}, 400, {"badRequest": {"code": 400, "message": "login.token: required."}}),
        ({"login": {"method": "password", "username": "a", "password": "b", "project_name": "c"}}, 400,
         {"badRequest": {"code": 400, "message": "login.method: this Cairn uses local tokens (auth_strategy = "
                                                 "local); log in with a token from `cairn token create`."}}),
        ({"login": {"method": "token", "token": "t", "extra": 1}}, 400,
         {"badRequest": {"code": 400, "message": "login.extra: unknown field."}}),
        ({"login": {"method": "magic"}}, 400, None),
    ]
    with sqlite_service.client(None) as client:
        for body, status, fault in cases:
            answer = client.post("/dashboard/login", json=body)
            assert answer.status_code == status, (body, answer.text)
            if fault is not None:
                assert answer.json() == fault, body
            else:
                assert "login.method" in answer.json()["badRequest"]["message"]


def test_the_dashboard_files_are_served_with_a_strict_content_policy(sqlite_service: Service) -> None:
    with sqlite_service.client(None) as client:
        moved = client.get("/dashboard")
        assert (moved.status_code, moved.headers["location"]) == (307, "/dashboard/")
        index = client.get("/dashboard/")
        assert index.status_code == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
        assert '<script type="module" src="app.js">' in index.text
        policy = index.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert index.headers["x-content-type-options"] == "nosniff"
        for name in ("app.js", "api.js", "dom.js", "login.js", "workloads.js", "workload.js", "restore.js"):
            module = client.get(f"/dashboard/{name}")
            assert module.status_code == 200 and module.headers["content-type"] == "text/javascript; charset=utf-8"
        assert client.get("/dashboard/dashboard.css").headers["content-type"] == "text/css; charset=utf-8"
        for name in ("nope.js", "..%2Fapp.py", ".hidden.js", "README"):
            missing = client.get(f"/dashboard/{name}")
            assert missing.status_code == 404, name
            assert "itemNotFound" in missing.json(), name
        schema = client.get("/openapi.json").json()
        assert not [path for path in schema["paths"] if path.startswith("/dashboard")]
