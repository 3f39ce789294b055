"""The dashboard in a real Chromium against a real Cairn over a socket: log in, create a
workload, take a snapshot and watch its progress bar move, restore it and watch that
restore's bar, see it listed; the API's faults shown as it states them; every control
reached by its label and role, and by the keyboard alone.

The moments a running job is looked at are held by the pausing sources
(tests/pausing.py): the snapshot's read waits at a byte of its disk, the restore waits
before it makes its instance; the page's progress bars are read while the job waits.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser import screenshot
from tests.conftest import Service
from tests.dashboard.conftest import add_filled_instance

MIB = 1 << 20


def log_in_with_token(page: Page, service: Service, token: str) -> None:
    page.goto(f"{service.url}/dashboard/")
    expect(page.get_by_role("heading", name="Log in to Cairn")).to_be_visible()
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Log in with token").click()
    expect(page.get_by_role("heading", name="Workloads", exact=True)).to_be_visible()


def progress_of(page: Page, name: str) -> int:
    """The value of the progress bar named `name`, once it shows more than nothing."""
    bar = page.get_by_role("progressbar", name=name)
    expect(bar).to_be_visible()
    expect(bar).not_to_have_attribute("value", "0")
    return int(bar.get_attribute("value") or "0")


def test_a_user_creates_a_workload_snapshots_it_and_restores_it_watching_the_progress(
        api: Service, page: Page) -> None:
    instance_id, disk = add_filled_instance(api, "p1", "web1", 16 * MIB)
    log_in_with_token(page, api, api.token("p1", "u1"))
    expect(page.get_by_text("No workloads yet.")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_label("Description").fill("the web tier")
    page.get_by_label("Instance ids").fill(instance_id)
    screenshot(page, "workloads-create")
    page.get_by_role("button", name="Create workload").click()
    expect(page.get_by_role("heading", name="Workload web")).to_be_focused()
    expect(page.locator("dl.facts").first.get_by_text("available")).to_be_visible()

    with api.disks.holding(disk, 8 * MIB) as gate:
        page.get_by_label("Name", exact=True).fill("first")
        page.get_by_role("button", name="Take snapshot").click()
        gate.wait_reached()
        held = progress_of(page, "Progress of snapshot first")
        assert 0 < held < 100, held
        snapshot = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="first"))
        expect(snapshot.get_by_text("executing")).to_be_visible()
        screenshot(page, "workload-snapshot-running")
    expect(snapshot.get_by_text("available")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Progress of snapshot first")).to_have_count(0)
    expect(snapshot.get_by_text("full", exact=True).first).to_be_visible()
    expect(snapshot.get_by_text(re.compile(r"^16\.\d MiB$"))).to_be_visible()  # the size it added
    expect(snapshot.get_by_text(re.compile(r"^\d+ s$"))).to_be_visible()  # its duration

    page.get_by_role("link", name="Restore snapshot first").click()
    expect(page.get_by_role("heading", name="Restore snapshot first")).to_be_focused()
    page.get_by_label("Selective: only the instances chosen, under the names given").check()
    expect(page.get_by_label("Restore web1")).to_be_checked()
    page.get_by_label("New name for web1").fill("web1-copy")
    page.get_by_label("Restore name").fill("back")
    screenshot(page, "restore-form")
    gate = api.disks.hold_restore("web1-copy")
    try:
        page.get_by_role("button", name="Start restore").click()
        expect(page.get_by_role("heading", name="Workload web")).to_be_focused()
        gate.wait_reached()
        held = progress_of(page, "Progress of restore back")
        assert 0 < held < 100, held
        screenshot(page, "workload-restore-running")
    finally:
        gate.release()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="back"))
    expect(row.get_by_text("available")).to_be_visible()
    expect(row.get_by_role("cell", name="web1-copy")).to_be_visible()
    expect(row.get_by_role("cell", name="selective")).to_be_visible()
    expect(page.get_by_role("progressbar")).to_have_count(0)
    screenshot(page, "workload")

    page.get_by_role("link", name="Workloads").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="web"))
    expect(row.get_by_text("1 full, 0 incremental", exact=False)).to_be_visible()
    screenshot(page, "workloads")


def test_faults_of_the_api_are_shown_as_the_api_states_them(api: Service, page: Page) -> None:
    log_in_with_token(page, api, api.token("p1", "u1"))
    page.get_by_label("Name", exact=True).fill("ghost")
    page.get_by_label("Instance ids").fill("no-such-instance")
    page.get_by_role("button", name="Create workload").click()
    alert = page.get_by_role("alert").filter(has_text="could not be found")
    expect(alert).to_have_text("Error 400: Instance no-such-instance could not be found.")
    expect(alert).to_be_focused()
    screenshot(page, "error")
    with api.client(api.token("p1", "u1")) as client:
        assert client.get("/v1/p1/workloads").json()["workloads"] == []  # nothing was written

    instance_id, disk = add_filled_instance(api, "p1", "db1", 4 * MIB)
    with api.client(api.token("p1", "u1")) as client:
        created = client.post("/v1/p1/workloads", json={"workload": {
            "name": "db", "instances": [{"instance-id": instance_id}]}}).json()["workload"]
    page.reload()
    page.get_by_role("link", name="db").click()
    expect(page.locator("dl.facts").first.get_by_text("available")).to_be_visible()
    with api.disks.holding(disk, 2 * MIB) as gate:
        page.get_by_role("button", name="Take snapshot").click()
        gate.wait_reached()
        expect(page.locator("dl.facts").first.get_by_text("locked")).to_be_visible()
        page.get_by_role("button", name="Take snapshot").click()
        expect(page.get_by_role("alert").filter(has_text="available")).to_have_text(
            "Error 409: Invalid state: Workload must be in the 'available' state to take a snapshot; it is 'locked'.")
    with api.client(api.token("p1", "u1")) as client:
        snapshots = client.get("/v1/p1/snapshots", params={"workload_id": created["id"]}).json()["snapshots"]
    assert len(snapshots) == 1  # the refused one left nothing


def test_a_refused_token_is_shown_and_an_ended_session_returns_to_the_login(api: Service, page: Page) -> None:
    page.goto(f"{api.url}/dashboard/")
    page.get_by_label("Token", exact=True).fill("not-a-token")
    page.get_by_role("button", name="Log in with token").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Error 401: The request you have made requires authentication.")
    expect(page.get_by_role("heading", name="Log in to Cairn")).to_be_visible()
    screenshot(page, "login")

    log_in_with_token(page, api, api.token("p1", "u1"))
    # a token that stops working (here: its session storage altered) sends the user back
    page.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem('cairn.dashboard.session'));
        s.token = 'expired'; sessionStorage.setItem('cairn.dashboard.session', JSON.stringify(s));
    }""")
    page.reload()
    expect(page.get_by_role("heading", name="Log in to Cairn")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("Error: Your session has ended; log in again.")


def test_the_dashboard_is_used_by_keyboard_alone(api: Service, page: Page) -> None:
    instance_id, _disk = add_filled_instance(api, "p1", "kb1", 2 * MIB)
    token = api.token("p1", "u1")
    page.goto(f"{api.url}/dashboard/")
    expect(page.get_by_role("heading", name="Log in to Cairn")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Log in to Cairn")).to_be_focused()
    field = page.get_by_role("textbox", name="Token")
    while not field.evaluate("e => e === document.activeElement"):
        page.keyboard.press("Tab")
    expect(field).to_have_accessible_description(re.compile("cairn token create"))
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Workloads", exact=True)).to_be_focused()

    # the create form: every field by its label, Tab from one to the next, Enter submits
    page.get_by_role("textbox", name="Name", exact=True).focus()
    page.keyboard.type("kb")
    page.keyboard.press("Tab")
    expect(page.get_by_role("textbox", name="Description")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("textbox", name="Instance ids")).to_be_focused()
    page.keyboard.type(instance_id)
    page.keyboard.press("Tab")
    expect(page.get_by_role("combobox", name="Workload type")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create workload")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Workload kb")).to_be_focused()
    expect(page.locator("dl.facts").first.get_by_text("available")).to_be_visible()

    # take a snapshot with the keyboard: the type is a radio group moved with the arrows
    page.get_by_role("radio", name=re.compile("^Incremental")).focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="Full", exact=True)).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Take snapshot")).to_be_focused()
    page.keyboard.press("Enter")
    restore = page.get_by_role("link", name=re.compile("^Restore snapshot "))
    expect(restore).to_be_visible()
    restore.focus()
    page.wait_for_timeout(1500)  # a poll of the page happens: the focus stays where it is
    expect(restore).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Restore snapshot "))).to_be_focused()
    # the instance choices are disabled until the restore is selective
    expect(page.get_by_role("checkbox", name="Restore kb1")).to_be_disabled()
    page.get_by_role("radio", name=re.compile("^One-click")).focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("checkbox", name="Restore kb1")).to_be_enabled()
    page.keyboard.press("Tab")
    expect(page.get_by_role("checkbox", name="Restore kb1")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_role("checkbox", name="Restore kb1")).not_to_be_checked()
    page.get_by_role("button", name="Start restore").press("Enter")
    expect(page.get_by_role("alert")).to_have_text(
        "Error 400: restore.options.openstack.instances: no instance is included.")
