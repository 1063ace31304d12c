"""ReferenceSync on real Temporal servers: each ERP's set-up and the PSA's people copied into the ledger,
gaps against the entity settings raised (and resolved) as exceptions, and the schedules that run it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from canonical import LegalEntity
from config import Settings
from devstack.tryton import TrytonServer
from ledger.repository import (
    get_currency_rate,
    get_exception_by_dedupe_key,
    get_item,
    get_resource,
    get_tax_rate,
    list_accounts,
    list_currency_rates,
)
from runs.reference_sync import ReferenceSyncInput
from runs.schedules import (
    alert_scan_schedule_id,
    apply_schedules,
    month_end_schedule_id,
    payables_scan_schedule_id,
    reconciliation_schedule_id,
    reference_sync_schedule_id,
)
from sandboxes.kantata.seed import KantataSeeder
from workflows.reference_sync import ReferenceSync, ReferenceSyncResult

from ..support.system import Sandboxes, System, running_system
from .helpers import eventually


async def sync(
    system: System, *entities: LegalEntity, cost_currency: str | None = None
) -> ReferenceSyncResult:
    result: ReferenceSyncResult = await system.client.execute_workflow(
        ReferenceSync.run,
        ReferenceSyncInput(entities=entities, psa="kantata", cost_currency=cost_currency),
        id=f"reference-sync-test-{uuid.uuid4().hex[:10]}",
        task_queue=system.task_queue,
    )
    return result


@pytest.fixture
async def tryton_system(
    ts_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    async with running_system(ts_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


async def test_reference_sync_copies_xero_tax_rates_accounts_items_and_base_currency_into_the_ledger(
    ts_system: System,
) -> None:
    uk = ts_system.settings.entity("UK")
    result = await sync(ts_system, uk)

    (xero,) = result.erps
    assert xero.base_currency == "GBP"
    # Xero publishes no exchange rates: only the base currency has one, the others are named as lacking it.
    assert set(xero.currencies_without_rate) == {"EUR", "USD"}
    assert result.gaps == () and result.failures == ()
    with ts_system.database.session() as session:
        output2 = get_tax_rate(session, system="xero", code="OUTPUT2")
        assert output2 is not None and output2.rate == Decimal("20") and output2.active
        assert {a.code for a in list_accounts(session, system="xero")} >= {"090", "200", "260", "610"}
        consult = get_item(session, system="xero", code="CONSULT")
        assert consult is not None and consult.name == "Consulting services"
        gbp = get_currency_rate(session, system="xero", code="GBP")
        assert gbp is not None and gbp.rate == Decimal(1) and gbp.entity_currency == "GBP"
        assert [c.code for c in list_currency_rates(session, system="xero")] == ["GBP"]


async def test_reference_sync_twice_changes_nothing_the_second_time(ts_system: System) -> None:
    uk = ts_system.settings.entity("UK")
    await sync(ts_system, uk)
    second = await sync(ts_system, uk)
    written = second.erps[0].written
    assert all(summary.inserted == 0 and summary.updated == 0 for summary in written.values())
    assert written["tax_rates"].unchanged > 0


async def test_reference_sync_copies_employees_with_default_role_and_cost_rate_and_deactivates_disabled_ones(
    ts_system: System,
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        costed = await kantata.consultant(f"Ada {tag}", f"ada.{tag}@northwind.example", "Senior Consultant")
        uncosted = await kantata.consultant(f"Bo {tag}", f"bo.{tag}@northwind.example", "Consultant")
        memberships = await kantata.every("/account_memberships", {"by_user_id": costed.user_id})
        await kantata.call(
            "POST",
            "/cost_rates",
            body={
                "cost_rates": [
                    {
                        "account_membership_id": int(memberships[0]["id"]),
                        "currency": "GBP",
                        "amount_in_subunits": 6250,
                    },
                    {
                        "account_membership_id": int(memberships[0]["id"]),
                        "currency": "EUR",
                        "amount_in_subunits": 7300,
                    },
                ]
            },
        )

    result = await sync(ts_system, ts_system.settings.entity("UK"), cost_currency="GBP")
    assert result.psa is not None and uncosted.user_id in result.psa.without_cost_rate
    with ts_system.database.session() as session:
        ada = get_resource(session, system="kantata", external_id=costed.user_id)
        bo = get_resource(session, system="kantata", external_id=uncosted.user_id)
    assert ada is not None and ada.role == "Senior Consultant" and ada.active
    assert ada.cost_rate is not None and (ada.cost_rate.amount, ada.cost_rate.currency) == (
        Decimal("62.5"),
        "GBP",
    )
    assert bo is not None and bo.cost_rate is None and bo.role == "Consultant"

    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        (membership,) = await kantata.every("/account_memberships", {"by_user_id": uncosted.user_id})
        await kantata.call("PUT", f"/account_memberships/{membership['id']}/disable")
    await sync(ts_system, ts_system.settings.entity("UK"), cost_currency="GBP")
    with ts_system.database.session() as session:
        bo = get_resource(session, system="kantata", external_id=uncosted.user_id)
    assert bo is not None and not bo.active


async def test_reference_sync_reads_tryton_rates_in_the_company_currency_and_its_taxes(
    tryton_system: System,
) -> None:
    result = await sync(tryton_system, tryton_system.settings.entity("EU"))

    (tryton,) = result.erps
    assert tryton.base_currency == "EUR" and result.gaps == ()
    with tryton_system.database.session() as session:
        vat21 = get_tax_rate(session, system="tryton", code="VAT21")
        assert vat21 is not None and vat21.rate == Decimal("21") and vat21.active
        # Tryton holds 0.85 GBP per EUR, so one pound is worth 1/0.85 euro.
        gbp = get_currency_rate(session, system="tryton", code="GBP")
        assert gbp is not None and gbp.entity_currency == "EUR" and gbp.rate == Decimal("1.17647059")
        assert {a.code for a in list_accounts(session, system="tryton")} >= {"1.2.1", "4.1.2"}
        assert get_item(session, system="tryton", code="Consulting services") is not None


async def test_tax_code_an_entity_bills_with_but_the_erp_lacks_is_an_exception_for_finance_until_it_is_gone(
    tryton_system: System,
) -> None:
    eu = tryton_system.settings.entity("EU")
    misconfigured = eu.model_copy(update={"tax_codes": (*eu.tax_codes, "VAT9")})

    first = await sync(tryton_system, misconfigured)
    (gap,) = first.gaps
    assert (gap.kind, gap.code) == ("tax_code", "VAT9")
    with tryton_system.database.session() as session:
        item = get_exception_by_dedupe_key(session, dedupe_key="reference_sync:tryton:EU:tax_code:VAT9")
    assert item is not None and item.owner == "finance" and item.status == "open"
    assert "VAT9" in item.reason and "tryton" in item.reason

    second = await sync(tryton_system, eu)
    assert second.gaps == () and item.id in second.resolved_exceptions
    with tryton_system.database.session() as session:
        item = get_exception_by_dedupe_key(session, dedupe_key="reference_sync:tryton:EU:tax_code:VAT9")
    assert item is not None and item.status == "resolved"


async def test_erp_that_cannot_be_read_is_an_integration_support_exception_and_the_rest_still_syncs(
    ts_system: System,
) -> None:
    # An entity booked in an ERP this deployment has no connector for cannot be read at all.
    ghost = ts_system.settings.entity("UK").model_copy(update={"code": "XX", "erp": "quickbooks"})
    result = await sync(ts_system, ts_system.settings.entity("UK"), ghost)
    assert [f.system for f in result.failures] == ["quickbooks"]
    assert [e.erp for e in result.erps] == ["xero"] and result.psa is not None
    with ts_system.database.session() as session:
        item = get_exception_by_dedupe_key(session, dedupe_key="reference_sync:quickbooks:unreadable")
    assert item is not None and item.owner == "integration_support" and item.status == "open"


@pytest.fixture
async def dev_system_for_schedules(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> AsyncIterator[System]:
    async with running_system(dev_env.client, tmp_path, sandboxes) as system:
        yield system


async def _schedule_ids(client: Client, prefix: str) -> list[str]:
    return sorted([s.id async for s in await client.list_schedules() if s.id.startswith(prefix)])


async def test_schedules_apply_is_idempotent_and_the_reference_sync_schedule_runs_a_sync(
    dev_system_for_schedules: System,
) -> None:
    system = dev_system_for_schedules
    settings = system.settings.model_copy(update={"entities": [system.settings.entity("UK")]})
    try:
        first = await apply_schedules(system.client, settings)
        second = await apply_schedules(system.client, settings)
        assert [a.outcome for a in first] == ["created"] * 5
        assert [a.outcome for a in second] == ["updated"] * 5
        wanted = sorted(
            [
                reference_sync_schedule_id(settings),
                reconciliation_schedule_id(settings),
                alert_scan_schedule_id(settings),
                payables_scan_schedule_id(settings),
                month_end_schedule_id(settings, "UK"),
            ]
        )
        await eventually(
            lambda: _listed(system.client, settings.task_queue, wanted),
            what="every schedule to be listed once",
        )
        described = await system.client.get_schedule_handle(reconciliation_schedule_id(settings)).describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "Reconciliation"
        assert action.task_queue == settings.task_queue

        # Created with an immediate first run: reference data is in the ledger without waiting six hours.
        async def synced() -> bool:
            with system.database.session() as session:
                return get_tax_rate(session, system="xero", code="OUTPUT2") is not None

        await eventually(synced, seconds=60, what="the scheduled ReferenceSync to fill the ledger")
    finally:
        for schedule_id in wanted_ids(settings):
            await system.client.get_schedule_handle(schedule_id).delete()


def wanted_ids(settings: Settings) -> tuple[str, ...]:
    return (
        reference_sync_schedule_id(settings),
        reconciliation_schedule_id(settings),
        alert_scan_schedule_id(settings),
        payables_scan_schedule_id(settings),
        month_end_schedule_id(settings, "UK"),
    )


async def _listed(client: Client, prefix: str, wanted: list[str]) -> bool:
    return await _schedule_ids(client, prefix + ":") == wanted
