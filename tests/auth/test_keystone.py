"""Keystone tokens against a real Keystone: the API answers as with local tokens, tokens
are cached at most `token_cache_time`, Keystone down is a 503, the catalog finds Cairn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cairn.auth.context import Identity
from cairn.auth.tokens import issue_token
from tests.auth.conftest import keystone_service
from tests.auth.keystone_server import REGION, KeystoneServer, KeystoneUser
from tests.conftest import Service, wait_for_idle

POLICY = {"workload_policy": {"display_name": "gold", "field_values": {
    "interval": "1", "retention_policy_type": "Number of Snapshots to Keep",
    "retention_policy_value": "3", "fullbackup_interval": "-1"}}}


def scenario(service: Service, member: str, admin: str, alpha: str, beta: str) -> list[tuple[str, int, Any]]:
    """What a member of alpha and an admin of beta see for the same requests: each step's
    name, status and the parts of the body that do not depend on generated ids."""
    seen: list[tuple[str, int, Any]] = []

    def record(step: str, response: httpx.Response, view: Any = None) -> Any:
        body = response.json() if response.content else None
        shown = view(body) if view is not None and response.status_code < 300 else body
        seen.append((step, response.status_code, shown))
        return body

    def summary(b: Any) -> Any:
        return {k: b["workload"][k] for k in ("project_id", "user_id", "name", "status")}

    def names(b: Any) -> Any:
        return sorted((w["project_id"], w["name"]) for w in b["workloads"])

    with service.client(None) as anonymous:
        record("no token", anonymous.get(f"/v1/{alpha}/workloads"))
    with service.client("not-a-token") as stranger:
        record("unknown token", stranger.get(f"/v1/{alpha}/workloads"))
    with service.client(member) as client:
        mine = record("member creates", client.post(f"/v1/{alpha}/workloads", json={"workload": {
            "name": "web", "instances": [{"instance-id": service.add_instance(alpha, "vm-a")}]}}), summary)
        record("member lists", client.get(f"/v1/{alpha}/workloads"), names)
        record("member in another project's URL", client.get(f"/v1/{beta}/workloads"))
        record("member lists every project", client.get(f"/v1/{alpha}/workloads", params={"all_workloads": "true"}),
               names)
        record("member creates a policy", client.post(f"/v1/{alpha}/workload_policy", json=POLICY))
        record("member disables the scheduler", client.post(f"/v1/{alpha}/global_job_scheduler/disable"))
        record("member reads the scheduler", client.get(f"/v1/{alpha}/global_job_scheduler"))
    with service.client(admin) as client:
        theirs = record("admin creates", client.post(f"/v1/{beta}/workloads", json={"workload": {
            "name": "db", "instances": [{"instance-id": service.add_instance(beta, "vm-b")}]}}), summary)
        record("admin lists every project",
               client.get(f"/v1/{beta}/workloads", params={"all_workloads": "true"}), names)
        record("admin shows alpha's workload", client.get(f"/v1/{alpha}/workloads/{mine['workload']['id']}"),
               lambda b: b["workload"]["name"])
        record("admin creates a policy", client.post(f"/v1/{beta}/workload_policy", json=POLICY),
               lambda b: b["policy"]["name"] if "policy" in b else sorted(b))
    with service.client(member) as client:
        peek = client.get(f"/v1/{alpha}/workloads/{theirs['workload']['id']}")
        seen.append(("member peeks at beta's workload", peek.status_code, list(peek.json())))
    wait_for_idle(service)
    return seen


def test_workloads_api_answers_keystone_tokens_as_it_answers_local_ones(
        keystone: KeystoneServer, keystone_cairn: Service, sqlite_service: Service) -> None:
    local_cairn = sqlite_service  # the same Cairn with local tokens, to compare answers with
    alice, root = keystone.users["alice"], keystone.users["root"]
    alpha, beta = alice.project_id, root.project_id
    local_cairn.reset_tables()
    keystone_cairn.reset_tables()
    with local_cairn.runtime.database.unit_of_work() as session:
        local_member = issue_token(session, Identity(alpha, alice.user_id, frozenset({"member"})), None)
        local_admin = issue_token(session, Identity(beta, root.user_id, frozenset({"admin", "member"})), None)
    local = scenario(local_cairn, local_member, local_admin, alpha, beta)
    remote = scenario(keystone_cairn, alice.token(), root.token(), alpha, beta)
    assert remote == local
    steps = {step: (status, body) for step, status, body in remote}
    # and what both answered is what the API promises
    assert steps["no token"][0] == 401 and steps["unknown token"][0] == 401
    assert steps["member creates"] == (202, {"project_id": alpha, "user_id": alice.user_id,
                                             "name": "web", "status": "creating"})
    assert steps["member lists"] == (200, [(alpha, "web")])
    assert steps["member lists every project"] == (200, [(alpha, "web")])  # a member's own
    assert steps["member in another project's URL"] == (
        400, {"badRequest": {"code": 400, "message": "Malformed request url"}})
    assert steps["member creates a policy"] == (403, {"forbidden": {"code": 403, "message":
        "Policy doesn't allow workload:policy_create to be performed."}})
    assert steps["admin lists every project"] == (200, sorted([(alpha, "web"), (beta, "db")]))
    assert steps["member peeks at beta's workload"] == (404, ["itemNotFound"])


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_401_names_keystone_in_www_authenticate(keystone: KeystoneServer, keystone_cairn: Service,
                                                token: str | None) -> None:
    with keystone_cairn.client(token) as client:
        response = client.get(f"/v1/{keystone.users['alice'].project_id}/workloads")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Keystone uri="{keystone.url}"'
    assert response.json() == {"error": {"code": 401, "title": "Unauthorized", "message":
                                         "The request you have made requires authentication."}}


def test_admin_role_is_the_configured_one(keystone: KeystoneServer, tmp_path: Path) -> None:
    admin = keystone.admin_client()
    role = admin.roles.create("backup-admin")
    alice = keystone.users["alice"]
    admin.roles.grant(role, user=alice.user_id, project=alice.project_id)
    try:
        with keystone_service(tmp_path, keystone, admin_role="backup-admin") as service:
            with service.client(alice.token()) as client:
                allowed = client.get(f"/v1/{alice.project_id}/workload_policy")
            with service.client(keystone.users["root"].token()) as client:
                refused = client.get(f"/v1/{keystone.users['root'].project_id}/workload_policy")
    finally:
        admin.roles.delete(role)
    assert allowed.status_code == 200
    # Keystone's `admin` role is no Cairn admin once another role is named
    assert refused.status_code == 403


def test_revoked_token_is_refused_once_the_cache_time_has_passed(keystone: KeystoneServer,
                                                                 tmp_path: Path) -> None:
    alice: KeystoneUser = keystone.users["alice"]
    path = f"/v1/{alice.project_id}/workloads"
    with keystone_service(tmp_path, keystone, token_cache_time=2) as service:
        token = alice.token()
        with service.client(token) as client:
            assert client.get(path).status_code == 200
            keystone.revoke(token)
            time.sleep(2.2)
            response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Keystone uri="{keystone.url}"'


def test_keystone_down_is_503_for_new_tokens_while_cached_ones_still_work(
        keystone: KeystoneServer, keystone_cairn: Service) -> None:
    alice = keystone.users["alice"]
    path = f"/v1/{alice.project_id}/workloads"
    known, fresh = alice.token(), alice.token()
    with keystone_cairn.client(known) as client:
        assert client.get(path).status_code == 200
    keystone.stop()
    try:
        with keystone_cairn.client(fresh) as client:
            down = client.get(path)
        with keystone_cairn.client(known) as client:
            cached = client.get(path)
    finally:
        keystone.start()
    assert down.status_code == 503
    message = down.json()["serviceUnavailable"]["message"]
    assert "Keystone" in message and "cannot be reached" in message and keystone.auth_url in message
    assert cached.status_code == 200
    with keystone_cairn.client(fresh) as client:
        assert client.get(path).status_code == 200  # back once Keystone is


def test_wrong_service_password_is_503_naming_the_credentials(keystone: KeystoneServer, tmp_path: Path) -> None:
    alice = keystone.users["alice"]
    with keystone_service(tmp_path, keystone, password="wrong") as service, \
            service.client(alice.token()) as client:
        response = client.get(f"/v1/{alice.project_id}/workloads")
    assert response.status_code == 503
    assert "service credentials" in response.json()["serviceUnavailable"]["message"]


def test_register_puts_cairn_in_the_catalog_once(keystone: KeystoneServer, keystone_cairn: Service,
                                                 tmp_path: Path) -> None:
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    keystone_cairn.reset_tables()
    config = tmp_path / "cairn.conf"
    config.write_text(f"[DEFAULT]\nauth_strategy = keystone\n\n[keystone_authtoken]\n"
                      f"auth_url = {keystone.auth_url}\nusername = cairn\npassword = cairn-secret\n"
                      f"project_name = service\nregion_name = {REGION}\ninterface = public\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env["CAIRN_DATA_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "cairn"]
    first = subprocess.run([*command, "--config-file", str(config), "keystone", "register",
                            "--public-url", keystone_cairn.url], capture_output=True, text=True, env=env,
                           timeout=120)
    again = subprocess.run([*command, "keystone", "register", "--public-url", keystone_cairn.url + "/",
                            "--config-file", str(config)], capture_output=True, text=True, env=env,
                           timeout=120)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert [line.rsplit(": ", 1)[0] for line in first.stdout.splitlines()] == [
        "service workloads", *(f"endpoint {i} {keystone_cairn.url}/v1/$(project_id)s"
                               for i in ("public", "internal", "admin"))]
    assert "created" in first.stdout and "unchanged" not in first.stdout
    assert again.stdout.count("unchanged") == 4 and "created" not in again.stdout

    alice = keystone.users["alice"]
    auth = v3.Password(auth_url=keystone.auth_url, username="alice", password=alice.password,
                       project_name="alpha", user_domain_name="Default", project_domain_name="Default")
    found = session.Session(auth=auth).get_endpoint(service_type="workloads", interface="public",
                                                    region_name=REGION)
    assert found == f"{keystone_cairn.url}/v1/{alice.project_id}"
    with keystone_cairn.client(alice.token()) as client:  # what a client does with it
        assert client.get(f"{found}/workloads").json() == {"workloads": []}
    services = keystone.admin_client().services.list(type="workloads")
    assert len(services) == 1
    assert len(keystone.admin_client().endpoints.list(service=services[0])) == 3


def test_cached_token_is_refused_once_it_expires(keystone: KeystoneServer) -> None:
    from cairn.auth.keystone import KeystoneTokenValidator
    from cairn.errors import NotAuthenticated
    from tests.auth.conftest import cairn_keystone_settings

    now = [time.time()]
    validator = KeystoneTokenValidator(cairn_keystone_settings(keystone, token_cache_time=86400),
                                       wall=lambda: now[0])
    alice = keystone.users["alice"]
    identity = validator.validate(alice.token())
    assert (identity.project_id, identity.user_id) == (alice.project_id, alice.user_id)
    assert identity.roles == frozenset({"member", "reader"}) and not identity.is_admin
    token = alice.token()
    validator.validate(token)
    now[0] += 7200  # the test Keystone's tokens live an hour
    with pytest.raises(NotAuthenticated, match="expired"):
        validator.validate(token)


def test_a_burst_with_a_new_token_asks_keystone_once(keystone: KeystoneServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cairn.auth.keystone import KeystoneTokenValidator, identity_client
    from tests.auth.conftest import cairn_keystone_settings

    settings = cairn_keystone_settings(keystone)
    client = identity_client(settings)
    asked: list[str] = []
    validate = client.tokens.validate

    def counting(token: str, **kwargs: Any) -> Any:
        asked.append(token)
        return validate(token, **kwargs)

    client.tokens.validate = counting
    validator = KeystoneTokenValidator(settings, client=client)
    token = keystone.users["alice"].token()
    with ThreadPoolExecutor(8) as pool:
        identities = list(pool.map(lambda _: validator.validate(token), range(16)))
    assert len(set(identities)) == 1 and asked == [token]


def test_token_without_a_project_is_refused(keystone: KeystoneServer, keystone_cairn: Service) -> None:
    alice = keystone.users["alice"]
    unscoped = httpx.post(f"{keystone.auth_url}/auth/tokens", timeout=30, json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "alice", "domain": {"name": "Default"},
                                                       "password": alice.password}}}}})
    assert unscoped.status_code == 201 and "project" not in unscoped.json()["token"]
    with keystone_cairn.client(unscoped.headers["X-Subject-Token"]) as client:
        response = client.get(f"/v1/{alice.project_id}/workloads")
    assert response.status_code == 401
    assert "not scoped to a project" in response.json()["error"]["message"]
