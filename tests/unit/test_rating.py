from datetime import date
from decimal import Decimal

from canonical import BillingModel, ExceptionOwner, Milestone, MilestoneCharge, Money
from domain.idempotency import invoice_key
from domain.rating import (
    REJECTED_KEPT,
    Allowance,
    RatedWork,
    invoice_lines,
    rate_expenses,
    rate_milestones,
    rate_time,
)

from .billing_fixtures import context, entry, expense

EMPTY = RatedWork()


def test_hours_are_rated_by_the_rate_card_version_in_force_on_the_entry_date() -> None:
    work = rate_time(
        EMPTY, [entry("a", day=date(2026, 10, 14)), entry("b", day=date(2026, 10, 15))], context=context()
    )
    assert [(b.rate.amount, b.hours) for b in work.buckets] == [(Decimal(100), 8), (Decimal(110), 8)]
    assert work.time_entry_ids == ("a", "b")


def test_non_billable_and_unapproved_time_is_excluded() -> None:
    work = rate_time(
        EMPTY, [entry("a", billable=False), entry("b", approved=False), entry("c")], context=context()
    )
    assert work.time_entry_ids == ("c",)
    assert work.rejected == ()


def test_a_role_without_a_rate_is_rejected_for_finance_and_the_rest_is_billed() -> None:
    work = rate_time(EMPTY, [entry("a"), entry("b", role="Partner")], context=context())
    assert work.time_entry_ids == ("a",)
    assert [(r.item_id, r.owner, r.rule) for r in work.rejected] == [("b", ExceptionOwner.FINANCE, "no_rate")]
    assert "Partner" in work.rejected[0].reason


def test_an_entry_without_a_role_is_rated_at_its_resources_role() -> None:
    work = rate_time(EMPTY, [entry("a", role=None, resource="u2")], context=context())
    assert [(b.role, b.rate.amount) for b in work.buckets] == [("Senior Consultant", Decimal(150))]


def test_rating_in_batches_gives_the_same_lines_as_rating_at_once() -> None:
    entries = [entry(str(i), day=date(2026, 10, 10 + i)) for i in range(8)]
    whole = rate_time(EMPTY, entries, context=context())
    batched = rate_time(rate_time(EMPTY, entries[:3], context=context()), entries[3:], context=context())
    assert invoice_lines(whole, context=context(), period="2026-10") == invoice_lines(
        batched, context=context(), period="2026-10"
    )


def test_expenses_are_rebilled_with_markup_and_the_contracts_expense_tax() -> None:
    ctx = context(contract={"expense_tax_code": "ZERORATEDOUTPUT"})
    work = rate_expenses(EMPTY, [expense("x", "200.00")], context=ctx)
    (line,) = invoice_lines(work, context=ctx, period="2026-10")
    assert line.amount == Money.of("220.00", "GBP")
    assert line.tax_code == "ZERORATEDOUTPUT"
    assert "10% handling" in line.description


def test_not_to_exceed_cap_stops_billing_at_the_cap_and_holds_back_the_rest() -> None:
    cap = Allowance(kind="cap", limit=Money.of("2000", "GBP"))
    # 800 + 800 fit under 2000; the third (800) would cross it, and nothing after it is billed.
    entries = [entry("a"), entry("b"), entry("c"), entry("d", hours="1")]
    work = rate_time(EMPTY, entries, context=context(), allowance=cap)
    assert work.time_entry_ids == ("a", "b")
    assert work.held_back_ids == ("c", "d") and work.held_back_count == 2
    assert work.held_back_value == Decimal(900)
    total = sum(line.amount.amount for line in invoice_lines(work, context=context(), period="2026-10"))
    assert total == Decimal(1600) <= cap.limit.amount


def test_the_cap_counts_expenses_with_their_markup() -> None:
    cap = Allowance(kind="cap", limit=Money.of("1000", "GBP"))
    work = rate_time(EMPTY, [entry("a")], context=context(), allowance=cap)
    work = rate_expenses(work, [expense("x", "200")], context=context(), allowance=cap)
    assert work.expense_ids == () and work.held_back_ids == ("x",)
    assert work.held_back_value == Decimal("220.0")


def test_retainer_time_draws_down_the_fee_and_time_beyond_it_is_billed_as_overage() -> None:
    ctx = context(
        contract={"billing_model": BillingModel.RETAINER, "retainer_amount": Money.of("1000", "GBP")}
    )
    retainer = Allowance(kind="retainer", limit=Money.of("1000", "GBP"))
    work = rate_time(EMPTY, [entry("a"), entry("b"), entry("c", hours="2")], context=ctx, allowance=retainer)
    assert work.covered_value == Decimal(800) and work.covered_hours == Decimal(8)
    assert work.time_entry_ids == ("a", "b", "c")
    lines = invoice_lines(work, context=ctx, period="2026-10", retainer_fee=Money.of("1000", "GBP"))
    assert [(line.description, line.amount.amount) for line in lines] == [
        ("Monthly retainer 2026-10", Decimal("1000.00")),
        ("Retainer overage: Consultant", Decimal("1000.00")),
    ]


def test_fixed_fee_bills_completed_milestones_at_the_schedule_and_never_time() -> None:
    ctx = context(
        contract={
            "billing_model": BillingModel.FIXED_FEE,
            "billing_schedule": (
                MilestoneCharge(milestone="Design sign-off", amount=Money.of("4000", "GBP")),
                MilestoneCharge(milestone="Go-live", amount=Money.of("6000", "GBP")),
            ),
        }
    )
    milestones = [
        Milestone(id="m1", project_id="p1", name="Design sign-off", completed_on=date(2026, 10, 20)),
        Milestone(id="m2", project_id="p1", name="Go-live", completed_on=date(2026, 11, 3)),
        Milestone(id="m3", project_id="p1", name="Go-live", completed_on=None),
    ]
    work = rate_time(EMPTY, [entry("a")], context=ctx)
    work = rate_milestones(work, milestones, context=ctx, period_end=date(2026, 10, 31))
    assert work.time_entry_ids == () and work.buckets == ()
    assert work.milestone_ids == ("m1",)
    (line,) = invoice_lines(work, context=ctx, period="2026-10")
    assert line.amount == Money.of("4000", "GBP") and line.source_ids == ("m1",)


def test_a_completed_milestone_missing_from_the_schedule_is_a_pmo_exception() -> None:
    ctx = context(contract={"billing_model": BillingModel.FIXED_FEE, "billing_schedule": ()})
    milestone = Milestone(id="m9", project_id="p1", name="Extra workshop", completed_on=date(2026, 10, 2))
    work = rate_milestones(EMPTY, [milestone], context=ctx, period_end=date(2026, 10, 31))
    assert [(r.item_id, r.owner, r.rule) for r in work.rejected] == [
        ("m9", ExceptionOwner.PMO, "unscheduled_milestone")
    ]


def test_invoice_key_is_independent_of_entry_order() -> None:
    assert invoice_key(project_id="p1", period="2026-10", entry_ids=["b", "a"]) == invoice_key(
        project_id="p1", period="2026-10", entry_ids=["a", "b"]
    )


def test_invoice_key_changes_with_the_entry_set() -> None:
    assert invoice_key(project_id="p1", period="2026-10", entry_ids=["a"]) != invoice_key(
        project_id="p1", period="2026-10", entry_ids=["a", "b"]
    )


def test_a_fixed_fee_cap_holds_back_a_milestone_that_would_exceed_it() -> None:
    ctx = context(
        contract={
            "billing_model": BillingModel.FIXED_FEE,
            "billing_schedule": (MilestoneCharge(milestone="Go-live", amount=Money.of("6000", "GBP")),),
        }
    )
    milestone = Milestone(id="m2", project_id="p1", name="Go-live", completed_on=date(2026, 10, 3))
    cap = Allowance(kind="cap", limit=Money.of("5000", "GBP"))
    work = rate_milestones(EMPTY, [milestone], context=ctx, period_end=date(2026, 10, 31), allowance=cap)
    assert work.milestones == () and work.held_back_ids == ("m2",)
    assert work.held_back_value == Decimal(6000)


def test_rejections_beyond_the_kept_sample_are_still_counted_per_rule() -> None:
    entries = [entry(str(i), role="Partner") for i in range(REJECTED_KEPT + 20)]
    work = rate_time(EMPTY, entries, context=context())
    assert len(work.rejected) == REJECTED_KEPT
    assert work.rejected_count == REJECTED_KEPT + 20
    assert [(c.rule, c.count) for c in work.rejection_counts] == [("no_rate", REJECTED_KEPT + 20)]
