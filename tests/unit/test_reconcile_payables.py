"""Payables reconciliation rules: the ledger's bills, the ERP's bills and the PSA's payable items agree, and
every rule that can find a difference finds it (with its owner), and only it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from canonical import ExceptionOwner, InvoiceState, Money
from canonical.payables import PayableExpense, SubcontractedTime
from domain.account_mapping import AccountMap, AccountRule
from domain.payable_items import (
    ItemTally,
    PayableItem,
    expense_item,
    merge_payables,
    tally_payables,
    time_item,
)
from domain.payables import bill_key, bill_reference
from domain.reconcile import SAMPLE_IDS
from domain.reconcile_payables import (
    PAYABLES,
    BillLineFacts,
    BillPostingFacts,
    ErpBillFacts,
    PayablesEvidence,
    bill_period,
    bill_reference_prefix,
    payables_exception_record,
    reconcile_payables,
    render_payables_table,
    supplier_in_key,
    tie_line,
)

NUMBER = "EXP-2026-11-ABCDEF0123"
SUPPLIER = "person:kantata:42"
DIMENSIONS = {"project": "4711 Data platform", "customer": "001A Initech"}
ACCOUNTS = AccountMap(
    legal_entity="UK",
    erp="xero",
    rules=(
        AccountRule(kind="expense_category", key="Travel", account_code="260", cost_account_code="493"),
        AccountRule(kind="expense_category", key="*", account_code="260", cost_account_code="429"),
    ),
)


def item(
    id: str, amount: str, *, bill: str | None = NUMBER, settled: bool = False, currency: str = "GBP"
) -> PayableItem:
    return PayableItem(
        id=id,
        project_id="4711",
        bill_number=bill,
        amount=Money.of(amount, currency),
        settled=settled,
        cost_rule=("expense_category", "Travel"),
    )


def line(
    amount: str,
    *,
    account: str = "493",
    dimensions: dict[str, str] | None = None,
    project: str | None = "4711",
) -> BillLineFacts:
    return BillLineFacts(
        description=f"2026-11-03 Travel - Taxi (receipt: Kantata expense {amount})",
        amount=Decimal(amount),
        account_code=account,
        dimensions=DIMENSIONS if dimensions is None else dimensions,
        project_id=project,
        cost_rule=("expense_category", "Travel") if project else None,
    )


LINES = (line("42.50"), line("310.00"))


def erp_bill(
    *, state: InvoiceState = InvoiceState.AWAITING_PAYMENT, total: str = "352.50", lines=LINES
) -> ErpBillFacts:
    return ErpBillFacts(
        number=NUMBER,
        bill_id="b-1",
        reference=NUMBER,
        state=state,
        total=Decimal(total),
        amount_paid=Decimal(total) if state == InvoiceState.PAID else Decimal(0),
        currency="GBP",
        supplier_name="Ravi Patel",
        lines=lines,
    )


POSTED = BillPostingFacts(
    number=NUMBER,
    reference=NUMBER,
    bill_id="b-1",
    supplier_key=SUPPLIER,
    total=Decimal("352.50"),
    currency="GBP",
    lines=2,
    idempotency_key=f"payables:kantata:{SUPPLIER}:2026-11:UK:0123456789abcdef",
)
ITEMS = (item("101", "42.50"), item("102", "310.00"))


def evidence(
    *,
    erp: tuple[ErpBillFacts, ...] = (erp_bill(),),
    ledger: tuple[BillPostingFacts, ...] = (POSTED,),
    items: tuple[PayableItem, ...] = ITEMS,
    **changes: object,
) -> PayablesEvidence:
    return PayablesEvidence(
        legal_entity="UK",
        period="2026-11",
        psa=tally_payables(items),
        erp=erp,
        ledger=ledger,
        accounts=ACCOUNTS,
        dimensions={"4711": DIMENSIONS},
    ).model_copy(update=changes)


def kinds(found: PayablesEvidence, *, unbilled_due: bool = False) -> list[tuple[str, ExceptionOwner]]:
    return [(d.kind, d.owner) for d in reconcile_payables(found, unbilled_due=unbilled_due).differences]


# --- agreement ---------------------------------------------------------------------------------------------


def test_a_bill_the_three_sources_agree_on_is_no_difference_and_one_ok_row() -> None:
    result = reconcile_payables(evidence(), unbilled_due=True)

    assert result.differences == ()
    (row,) = result.rows
    assert (row.psa_items, row.psa_on_bills, row.erp_bills, row.ledger_bills, row.erp_paid) == (2, 2, 1, 1, 0)
    assert row.psa_amount == row.erp_amount == row.ledger_amount == Decimal("352.50")
    assert row.status == "ok"


def test_a_paid_bill_whose_items_the_psa_shows_reimbursed_agrees() -> None:
    settled = tuple(i.model_copy(update={"settled": True}) for i in ITEMS)

    result = reconcile_payables(
        evidence(erp=(erp_bill(state=InvoiceState.PAID),), items=settled), unbilled_due=True
    )

    assert result.differences == ()
    assert result.rows[0].erp_paid == 1


# --- ledger against ERP ------------------------------------------------------------------------------------


def test_a_posted_bill_voided_in_the_erp_is_a_difference_for_finance_naming_its_items() -> None:
    found = reconcile_payables(evidence(erp=(erp_bill(state=InvoiceState.VOIDED),)), unbilled_due=False)

    (difference,) = found.differences
    assert (difference.kind, difference.owner) == ("bill_voided_in_erp", ExceptionOwner.FINANCE)
    assert difference.project_id == PAYABLES and difference.invoice_number == NUMBER
    assert difference.entry_ids == ("101", "102")
    assert difference.lines[0].erp_state == InvoiceState.VOIDED
    assert difference.lines[0].ledger_amount == Decimal("352.50")
    assert SUPPLIER in difference.reason and "bills them again" in difference.reason
    assert found.rows[0].erp_bills == 0 and found.rows[0].status == "differs"


def test_a_posted_bill_the_erp_no_longer_holds_is_a_difference_for_finance() -> None:
    assert kinds(evidence(erp=())) == [("bill_missing_in_erp", ExceptionOwner.FINANCE)]


def test_an_erp_bill_with_our_reference_but_no_ledger_record_is_for_integration_support() -> None:
    assert kinds(evidence(ledger=())) == [("erp_bill_not_in_ledger", ExceptionOwner.INTEGRATION_SUPPORT)]


def test_an_erp_total_other_than_the_ledgers_is_a_difference_and_so_is_the_psa_sum_against_it() -> None:
    edited = erp_bill(total="352.49")

    assert kinds(evidence(erp=(edited,))) == [
        ("bill_total_differs", ExceptionOwner.FINANCE),
        ("bill_items_amount_differs", ExceptionOwner.FINANCE),
    ]


def test_an_erp_line_count_other_than_the_ledgers_is_a_difference() -> None:
    split = (line("42.50"), line("300.00"), line("10.00"))

    assert kinds(evidence(erp=(erp_bill(lines=split),))) == [
        ("bill_line_count_differs", ExceptionOwner.FINANCE)
    ]


# --- PSA against ERP ---------------------------------------------------------------------------------------


def test_psa_items_worth_a_cent_less_than_the_erp_bill_are_a_difference() -> None:
    changed = (item("101", "42.49"), item("102", "310.00"))

    (difference,) = reconcile_payables(evidence(items=changed), unbilled_due=False).differences

    assert difference.kind == "bill_items_amount_differs"
    assert "352.49" in difference.reason and "352.50" in difference.reason
    assert difference.lines[0].psa_amount == Decimal("352.49") and difference.lines[0].psa_count == 2


def test_psa_items_on_the_bill_in_another_currency_are_a_difference() -> None:
    mixed = (item("101", "42.50"), item("102", "310.00"), item("103", "5.00", currency="EUR"))

    assert kinds(evidence(items=mixed)) == [("bill_items_amount_differs", ExceptionOwner.FINANCE)]


def test_psa_items_on_a_bill_neither_erp_nor_ledger_knows_are_for_integration_support() -> None:
    stray = (*ITEMS, item("103", "9.99", bill="EXP-2026-11-LOST"))

    found = reconcile_payables(evidence(items=stray), unbilled_due=False).differences

    assert [(d.kind, d.invoice_number, d.entry_ids) for d in found] == [
        ("bill_items_without_bill", "EXP-2026-11-LOST", ("103",))
    ]


def test_a_bill_paid_in_the_erp_whose_items_the_psa_does_not_show_reimbursed_is_a_difference() -> None:
    half = (item("101", "42.50", settled=True), item("102", "310.00"))

    (difference,) = reconcile_payables(
        evidence(erp=(erp_bill(state=InvoiceState.PAID),), items=half), unbilled_due=False
    ).differences

    assert (difference.kind, difference.owner) == (
        "paid_bill_not_settled_in_psa",
        ExceptionOwner.INTEGRATION_SUPPORT,
    )
    assert "1 of its 2" in difference.reason and "bill_changed" in difference.reason


def test_an_unpaid_bill_whose_items_are_not_reimbursed_is_no_difference() -> None:
    assert kinds(evidence()) == []


# --- items on no bill --------------------------------------------------------------------------------------


def test_items_on_no_bill_are_pending_until_the_grace_has_passed_then_a_difference_for_finance() -> None:
    waiting = (*ITEMS, item("103", "7.25", bill=None), item("104", "0.75", bill=None))

    pending = reconcile_payables(evidence(items=waiting), unbilled_due=False)
    due = reconcile_payables(evidence(items=waiting), unbilled_due=True)

    assert pending.differences == () and pending.rows[0].status == "pending"
    assert pending.rows[0].unbilled_count == 2 and pending.rows[0].unbilled_amount == Decimal("8.00")
    (difference,) = due.differences
    assert (difference.kind, difference.owner) == ("payable_items_not_billed", ExceptionOwner.FINANCE)
    assert difference.entry_ids == ("103", "104") and "8.00 GBP" in difference.reason
    assert due.rows[0].status == "differs"


# --- where lines book --------------------------------------------------------------------------------------


def test_a_line_booked_to_another_account_than_its_category_maps_is_a_difference_for_finance() -> None:
    moved = (line("42.50"), line("310.00", account="429"))

    (difference,) = reconcile_payables(evidence(erp=(erp_bill(lines=moved),)), unbilled_due=False).differences

    assert (difference.kind, difference.owner) == ("bill_line_account_differs", ExceptionOwner.FINANCE)
    assert "429" in difference.reason and "493" in difference.reason


def test_an_untied_line_is_held_only_to_some_mapped_cost_account() -> None:
    mapped = (line("42.50", project=None, account="429"), line("310.00", project=None))
    unmapped = (line("42.50", project=None, account="200"), line("310.00", project=None))

    assert kinds(evidence(erp=(erp_bill(lines=mapped),))) == []
    assert kinds(evidence(erp=(erp_bill(lines=unmapped),))) == [
        ("bill_line_account_differs", ExceptionOwner.FINANCE)
    ]


def test_a_line_without_its_projects_dimensions_is_a_difference_for_finance() -> None:
    untagged = (line("42.50"), line("310.00", dimensions={}))

    (difference,) = reconcile_payables(
        evidence(erp=(erp_bill(lines=untagged),)), unbilled_due=False
    ).differences

    assert difference.kind == "bill_line_dimensions_differ"
    assert "1 of 2 lines" in difference.reason and "none" in difference.reason


def test_a_line_not_tied_to_a_project_is_not_held_to_dimensions() -> None:
    untied = (line("42.50", project=None, dimensions={}), line("310.00", project=None, dimensions={}))

    assert kinds(evidence(erp=(erp_bill(lines=untied),))) == []


def test_only_the_dimensions_the_erp_tracks_are_compared() -> None:
    practice = {**DIMENSIONS, "practice": "DATA-AI"}
    booked = (line("42.50", dimensions=DIMENSIONS), line("310.00", dimensions=DIMENSIONS))
    made = evidence(erp=(erp_bill(lines=booked),), dimensions={"4711": practice})

    assert kinds(made) == [("bill_line_dimensions_differ", ExceptionOwner.FINANCE)]
    assert kinds(made.model_copy(update={"tracked_dimensions": ("project", "customer")})) == []


def test_a_voided_bills_lines_are_not_checked() -> None:
    voided = erp_bill(state=InvoiceState.VOIDED, lines=(line("42.50", account="1"), line("310.00")))

    assert kinds(evidence(erp=(voided,))) == [("bill_voided_in_erp", ExceptionOwner.FINANCE)]


# --- tying lines, keys and records -------------------------------------------------------------------------


def test_a_line_is_tied_by_its_position_among_the_recorded_lines_only_while_the_counts_match() -> None:
    items = {i.id: i for i in ITEMS}
    recorded = (("101",), ("102",))

    assert tie_line(1, 2, recorded, items) == ("4711", ("expense_category", "Travel"))
    assert tie_line(1, 3, recorded, items) == (None, None)
    assert tie_line(0, 2, (("101", "999"),), items) == (None, None)


def test_items_of_two_projects_on_one_line_tie_it_to_no_project() -> None:
    other = item("102", "310.00").model_copy(update={"project_id": "4712"})
    items = {"101": ITEMS[0], "102": other}

    assert tie_line(0, 1, (("101", "102"),), items) == (None, ("expense_category", "Travel"))


def test_the_reference_prefix_and_the_key_agree_with_how_the_payables_run_makes_them() -> None:
    key = bill_key(
        psa="kantata", supplier_key=SUPPLIER, period="2026-11", legal_entity="UK", expense_ids=["1"]
    )
    reference = bill_reference(key, "2026-11")

    assert reference.startswith(bill_reference_prefix("2026-11"))
    assert bill_period(reference=reference, idempotency_key=key, issued=date(2026, 12, 1)) == "2026-11"
    assert bill_period(reference="mine", idempotency_key=key, issued=date(2026, 12, 1)) == "2026-11"
    assert bill_period(reference="mine", idempotency_key="k", issued=date(2026, 12, 1)) == "2026-12"
    assert supplier_in_key(key) == SUPPLIER
    assert supplier_in_key("ttb:P-1:2026-11") is None


def test_a_payables_exceptions_key_and_record_name_the_bill_apart_from_any_projects() -> None:
    made = evidence(erp=(erp_bill(state=InvoiceState.VOIDED),))
    (difference,) = reconcile_payables(made, unbilled_due=False).differences

    assert (
        difference.dedupe_key("UK", "2026-11")
        == f"reconciliation:UK:2026-11:payables:bill_voided_in_erp:{NUMBER}"
    )
    record = payables_exception_record(difference, made)
    assert record["supplier_key"] == SUPPLIER and record["bill_id"] == "b-1"
    assert record["bill_number"] == NUMBER and record["legal_entity"] == "UK"


def test_an_expense_becomes_an_item_under_its_id_bill_and_reimbursement() -> None:
    expense = PayableExpense(
        id="77",
        project_id="4711",
        person_id="9",
        person_name="Ravi Patel",
        date=date(2026, 11, 3),
        amount=Money.of("12.40", "GBP"),
        category=None,
        reimbursable=True,
        bill_number=NUMBER,
        reimbursed=True,
    )

    made = expense_item(expense)

    assert (made.id, made.bill_number, made.settled, made.cost_rule) == (
        "77",
        NUMBER,
        True,
        ("expense_category", "*"),
    )


def test_the_table_prints_one_row_per_entity_and_currency() -> None:
    rows = reconcile_payables(evidence(), unbilled_due=False).rows

    table = render_payables_table(rows)

    assert "ERP bills" in table.splitlines()[0]
    assert table.splitlines()[2].split()[:3] == ["UK", "2026-11", "GBP"]
    assert table.splitlines()[2].split()[-1] == "ok"


# --- the tally, against an oracle --------------------------------------------------------------------------

CURRENCIES = ("GBP", "EUR", "JPY", "USD")
cents = st.integers(min_value=-5_000_00, max_value=5_000_00)
items_strategy = st.lists(
    st.tuples(
        cents,
        st.sampled_from(CURRENCIES),
        st.sampled_from([None, "EXP-2026-11-A", "EXP-2026-11-B"]),
        st.booleans(),
    ),
    max_size=40,
)


def _as_items(drawn: list[tuple[int, str, str | None, bool]]) -> list[PayableItem]:
    return [
        PayableItem(
            id=str(index),
            project_id="4711",
            bill_number=bill,
            amount=Money(amount=Decimal(minor).scaleb(-2 if currency != "JPY" else 0), currency=currency),
            settled=settled,
        )
        for index, (minor, currency, bill, settled) in enumerate(drawn)
    ]


@settings(max_examples=200, deadline=None)
@given(drawn=items_strategy, split=st.integers(min_value=0, max_value=40))
def test_the_tally_counts_and_sums_every_item_once_however_the_pages_fall(
    drawn: list[tuple[int, str, str | None, bool]], split: int
) -> None:
    items = _as_items(drawn)
    tally = merge_payables([tally_payables(items[:split]), tally_payables(items[split:])])

    # The oracle: exact fractions per (bill, currency), summed a different way.
    expected: dict[tuple[str | None, str], tuple[int, Fraction, int]] = {}
    for minor, currency, bill, settled in drawn:
        count, total, paid = expected.get((bill, currency), (0, Fraction(0), 0))
        scale = 1 if currency == "JPY" else 100
        expected[(bill, currency)] = (count + 1, total + Fraction(minor, scale), paid + settled)
    got: dict[tuple[str | None, str], ItemTally] = {}
    got |= {(g.bill_number, g.currency): g.items for g in tally.billed}
    got |= {(None, u.currency): u.items for u in tally.unbilled}
    assert set(got) == set(expected)
    for key, (count, total, paid) in expected.items():
        assert got[key].count == count and got[key].settled == paid
        assert Fraction(got[key].amount) == total
        assert len(got[key].sample_ids) == min(count, SAMPLE_IDS)


@settings(max_examples=100, deadline=None)
@given(drawn=items_strategy)
def test_a_bill_agrees_with_its_items_exactly_to_the_minor_unit(
    drawn: list[tuple[int, str, str | None, bool]],
) -> None:
    items = [i for i in _as_items(drawn) if i.amount.currency == "GBP" and i.bill_number is not None]
    on_a = [i.model_copy(update={"bill_number": NUMBER, "settled": False}) for i in items]
    exact = sum((Fraction(i.amount.amount) for i in on_a), Fraction(0))
    total = Decimal(exact.numerator) / Decimal(exact.denominator)
    bill = erp_bill(total=str(total), lines=())
    posted = POSTED.model_copy(update={"total": total, "lines": 0})
    made = evidence(erp=(bill,), ledger=(posted,), items=tuple(on_a))

    assert kinds(made) == []
    a_cent_more = erp_bill(total=str(total + Decimal("0.01")), lines=())
    off = kinds(evidence(erp=(a_cent_more,), ledger=(posted,), items=tuple(on_a)))
    assert off == [("bill_total_differs", ExceptionOwner.FINANCE)] + (
        [("bill_items_amount_differs", ExceptionOwner.FINANCE)] if on_a else []
    )


# --- subcontracted time ------------------------------------------------------------------------------------


def _time(entry_id: str, minutes: int, rate: str | None, *, bill: str | None = NUMBER) -> SubcontractedTime:
    return SubcontractedTime(
        id=entry_id,
        project_id="4711",
        person_id="8",
        person_name="Sam Contractor",
        supplier="Acme Staffing Ltd",
        role="Consultant",
        date=date(2026, 11, 4),
        minutes=minutes,
        currency="GBP",
        cost_rate=None if rate is None else Money.of(rate, "GBP"),
        bill_number=bill,
    )


def test_a_time_entry_is_an_item_at_its_exact_hours_times_its_cost_rate() -> None:
    made = time_item(_time("5", 50, "87.50"))

    assert made.id == "time:5" and made.cost_rule == ("role", "Consultant")
    # 72.91666…: exact to Decimal's 28 digits, far below what a cent of rounding allows.
    assert abs(Fraction(made.amount.amount) - Fraction(50, 60) * Fraction("87.50")) < Fraction(1, 10**20)
    assert made.rate == Decimal("87.50")
    assert time_item(_time("6", 30, None)).amount == Money.of("0", "GBP")


def _time_bill(total: Decimal, count: int) -> PayablesEvidence:
    bill = erp_bill(total=str(total), lines=(line(str(total)),))
    posted = POSTED.model_copy(update={"total": total, "lines": 1})
    return evidence(erp=(bill,), ledger=(posted,), quantity_places=4)


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=12),
    rate_cents=st.integers(min_value=1, max_value=200_00),
)
def test_a_time_line_rounded_as_the_erp_rounds_it_agrees_and_five_cents_off_does_not(
    minutes: list[int], rate_cents: int
) -> None:
    rate = Fraction(rate_cents, 100)
    # The oracle: the ERP keeps the line's hours at 4 places, then rounds hours x rate half up to the cent.
    hours = Fraction(round(Fraction(sum(minutes), 60) * 10_000), 10_000)
    cents = hours * rate * 100
    booked = Decimal(int(cents + Fraction(1, 2))) / 100
    items = [time_item(_time(str(i), m, str(Decimal(rate_cents) / 100))) for i, m in enumerate(minutes)]
    made = _time_bill(booked, len(items)).model_copy(update={"psa": tally_payables(items)})

    assert kinds(made) == []
    off = _time_bill(booked + Decimal("0.05"), len(items)).model_copy(update={"psa": tally_payables(items)})
    assert kinds(off) == [("bill_items_amount_differs", ExceptionOwner.FINANCE)]
