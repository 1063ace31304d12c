"""Subcontracted time on supplier bills: its supplier, cost account, and what a line and a bill come to.

The amounts are checked against an oracle written with fractions.Fraction from the ERPs' rules as stated
(Xero: quantity to 4 places, quantity x unit amount rounded half-up to the cent per line; Tryton: quantity
to the unit's 2 places, currency.round half-even per line), not with the Decimal helpers the code uses.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical import Money
from canonical.dimensions import DimensionValue
from canonical.money import RoundingRule, minor_units
from canonical.payables import PayableExpense, SubcontractedTime
from domain.account_mapping import NOT_IN_ERP, UNMAPPED, AccountMap, AccountProblem, AccountRule
from domain.payables import (
    CostAccount,
    CostedTime,
    bill_key,
    bill_line,
    missing_cost_rate,
    supplier_for,
    time_bill_lines,
    time_cost_account,
    vendor_supplier,
)

XERO = RoundingRule(quantity_places=4, unit_price_places=4, line_rounding="half_up")
TRYTON = RoundingRule(quantity_places=2, unit_price_places=4, line_rounding="half_even")
DAY = date(2026, 11, 2)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _entry(entry_id: str, minutes: int, rate: Money | None, **changes: object) -> SubcontractedTime:
    values: dict[str, object] = {
        "id": entry_id,
        "project_id": "30100001",
        "person_id": "6100009",
        "person_name": "Sam Contractor",
        "supplier": "Contractors Ltd",
        "role": "Consultant",
        "date": DAY,
        "minutes": minutes,
        "currency": rate.currency if rate is not None else "GBP",
        "cost_rate": rate,
    }
    return SubcontractedTime.model_validate({**values, **changes})


def _costed(entry: SubcontractedTime, account: str = "320") -> CostedTime:
    assert entry.cost_rate is not None
    return CostedTime(entry=entry, cost_rate=entry.cost_rate, account_code=account)


# --- the oracle ------------------------------------------------------------------------------------------


def _round_half(value: Fraction, places: int, *, even: bool) -> Fraction:
    scaled = value * 10**places
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (not even or floor % 2 == 1)):
        floor += 1
    return Fraction(floor, 10**places)


def _oracle_line(
    minutes: int, rate: Fraction, currency: str, rule: RoundingRule
) -> tuple[Fraction, Fraction]:
    """(quantity, amount) of one line: the hours the ERP stores, and its booked amount."""
    # Quantities round half-up whatever the ERP (Xero rounds them so; Tryton refuses more digits).
    quantity = _round_half(Fraction(minutes, 60), rule.quantity_places, even=False)
    amount = _round_half(quantity * rate, minor_units(currency), even=rule.line_rounding == "half_even")
    return quantity, amount


works = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3"]),
        st.sampled_from(["30100001", "30100002"]),
        st.one_of(st.integers(min_value=1, max_value=1440), st.sampled_from([7, 25, 50])),
        # Cost rates in cents, from a cent to 999.99 an hour.
        st.sampled_from([Decimal("61.37"), Decimal("0.01"), Decimal("83.33"), Decimal("999.99")])
        | st.integers(min_value=1, max_value=99_999).map(lambda cents: Decimal(cents) / 100),
    ),
    min_size=1,
    max_size=25,
)


@PROPERTY
@given(works=works, currency=st.sampled_from(["GBP", "EUR"]), rule=st.sampled_from([XERO, TRYTON]))
def test_time_lines_and_the_bill_total_are_what_the_erp_books(
    works: list[tuple[str, str, int, Decimal]], currency: str, rule: RoundingRule
) -> None:
    entries = [
        _entry(str(i), minutes, Money(amount=rate, currency=currency), person_id=person, project_id=project)
        for i, (person, project, minutes, rate) in enumerate(works)
    ]

    lines = time_bill_lines([_costed(e) for e in entries], rule)

    minutes_by_line: dict[tuple[str, str, Fraction], int] = {}
    ids_by_line: dict[tuple[str, str, Fraction], set[str]] = {}
    for entry, (person, project, minutes, rate) in zip(entries, works, strict=True):
        key = (person, project, Fraction(rate))
        minutes_by_line[key] = minutes_by_line.get(key, 0) + minutes
        ids_by_line.setdefault(key, set()).add(entry.id)
    expected = {key: _oracle_line(m, key[2], currency, rule) for key, m in minutes_by_line.items()}
    assert len(lines) == len(expected)
    for line in lines:
        assert line.unit_price is not None
        key = next(k for k, ids in ids_by_line.items() if ids == set(line.time_entry_ids))
        quantity, amount = expected[key]
        assert Fraction(line.quantity) == quantity
        assert Fraction(line.unit_price.amount) == key[2]
        assert Fraction(line.amount.amount) == amount
        assert line.amount.currency == currency
        assert line.account_code == "320"
    total = sum((Fraction(line.amount.amount) for line in lines), Fraction(0))
    assert total == sum((amount for _, amount in expected.values()), Fraction(0))
    # However the minutes fall, rounding moves each line by at most half a quantity step and half a cent.
    exact = sum((Fraction(m, 60) * k[2] for k, m in minutes_by_line.items()), Fraction(0))
    bound = sum(
        (k[2] * Fraction(1, 2 * 10**rule.quantity_places) + Fraction(1, 200) for k in minutes_by_line),
        Fraction(0),
    )
    assert abs(total - exact) <= bound


def test_a_persons_time_on_a_project_at_one_rate_is_one_line_priced_once_from_its_summed_minutes() -> None:
    rate = Money.of("61.37", "GBP")
    lines = time_bill_lines(
        [
            _costed(_entry("2", 25, rate, date=DAY + timedelta(days=3))),
            _costed(_entry("1", 505, rate)),
            _costed(_entry("3", 60, Money.of("70.00", "GBP"))),
        ],
        XERO,
    )

    assert [(line.time_entry_ids, line.quantity) for line in lines] == [
        (("1", "2"), Decimal("8.8333")),
        (("3",), Decimal("1")),
    ]
    # 8.8333 x 61.37 = 542.099621: Xero books 542.10.
    assert lines[0].amount == Money.of("542.10", "GBP")
    assert lines[0].unit_amount == rate
    assert "2026-11-02 to 2026-11-05" in lines[0].description


def test_tryton_stores_two_places_of_hours_and_rounds_the_line_half_even() -> None:
    # 90 minutes at 0.01 is 0.015: half-even books 0.02, and 0.005 books 0.00.
    (line,) = time_bill_lines([_costed(_entry("1", 90, Money.of("0.01", "EUR")))], TRYTON)
    (half,) = time_bill_lines([_costed(_entry("1", 30, Money.of("0.01", "EUR")))], TRYTON)

    assert (line.quantity, line.amount) == (Decimal("1.5"), Money.of("0.02", "EUR"))
    assert (half.quantity, half.amount) == (Decimal("0.5"), Money.of("0.00", "EUR"))


def test_a_firms_time_and_its_expenses_are_owed_to_one_supplier() -> None:
    expense = PayableExpense(
        id="93400001",
        project_id="30100001",
        person_id="6100004",
        person_name="Omar Haddad",
        date=DAY,
        amount=Money.of("310.00", "GBP"),
        vendor="Contractors  Ltd",
    )

    assert vendor_supplier(" contractors ltd ").key == supplier_for("kantata", expense).key
    assert vendor_supplier("Contractors Ltd").key == "vendor:contractors-ltd"


def test_time_books_to_its_roles_cost_account_else_the_role_default_and_unmapped_names_the_command() -> None:
    rules = (
        AccountRule(kind="role", key="Architect", account_code="200", cost_account_code="321"),
        AccountRule(kind="role", key="*", account_code="200", cost_account_code="320"),
        AccountRule(kind="expense_category", key="*", account_code="260", cost_account_code="493"),
    )
    accounts = AccountMap(legal_entity="UK", erp="xero", rules=rules)

    assert time_cost_account(accounts, "Architect", legal_entity="UK") == CostAccount(account_code="321")
    assert time_cost_account(accounts, "Consultant", legal_entity="UK") == CostAccount(account_code="320")
    assert time_cost_account(accounts, None, legal_entity="UK") == CostAccount(account_code="320")
    unmapped = time_cost_account(
        AccountMap(legal_entity="UK", erp="xero", rules=rules[2:]), "QA", legal_entity="UK"
    )
    assert isinstance(unmapped, AccountProblem) and unmapped.rule == UNMAPPED
    assert "pssync accounts set UK role QA --account CODE --cost-account CODE" in unmapped.reason
    archived = time_cost_account(
        AccountMap(legal_entity="UK", erp="xero", rules=rules, chart={"320": False}), "QA", legal_entity="UK"
    )
    assert isinstance(archived, AccountProblem) and archived.rule == NOT_IN_ERP


def test_time_without_a_cost_rate_names_the_person_the_currency_and_the_fix() -> None:
    reason = missing_cost_rate(_entry("210000007", 25, None, currency="EUR"))

    assert "Sam Contractor has no cost rate in EUR" in reason
    assert "cost rate in Kantata" in reason and "210000007" in reason


def test_a_bill_of_expenses_alone_keeps_its_key_and_time_changes_it() -> None:
    dimensions = (DimensionValue(dimension="project", code="P1", name="Website"),)
    expense_line = bill_line(
        PayableExpense(
            id="93400001",
            project_id="30100001",
            person_id="6100004",
            person_name="Omar Haddad",
            date=DAY,
            amount=Money.of("38.60", "GBP"),
        ),
        "493",
        dimensions,
    )
    (time_line,) = time_bill_lines([_costed(_entry("93400001", 60, Money.of("50", "GBP")))], XERO)

    def key(sources: list[str]) -> str:
        return bill_key(
            psa="kantata", supplier_key="vendor:x", period="2026-11", legal_entity="UK", expense_ids=sources
        )

    assert expense_line.dimensions == dimensions
    assert key(list(expense_line.source_ids)) == key(["93400001"])
    # A time entry with an expense's id is not that expense: the bill's key tells them apart.
    assert key(list(time_line.source_ids)) != key(["93400001"])
