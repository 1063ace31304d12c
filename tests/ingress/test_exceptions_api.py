"""The exceptions queue through the ingress, on a real Temporal dev server, worker, ledger and sandboxes:
list, retry, fix-and-retry, skip and resolve with role tokens, and the ops page."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.story import BILLING_MODEL, SERVICE_CODE, Story, previous_period
from ingress.identity import mint_dev_token
from ledger.repository import open_exception
from runs.exception_action import ExceptionActionResult
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from sandboxes.salesforce.seed import SalesforceSeeder
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from ..workflows.helpers import eventually, project_from_a_won_deal, start_billing


def token_for(system: System, role: str) -> str:
    return next(token for token, has in system.settings.token_roles().items() if has == role)


# The person acting is whoever the token names: the ledger records them, never a name from the body.
PEOPLE = {"ops": "sales.ops", "finance": "finance.lead"}


def ingress(system: System, role: str | None = "ops") -> httpx.AsyncClient:
    assert system.ingress is not None
    headers = (
        {"Authorization": f"Bearer {mint_dev_token(system.settings, PEOPLE[role], role)}"} if role else {}
    )
    return httpx.AsyncClient(base_url=system.ingress.url, headers=headers, timeout=30)


async def prepared(system: System, step_seconds: float = 60) -> Story:
    """The story's firm: consultants and rate cards, which a project needs once its deal goes through."""
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=step_seconds)
    await story.prepare()
    return story


async def incomplete_deal(system: System) -> str:
    """A deal closed won without a tax code: the outbound message reaches the ingress, the run parks it."""
    stamp = uuid.uuid4().hex[:8]
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        deal = await salesforce.create_customer_deal(
            account_name=f"Umbrella {stamp}",
            country="GB",
            service_code=SERVICE_CODE,
            billing_model=BILLING_MODEL,
            omit=("Tax_Code__c",),
        )
        await salesforce.close_won(deal.opportunity_id)
    return deal.opportunity_id


async def exception_for(system: System, opportunity_id: str) -> dict[str, Any]:
    async with ingress(system) as api:

        async def listed() -> dict[str, Any] | None:
            response = await api.get(
                "/exceptions", params={"process": "opportunity_to_project", "status": "open"}
            )
            assert response.status_code == 200, response.text
            return next(
                (
                    i
                    for i in response.json()["items"]
                    if i["record"]["opportunity_id"][:15] == opportunity_id[:15]
                ),
                None,
            )

        found: dict[str, Any] = await eventually(listed, what="the sales-ops exception")
        return found


async def settled(system: System, exception_id: int) -> dict[str, Any]:
    async with ingress(system) as api:

        async def done() -> dict[str, Any] | None:
            item: dict[str, Any] = (await api.get(f"/exceptions/{exception_id}")).json()
            return item if item["status"] not in ("open", "retrying") else None

        found: dict[str, Any] = await eventually(done, what=f"exception {exception_id} to settle")
        return found


async def test_exception_endpoints_refuse_requests_without_a_known_role_token(system: System) -> None:
    async with ingress(system, role=None) as anonymous:
        assert (await anonymous.get("/exceptions")).status_code == 401
        forged = await anonymous.get("/exceptions", headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 401
        assert (await anonymous.post("/exceptions/1/retry", json={})).status_code == 401


async def test_an_incomplete_deal_is_listed_with_owner_reason_offending_record_age_and_run_link(
    system: System,
) -> None:
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)

    assert item["owner"] == "sales_ops" and item["process"] == "opportunity_to_project"
    assert "tax_code" in item["reason"] and item["record"]["missing"] == ["tax_code"]
    assert item["age_seconds"] >= 0 and item["attempts"] == 1
    assert item["workflow_id"] == o2p_id("salesforce", item["record"]["opportunity_id"])
    assert item["temporal_url"].endswith("/workflows/" + item["workflow_id"].replace(":", "%3A"))
    async with ingress(system, role="finance") as finance:
        only_sales_ops = await finance.get("/exceptions", params={"owner": "sales_ops"})
    assert item["id"] in [i["id"] for i in only_sales_ops.json()["items"]]


async def test_retry_after_the_deal_is_fixed_in_the_crm_continues_the_same_run_and_resolves_the_exception(
    system: System,
) -> None:
    # The demo's own step: the story fixes the deal in Salesforce and retries through this API.
    story = await prepared(system)
    outcome = await story.play_exception_fixed_and_retried()

    assert outcome.exception_status == "resolved"
    assert "tax_code" in outcome.reason
    handle = system.client.get_workflow_handle(
        outcome.opportunity_workflow, result_type=OpportunityToProjectResult
    )
    assert (await handle.result()).project_id == outcome.project_id
    item = await settled(system, outcome.exception_id)
    assert item["resolution"]["actor"] == "ps-sync" and item["resolution"]["note"].startswith(
        "retry by sales.ops"
    )
    # One run, continued: the fix did not start a second OpportunityToProject.
    assert (await handle.describe()).run_id == (
        await system.client.get_workflow_handle(handle.id).describe()
    ).run_id
    async with ingress(system) as api:
        again = await api.post(f"/exceptions/{outcome.exception_id}/retry", json={})
    assert again.status_code == 409 and "resolved" in again.text


async def test_fix_and_retry_writes_the_corrected_fields_to_the_crm_before_retrying(system: System) -> None:
    await prepared(system)
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)

    async with ingress(system) as api:
        response = await api.post(
            f"/exceptions/{item['id']}/fix",
            json={
                "corrected_fields": {"tax_code": "ZERORATEDOUTPUT"},
                "note": "export",
            },
        )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["exception"]["status"] == "retrying"
    assert accepted["exception"]["resolution"]["corrected_fields"] == {"tax_code": "ZERORATEDOUTPUT"}
    assert accepted["action_workflow_id"].startswith(f"exception-action:{item['dedupe_key']}:")

    handle = system.client.get_workflow_handle(item["workflow_id"], result_type=OpportunityToProjectResult)
    created = await handle.result()
    assert created.project_id
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        opportunity = await salesforce.get("Opportunity", opportunity_id)
    assert opportunity["Tax_Code__c"] == "ZERORATEDOUTPUT"
    assert (await settled(system, item["id"]))["status"] == "resolved"


async def test_a_correction_the_crm_refuses_puts_the_item_back_in_the_queue_saying_why(
    system: System,
) -> None:
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)

    async with ingress(system) as api:
        # JPY is a currency code, but not one this org's restricted currency picklist holds.
        response = await api.post(
            f"/exceptions/{item['id']}/fix",
            json={"corrected_fields": {"currency": "JPY"}},
        )
    assert response.status_code == 202, response.text
    action = system.client.get_workflow_handle(
        response.json()["action_workflow_id"], result_type=ExceptionActionResult
    )
    outcome = await action.result()

    assert outcome.outcome == "fix_refused" and "salesforce" in outcome.detail.lower()
    async with ingress(system) as api:
        reopened = (await api.get(f"/exceptions/{item['id']}")).json()
    assert reopened["status"] == "open" and reopened["attempts"] == 1
    assert re.match(
        r"fix by sales\.ops <dev:[0-9a-f-]+> \(currency=JPY\): the correction was refused",
        reopened["resolution"]["note"],
    )


async def test_fix_with_a_field_the_process_cannot_correct_is_refused_naming_the_field(
    system: System,
) -> None:
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)

    async with ingress(system) as api:
        unknown = await api.post(
            f"/exceptions/{item['id']}/fix",
            json={"corrected_fields": {"colour": "blue"}},
        )
        bad_value = await api.post(
            f"/exceptions/{item['id']}/fix",
            json={"corrected_fields": {"currency": "pounds"}},
        )
        still = (await api.get(f"/exceptions/{item['id']}")).json()
    assert unknown.status_code == 422
    assert unknown.json()["detail"]["problems"][0]["field"] == "colour"
    assert bad_value.status_code == 422 and bad_value.json()["detail"]["problems"][0]["field"] == "currency"
    assert still["status"] == "open"


async def test_time_to_billing_items_take_no_corrected_fields_they_are_fixed_in_the_psa(
    system: System,
) -> None:
    with system.database.session() as session:
        item = open_exception(
            session,
            dedupe_key=f"time_to_billing:test-{uuid.uuid4().hex[:8]}:2026-10:no_rate:time_entry",
            process="time_to_billing",
            owner="finance",
            reason="no rate for role 'Architect'",
            record={"project_id": "30100999", "period": "2026-10", "kind": "time_entry", "ids": ["1"]},
        )
    async with ingress(system) as api:
        response = await api.post(f"/exceptions/{item.id}/fix", json={"corrected_fields": {"rate": "150"}})
    assert response.status_code == 422 and "fix the record in its source system" in response.text


async def test_skip_needs_a_reason_and_a_skipped_item_cannot_be_retried(system: System) -> None:
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)

    async with ingress(system) as api:
        without_reason = await api.post(f"/exceptions/{item['id']}/skip", json={})
        skipped = await api.post(f"/exceptions/{item['id']}/skip", json={"reason": "deal lost after all"})
        retried = await api.post(f"/exceptions/{item['id']}/retry", json={})
    assert without_reason.status_code == 422
    assert without_reason.json()["problems"][0]["field"] == "reason"
    assert skipped.status_code == 200
    assert skipped.json()["exception"]["status"] == "skipped"
    assert skipped.json()["exception"]["resolution"]["note"] == "deal lost after all"
    assert retried.status_code == 409


async def test_finance_reads_every_item_but_acts_only_on_items_finance_owns(system: System) -> None:
    opportunity_id = await incomplete_deal(system)
    item = await exception_for(system, opportunity_id)

    async with ingress(system, role="finance") as finance:
        read = await finance.get(f"/exceptions/{item['id']}")
        retry = await finance.post(f"/exceptions/{item['id']}/retry", json={})
    assert read.status_code == 200
    assert retry.status_code == 403 and "sales_ops" in retry.text


async def test_unknown_exception_gets_404(system: System) -> None:
    async with ingress(system) as api:
        assert (await api.get("/exceptions/999999")).status_code == 404
        assert (await api.post("/exceptions/999999/retry", json={})).status_code == 404


async def test_ops_page_shows_invoices_awaiting_approval_and_exceptions_by_owner_linked_to_temporal(
    system: System,
) -> None:
    story = await prepared(system)
    created = await project_from_a_won_deal(system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=1)
    handle = await start_billing(system, created.project_id, period=period)

    async def asks_finance() -> bool:
        return (await handle.query(TimeToBilling.status)).stage == "awaiting_approval"

    await eventually(asks_finance, what="the billing run to ask finance")
    item = await exception_for(system, await incomplete_deal(system))
    assert system.ingress is not None

    async def page_lists_the_run() -> str | None:
        basic = base64.b64encode(f"ops:{token_for(system, 'ops')}".encode()).decode()
        async with httpx.AsyncClient(base_url=system.ingress.url, timeout=30) as browser:  # type: ignore[union-attr]
            response = await browser.get("/ops", headers={"Authorization": f"Basic {basic}"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        # Visibility is eventually consistent: the run shows once its search attributes are indexed.
        return response.text if handle.id.replace(":", "%3A") in response.text else None

    html: str = await eventually(page_lists_the_run, what="the ops page to list the billing run")
    assert "Invoices awaiting approval" in html and "<td>awaiting approval</td>" in html
    assert created.project_id in html and period.value in html
    assert f"<td>{item['id']}</td>" in html and "<td>Sales ops</td>" in html
    # People read words, not the ledger's codes.
    assert "awaiting_approval" not in html and "sales_ops" not in html
    async with httpx.AsyncClient(base_url=system.ingress.url, timeout=30) as browser:
        anonymous = await browser.get("/ops")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
