"""Finance approves and rejects invoices from the browser inbox, in real Chromium; the runs post or stop."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from ledger.repository import audit_trail
from runs.time_to_billing import TimeToBillingResult

from ..ingress.test_approvals import an_invoice_waiting_for_finance
from ..support.system import System
from .conftest import ACTION_TIMEOUT_MS, screenshot, signed_in

FIONA = "Fiona Finance"


async def test_finance_approves_one_invoice_and_rejects_another_from_the_inbox(
    system: System, browser: Browser
) -> None:
    to_approve = await an_invoice_waiting_for_finance(system)
    to_reject = await an_invoice_waiting_for_finance(system)
    page = await signed_in(browser, system, FIONA, "finance", "/workspace/inbox")

    card = page.locator(f"section[data-workflow-id='{to_approve.handle.id}']")
    await expect(card).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    item = to_approve.item
    text = await card.inner_text()
    # What finance decides on: customer, project, entity, period, total, lines, why, and when it is chased.
    assert item["customer"] in text and to_approve.project_id in text and to_approve.period in text
    assert "UK" in text and f"{float(item['amount']):,.2f}" in text and item["reason"] in text
    assert "awaiting approval" in text and "awaiting_approval" not in text
    assert await card.locator("table.lines tbody tr").count() == item["line_count"] + 1
    await screenshot(page, "workspace-inbox.png")

    await card.get_by_role("button", name="Approve").click()
    notice = page.locator(".notice")
    await expect(notice).to_contain_text(f"{to_approve.project_id} {to_approve.period} approved by {FIONA}")
    approved: TimeToBillingResult = await to_approve.handle.result()
    assert approved.outcome == "posted"
    with system.database.session() as session:
        trail = audit_trail(session, key=to_approve.handle.id)
    decisions = [e for e in trail if e.action == "invoice_approved"]
    assert decisions and decisions[0].detail["approver"].startswith(f"{FIONA} <")

    rejecting = page.locator(f"section[data-workflow-id='{to_reject.handle.id}']")
    await rejecting.get_by_label("Reason to reject").fill("wrong PO number")
    await rejecting.get_by_role("button", name="Reject").click()
    await expect(notice).to_contain_text(f"{to_reject.project_id} {to_reject.period} rejected by {FIONA}")
    rejected: TimeToBillingResult = await to_reject.handle.result()
    assert rejected.outcome == "rejected"
    assert rejected.reason is not None and FIONA in rejected.reason and "wrong PO number" in rejected.reason
    # Both decided: neither waits in the inbox, and the page says who decided.
    await page.reload()
    await expect(page.locator("section.invoice")).to_have_count(0)
    decided = page.locator("[data-testid=decided]")
    await expect(decided.filter(has_text=to_approve.handle.id)).to_contain_text(f"approved by {FIONA}")
    await expect(decided.filter(has_text=to_reject.handle.id)).to_contain_text(f"rejected by {FIONA}")


async def test_a_decision_on_a_total_the_run_no_longer_waits_on_is_refused_on_the_page(
    system: System, browser: Browser
) -> None:
    waiting = await an_invoice_waiting_for_finance(system)
    page = await signed_in(browser, system, FIONA, "finance", "/workspace/inbox")
    card = page.locator(f"section[data-workflow-id='{waiting.handle.id}']")
    await expect(card).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    # As if the invoice had changed since the page was drawn: the run refuses what the person did not see.
    await card.locator("form:has(button.approve) input[name=expected_amount]").evaluate(
        "field => field.value = '1.00'"
    )
    await card.get_by_role("button", name="Approve").click()
    await expect(page.locator(".problem")).to_contain_text(waiting.project_id)
    status = await waiting.handle.query("status")
    assert status["stage"] == "awaiting_approval"
