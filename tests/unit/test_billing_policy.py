from datetime import date

from canonical import BillingModel, Contract, ExceptionOwner, Money
from domain.billing_policy import (
    BillingHistory,
    PriorPosting,
    allowance_for,
    approval_reason,
    deferral_period,
    group_rejections,
    invoice_reference,
    late_entry_decision,
    late_periods,
    next_period,
    retainer_fee,
)
from domain.billing_validation import RejectedItem
from domain.service_catalog import template_for

from .billing_fixtures import CONTRACT, UK


def _history(*periods_and_amounts: tuple[str, str]) -> BillingHistory:
    return BillingHistory(
        postings=tuple(
            PriorPosting(period=p, number=f"INV-{i}", amount=Money.of(a, "GBP"), idempotency_key=f"inv-{i}")
            for i, (p, a) in enumerate(periods_and_amounts)
        )
    )


def test_the_first_invoice_of_a_project_always_needs_finance_approval() -> None:
    assert approval_reason(total=Money.of("10", "GBP"), entity=UK, history=_history()) == (
        "first invoice of the project"
    )


def test_a_later_invoice_needs_approval_only_above_the_entity_threshold() -> None:
    history = _history(("2026-09", "100"))
    assert approval_reason(total=Money.of("5000", "GBP"), entity=UK, history=history) is None
    assert "threshold" in (
        approval_reason(total=Money.of("5000.01", "GBP"), entity=UK, history=history) or ""
    )


def test_a_period_already_billed_gets_an_adjustment_invoice_by_default() -> None:
    history = _history(("2026-09", "100"))
    assert late_entry_decision(contract=CONTRACT, history=history, period="2026-09") == "adjustment"
    assert late_entry_decision(contract=CONTRACT, history=history, period="2026-10") == "regular"


def test_with_the_next_run_policy_late_work_is_deferred_and_the_next_run_collects_it() -> None:
    contract = CONTRACT.model_copy(update={"late_entries": "next_run"})
    history = _history(("2026-08", "100"), ("2026-09", "100"))
    assert late_entry_decision(contract=contract, history=history, period="2026-09") == "defer"
    assert late_periods(contract=contract, history=history, period="2026-10") == ("2026-08", "2026-09")
    assert late_periods(contract=CONTRACT, history=history, period="2026-10") == ()


def test_deferred_work_goes_to_the_current_months_run_never_a_closed_one() -> None:
    assert deferral_period(period="2026-09", today=date(2026, 10, 3)) == "2026-10"
    assert deferral_period(period="2026-09", today=date(2027, 1, 3)) == "2027-01"
    assert next_period("2026-12") == "2027-01"


def test_the_cap_allowance_is_what_is_left_after_earlier_invoices() -> None:
    contract = CONTRACT.model_copy(update={"not_to_exceed": Money.of("10000", "GBP")})
    allowance = allowance_for(contract, _history(("2026-08", "7000"), ("2026-09", "2500")))
    assert allowance is not None and allowance.kind == "cap" and allowance.limit == Money.of("500", "GBP")
    spent = allowance_for(contract, _history(("2026-08", "12000")))
    assert spent is not None and spent.limit == Money.of("0", "GBP")


def test_the_retainer_fee_is_billed_once_per_period() -> None:
    contract = CONTRACT.model_copy(
        update={"billing_model": BillingModel.RETAINER, "retainer_amount": Money.of("3000", "GBP")}
    )
    assert retainer_fee(contract, _history(), "2026-10") == Money.of("3000", "GBP")
    assert retainer_fee(contract, _history(("2026-10", "3000")), "2026-10") is None


def test_an_adjustment_invoice_reference_says_so() -> None:
    key = "inv-0123456789abcdef"
    assert invoice_reference(project_id="p1", period="2026-10", key=key, adjustment=False) == (
        "PS-p1-2026-10-01234567"
    )
    assert invoice_reference(project_id="p1", period="2026-10", key=key, adjustment=True) == (
        "PS-p1-2026-10-ADJ-01234567"
    )


def test_rejected_lines_are_grouped_into_one_exception_per_owner_and_rule() -> None:
    rejected = [
        RejectedItem(
            item_id=str(i), kind="time_entry", owner=ExceptionOwner.FINANCE, rule="no_rate", reason="r"
        )
        for i in range(3)
    ] + [
        RejectedItem(
            item_id="9", kind="expense", owner=ExceptionOwner.HR_OPS, rule="unknown_resource", reason="x"
        )
    ]
    groups = group_rejections(rejected)
    assert [(g.owner, g.rule, g.count, g.item_ids) for g in groups] == [
        (ExceptionOwner.FINANCE, "no_rate", 3, ("0", "1", "2")),
        (ExceptionOwner.HR_OPS, "unknown_resource", 1, ("9",)),
    ]
    assert groups[0].reason.startswith("3 time entries cannot be billed")


def test_an_invoice_whose_entries_were_never_marked_billed_is_unfinished() -> None:
    history = BillingHistory(
        postings=(
            PriorPosting(period="2026-09", number="INV-1", amount=Money.of("1", "GBP"), idempotency_key="a"),
            PriorPosting(
                period="2026-09",
                number="INV-2",
                amount=Money.of("1", "GBP"),
                idempotency_key="b",
                billed=False,
            ),
        )
    )
    assert [p.number for p in history.unfinished("2026-09")] == ["INV-2"]
    assert history.unfinished("2026-10") == ()


def test_the_late_work_policy_comes_from_the_service_catalogue() -> None:
    assert template_for("MS-RET").late_entries == "next_run"  # type: ignore[union-attr]
    assert template_for("ADV-TM").late_entries == "adjustment_invoice"  # type: ignore[union-attr]
    assert (
        Contract(
            legal_entity="UK", currency="GBP", billing_model=BillingModel.RETAINER, tax_code="OUTPUT2"
        ).late_entries
        == "adjustment_invoice"
    )
