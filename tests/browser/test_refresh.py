"""The workspace keeps itself current: a page reloads on its own, but never under a person who is typing."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser

from ingress.workspace import rendering

from ..support.system import System
from .conftest import signed_in
from .test_roles_and_forgery import queued

RELOAD_DEADLINE_MS = 30_000


async def test_a_page_reloads_itself_but_not_while_a_form_holds_what_someone_typed(
    system: System, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rendering, "REFRESH_SECONDS", 1)
    item = queued(system, "finance")
    page = await signed_in(browser, system, "Olga Ops", "ops", "/workspace/health")
    await page.evaluate("window.drawnBefore = true")
    # A reload draws a fresh page: the mark is gone.
    await page.wait_for_function("window.drawnBefore === undefined", timeout=RELOAD_DEADLINE_MS)

    await page.goto(page.url.replace("/workspace/health", "/workspace/exceptions"))
    row = page.locator(f"tr[data-exception-id='{item.id}']")
    field = row.get_by_label("Assign to")
    for _ in range(10):
        await field.fill("Sam Sales")
        await page.locator("h1").click()  # typed, then looked away: the text stays, the focus is gone
        # A reload already under way when the text went in would wipe it: wait past one, then look again.
        await asyncio.sleep(2)
        if await field.input_value() == "Sam Sales":
            break
    await page.evaluate("window.drawnBefore = true")
    await asyncio.sleep(4)  # four refresh periods
    assert await page.evaluate("window.drawnBefore") is True
    assert await field.input_value() == "Sam Sales"

    await field.fill("")
    await page.locator("h1").click()
    await page.wait_for_function("window.drawnBefore === undefined", timeout=RELOAD_DEADLINE_MS)
