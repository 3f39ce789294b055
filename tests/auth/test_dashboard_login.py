"""Logging in to the dashboard as a Keystone user (auth_strategy = keystone), against a
real Keystone: Cairn asks Keystone for the token server-side, the page then works with
it; refused credentials are shown as Cairn states them. Here beside the other Keystone
tests so that they share one Keystone; the browser comes from tests/browser.py."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.auth.keystone_server import KeystoneServer
from tests.browser import screenshot
from tests.conftest import Service


def test_a_keystone_user_logs_in_with_a_password_and_sees_the_projects_workloads(
        keystone: KeystoneServer, keystone_cairn: Service, page: Page) -> None:
    keystone_cairn.reset_tables()
    alice = keystone.users["alice"]
    instance_id = keystone_cairn.add_instance(alice.project_id, "vm-a")
    with keystone_cairn.client(alice.token()) as client:
        created = client.post(f"/v1/{alice.project_id}/workloads", json={"workload": {
            "name": "made-by-api", "instances": [{"instance-id": instance_id}]}})
        assert created.status_code == 202, created.text

    page.goto(f"{keystone_cairn.url}/dashboard/")
    form = page.get_by_role("form", name="As a Keystone user")
    form.get_by_label("User name").fill("alice")
    form.get_by_label("Password").fill("wrong-password")
    form.get_by_label("Project", exact=True).fill("alpha")
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Error 401: Keystone refused the user name, password or project "
        "(user 'alice' in domain 'Default', project 'alpha').")
    screenshot(page, "login-keystone")

    form.get_by_label("Password").fill(alice.password)
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Workloads", exact=True)).to_be_focused()
    expect(page.get_by_role("banner")).to_contain_text(f"Project {alice.project_id} · user {alice.user_id}")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="made-by-api"))
    expect(row.get_by_text("available")).to_be_visible()
    # the token the page holds is Keystone's own, and the v1 API answers it
    token = page.evaluate("() => JSON.parse(sessionStorage.getItem('cairn.dashboard.session')).token")
    answer = httpx.get(f"{keystone.auth_url}/auth/tokens", timeout=30,
                       headers={"X-Auth-Token": alice.token(), "X-Subject-Token": token})
    assert answer.status_code == 200 and answer.json()["token"]["project"]["name"] == "alpha"


def test_the_login_endpoint_offers_passwords_under_keystone_and_refuses_a_missing_field(
        keystone_cairn: Service) -> None:
    with keystone_cairn.client(None) as client:
        assert client.get("/dashboard/login").json() == {
            "login": {"auth_strategy": "keystone", "methods": ["password", "token"]}}
        missing = client.post("/dashboard/login", json={"login": {
            "method": "password", "username": "alice", "password": "x"}})
        assert (missing.status_code, missing.json()) == (
            400, {"badRequest": {"code": 400, "message": "login.project_name: required."}})
