"""KantataConnector behaviour beyond the role contract: how it stays safe without an idempotency key,
where it records billing in Kantata, and how a flaky change feed is read once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from canonical import (
    BillingModel,
    Contract,
    InvoiceState,
    Money,
    Period,
    ProjectSpec,
    ProjectStatus,
    ReceivablesSummary,
    TimeApproved,
)
from canonical.events import item_key
from connectors.errors import Conflict, NotFound, Rejected, Unavailable
from connectors.kantata import KantataConnector
from connectors.kantata.feed import FeedCursor, merge
from sandboxes.kantata.middleware import DropRule
from sandboxes.kantata.seed import KantataSeeder, TimeLog

from .conftest import CURRENCY, People, Sandbox, start_sandbox


def _spec(**changes: Any) -> ProjectSpec:
    key = uuid.uuid4().hex[:10]
    spec = ProjectSpec(
        external_ref=f"salesforce:006{key}",
        name=f"Implementation {key}",
        customer_name="Acme Ltd",
        contract=Contract(
            legal_entity="UK",
            currency=CURRENCY,
            billing_model=BillingModel.TIME_AND_MATERIALS,
            tax_code="OUTPUT2",
        ),
        service_code="ADV-TM",
        start_date=date(2024, 5, 1),
        budget=Money.of("48000.25", CURRENCY),
        tasks=("Discovery", "Advisory"),
        milestones=("Go-live",),
    )
    return spec.model_copy(update=changes)


def _drop_next(sandbox: Sandbox, method: str, path: str) -> None:
    sandbox.app.state.drop_rules.add(DropRule(method=method, path=path, remaining=1))


async def _workspaces_with_ref(api: httpx.AsyncClient, ref: str) -> int:
    body = (
        await api.get(
            "/workspaces", params={"external_reference_service_model_refs": ref, "include_archived": "true"}
        )
    ).json()
    return int(body["count"])


async def _approved(
    seeder: KantataSeeder, people: People, project_id: str, count: int = 1, day: date = date(2024, 5, 6)
) -> list[str]:
    await seeder.add_to_project(project_id, [people.consultant])
    ids = await seeder.log_time(project_id, [TimeLog(people.consultant.user_id, day, 60)] * count)
    await seeder.submit_and_approve(project_id, ids)
    return ids


# --- ensure_project without an idempotency key -------------------------------------------------------------


async def test_ensure_project_retried_after_a_lost_reply_finds_the_workspace_it_created(
    sandbox: Sandbox, psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    spec = _spec()
    _drop_next(sandbox, "POST", "/api/v1/workspaces")

    with pytest.raises(Unavailable):
        await psa.ensure_project(spec)
    project = await psa.ensure_project(spec)

    assert await _workspaces_with_ref(api, spec.external_ref) == 1
    assert sorted(task.name for task in project.tasks) == ["Advisory", "Discovery"]
    assert sandbox.app.state.stats.dropped_responses >= 1


async def test_ensure_project_retried_after_losing_the_tasks_reply_creates_no_second_copy(
    sandbox: Sandbox, psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    spec = _spec()
    _drop_next(sandbox, "POST", "/api/v1/stories")

    with pytest.raises(Unavailable):
        await psa.ensure_project(spec)
    project = await psa.ensure_project(spec)

    stories = (await api.get("/stories", params={"workspace_id": project.id})).json()
    titles = sorted(story["title"] for story in stories["stories"].values())
    assert titles == ["Advisory", "Discovery", "Go-live"]


async def test_ensure_project_writes_budget_currency_rate_card_and_reference_the_kantata_way(
    psa: KantataConnector, api: httpx.AsyncClient, people: People
) -> None:
    spec = _spec()

    project = await psa.ensure_project(spec)
    body = (
        await api.get(
            f"/workspaces/{project.id}", params={"include": "external_references,custom_field_values"}
        )
    ).json()

    workspace = body["workspaces"][project.id]
    assert workspace["price_in_cents"] == 4800025
    assert workspace["currency"] == CURRENCY
    assert str(workspace["rate_card_id"]) == people.rate_card_id
    assert workspace["require_time_approvals"] is True
    [reference] = body["external_references"].values()
    assert (reference["service_name"], reference["service_model"], reference["service_model_ref"]) == (
        "ps-sync",
        "Opportunity",
        spec.external_ref,
    )
    values = {value["custom_field_name"]: value["value"] for value in body["custom_field_values"].values()}
    assert values == {
        "Client": "Acme Ltd",
        "Legal Entity": "UK",
        "Billing Model": "time_and_materials",
        "Service Code": "ADV-TM",
    }


async def test_ensure_project_takes_the_rate_card_of_the_set_named_after_the_service(
    psa: KantataConnector, seeder: KantataSeeder
) -> None:
    card = await seeder.rate_card(
        CURRENCY, {date(2024, 1, 1): {"Consultant": Money.of("300", CURRENCY)}}, set_title="IMP-FF"
    )

    project = await psa.ensure_project(_spec(service_code="IMP-FF"))

    assert project.rate_card_id == card
    assert (await psa.get_rate_card(project.id)).rate_for("Consultant", date(2024, 5, 1)) == Money.of(
        "300", CURRENCY
    )


async def test_ensure_project_without_a_rate_card_in_the_currency_is_rejected_and_creates_nothing(
    psa: KantataConnector,
) -> None:
    spec = _spec(
        contract=Contract(
            legal_entity="UK", currency="CHF", billing_model=BillingModel.FIXED_FEE, tax_code="OUTPUT2"
        ),
        budget=None,
    )

    with pytest.raises(Rejected) as raised:
        await psa.ensure_project(spec)

    assert raised.value.field_errors[0].field == "rate_card"
    assert await psa.find_project(spec.external_ref) is None


async def test_ensure_project_refuses_a_budget_in_another_currency(psa: KantataConnector) -> None:
    with pytest.raises(Rejected, match="budget"):
        await psa.ensure_project(_spec(budget=Money.of("100", "EUR")))


async def test_an_external_reference_with_a_comma_is_refused_before_any_call(psa: KantataConnector) -> None:
    with pytest.raises(Rejected):
        await psa.find_project("salesforce:006A,006B")


async def test_an_archived_project_is_still_found_so_it_is_never_created_twice(
    psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    spec = _spec()
    project = await psa.ensure_project(spec)

    await psa.set_project_status(project.id, ProjectStatus.ARCHIVED, "engagement closed")
    again = await psa.ensure_project(spec)

    assert again.id == project.id and again.status == ProjectStatus.ARCHIVED
    assert await _workspaces_with_ref(api, spec.external_ref) == 1


async def test_a_status_change_leaves_its_reason_on_our_external_reference(
    psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec())

    await psa.set_project_status(project.id, ProjectStatus.ON_HOLD, "customer master incomplete")

    body = (await api.get(f"/workspaces/{project.id}", params={"include": "external_references"})).json()
    [reference] = body["external_references"].values()
    assert reference["external_message"] == "on_hold: customer master incomplete"
    assert body["workspaces"][project.id]["status"]["message"] == "On Hold"


async def test_an_account_without_ps_syncs_custom_fields_is_refused_by_name() -> None:
    sandbox = start_sandbox()
    try:
        state = sandbox.app.state.kantata
        for field in list(state.col("custom_fields")):
            if field["name"] in ("Legal Entity", "ERP Invoices"):
                state.col("custom_fields").delete(field["id"])
        connector = sandbox.connector()
        try:
            with pytest.raises(Rejected, match="Legal Entity, ERP Invoices"):
                await connector.ensure_project(_spec())
        finally:
            await connector.aclose()
    finally:
        sandbox.served.stop()


# --- time, roles, rates -------------------------------------------------------------------------------------


async def test_time_carries_the_role_of_the_persons_participation(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_spec())
    await seeder.add_to_project(project.id, [people.senior])
    ids = await seeder.log_time(project.id, [TimeLog(people.senior.user_id, date(2024, 5, 7), 45)])
    await seeder.submit_and_approve(project.id, ids)

    [entry] = [e async for page in psa.time_entries(project.id, Period(value="2024-05")) for e in page.items]

    assert entry.role == "Senior Consultant"
    assert entry.resource_id == people.senior.user_id
    assert entry.hours * 60 == 45


# --- mark_billed ------------------------------------------------------------------------------------------


async def test_mark_billed_puts_the_work_on_a_kantata_invoice_carrying_the_erp_number(
    psa: KantataConnector, seeder: KantataSeeder, people: People, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec())
    entries = await _approved(seeder, people, project.id, count=3)
    number = f"INV-{uuid.uuid4().hex[:6]}"

    await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number=number)

    body = (
        await api.get(
            "/invoices",
            params={
                "external_reference_service_model_refs": number,
                "include": "time_entries,external_references",
            },
        )
    ).json()
    [invoice] = body["invoices"].values()
    assert sorted(invoice["time_entry_ids"]) == sorted(entries)
    assert invoice["draft"] is False
    assert all(body["time_entries"][entry]["is_invoiced"] for entry in entries)


async def test_mark_billed_retried_after_a_lost_reply_makes_one_invoice(
    sandbox: Sandbox, psa: KantataConnector, seeder: KantataSeeder, people: People, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec())
    entries = await _approved(seeder, people, project.id, count=2)
    number = f"INV-{uuid.uuid4().hex[:6]}"
    _drop_next(sandbox, "POST", "/api/v1/invoices")

    with pytest.raises(Unavailable):
        await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number=number)
    await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number=number)

    body = (await api.get("/invoices", params={"external_reference_service_model_refs": number})).json()
    assert body["count"] == 1


async def test_mark_billed_in_batches_adds_the_rest_under_the_same_number(
    psa: KantataConnector, seeder: KantataSeeder, people: People, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec())
    entries = await _approved(seeder, people, project.id, count=4)
    number = f"INV-{uuid.uuid4().hex[:6]}"

    await psa.mark_billed(time_entry_ids=entries[:2], expense_ids=[], invoice_number=number)
    await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number=number)

    body = (
        await api.get(
            "/invoices", params={"external_reference_service_model_refs": number, "include": "time_entries"}
        )
    ).json()
    assert sorted(e for invoice in body["invoices"].values() for e in invoice["time_entry_ids"]) == sorted(
        entries
    )


async def test_mark_billed_names_entries_kantata_does_not_have(psa: KantataConnector) -> None:
    with pytest.raises(NotFound, match="999999998"):
        await psa.mark_billed(time_entry_ids=["999999998"], expense_ids=[], invoice_number="INV-404")


async def test_mark_billed_refuses_unapproved_time_as_kantata_does(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_spec())
    await seeder.add_to_project(project.id, [people.consultant])
    [entry] = await seeder.log_time(project.id, [TimeLog(people.consultant.user_id, date(2024, 5, 2), 30)])

    with pytest.raises(Rejected) as raised:
        await psa.mark_billed(time_entry_ids=[entry], expense_ids=[], invoice_number="INV-EARLY")

    assert "not been approved" in raised.value.field_errors[0].message


async def test_mark_billed_conflict_for_an_expense_billed_under_another_number(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_spec())
    expense = await seeder.log_expense(project.id, day=date(2024, 5, 3), amount=Money.of("80", CURRENCY))
    await psa.mark_billed(time_entry_ids=[], expense_ids=[expense], invoice_number="INV-E1")

    await psa.mark_billed(time_entry_ids=[], expense_ids=[expense], invoice_number="INV-E1")
    with pytest.raises(Conflict, match="INV-E1"):
        await psa.mark_billed(time_entry_ids=[], expense_ids=[expense], invoice_number="INV-E2")


async def test_owed_among_named_items_is_what_kantata_still_holds_billable_and_unbilled(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_spec())
    billed, owed_time = await _approved(seeder, people, project.id, count=2)
    (internal,) = await seeder.log_time(
        project.id, [TimeLog(people.consultant.user_id, date(2024, 5, 7), 45, billable=False)]
    )
    await seeder.submit_and_approve(project.id, [internal])
    (unapproved,) = await seeder.log_time(
        project.id, [TimeLog(people.consultant.user_id, date(2024, 5, 8), 30)]
    )
    expense = await seeder.log_expense(project.id, day=date(2024, 5, 3), amount=Money.of("80", CURRENCY))
    own_cost = await seeder.log_expense(
        project.id, day=date(2024, 5, 3), amount=Money.of("12.50", CURRENCY), billable=False
    )
    await psa.mark_billed(
        time_entry_ids=[billed], expense_ids=[], invoice_number=f"INV-{uuid.uuid4().hex[:6]}"
    )
    named = [
        item_key("time", billed),
        item_key("time", owed_time),
        item_key("time", internal),
        item_key("time", unapproved),
        item_key("expense", expense),
        item_key("expense", own_cost),
    ]

    owed = await psa.owed_among(project.id, named)

    assert owed == sorted([item_key("time", owed_time), item_key("expense", expense)])


# --- update_financials ------------------------------------------------------------------------------------


def _summary(number: str, state: InvoiceState, total: str, due: str, paid: str) -> ReceivablesSummary:
    return ReceivablesSummary(
        invoice_id=f"xero-{number}",
        invoice_number=number,
        state=state,
        total=Money.of(total, CURRENCY),
        amount_due=Money.of(due, CURRENCY),
        amount_paid=Money.of(paid, CURRENCY),
        amount_credited=Money.zero(CURRENCY),
    )


async def _financials(api: httpx.AsyncClient, project_id: str) -> dict[str, Any]:
    body = (
        await api.get(
            "/custom_field_values", params={"subject_type": "Workspace", "with_subject_id": project_id}
        )
    ).json()
    return {value["custom_field_name"]: value["value"] for value in body["custom_field_values"].values()}


async def test_update_financials_keeps_a_line_per_invoice_and_the_project_totals(
    psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec())

    await psa.update_financials(
        project.id, _summary("INV-0002", InvoiceState.AWAITING_PAYMENT, "600.00", "600.00", "0")
    )
    await psa.update_financials(
        project.id, _summary("INV-0001", InvoiceState.AWAITING_PAYMENT, "1200.10", "1200.10", "0")
    )
    await psa.update_financials(
        project.id, _summary("INV-0001", InvoiceState.PAID, "1200.10", "0", "1200.10")
    )
    before_repeat = await _financials(api, project.id)
    await psa.update_financials(
        project.id, _summary("INV-0001", InvoiceState.PAID, "1200.10", "0", "1200.10")
    )

    values = await _financials(api, project.id)
    lines = values["ERP Invoices"].splitlines()
    assert [line.split(" | ")[:2] for line in lines] == [
        ["INV-0001", "paid"],
        ["INV-0002", "awaiting_payment"],
    ]
    assert values["ERP Amount Due"] == [60000, CURRENCY]
    assert values["ERP Amount Paid"] == [120010, CURRENCY]
    assert values == before_repeat


# --- the change feed ----------------------------------------------------------------------------------------


async def test_a_flaky_feed_read_through_the_cursor_yields_each_approval_once_in_order(
    sandbox: Sandbox, psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_spec())
    cursor = FeedCursor.starting_at(datetime.now(UTC) - timedelta(seconds=2))
    approved = await _approved(seeder, people, project.id, count=12)
    sandbox.faults(seed=5, duplicate_event_rate=0.4, reorder_events=True)

    delivered: list[TimeApproved] = []
    async for page in psa.events(created_after=cursor.high_water, event_types=["TimeApproved"]):
        delivered.extend(e for e in page.items if isinstance(e, TimeApproved) and e.project_id == project.id)
    merged = merge(cursor, delivered, now=datetime.now(UTC))

    assert len(delivered) > len(approved), "the feed delivered duplicates"
    mine = [e for e in merged.events if isinstance(e, TimeApproved)]
    assert sorted(e.time_entry_id for e in mine) == sorted(approved)
    assert [(e.occurred_at, e.event_id) for e in mine] == sorted((e.occurred_at, e.event_id) for e in mine)


async def test_events_accept_kantata_event_type_names_too(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_spec())
    since = datetime.now(UTC) - timedelta(seconds=2)
    approved = await _approved(seeder, people, project.id)

    pages = [page async for page in psa.events(created_after=since, event_types=["time_entry:updated"])]

    found = [
        e for page in pages for e in page.items if isinstance(e, TimeApproved) and e.project_id == project.id
    ]
    assert [e.time_entry_id for e in found] == approved
    assert all(page.extra["latest_created_at"] is not None for page in pages if page.extra["delivered"])


async def test_events_refuse_an_unknown_type_and_a_naive_instant(psa: KantataConnector) -> None:
    with pytest.raises(Rejected, match="unknown event type"):
        async for _ in psa.events(created_after=datetime.now(UTC), event_types=["InvoicePaid"]):
            pass
    with pytest.raises(Rejected, match="timezone"):
        async for _ in psa.events(created_after=datetime(2024, 5, 1), event_types=[]):
            pass
