"""The PSA role contract: what every `PsaConnector` must do, whoever the vendor is.

Use it by subclassing in a vendor's test module and providing two fixtures:

    from ..contract.psa_contract import PsaContract

    class TestKantataPsaContract(PsaContract):
        pass   # fixtures `psa` and `psa_harness` come from the module or a conftest

- `psa`: a connected `PsaConnector` (the real connector talking HTTP to a sandbox or a real system).
- `psa_harness`: a `PsaHarness` that does, through the vendor's own API, what people do in the PSA and the
  role does not: log time, approve it, log expenses, complete milestones.

Semantics the suite pins down, because the role protocol leaves them to words:
- `ensure_project` is find-or-create by `external_ref`: repeating it returns the same project and creates
  no second project and no second copy of a task.
- `time_entries` / `expenses` list only approved, billable, not-yet-billed work dated in the period; hours
  and money are exact Decimals; resuming from any page's `next_cursor` yields the rest, nothing twice.
- `mark_billed` takes work out of those listings; repeating it with the same number changes nothing;
  with a different number for already-billed work it raises Conflict.
- `events` reports approvals and completed milestones created after the instant, and honours the filter.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

import pytest

from canonical import (
    BillingModel,
    Contract,
    Expense,
    MilestoneCompleted,
    Money,
    Period,
    ProjectSpec,
    ProjectStatus,
    PsaEvent,
    ReceivablesSummary,
    TimeApproved,
    TimeEntry,
)
from canonical.enums import InvoiceState
from connectors.base import Conflict, NotFound, PsaConnector

PERIOD = Period(value="2024-05")
IN_PERIOD = date(2024, 5, 14)
NEXT_MONTH = date(2024, 6, 3)


class PsaHarness(Protocol):
    """What a person does in the PSA, done through the vendor's API for the contract suite."""

    currency: str
    role: str  # a role the rate card prices
    page_size: int  # items per page of the connector's listings
    unknown_project_id: str

    def rate(self, role: str, on: date) -> Money:
        """The rate the vendor's rate card sets for the role on the day."""
        ...

    async def log_approved_time(
        self, project_id: str, *, day: date, minutes: int, billable: bool = True, count: int = 1
    ) -> list[str]:
        """Log `count` entries of `minutes` each and get them approved; returns their ids."""
        ...

    async def log_unapproved_time(self, project_id: str, *, day: date, minutes: int) -> str: ...

    async def log_expense(
        self, project_id: str, *, day: date, amount: Money, billable: bool = True
    ) -> str: ...

    async def complete_milestone(self, project_id: str, name: str) -> str:
        """Mark the milestone complete; returns its id."""
        ...


def spec_for(
    harness: PsaHarness,
    *,
    tasks: tuple[str, ...] = ("Discovery", "Advisory"),
    milestones: tuple[str, ...] = ("Design sign-off",),
) -> ProjectSpec:
    key = uuid.uuid4().hex[:10]
    return ProjectSpec(
        external_ref=f"contract:opp-{key}",
        name=f"Contract project {key}",
        customer_name=f"Customer {key}",
        contract=Contract(
            legal_entity="UK",
            currency=harness.currency,
            billing_model=BillingModel.TIME_AND_MATERIALS,
            tax_code="OUTPUT2",
        ),
        service_code="ADV-TM",
        start_date=date(2024, 5, 1),
        budget=Money.of("25000.50", harness.currency),
        tasks=tasks,
        milestones=milestones,
    )


async def _all_time(psa: PsaConnector, project_id: str, period: Period = PERIOD) -> list[TimeEntry]:
    return [entry async for page in psa.time_entries(project_id, period) for entry in page.items]


async def _all_expenses(psa: PsaConnector, project_id: str, period: Period = PERIOD) -> list[Expense]:
    return [item async for page in psa.expenses(project_id, period) for item in page.items]


async def _events(psa: PsaConnector, since: datetime, types: list[str]) -> list[PsaEvent]:
    return [
        event async for page in psa.events(created_after=since, event_types=types) for event in page.items
    ]


def _since() -> datetime:
    # PSAs keep event times to the second: step back so the boundary cannot hide an event.
    return datetime.now(UTC) - timedelta(seconds=2)


class PsaContract:
    """Behaviour every PSA connector must show. Subclass as `Test<Vendor>PsaContract`."""

    # --- projects -----------------------------------------------------------------------------------------

    async def test_find_project_is_none_for_an_unknown_reference(self, psa: PsaConnector) -> None:
        assert await psa.find_project(f"contract:never-{uuid.uuid4().hex}") is None

    async def test_ensure_project_creates_the_project_with_its_tasks_and_reference(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        spec = spec_for(psa_harness)

        project = await psa.ensure_project(spec)

        assert project.id
        assert project.name == spec.name
        assert project.external_ref == spec.external_ref
        assert project.status == ProjectStatus.ACTIVE
        assert project.currency == spec.contract.currency
        assert project.customer_name == spec.customer_name
        assert project.legal_entity == spec.contract.legal_entity
        assert project.billing_model == spec.contract.billing_model
        assert project.rate_card_id
        assert sorted(task.name for task in project.tasks) == sorted(spec.tasks)
        assert all(task.project_id == project.id for task in project.tasks)

    async def test_ensure_project_twice_returns_the_same_project_without_duplicating_tasks(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        spec = spec_for(psa_harness)

        first = await psa.ensure_project(spec)
        second = await psa.ensure_project(spec)

        assert second.id == first.id
        assert sorted(task.id for task in second.tasks) == sorted(task.id for task in first.tasks)
        assert len(second.tasks) == len(spec.tasks)

    async def test_find_project_returns_the_project_carrying_the_reference(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        spec = spec_for(psa_harness)
        created = await psa.ensure_project(spec)

        found = await psa.find_project(spec.external_ref)

        assert found is not None and found.id == created.id

    async def test_get_project_with_unknown_id_raises_not_found(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        with pytest.raises(NotFound):
            await psa.get_project(psa_harness.unknown_project_id)

    async def test_set_project_status_on_hold_then_active_round_trips(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))

        await psa.set_project_status(project.id, ProjectStatus.ON_HOLD, "customer paused the engagement")
        held = await psa.get_project(project.id)
        await psa.set_project_status(project.id, ProjectStatus.ACTIVE, "engagement resumed")
        resumed = await psa.get_project(project.id)

        assert held.status == ProjectStatus.ON_HOLD
        assert resumed.status == ProjectStatus.ACTIVE

    async def test_rate_card_prices_each_role_by_the_version_in_force_on_the_day(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))

        card = await psa.get_rate_card(project.id)

        assert card.currency == psa_harness.currency
        for day in (IN_PERIOD, NEXT_MONTH):
            assert card.rate_for(psa_harness.role, day) == psa_harness.rate(psa_harness.role, day)

    # --- billable work ------------------------------------------------------------------------------------

    async def test_time_entries_lists_only_approved_billable_unbilled_time_in_the_period(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        wanted = await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=90)
        await psa_harness.log_approved_time(project.id, day=NEXT_MONTH, minutes=60)
        await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=30, billable=False)
        await psa_harness.log_unapproved_time(project.id, day=IN_PERIOD, minutes=45)

        entries = await _all_time(psa, project.id)

        assert [entry.id for entry in entries] == wanted
        entry = entries[0]
        assert entry.hours == Decimal("1.5")
        assert entry.date == IN_PERIOD
        assert entry.project_id == project.id
        assert entry.approved and entry.billable and not entry.billed
        assert entry.role == psa_harness.role
        assert entry.resource_id

    async def test_time_entries_resume_from_a_page_cursor_without_loss_or_repeat(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        logged = await psa_harness.log_approved_time(
            project.id, day=IN_PERIOD, minutes=15, count=psa_harness.page_size + 5
        )

        first_page = None
        async for page in psa.time_entries(project.id, PERIOD):
            first_page = page
            break
        assert first_page is not None and first_page.next_cursor is not None
        rest = [
            entry.id
            async for page in psa.time_entries(project.id, PERIOD, cursor=first_page.next_cursor)
            for entry in page.items
        ]

        ids = [entry.id for entry in first_page.items] + rest
        assert sorted(ids) == sorted(logged)
        assert len(ids) == len(set(ids))

    async def test_expenses_lists_billable_expenses_of_the_period_with_exact_money(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        amount = Money.of("123.45", psa_harness.currency)
        wanted = await psa_harness.log_expense(project.id, day=IN_PERIOD, amount=amount)
        await psa_harness.log_expense(project.id, day=IN_PERIOD, amount=amount, billable=False)
        await psa_harness.log_expense(project.id, day=NEXT_MONTH, amount=amount)

        expenses = await _all_expenses(psa, project.id)

        assert [expense.id for expense in expenses] == [wanted]
        assert expenses[0].amount == amount
        assert expenses[0].date == IN_PERIOD and expenses[0].billable and not expenses[0].billed

    # --- billed marks -------------------------------------------------------------------------------------

    async def test_mark_billed_takes_entries_out_of_the_billable_listings(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        billed = await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=60, count=2)
        kept = await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=30)
        expense = await psa_harness.log_expense(
            project.id, day=IN_PERIOD, amount=Money.of("10", psa_harness.currency)
        )

        await psa.mark_billed(
            time_entry_ids=billed, expense_ids=[expense], invoice_number=f"INV-{uuid.uuid4().hex[:6]}"
        )

        assert [entry.id for entry in await _all_time(psa, project.id)] == kept
        assert await _all_expenses(psa, project.id) == []

    async def test_mark_billed_repeated_with_the_same_number_is_a_no_op(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        entries = await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=60, count=2)
        number = f"INV-{uuid.uuid4().hex[:6]}"

        await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number=number)
        await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number=number)

        assert await _all_time(psa, project.id) == []

    async def test_mark_billed_with_another_number_raises_conflict(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        entries = await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=60)
        await psa.mark_billed(
            time_entry_ids=entries, expense_ids=[], invoice_number=f"INV-{uuid.uuid4().hex[:6]}"
        )

        with pytest.raises(Conflict):
            await psa.mark_billed(time_entry_ids=entries, expense_ids=[], invoice_number="INV-SOMETHING-ELSE")

    # --- receivables --------------------------------------------------------------------------------------

    async def test_update_financials_can_be_repeated(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        summary = _summary(psa_harness.currency)

        await psa.update_financials(project.id, summary)
        await psa.update_financials(project.id, summary)
        await psa.update_financials(
            project.id,
            summary.model_copy(
                update={
                    "state": InvoiceState.PAID,
                    "amount_due": Money.zero(psa_harness.currency),
                    "amount_paid": summary.total,
                }
            ),
        )

    async def test_update_financials_of_an_unknown_project_raises_not_found(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        with pytest.raises(NotFound):
            await psa.update_financials(psa_harness.unknown_project_id, _summary(psa_harness.currency))

    # --- change feed --------------------------------------------------------------------------------------

    async def test_events_report_time_approved_after_the_instant(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        since = _since()
        approved = await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=60, count=3)

        events = [e for e in await _events(psa, since, ["TimeApproved"]) if e.project_id == project.id]

        assert all(isinstance(event, TimeApproved) for event in events)
        assert sorted(e.time_entry_id for e in events if isinstance(e, TimeApproved)) == sorted(approved)
        assert all(e.entry_date == IN_PERIOD for e in events if isinstance(e, TimeApproved))
        times = [event.occurred_at for event in events]
        assert times == sorted(times), "events come oldest first"

    async def test_events_report_completed_milestones(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness, milestones=("Design sign-off", "Go-live")))
        since = _since()

        milestone_id = await psa_harness.complete_milestone(project.id, "Design sign-off")
        events = [e for e in await _events(psa, since, ["MilestoneCompleted"]) if e.project_id == project.id]

        assert len(events) == 1
        event = events[0]
        assert isinstance(event, MilestoneCompleted)
        assert event.milestone_id == milestone_id
        assert abs((event.completed_on - datetime.now(UTC).date()).days) <= 1

    async def test_events_return_only_the_requested_types(
        self, psa: PsaConnector, psa_harness: PsaHarness
    ) -> None:
        project = await psa.ensure_project(spec_for(psa_harness))
        since = _since()
        await psa_harness.log_approved_time(project.id, day=IN_PERIOD, minutes=60)
        await psa_harness.log_expense(project.id, day=IN_PERIOD, amount=Money.of("5", psa_harness.currency))

        events = [e for e in await _events(psa, since, ["ExpensePosted"]) if e.project_id == project.id]

        assert len(events) == 1
        assert type(events[0]).__name__ == "ExpensePosted"


def _summary(currency: str) -> ReceivablesSummary:
    return ReceivablesSummary(
        invoice_id=f"erp-{uuid.uuid4().hex[:8]}",
        invoice_number=f"INV-{uuid.uuid4().hex[:6]}",
        state=InvoiceState.AWAITING_PAYMENT,
        total=Money.of("1200.00", currency),
        amount_due=Money.of("1200.00", currency),
        amount_paid=Money.zero(currency),
        amount_credited=Money.zero(currency),
    )
