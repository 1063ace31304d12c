"""Real headless Chromium (Debian's, at /usr/bin/chromium) driven by Playwright, against the ingress of a
running system: a real Temporal dev server, a worker and the vendor sandboxes. No browser is downloaded."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright
from temporalio.testing import WorkflowEnvironment

from ingress.identity import mint_dev_token

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import target_of

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: two cores shared with other test runs, and a page that waits on Temporal.
ACTION_TIMEOUT_MS = 60_000
# Set to a folder (docs/) to keep screenshots of the pages the tests visit.
SCREENSHOTS = os.environ.get("PSSYNC_SCREENSHOTS_DIR")


@pytest.fixture
async def system(dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env)
    ) as running:
        yield running


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, system: System, name: str, role: str, page_path: str) -> Page:
    """A fresh browser context whose person signs in through the sign-in form and lands on `page_path`."""
    assert system.ingress is not None
    context = await browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(system.ingress.url + page_path)
    assert "/workspace/sign-in" in page.url
    await page.fill("textarea[name=token]", mint_dev_token(system.settings, name, role))
    await page.click("button:has-text('Sign in')")
    await page.wait_for_url(f"**{page_path}")
    return page


async def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)
