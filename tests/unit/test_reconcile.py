"""Reconciliation rules: PSA work, ERP invoices and ledger postings compared by count and amount."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from canonical import BillingModel, ExceptionOwner, Expense, InvoiceState, Money, TimeEntry
from domain.reconcile import (
    ContractTerms,
    ErpInvoiceFacts,
    PostingFacts,
    ProjectEvidence,
    PsaWork,
    exception_record,
    merge_work,
    reconcile_project,
    render_table,
    tally_work,
    tolerance,
)

TM = ContractTerms(billing_model=BillingModel.TIME_AND_MATERIALS)


def entry(
    entry_id: str, hours: str, rate: str | None = "150", *, number: str | None = None, billable: bool = True
) -> TimeEntry:
    return TimeEntry(
        id=entry_id,
        project_id="P1",
        resource_id="U1",
        role="Consultant",
        date=date(2026, 10, 5),
        hours=Decimal(hours),
        billable=billable,
        approved=True,
        billed=number is not None,
        invoice_number=number,
        bill_rate=None if rate is None else Money.of(rate, "GBP"),
    )


def expense(expense_id: str, amount: str, *, number: str | None = None) -> Expense:
    return Expense(
        id=expense_id,
        project_id="P1",
        date=date(2026, 10, 6),
        amount=Money.of(amount, "GBP"),
        billed=number is not None,
        invoice_number=number,
    )


def invoice(number: str, net: str, *, state: InvoiceState = InvoiceState.AWAITING_PAYMENT, lines: int = 2):
    return ErpInvoiceFacts(
        number=number, invoice_id=f"id-{number}", reference=f"PS-P1-2026-10-{number}", state=state,
        net=Decimal(net), lines=lines,
    )  # fmt: skip


def posting(number: str, amount: str) -> PostingFacts:
    return PostingFacts(
        number=number, idempotency_key=f"key-{number}", amount=Decimal(amount), state="billed"
    )


def evidence(
    work: PsaWork,
    erp: tuple[ErpInvoiceFacts, ...] = (),
    ledger: tuple[PostingFacts, ...] = (),
    terms: ContractTerms | None = TM,
) -> ProjectEvidence:
    return ProjectEvidence(
        project_id="P1",
        legal_entity="UK",
        period="2026-10",
        currency="GBP",
        terms=terms,
        psa=work,
        erp=erp,
        ledger=ledger,
    )


def kinds(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.kind for d in result.differences]


def test_psa_work_is_grouped_by_the_invoice_number_it_was_billed_on_and_valued_at_psa_rates() -> None:
    work = tally_work(
        [entry("1", "8", number="INV-1"), entry("2", "4"), entry("3", "2", billable=False)],
        [expense("9", "120.50", number="INV-1")],
        currency="GBP",
    )
    (group,) = work.billed
    assert group.invoice_number == "INV-1"
    assert (group.work.time_entries, group.work.expenses) == (1, 1)
    assert group.work.value == Decimal("1320.50")
    assert work.unbilled.count == 1 and work.unbilled.value == Decimal("600")


def test_tallies_from_separate_pages_add_up_to_one_tally_per_invoice() -> None:
    merged = merge_work(
        [
            tally_work([entry("1", "8", number="INV-1")], (), currency="GBP"),
            tally_work([entry("2", "2", number="INV-1"), entry("3", "1")], (), currency="GBP"),
        ]
    )
    assert [(g.invoice_number, g.work.hours) for g in merged.billed] == [("INV-1", Decimal("10"))]
    assert merged.unbilled.hours == Decimal("1")


def test_invoice_matching_psa_erp_and_ledger_by_count_and_amount_is_in_agreement() -> None:
    work = tally_work([entry("1", "8", number="INV-1"), entry("2", "2", number="INV-1")], (), currency="GBP")
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "1500.00"),), (posting("INV-1", "1500.00"),)), unbilled_due=True
    )
    assert result.differences == ()
    assert result.row.status == "ok"
    assert (result.row.psa_count, result.row.erp_invoices, result.row.ledger_postings) == (2, 1, 1)


def test_expenses_are_expected_with_the_contract_markup() -> None:
    work = tally_work(
        [entry("1", "1", number="INV-1")], [expense("9", "100", number="INV-1")], currency="GBP"
    )
    terms = ContractTerms(billing_model=BillingModel.TIME_AND_MATERIALS, expense_markup=Decimal("0.10"))
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "260.00"),), (posting("INV-1", "260.00"),), terms=terms),
        unbilled_due=True,
    )
    assert result.differences == ()


def test_rounding_of_each_erp_line_is_tolerated_up_to_half_a_cent_per_line() -> None:
    # 1/3 h at 100 is 33.333...; the ERP rounds the line to 33.33.
    work = tally_work([entry("1", "0.3333333333", "100", number="INV-1")], (), currency="GBP")
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "33.33", lines=1),), (posting("INV-1", "33.33"),)), unbilled_due=True
    )
    assert result.differences == ()


def test_erp_total_that_differs_from_the_psa_value_of_its_entries_is_a_finance_difference_with_its_line() -> (
    None
):
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "1150.00"),), (posting("INV-1", "1150.00"),)), unbilled_due=True
    )
    (difference,) = result.differences
    assert difference.kind == "psa_erp_amount_mismatch" and difference.owner == ExceptionOwner.FINANCE
    (line,) = difference.lines
    assert (line.invoice_number, line.psa_amount, line.erp_amount) == (
        "INV-1",
        Decimal("1200"),
        Decimal("1150.00"),
    )
    assert difference.entry_ids == ("time_entry:1",)
    assert result.row.status == "differs"


def test_amounts_of_a_capped_contract_are_not_compared_with_psa_rates() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    capped = ContractTerms(billing_model=BillingModel.TIME_AND_MATERIALS, capped=True)
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "1000.00"),), (posting("INV-1", "1000.00"),), terms=capped),
        unbilled_due=True,
    )
    assert result.differences == ()


def test_erp_and_ledger_amounts_for_one_invoice_must_match_exactly() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "1200.00"),), (posting("INV-1", "1200.01"),)), unbilled_due=True
    )
    assert kinds(result) == ["erp_ledger_amount_mismatch"]


def test_posting_the_erp_does_not_hold_is_an_integration_support_difference() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    result = reconcile_project(evidence(work, (), (posting("INV-1", "1200.00"),)), unbilled_due=True)
    assert kinds(result) == ["posting_missing_in_erp"]
    assert result.differences[0].owner == ExceptionOwner.INTEGRATION_SUPPORT


def test_erp_invoice_with_our_reference_but_no_posting_is_a_difference() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    result = reconcile_project(evidence(work, (invoice("INV-1", "1200.00"),), ()), unbilled_due=True)
    assert kinds(result) == ["erp_invoice_not_in_ledger"]


def test_posted_invoice_voided_in_the_erp_is_a_finance_difference() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    voided = invoice("INV-1", "1200.00", state=InvoiceState.VOIDED)
    result = reconcile_project(evidence(work, (voided,), (posting("INV-1", "1200.00"),)), unbilled_due=True)
    assert kinds(result) == ["posted_invoice_voided"]
    assert result.row.erp_invoices == 0


def test_entries_billed_on_an_invoice_nobody_else_knows_are_a_difference_naming_the_entries() -> None:
    work = tally_work([entry("1", "8", number="INV-9")], (), currency="GBP")
    result = reconcile_project(evidence(work), unbilled_due=True)
    assert kinds(result) == ["billed_entries_without_invoice"]
    assert result.differences[0].entry_ids == ("time_entry:1",)


def test_invoice_without_entries_marked_billed_on_it_is_a_difference_for_time_and_materials_only() -> None:
    empty = tally_work((), (), currency="GBP")
    erp, ledger = (invoice("INV-1", "500.00"),), (posting("INV-1", "500.00"),)
    assert kinds(reconcile_project(evidence(empty, erp, ledger), unbilled_due=True)) == [
        "invoice_without_billed_entries"
    ]
    fixed_fee = ContractTerms(billing_model=BillingModel.FIXED_FEE)
    assert (
        reconcile_project(evidence(empty, erp, ledger, terms=fixed_fee), unbilled_due=True).differences == ()
    )


def test_unbilled_approved_work_is_pending_within_the_grace_period_and_a_difference_after_it() -> None:
    work = tally_work([entry("1", "8"), entry("2", "2")], (), currency="GBP")
    pending = reconcile_project(evidence(work), unbilled_due=False)
    assert pending.differences == () and pending.row.status == "pending"
    late = reconcile_project(evidence(work), unbilled_due=True)
    (difference,) = late.differences
    assert difference.kind == "approved_work_not_invoiced" and difference.owner == ExceptionOwner.FINANCE
    assert difference.lines[0].psa_count == 2 and difference.lines[0].psa_amount == Decimal("1500")
    assert set(difference.entry_ids) == {"time_entry:1", "time_entry:2"}


def test_each_difference_has_its_own_dedupe_key_and_a_json_record_with_its_lines() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    result = reconcile_project(evidence(work, (invoice("INV-1", "1150.00"),), ()), unbilled_due=True)
    keys = {d.dedupe_key("UK", "2026-10") for d in result.differences}
    assert keys == {
        "reconciliation:UK:2026-10:P1:erp_invoice_not_in_ledger:INV-1",
        "reconciliation:UK:2026-10:P1:psa_erp_amount_mismatch:INV-1",
    }
    record = exception_record(result.differences[0], legal_entity="UK", period="2026-10")
    assert record["lines"][0]["erp_amount"] == "1150.00"  # type: ignore[index]


def test_the_table_has_one_line_per_project_with_counts_and_amounts() -> None:
    work = tally_work([entry("1", "8", number="INV-1")], (), currency="GBP")
    result = reconcile_project(
        evidence(work, (invoice("INV-1", "1200.00"),), (posting("INV-1", "1200.00"),)), unbilled_due=True
    )
    table = render_table([result.row]).splitlines()
    assert table[0].split()[:4] == ["entity", "period", "project", "cur"]
    assert table[2].split() == ["UK", "2026-10", "P1", "GBP", "1", "1,200.00", "1", "1", "1,200.00", "1",
                                "1,200.00", "0", "0.00", "ok"]  # fmt: skip


def test_an_invoice_rated_at_the_erps_quantity_places_is_in_agreement_with_the_psas_exact_hours() -> None:
    # 505 minutes at 165.75: the PSA values 1,395.0625 exactly; Xero bills 8.4167 h = 1,395.07.
    allowed = tolerance("GBP", 1, top_rate=Decimal("165.75"), quantity_places=4)
    assert abs(Decimal(505) / 60 * Decimal("165.75") - Decimal("1395.07")) <= allowed
    # Tryton keeps 2 places: 8.42 h = 1,395.62, more than half a penny off, and still within the bound.
    allowed = tolerance("EUR", 1, top_rate=Decimal("165.75"), quantity_places=2)
    assert abs(Decimal(505) / 60 * Decimal("165.75") - Decimal("1395.62")) <= allowed
    # A real mismatch stays one: a line off by a whole step is beyond it.
    assert Decimal("165.75") / 100 > allowed


def test_evidence_without_quantity_places_keeps_half_a_minor_unit_per_line() -> None:
    assert tolerance("GBP", 3, top_rate=Decimal("165.75")) == Decimal("0.015")
