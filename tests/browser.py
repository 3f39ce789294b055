"""A real browser for the tests that drive the dashboard: Debian's Chromium
(`/usr/bin/chromium`, installed by scripts/setup.sh), driven by Playwright through
`executable_path`, since `playwright install` cannot download its own browsers here.

The flags keep Chromium headless and quiet: no sandbox (the tests run as root), and no
background connections (updates, sync, QUIC), which a closed network would refuse.
Each test gets a page in a fresh browser context (its own sessionStorage), the browser
is shared by the session. `CAIRN_CHROMIUM` names another Chromium binary.

The fixtures are made known once, by tests/conftest.py: Playwright's synchronous driver
runs an event loop of its own, and a second driver in the same session (a second copy
of a session fixture, imported into another module) finds that loop running and fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

CHROMIUM = os.environ.get("CAIRN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: where the screenshots of each page go (docs/dashboard.md shows them), when
#: CAIRN_DASHBOARD_SCREENSHOTS=1: a plain run leaves the documentation as it is
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "dashboard"
TAKE_SCREENSHOTS = os.environ.get("CAIRN_DASHBOARD_SCREENSHOTS") == "1"
#: how long an expectation on the page waits (the page polls every second while a job runs)
EXPECT_MS = 20_000
expect.set_options(timeout=EXPECT_MS)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"No Chromium at {CHROMIUM}: run scripts/setup.sh (apt package chromium).")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="en-GB")
    context.set_default_timeout(EXPECT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def screenshot(page: Page, name: str) -> None:
    if not TAKE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
