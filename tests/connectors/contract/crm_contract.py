"""The CRM role contract: what every `CrmConnector` must do, whoever the vendor is.

Use it by subclassing in a vendor's test module and providing two fixtures:

    from ..contract.crm_contract import CrmContract

    class TestSalesforceCrmContract(CrmContract):
        pass   # fixtures `crm` and `crm_probe` come from the module or a conftest

- `crm`: a connected `CrmConnector` (the real connector talking HTTP to a sandbox or a real org).
- `crm_probe`: a `CrmProbe` that seeds deals and reads results back through the vendor's own API, not
  through the connector, so the suite checks what really landed in the CRM.

Semantics the suite pins down, because the role protocol leaves them to words:
- `write_back` and `update_receivables` only ever update the deal's existing records: they create
  nothing, and an unknown opportunity is NotFound.
- `write_back` changes only what it is given: a later write-back without ERP ids keeps the earlier ones.
- The account's receivables are the sum over its deals' open invoices (awaiting payment) in the
  invoice's currency; those past their due date are also overdue.
- `create_task` is idempotent by `external_key`: a retry returns the same task, and never reopens a task
  a person has completed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import pytest

from canonical import BillingModel, CrmTask, CrmWriteBack, InvoiceState, Money, ReceivablesSummary
from connectors.errors import NotFound
from connectors.roles import CrmConnector


@dataclass(frozen=True)
class SeededDeal:
    opportunity_id: str
    account_id: str
    contact_id: str | None


@dataclass(frozen=True)
class ReceivablesView:
    invoice_number: str | None
    invoice_state: InvoiceState | None
    amount_invoiced: Money | None
    amount_paid: Money | None
    amount_due: Money | None
    account_open: Money | None
    account_overdue: Money | None


@dataclass(frozen=True)
class TaskView:
    id: str
    subject: str
    description: str | None
    related_to_id: str | None
    due_date: date | None
    completed: bool


class CrmProbe(Protocol):
    """Seeds and reads the CRM through its own API (the vendor's test fixture implements it)."""

    async def seed_deal(
        self,
        *,
        account_name: str,
        country: str,
        amount: Money,
        account_id: str | None = None,
        closed_won: bool = False,
        missing: Sequence[str] = (),
    ) -> SeededDeal:
        """A customer, bill-to contact and open opportunity in the standard shape: legal entity UK for
        GB/IE, else EU; tax code OUTPUT2 / VAT21; billing model time and materials; service code
        IMPL-STD. `missing` names canonical Opportunity fields to leave empty ('tax_code',
        'billing_model', 'service_code', 'legal_entity')."""
        ...

    async def unknown_opportunity_id(self) -> str:
        """An id in the CRM's own format that names no opportunity."""
        ...

    async def count_opportunities(self) -> int: ...

    async def count_accounts(self) -> int: ...

    async def receivables(self, opportunity_id: str, account_id: str) -> ReceivablesView: ...

    async def task(self, task_id: str) -> TaskView: ...

    async def count_tasks(self, external_key: str) -> int: ...

    async def complete_task(self, task_id: str) -> None: ...


def _unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


def _summary(
    number: str,
    state: InvoiceState,
    total: str,
    paid: str,
    currency: str = "GBP",
    due_date: date | None = None,
) -> ReceivablesSummary:
    due = Decimal(total) - Decimal(paid)
    return ReceivablesSummary(
        invoice_id=f"inv-{uuid.uuid4().hex[:8]}",
        invoice_number=number,
        state=state,
        total=Money.of(total, currency),
        amount_due=Money.of(due, currency),
        amount_paid=Money.of(paid, currency),
        amount_credited=Money.zero(currency),
        due_date=due_date,
    )


def _today() -> date:
    return datetime.now(UTC).date()


class CrmContract:
    async def test_connector_implements_the_crm_role(self, crm: CrmConnector) -> None:
        assert isinstance(crm, CrmConnector)
        assert crm.system

    async def test_get_opportunity_reads_deal_with_account_address_and_bill_to_contact(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        name = _unique("Contoso Ltd")
        deal = await crm_probe.seed_deal(account_name=name, country="GB", amount=Money.of("48000.00", "GBP"))

        opportunity = await crm.get_opportunity(deal.opportunity_id)

        assert opportunity.id == deal.opportunity_id
        assert opportunity.is_won is False
        assert opportunity.amount == Money.of("48000.00", "GBP")
        assert opportunity.currency == "GBP"
        assert opportunity.legal_entity == "UK"
        assert opportunity.tax_code == "OUTPUT2"
        assert opportunity.billing_model is BillingModel.TIME_AND_MATERIALS
        assert opportunity.service_code == "IMPL-STD"
        assert opportunity.account.id == deal.account_id
        assert opportunity.account.name == name
        assert opportunity.account.billing_address is not None
        assert opportunity.account.billing_address.country == "GB"
        assert opportunity.bill_to_contact is not None
        assert opportunity.bill_to_contact.id == deal.contact_id

    async def test_get_opportunity_keeps_amount_exact_to_the_cent(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Exact BV"), country="NL", amount=Money.of("1234567.89", "EUR")
        )

        opportunity = await crm.get_opportunity(deal.opportunity_id)

        assert opportunity.amount is not None
        assert opportunity.amount.amount == Decimal("1234567.89")
        assert opportunity.amount.currency == "EUR"
        assert opportunity.legal_entity == "EU"

    async def test_get_opportunity_reports_empty_fields_as_none(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Half Done GmbH"),
            country="DE",
            amount=Money.of("9000", "EUR"),
            missing=("tax_code", "billing_model", "service_code"),
        )

        opportunity = await crm.get_opportunity(deal.opportunity_id)

        assert opportunity.tax_code is None
        assert opportunity.billing_model is None
        assert opportunity.service_code is None
        assert opportunity.legal_entity == "EU"

    async def test_get_opportunity_sees_closed_won(self, crm: CrmConnector, crm_probe: CrmProbe) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Won Corp"), country="GB", amount=Money.of("100", "GBP"), closed_won=True
        )

        opportunity = await crm.get_opportunity(deal.opportunity_id)

        assert opportunity.is_won is True

    async def test_get_opportunity_of_unknown_id_raises_not_found(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        with pytest.raises(NotFound):
            await crm.get_opportunity(await crm_probe.unknown_opportunity_id())

    async def test_write_back_records_psa_and_erp_ids_on_opportunity_and_account(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Fabrikam"), country="GB", amount=Money.of("5", "GBP")
        )

        await crm.write_back(
            CrmWriteBack(
                opportunity_id=deal.opportunity_id,
                account_id=deal.account_id,
                psa_project_id="PSA-981",
                erp="xero",
                erp_customer_id="XERO-CUST-42",
                legal_entity="UK",
                sync_status="project created",
            )
        )

        opportunity = await crm.get_opportunity(deal.opportunity_id)
        assert opportunity.psa_project_id == "PSA-981"
        assert opportunity.erp_customer_id == "XERO-CUST-42"
        assert opportunity.account.erp_customer_id == "XERO-CUST-42"

    async def test_write_back_twice_is_idempotent_and_creates_nothing(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Twice Ltd"), country="IE", amount=Money.of("7", "GBP")
        )
        opportunities, accounts = await crm_probe.count_opportunities(), await crm_probe.count_accounts()
        write_back = CrmWriteBack(
            opportunity_id=deal.opportunity_id,
            account_id=deal.account_id,
            psa_project_id="PSA-1",
            erp="xero",
            erp_customer_id="C-1",
        )

        await crm.write_back(write_back)
        await crm.write_back(write_back)

        assert await crm_probe.count_opportunities() == opportunities
        assert await crm_probe.count_accounts() == accounts
        assert (await crm.get_opportunity(deal.opportunity_id)).psa_project_id == "PSA-1"

    async def test_write_back_changes_only_the_fields_it_is_given(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Partial plc"), country="GB", amount=Money.of("1", "GBP")
        )
        await crm.write_back(
            CrmWriteBack(
                opportunity_id=deal.opportunity_id,
                account_id=deal.account_id,
                erp="xero",
                erp_customer_id="C-77",
            )
        )

        await crm.write_back(
            CrmWriteBack(
                opportunity_id=deal.opportunity_id, account_id=deal.account_id, psa_project_id="PSA-77"
            )
        )

        opportunity = await crm.get_opportunity(deal.opportunity_id)
        assert opportunity.psa_project_id == "PSA-77"
        assert opportunity.erp_customer_id == "C-77"

    async def test_write_back_to_unknown_opportunity_raises_not_found_and_creates_nothing(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Ghost Inc"), country="GB", amount=Money.of("1", "GBP")
        )
        opportunities = await crm_probe.count_opportunities()

        with pytest.raises(NotFound):
            await crm.write_back(
                CrmWriteBack(
                    opportunity_id=await crm_probe.unknown_opportunity_id(),
                    account_id=deal.account_id,
                    psa_project_id="PSA-X",
                )
            )

        assert await crm_probe.count_opportunities() == opportunities

    async def test_update_receivables_records_invoice_state_on_opportunity_and_account(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Owing Ltd"), country="GB", amount=Money.of("1", "GBP")
        )
        summary = _summary(
            "INV-0042",
            InvoiceState.AWAITING_PAYMENT,
            total="1200.00",
            paid="200.50",
            due_date=_today() + timedelta(days=30),
        )

        await crm.update_receivables(
            opportunity_id=deal.opportunity_id, account_id=deal.account_id, summary=summary
        )

        view = await crm_probe.receivables(deal.opportunity_id, deal.account_id)
        assert view.invoice_number == "INV-0042"
        assert view.invoice_state is InvoiceState.AWAITING_PAYMENT
        assert view.amount_invoiced == Money.of("1200.00", "GBP")
        assert view.amount_paid == Money.of("200.50", "GBP")
        assert view.amount_due == Money.of("999.50", "GBP")
        assert view.account_open == Money.of("999.50", "GBP")
        assert view.account_overdue == Money.of("0", "GBP")

    async def test_update_receivables_totals_open_invoices_across_the_accounts_deals(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        first = await crm_probe.seed_deal(
            account_name=_unique("Two Deals Ltd"), country="GB", amount=Money.of("1", "GBP")
        )
        second = await crm_probe.seed_deal(
            account_name="ignored", country="GB", amount=Money.of("1", "GBP"), account_id=first.account_id
        )
        later = _today() + timedelta(days=14)
        await crm.update_receivables(
            opportunity_id=first.opportunity_id,
            account_id=first.account_id,
            summary=_summary("INV-1", InvoiceState.AWAITING_PAYMENT, "100.10", "0", due_date=later),
        )
        await crm.update_receivables(
            opportunity_id=second.opportunity_id,
            account_id=first.account_id,
            summary=_summary("INV-2", InvoiceState.AWAITING_PAYMENT, "250.25", "50", due_date=later),
        )
        assert (await crm_probe.receivables(first.opportunity_id, first.account_id)).account_open == Money.of(
            "300.35", "GBP"
        )

        await crm.update_receivables(
            opportunity_id=first.opportunity_id,
            account_id=first.account_id,
            summary=_summary("INV-1", InvoiceState.PAID, "100.10", "100.10", due_date=later),
        )

        view = await crm_probe.receivables(first.opportunity_id, first.account_id)
        assert view.invoice_state is InvoiceState.PAID
        assert view.account_open == Money.of("200.25", "GBP")

    async def test_update_receivables_counts_past_due_invoices_as_overdue(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Late Payer"), country="GB", amount=Money.of("1", "GBP")
        )

        await crm.update_receivables(
            opportunity_id=deal.opportunity_id,
            account_id=deal.account_id,
            summary=_summary(
                "INV-9", InvoiceState.AWAITING_PAYMENT, "80.00", "0", due_date=_today() - timedelta(days=3)
            ),
        )

        view = await crm_probe.receivables(deal.opportunity_id, deal.account_id)
        assert view.account_open == Money.of("80.00", "GBP")
        assert view.account_overdue == Money.of("80.00", "GBP")

    async def test_update_receivables_of_unknown_opportunity_raises_not_found(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Nobody"), country="GB", amount=Money.of("1", "GBP")
        )

        with pytest.raises(NotFound):
            await crm.update_receivables(
                opportunity_id=await crm_probe.unknown_opportunity_id(),
                account_id=deal.account_id,
                summary=_summary("INV-0", InvoiceState.AWAITING_PAYMENT, "1", "0"),
            )

    async def test_create_task_is_idempotent_by_external_key(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Dunned"), country="GB", amount=Money.of("1", "GBP")
        )
        key = f"dunning:contract:{uuid.uuid4().hex}:stage-1"
        task = CrmTask(
            external_key=key,
            related_to_id=deal.opportunity_id,
            subject="Chase INV-7",
            description="Invoice INV-7 is 14 days overdue.",
            due_date=_today() + timedelta(days=2),
        )

        first = await crm.create_task(task)
        second = await crm.create_task(task)

        assert first == second
        assert await crm_probe.count_tasks(key) == 1
        view = await crm_probe.task(first)
        assert view.subject == "Chase INV-7"
        assert view.related_to_id == deal.opportunity_id
        assert view.due_date == task.due_date

    async def test_create_task_retry_does_not_reopen_a_completed_task(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Done Deal"), country="GB", amount=Money.of("1", "GBP")
        )
        task = CrmTask(
            external_key=f"followup:{uuid.uuid4().hex}",
            related_to_id=deal.opportunity_id,
            subject="Call the customer",
            description="About the kickoff",
            due_date=_today(),
        )
        task_id = await crm.create_task(task)
        await crm_probe.complete_task(task_id)

        assert await crm.create_task(task) == task_id

        assert (await crm_probe.task(task_id)).completed is True

    async def test_create_task_with_distinct_keys_creates_distinct_tasks(
        self, crm: CrmConnector, crm_probe: CrmProbe
    ) -> None:
        deal = await crm_probe.seed_deal(
            account_name=_unique("Busy"), country="GB", amount=Money.of("1", "GBP")
        )
        base = uuid.uuid4().hex
        tasks = [
            CrmTask(
                external_key=f"dunning:{base}:stage-{stage}",
                related_to_id=deal.opportunity_id,
                subject=f"Stage {stage}",
                description="-",
                due_date=_today(),
            )
            for stage in (1, 2)
        ]

        ids = [await crm.create_task(task) for task in tasks]

        assert len(set(ids)) == 2
        assert [(await crm_probe.task(task_id)).subject for task_id in ids] == ["Stage 1", "Stage 2"]
