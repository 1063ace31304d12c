"""An ERP that books a total other than ours, on the real Xero sandbox and real Temporal servers.

The UK entity is configured to rate half-even while Xero rounds each line half-up (a rounding set-up that
disagrees with the ERP's, as a tax or rounding configuration can): 481 minutes of a 150.00 rate is
8.0167 h x 150 = 1,202.505, which we bill at 1,202.50 and Xero books at 1,202.51. Within the entity's
booking tolerance the run accepts Xero's figure and carries on; beyond it the invoice is voided in Xero,
finance is told what Xero did, and a retry posts a new invoice under a new key, billed once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from activities.erp import ErpActivities, PostInvoiceInput
from activities.erp_router import ErpRouter
from canonical import LegalEntity, Money, Period
from config import default_entities
from connectors.errors import Rejected
from connectors.xero.connector import XeroConnector
from devstack.story import previous_period, working_days
from ledger.repository import audit_trail, postings_for
from ledger.vocab import PostingState
from runs import search_attributes as sa
from runs.time_to_billing import RetryRequest, TimeToBillingResult
from sandboxes.kantata.seed import TimeLog
from worker import WORKFLOWS
from workflows.billing.posting import REPOST_AFTER_VOID
from workflows.time_to_billing import TimeToBilling

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import terminate_open_workflows
from .billing_steps import (
    approve_when_asked,
    begin_billing,
    deal_for,
    exceptions,
    log_approved,
    staff,
    unbilled_time,
    wait_for_stage,
    xero_invoices,
)
from .helpers import eventually, scheduled_activities

# 8.0167 h at 150.00: 1,202.505, half-even for us, half-up for Xero.
MINUTES = 481
OURS, XEROS = Money.of("1202.50", "GBP"), Money.of("1202.51", "GBP")


def uk_rounding_unlike_xero(tolerance: str | None) -> list[LegalEntity]:
    return [
        entity.model_copy(
            update={
                "line_rounding": "half_even",
                "booking_tolerance": Money.of(tolerance, "GBP") if tolerance is not None else None,
            }
        )
        if entity.code == "UK"
        else entity
        for entity in default_entities()
    ]


async def penny_apart_work(system: System) -> tuple[str, Period, list[str]]:
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Senior Consultant")
    ids = await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], MINUTES)])
    return project, period, ids


def reference_of(result: TimeToBillingResult) -> str:
    assert result.idempotency_key is not None
    return f"PS-{result.project_id}-{result.period}-{result.idempotency_key[4:12]}"


async def post_invoice_inputs(system: System, handle: WorkflowHandle[Any, Any]) -> list[PostInvoiceInput]:
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes for e in scheduled_activities(history, "post_invoice")
    ]
    converter = system.client.data_converter
    return [
        (await converter.decode(list(attributes.input.payloads), [PostInvoiceInput]))[0]
        for attributes in scheduled
    ]


def markers(history_events: Any) -> str:
    """Every marker the run recorded, details included (a patch marker names its patch there)."""
    return "\n".join(
        str(e.marker_recorded_event_attributes)
        for e in history_events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    )


async def test_a_difference_within_the_tolerance_is_accepted_audited_billed_once_and_followed_to_cash(
    ts_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> None:
    entities = uk_rounding_unlike_xero("0.05")
    async with running_system(
        ts_env.client, tmp_path, sandboxes, settings_changes={"entities": entities}
    ) as system:
        try:
            project, period, ids = await penny_apart_work(system)
            handle = await begin_billing(system, project, period)
            await approve_when_asked(handle)
            result: TimeToBillingResult = await handle.result()

            assert result.outcome == "posted" and result.invoice is not None
            # The customer is asked for what Xero booked, and the ledger agrees with Xero.
            assert result.invoice.total == XEROS and result.time_entries_billed == len(ids) == 1
            (booked,) = await xero_invoices(system, reference_of(result))
            assert booked["Status"] == "AUTHORISED" and Decimal(str(booked["SubTotal"])) == XEROS.amount
            with system.database.session() as session:
                (posting,) = postings_for(session, project_id=project)
                trail = audit_trail(session, workflow_id=handle.id)
            assert posting.state == PostingState.BILLED and posting.amount == XEROS
            assert posting.target_id == result.invoice.invoice_id == booked["InvoiceID"]
            assert await unbilled_time(system, project, period) == []
            assert result.invoice_to_cash_workflow_id is not None
            following = system.client.get_workflow_handle(result.invoice_to_cash_workflow_id)
            assert (await following.describe()).status == WorkflowExecutionStatus.RUNNING

            (accepted,) = [entry for entry in trail if entry.action == "booked_difference_accepted"]
            number = result.invoice.number
            assert accepted.detail["message"] == (
                f"xero booked {number} at GBP 1,202.51, we computed GBP 1,202.50: accepted within legal "
                "entity UK's booking tolerance of GBP 0.05"
            )
            assert accepted.detail["difference"] == "0.01 GBP"
            assert (accepted.detail["erp_total"], accepted.detail["computed_total"]) == (
                "1202.51 GBP",
                "1202.50 GBP",
            )
            assert exceptions(system, owner="finance") == []
            assert [i.repost for i in await post_invoice_inputs(system, handle)] == [0]
        finally:
            await terminate_open_workflows(ts_env, "test finished")


async def test_a_difference_beyond_the_tolerance_is_voided_waits_with_finance_and_bills_once_when_raised(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> None:
    queue = f"pssync-test-{uuid.uuid4().hex[:10]}"
    async with running_system(
        dev_env.client,
        tmp_path,
        sandboxes,
        task_queue=queue,
        settings_changes={"entities": uk_rounding_unlike_xero(None)},
    ) as system:
        project, period, ids = await penny_apart_work(system)
        handle = await begin_billing(system, project, period)
        await approve_when_asked(handle)
        status = await wait_for_stage(handle, "posting_rejected")

        (problem,) = exceptions(system, owner="finance")
        reference = str(problem.record["reference"])
        (first,) = await xero_invoices(system, reference)
        number = first["InvoiceNumber"]
        assert first["Status"] == "VOIDED" and Decimal(str(first["SubTotal"])) == XEROS.amount
        expected = (
            f"xero booked {number} at GBP 1,202.51, we computed GBP 1,202.50 (a difference of GBP 0.01, and "
            f"legal entity UK has no booking tolerance); {number} was voided, nothing is billed. To resolve: "
            "raise legal entity UK's booking tolerance to at least GBP 0.01 and retry, or correct xero's tax "
            "or rounding configuration so it books GBP 1,202.50 and retry; either way the retry posts these "
            "lines again as a new invoice."
        )
        assert problem.reason == expected and status.posting_problem == expected
        assert problem.record["erp_total"] == "1202.51 GBP"
        assert problem.record["computed_total"] == "1202.50 GBP"
        assert problem.record["voided_invoice"] == number
        assert (await handle.describe()).typed_search_attributes.get(sa.EXCEPTION_OWNER) == "finance"
        assert await unbilled_time(system, project, period) == ids
        with system.database.session() as session:
            assert postings_for(session, project_id=project) == []

        # The activity retried after its void (a worker lost between voiding and failing) gets the voided
        # invoice back from Xero's idempotency store: failed again, never a live invoice, never recorded.
        (attempt,) = await post_invoice_inputs(system, handle)
        # Beyond the tolerance it is the same failure again; within a raised one it is still voided.
        lenient_router = ErpRouter(
            {"xero": system.connectors.erps.by_system("xero")}, uk_rounding_unlike_xero("0.05")
        )
        for router, kind in (
            (system.connectors.erps, "BookedDifferently"),
            (lenient_router, "InvoiceVoided"),
        ):
            activities = ErpActivities(router, system.database)
            with pytest.raises(ApplicationError) as failed:
                await ActivityEnvironment().run(activities.post_invoice, attempt)
            assert failed.value.type == kind and failed.value.non_retryable
        assert [d["Status"] for d in await xero_invoices(system, reference)] == ["VOIDED"]
        with system.database.session() as session:
            assert postings_for(session, project_id=project) == []

        # Retried with nothing fixed: Xero books the new invoice differently too, and it is voided as well.
        await handle.signal(TimeToBilling.retry, RetryRequest(actor="finance", note="try again"))

        async def two_voided() -> list[dict[str, Any]] | None:
            found = await xero_invoices(system, reference)
            return found if len(found) == 2 and all(d["Status"] == "VOIDED" for d in found) else None

        await eventually(two_voided, seconds=60, what="the second invoice to be voided")
        await wait_for_stage(handle, "posting_rejected")
    # Finance raises the UK tolerance to 0.05 GBP: the workers restart with the new configuration.

    async with running_system(
        dev_env.client,
        tmp_path,
        sandboxes,
        task_queue=queue,
        settings_changes={"entities": uk_rounding_unlike_xero("0.05")},
    ) as system:
        await handle.signal(TimeToBilling.retry, RetryRequest(actor="finance", note="tolerance raised"))
        result: TimeToBillingResult = await handle.result()

        assert result.outcome == "posted" and result.invoice is not None
        assert result.invoice.total == XEROS and result.invoice.number != number
        statuses = sorted((d["Status"], d["InvoiceID"]) for d in await xero_invoices(system, reference))
        assert [s for s, _ in statuses] == ["AUTHORISED", "VOIDED", "VOIDED"]
        assert statuses[0][1] == result.invoice.invoice_id
        with system.database.session() as session:
            (posting,) = postings_for(session, project_id=project)
        assert posting.state == PostingState.BILLED and posting.target_id == result.invoice.invoice_id
        assert await unbilled_time(system, project, period) == []
        # Each post after a void went under a key of its own; the ledger keeps the posting's key.
        assert [i.repost for i in await post_invoice_inputs(system, handle)] == [0, 1, 2]
        assert posting.idempotency_key == result.idempotency_key
        history = await handle.fetch_history()
        assert REPOST_AFTER_VOID in markers(history.events)
        # The patched path replays from its own history, as a worker picking the run up would.
        await Replayer(
            workflows=list(WORKFLOWS), data_converter=system.client.data_converter
        ).replay_workflow(history)
        assert result.invoice_to_cash_workflow_id is not None


class VoidRefusingXero(XeroConnector):
    """Xero refusing the void (as it does for an invoice with payments allocated)."""

    async def void_invoice(self, invoice_id: str) -> None:
        raise Rejected("Invoice has payments allocated; remove them before voiding", system=self.system)


async def test_a_void_xero_refuses_leaves_finance_told_the_invoice_stands_and_a_retry_voids_it(
    ts_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> None:
    entities = uk_rounding_unlike_xero(None)
    async with running_system(
        ts_env.client, tmp_path, sandboxes, settings_changes={"entities": entities}
    ) as system:
        refusing = VoidRefusingXero.from_settings(system.settings)
        try:
            project, period, _ = await penny_apart_work(system)
            handle = await begin_billing(system, project, period)
            await approve_when_asked(handle)
            await wait_for_stage(handle, "posting_rejected")
            (parked,) = await post_invoice_inputs(system, handle)
            reference = parked.invoice.reference
            # A later repost, whose invoice Xero books differently again and then will not void.
            attempt = parked.model_copy(update={"repost": 1})

            with pytest.raises(ApplicationError) as refused:
                await ActivityEnvironment().run(
                    ErpActivities(ErpRouter({"xero": refusing}, entities), system.database).post_invoice,
                    attempt,
                )
            standing = [d for d in await xero_invoices(system, reference) if d["Status"] == "AUTHORISED"]
            (number,) = [d["InvoiceNumber"] for d in standing]
            assert refused.value.type == "BookedDifferentlyNotVoided" and refused.value.non_retryable
            assert refused.value.message == (
                f"xero booked {number} at GBP 1,202.51, we computed GBP 1,202.50, and refused to void it "
                "(xero: Invoice has payments allocated; remove them before voiding): "
                f"{number} stands in xero and nothing is billed. Void {number} in xero (a credit note would "
                "leave it standing), then retry."
            )
            with system.database.session() as session:
                assert postings_for(session, project_id=project) == []

            # Once Xero lets it be voided, the same attempt finds the standing invoice and voids it.
            with pytest.raises(ApplicationError) as voided:
                await ActivityEnvironment().run(
                    ErpActivities(system.connectors.erps, system.database).post_invoice, attempt
                )
            assert voided.value.type == "BookedDifferently"
            assert {d["Status"] for d in await xero_invoices(system, reference)} == {"VOIDED"}
        finally:
            await refusing.aclose()
            await terminate_open_workflows(ts_env, "test finished")
