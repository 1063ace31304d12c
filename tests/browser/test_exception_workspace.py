"""Ops clears the exception queue from the browser, in real Chromium: assign, fix-and-retry, retry in bulk;
the runs continue and every action names the person of the token."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from ingress.exceptions_api import ASSIGNED
from ledger.repository import audit_trail, get_exception
from runs.opportunity_to_project import OpportunityToProjectResult
from sandboxes.salesforce.seed import SalesforceSeeder

from ..ingress.test_exceptions_api import exception_for, incomplete_deal, prepared, settled
from ..support.system import System
from .conftest import ACTION_TIMEOUT_MS, screenshot, signed_in

OLGA = "Olga Ops"


async def test_ops_assigns_fixes_and_retries_an_exception_and_the_run_continues(
    system: System, browser: Browser
) -> None:
    await prepared(system)
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)
    page = await signed_in(browser, system, OLGA, "ops", "/workspace/exceptions?owner=sales_ops")

    row = page.locator(f"tr[data-exception-id='{item['id']}']")
    await expect(row).to_be_visible(timeout=ACTION_TIMEOUT_MS)
    text = await row.inner_text()
    assert "Sales ops" in text and "deal to project" in text and "tax_code" in text
    assert "sales_ops" not in text and "opportunity_to_project" not in text
    link = row.get_by_test_id("run-link")
    assert await link.inner_text() == item["workflow_id"]
    assert await link.get_attribute("href") == item["temporal_url"]
    await screenshot(page, "workspace-exceptions.png")

    await row.get_by_label("Assign to").fill("Sam Sales")
    await row.get_by_role("button", name="Assign").click()
    await expect(page.locator(".notice")).to_contain_text(f"assigned to Sam Sales by {OLGA}")
    # The filter survives the action: still the sales-ops queue.
    assert "owner=sales_ops" in page.url
    await expect(row.get_by_test_id("assignee")).to_contain_text("Sam Sales")
    await expect(row.get_by_test_id("assignee")).to_contain_text(OLGA)
    with system.database.session() as session:
        assigned = [e for e in audit_trail(session, key=item["dedupe_key"]) if e.action == ASSIGNED]
    assert assigned and assigned[0].actor.startswith(f"{OLGA} <")
    assert assigned[0].detail == {"exception_id": item["id"], "assignee": "Sam Sales"}

    # A correction the process refuses is shown and nothing is retried.
    await row.locator("summary:has-text('Fix and retry')").click()
    await row.get_by_label("tax_code").fill("x" * 65)
    await row.get_by_role("button", name="Fix and retry").click()
    await expect(page.locator(".problem")).to_contain_text("tax_code")
    assert (await status_of(system, item["id"])) == "open"

    await row.locator("summary:has-text('Fix and retry')").click()
    await row.get_by_label("tax_code").fill("ZERORATEDOUTPUT")
    await row.get_by_label("Fix note").fill("export customer")
    await row.get_by_role("button", name="Fix and retry").click()
    await expect(page.locator(".notice")).to_contain_text("retry started with tax_code=ZERORATEDOUTPUT")

    handle = system.client.get_workflow_handle(item["workflow_id"], result_type=OpportunityToProjectResult)
    assert (await handle.result()).project_id
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        assert (await salesforce.get("Opportunity", opportunity_id))["Tax_Code__c"] == "ZERORATEDOUTPUT"
    done = await settled(system, item["id"])
    assert done["status"] == "resolved" and f"fix by {OLGA} <" in done["resolution"]["note"]


async def status_of(system: System, exception_id: int) -> str:
    with system.database.session() as session:
        found = get_exception(session, exception_id=exception_id)
    assert found is not None
    return str(found.status)


async def test_ops_retries_the_filtered_set_in_bulk_once_the_deals_are_fixed_in_the_crm(
    system: System, browser: Browser
) -> None:
    await prepared(system)
    items = [await exception_for(system, await incomplete_deal(system)) for _ in range(2)]
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        for item in items:
            await salesforce.update(
                "Opportunity", item["record"]["opportunity_id"], {"Tax_Code__c": "ZERORATEDOUTPUT"}
            )
    page = await signed_in(browser, system, OLGA, "ops", "/workspace/exceptions?owner=sales_ops&status=open")
    for item in items:
        await expect(page.locator(f"tr[data-exception-id='{item['id']}']")).to_be_visible()

    await page.locator("form[aria-label='Bulk action']").get_by_role("button", name="Retry all").click()
    await expect(page.locator(".notice")).to_contain_text(f"retry: 2 of 2 items by {OLGA}")
    for item in items:
        wf_id = item["workflow_id"]
        handle = system.client.get_workflow_handle(wf_id, result_type=OpportunityToProjectResult)
        assert (await handle.result()).project_id
        done = await settled(system, item["id"])
        assert done["status"] == "resolved" and f"retry by {OLGA} <" in done["resolution"]["note"]
