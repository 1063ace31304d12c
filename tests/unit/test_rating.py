from datetime import date
from decimal import Decimal

from pssync.canonical import (
    BillingModel,
    Contract,
    ExceptionOwner,
    Expense,
    Money,
    RateCard,
    RateCardRate,
    RateCardVersion,
    TimeEntry,
)
from pssync.domain.idempotency import invoice_key
from pssync.domain.rating import invoice_lines, rate_expenses, rate_time

CONTRACT = Contract(
    legal_entity="UK",
    currency="GBP",
    billing_model=BillingModel.TIME_AND_MATERIALS,
    tax_code="OUTPUT2",
    expense_markup=Decimal("0.10"),
)
CARD = RateCard(
    id="rc1",
    name="UK 2026",
    currency="GBP",
    versions=(
        RateCardVersion(
            effective_from=date(2026, 1, 1),
            rates=(
                RateCardRate(role="Consultant", rate=Money.of("100", "GBP")),
                RateCardRate(role="Senior Consultant", rate=Money.of("150", "GBP")),
            ),
        ),
        RateCardVersion(
            effective_from=date(2026, 10, 15),
            rates=(RateCardRate(role="Consultant", rate=Money.of("110", "GBP")),),
        ),
    ),
)


def _entry(
    entry_id: str,
    *,
    role: str | None = "Consultant",
    day: date = date(2026, 10, 1),
    hours: str = "8",
    billable: bool = True,
    approved: bool = True,
) -> TimeEntry:
    return TimeEntry(
        id=entry_id,
        project_id="p1",
        resource_id="u1",
        role=role,
        date=day,
        hours=Decimal(hours),
        billable=billable,
        approved=approved,
    )


def test_entry_is_rated_by_the_rate_card_version_in_force_on_its_date():
    work = rate_time(
        [_entry("a", day=date(2026, 10, 14)), _entry("b", day=date(2026, 10, 15))],
        rate_card=CARD,
        contract=CONTRACT,
    )
    assert [(b.rate.amount, b.hours) for b in work.buckets] == [(Decimal("100"), 8), (Decimal("110"), 8)]


def test_non_billable_and_unapproved_time_is_excluded_without_an_exception():
    work = rate_time(
        [_entry("a", billable=False), _entry("b", approved=False)], rate_card=CARD, contract=CONTRACT
    )
    assert work.buckets == () and work.rejected == () and work.time_entry_ids == ()


def test_entry_without_a_rate_for_its_role_goes_to_finance_and_the_rest_is_billed():
    work = rate_time([_entry("a"), _entry("b", role="Partner")], rate_card=CARD, contract=CONTRACT)
    assert work.time_entry_ids == ("a",)
    assert [(r.item_id, r.owner) for r in work.rejected] == [("b", ExceptionOwner.FINANCE)]
    assert "no rate for role 'Partner'" in work.rejected[0].reason


def test_entry_of_a_resource_without_a_role_goes_to_hr_ops():
    work = rate_time([_entry("a", role=None)], rate_card=CARD, contract=CONTRACT)
    assert work.rejected[0].owner == ExceptionOwner.HR_OPS


def test_batches_merge_into_the_same_lines_as_one_pass():
    entries = [_entry(str(i), hours="1.25") for i in range(10)]
    whole = rate_time(entries, rate_card=CARD, contract=CONTRACT)
    merged = rate_time(entries[:4], rate_card=CARD, contract=CONTRACT).merge(
        rate_time(entries[4:], rate_card=CARD, contract=CONTRACT)
    )
    assert invoice_lines(whole, contract=CONTRACT) == invoice_lines(merged, contract=CONTRACT)


def test_expenses_are_rebilled_with_the_contract_markup():
    expense = Expense(
        id="e1", project_id="p1", date=date(2026, 10, 2), amount=Money.of("45.50", "GBP"), category="Travel"
    )
    lines = invoice_lines(rate_expenses([expense], contract=CONTRACT), contract=CONTRACT)
    assert lines[0].amount == Money.of("50.05", "GBP")


def test_expense_in_another_currency_is_rejected_to_finance():
    expense = Expense(id="e1", project_id="p1", date=date(2026, 10, 2), amount=Money.of("45", "EUR"))
    work = rate_expenses([expense], contract=CONTRACT)
    assert work.expense_ids == () and work.rejected[0].owner == ExceptionOwner.FINANCE


def test_invoice_key_depends_on_the_entry_set_not_its_order():
    assert invoice_key(project_id="p", period="2026-10", entry_ids=["b", "a"]) == invoice_key(
        project_id="p", period="2026-10", entry_ids=["a", "b"]
    )
    assert invoice_key(project_id="p", period="2026-10", entry_ids=["a"]) != invoice_key(
        project_id="p", period="2026-10", entry_ids=["a", "b"]
    )
