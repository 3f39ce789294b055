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

from tests.conftest import Service
from tests.dashboard.conftest import add_filled_instance, screenshot

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
