"""Roles in the browser: a viewer reads every page and is offered no action; finance is offered only
finance's exceptions; a form from another origin and a forged action are refused by the server, not only
hidden by the page."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Browser, expect

from ingress.identity import mint_dev_token
from ingress.workspace.browser_auth import COOKIE
from ledger.records import ExceptionItem
from ledger.repository import get_exception, open_exception

from ..ingress.test_approvals import an_invoice_waiting_for_finance
from ..support.system import System
from .conftest import ACTION_TIMEOUT_MS, screenshot, signed_in


def queued(system: System, owner: str) -> ExceptionItem:
    with system.database.session() as session:
        return open_exception(
            session,
            dedupe_key=f"reconciliation:2026-10:UK:{owner}-{uuid.uuid4().hex[:8]}",
            process="reconciliation",
            owner=owner,
            reason=f"ledger and ERP disagree for {owner}",
            record={"legal_entity": "UK", "period": "2026-10"},
        )


async def test_a_viewer_reads_the_inbox_the_queue_and_the_health_page_but_is_offered_no_action(
    system: System, browser: Browser
) -> None:
    waiting = await an_invoice_waiting_for_finance(system)
    item = queued(system, "finance")
    page = await signed_in(browser, system, "Vic Viewer", "viewer", "/workspace/inbox")

    card = page.locator(f"section[data-workflow-id='{waiting.handle.id}']")
    await expect(card).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    assert waiting.project_id in await card.inner_text()
    await page.goto(page.url.replace("/workspace/inbox", "/workspace/exceptions"))
    await expect(page.locator(f"tr[data-exception-id='{item.id}']")).to_be_visible()
    await page.goto(page.url.replace("/workspace/exceptions", "/workspace/health"))
    health = page.locator("main")
    await expect(page.get_by_test_id("unbilled")).to_contain_text(waiting.item["currency"])
    await expect(health).to_contain_text("Exceptions by owner and age")
    await expect(health).to_contain_text("Finance")
    await screenshot(page, "workspace-health.png")

    for path in ("/workspace/inbox", "/workspace/exceptions", "/workspace/health"):
        await page.goto(page.url.split("/workspace/")[0] + path)
        buttons = [text.strip() for text in await page.locator("main button, main form").all_inner_texts()]
        # The exception filter is a form that changes nothing; nothing else may be offered.
        assert all("Filter" in text for text in buttons), (path, buttons)
        assert await page.locator("main form[method=post]").count() == 0, path

    # Hidden is not enough: the server refuses the viewer's forged decision and action too.
    assert system.ingress is not None
    viewer = mint_dev_token(system.settings, "Vic Viewer", "viewer")
    origin = {"Origin": system.ingress.url}
    async with httpx.AsyncClient(base_url=system.ingress.url, cookies={COOKIE: viewer}) as forger:
        decided = await forger.post(
            "/workspace/inbox/decide",
            data={
                "project_id": waiting.project_id,
                "period": waiting.period,
                "invoice_version": waiting.item["version"],
                "expected_amount": waiting.item["amount"],
                "currency": waiting.item["currency"],
                "decision": "approve",
            },
            headers=origin,
        )
        skipped = await forger.post(
            f"/workspace/exceptions/{item.id}/skip", data={"note": "not mine"}, headers=origin
        )
    assert decided.status_code == 303 and "may+not+approve" in decided.headers["location"]
    assert skipped.status_code == 303 and "may+not+act" in skipped.headers["location"]
    assert (await waiting.handle.query("status"))["stage"] == "awaiting_approval"
    with system.database.session() as session:
        unchanged = get_exception(session, exception_id=item.id)
    assert unchanged is not None and unchanged.status == "open"


async def test_finance_is_offered_actions_on_finance_items_only(system: System, browser: Browser) -> None:
    mine, theirs = queued(system, "finance"), queued(system, "pmo")
    page = await signed_in(browser, system, "Fiona Finance", "finance", "/workspace/exceptions")
    own_row = page.locator(f"tr[data-exception-id='{mine.id}']")
    other_row = page.locator(f"tr[data-exception-id='{theirs.id}']")
    await expect(own_row.get_by_role("button", name="Skip")).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    await expect(other_row).to_contain_text("PMO's to act on")
    assert await other_row.locator("button").count() == 0

    await own_row.get_by_label("Reason to skip").fill("booked by hand")
    await own_row.get_by_role("button", name="Skip").click()
    await expect(page.locator(".notice")).to_contain_text(f"exception {mine.id} skipped by Fiona Finance")
    with system.database.session() as session:
        skipped = get_exception(session, exception_id=mine.id)
    assert skipped is not None and skipped.status == "skipped"
    assert skipped.resolution is not None and skipped.resolution.actor.startswith("Fiona Finance <")


async def test_forms_from_another_origin_and_refused_tokens_change_nothing(system: System) -> None:
    item = queued(system, "finance")
    assert system.ingress is not None
    ops = mint_dev_token(system.settings, "Olga Ops", "ops")
    async with httpx.AsyncClient(base_url=system.ingress.url, cookies={COOKIE: ops}) as browser_like:
        elsewhere = await browser_like.post(
            f"/workspace/exceptions/{item.id}/skip",
            data={"note": "forged"},
            headers={"Origin": "https://evil.example"},
        )
        no_origin = await browser_like.post(f"/workspace/exceptions/{item.id}/skip", data={"note": "forged"})
        signed_in_page = await browser_like.get("/workspace/exceptions")
    assert elsewhere.status_code == 403 and "Origin" in elsewhere.text
    assert no_origin.status_code == 403
    assert signed_in_page.status_code == 200 and f'data-exception-id="{item.id}"' in signed_in_page.text
    with system.database.session() as session:
        unchanged = get_exception(session, exception_id=item.id)
    assert unchanged is not None and unchanged.status == "open"

    async with httpx.AsyncClient(base_url=system.ingress.url) as anonymous:
        page = await anonymous.get("/workspace/exceptions")
        refused = await anonymous.post(
            "/workspace/sign-in",
            data={"token": "forged", "next": "/workspace/inbox"},
            headers={"Origin": system.ingress.url},
        )
        open_redirect = await anonymous.post(
            "/workspace/sign-in",
            data={"token": ops, "next": "https://evil.example/"},
            headers={"Origin": system.ingress.url},
        )
    assert page.status_code == 303 and page.headers["location"].startswith("/workspace/sign-in")
    assert refused.status_code == 303 and "refused" in refused.headers["location"]
    assert COOKIE not in refused.cookies
    assert open_redirect.status_code == 303 and open_redirect.headers["location"] == "/workspace/health"
    cookie = open_redirect.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
