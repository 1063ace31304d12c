"""Random billing months, and an oracle that prices them from the README's "How ps-sync rounds" alone.

The oracle never calls the rating code or canonical.money: it works in exact fractions of minutes and cents
and rounds with integer arithmetic, so an error shared by rating and its helpers cannot hide in both.
Shared by the property tests (tests/unit) and the ERP samples (tests/connectors/xero and tryton).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from canonical import (
    BillingModel,
    Contract,
    Expense,
    Invoice,
    InvoiceLine,
    LegalEntity,
    Money,
    Project,
    RateCard,
    RateCardRate,
    RateCardVersion,
    Resource,
    TimeEntry,
)
from domain.billing_validation import BillingContext
from domain.rating import Allowance, RatedWork, invoice_lines, rate_expenses, rate_time

YEAR, MONTH = 2026, 10
PERIOD = f"{YEAR:04d}-{MONTH:02d}"
ROLES = ("Analyst", "Consultant", "Partner")
CATEGORIES = ("Lodging", "Meals", "Travel")
MARKUPS = ("0", "0.05", "0.10", "0.125", "0.15", "0.175", "0.2")
# The README's table: the quantity and unit price places each ERP stores, as its entity is configured.
QUANTITY_PLACES = {"xero": 4, "tryton": 2}
UNIT_PRICE_PLACES = {"xero": 4, "tryton": 4}

Rounding = Literal["half_up", "half_even"]
Model = Literal["time_and_materials", "cap", "retainer"]
ROUNDINGS: tuple[Rounding, ...] = ("half_up", "half_even")


@dataclass(frozen=True)
class Month:
    erp: str
    currency: str
    line_rounding: Rounding
    # (effective day of month, rate in cents per role in ROLES order); the first version starts on day 1.
    versions: tuple[tuple[int, tuple[int, ...]], ...]
    # (minutes, day of month, role index), in the PSA's order.
    entries: tuple[tuple[int, int, int], ...]
    # (cents, category index)
    expenses: tuple[tuple[int, int], ...]
    markup: str
    model: Model
    # The cap left to bill (model "cap") or the monthly fee (model "retainer"), in cents.
    limit_cents: int | None
    # Entries are rated in pages of this many, as the workflow rates a page at a time.
    page: int


def months(
    *,
    erp: str | None = None,
    currency: str | None = None,
    line_rounding: Rounding | None = None,
    min_entries: int = 0,
    max_entries: int = 40,
    max_expenses: int = 6,
) -> st.SearchStrategy[Month]:
    """Months with 1-600 minute entries, rates with cents changing mid-month, marked-up expenses, caps and
    retainers; an argument fixes what a real entity fixes (its ERP, currency and line rounding)."""

    @st.composite
    def build(draw: st.DrawFn) -> Month:
        rate = st.integers(min_value=100, max_value=60_000)
        change_days = draw(st.lists(st.integers(min_value=2, max_value=28), max_size=3, unique=True))
        versions = tuple((day, tuple(draw(rate) for _ in ROLES)) for day in (1, *sorted(change_days)))
        entries = tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(min_value=1, max_value=600),
                        st.integers(min_value=1, max_value=31),
                        st.integers(min_value=0, max_value=len(ROLES) - 1),
                    ),
                    min_size=min_entries,
                    max_size=max_entries,
                )
            )
        )
        expenses = tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(min_value=1, max_value=250_000),
                        st.integers(min_value=0, max_value=len(CATEGORIES) - 1),
                    ),
                    max_size=max_expenses,
                )
            )
        )
        model: Model = draw(st.sampled_from(("time_and_materials", "cap", "retainer")))
        rounding = line_rounding if line_rounding is not None else draw(st.sampled_from(ROUNDINGS))
        limit = None if model == "time_and_materials" else draw(st.integers(min_value=0, max_value=3_000_000))
        return Month(
            erp=erp or draw(st.sampled_from(tuple(QUANTITY_PLACES))),
            currency=currency or draw(st.sampled_from(("GBP", "EUR"))),
            line_rounding=rounding,
            versions=versions,
            entries=entries,
            expenses=expenses,
            markup=draw(st.sampled_from(MARKUPS)),
            model=model,
            limit_cents=limit,
            page=draw(st.integers(min_value=1, max_value=max(1, max_entries))),
        )

    return build()


# --- the month as canonical records, rated by ps-sync ------------------------------------------------------


def _day(day: int) -> date:
    return date(YEAR, MONTH, day)


def entity_for(month: Month) -> LegalEntity:
    return LegalEntity(
        code="T",
        name="Test entity",
        erp=month.erp,
        currency=month.currency,
        countries=("GB",),
        tax_codes=("TAX",),
        default_tax_code="TAX",
        approval_threshold=Money.of("5000", month.currency),
        line_rounding=month.line_rounding,
        quantity_places=QUANTITY_PLACES[month.erp],
        unit_price_places=UNIT_PRICE_PLACES[month.erp],
    )


def context_for(month: Month, entity: LegalEntity | None = None) -> BillingContext:
    entity = entity or entity_for(month)
    card = RateCard(
        id="rc",
        name="card",
        currency=month.currency,
        versions=tuple(
            RateCardVersion(
                effective_from=_day(day),
                rates=tuple(
                    RateCardRate(role=role, rate=Money(amount=Decimal(cents) / 100, currency=month.currency))
                    for role, cents in zip(ROLES, rates, strict=True)
                ),
            )
            for day, rates in month.versions
        ),
    )
    billing_model = BillingModel.RETAINER if month.model == "retainer" else BillingModel.TIME_AND_MATERIALS
    contract = Contract(
        legal_entity=entity.code,
        currency=month.currency,
        billing_model=billing_model,
        tax_code=entity.default_tax_code,
        expense_markup=Decimal(month.markup),
    )
    return BillingContext(
        project=Project(id="p1", name="Project"),
        resources=tuple(Resource(id=f"u{i}", name=f"Person {i}", role=role) for i, role in enumerate(ROLES)),
        rate_card=card,
        contract=contract,
        entity=entity,
    )


def time_entries(month: Month) -> list[TimeEntry]:
    return [
        TimeEntry(
            id=f"t{i}",
            project_id="p1",
            resource_id=f"u{role}",
            date=_day(day),
            # As the Kantata connector reads time_in_minutes.
            hours=Decimal(minutes) / Decimal(60),
            billable=True,
            approved=True,
        )
        for i, (minutes, day, role) in enumerate(month.entries)
    ]


def expense_records(month: Month) -> list[Expense]:
    return [
        Expense(
            id=f"x{i}",
            project_id="p1",
            resource_id="u0",
            date=_day(1),
            amount=Money(amount=Decimal(cents) / 100, currency=month.currency),
            category=CATEGORIES[category],
        )
        for i, (cents, category) in enumerate(month.expenses)
    ]


def limit_money(month: Month) -> Money | None:
    return (
        None
        if month.limit_cents is None
        else Money(amount=Decimal(month.limit_cents) / 100, currency=month.currency)
    )


def rated_lines(month: Month, entity: LegalEntity | None = None) -> tuple[RatedWork, tuple[InvoiceLine, ...]]:
    """The month rated by ps-sync as the TimeToBilling workflow does: time page by page, then expenses."""
    context = context_for(month, entity)
    limit = limit_money(month)
    allowance = None
    if month.model == "cap" and limit is not None:
        allowance = Allowance(kind="cap", limit=limit)
    elif month.model == "retainer" and limit is not None:
        allowance = Allowance(kind="retainer", limit=limit)
    work = RatedWork()
    entries = time_entries(month)
    for start in range(0, len(entries), month.page):
        work = rate_time(work, entries[start : start + month.page], context=context, allowance=allowance)
    work = rate_expenses(work, expense_records(month), context=context, allowance=allowance)
    fee = limit if month.model == "retainer" else None
    return work, invoice_lines(work, context=context, period=PERIOD, retainer_fee=fee)


# --- the oracle --------------------------------------------------------------------------------------------


def round_fraction(value: Fraction, places: int, mode: Rounding) -> Fraction:
    """`value` (not negative) to `places` decimals: half-up, or half to the even last digit."""
    scaled = value * 10**places
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rest
    if twice > scaled.denominator or (twice == scaled.denominator and (mode == "half_up" or whole % 2 == 1)):
        whole += 1
    return Fraction(whole, 10**places)


@dataclass(frozen=True)
class ExpectedLine:
    quantity: Fraction
    unit_price: Fraction
    amount: Fraction
    # The most this line may differ from the exact value of what it bills (README bound).
    bound: Fraction


@dataclass(frozen=True)
class Expected:
    lines: tuple[ExpectedLine, ...]
    # Hours x rate of every billed entry, expenses x (1 + markup), the fee: no rounding anywhere.
    exact_value: Fraction
    billed_time_ids: tuple[str, ...]
    held_back_ids: tuple[str, ...]

    @property
    def total(self) -> Fraction:
        return sum((line.amount for line in self.lines), Fraction(0))

    @property
    def bound(self) -> Fraction:
        return sum((line.bound for line in self.lines), Fraction(0))


HALF_CENT = Fraction(1, 200)


def expected(month: Month) -> Expected:
    """The invoice the README's rules give for the month."""
    places = QUANTITY_PLACES[month.erp]
    mode = month.line_rounding
    markup = 1 + Fraction(month.markup)
    half_step = Fraction(1, 2 * 10**places)

    def rate_on(day: int, role: int) -> Fraction:
        in_force = max((v for v in month.versions if v[0] <= day), key=lambda v: v[0])
        return Fraction(in_force[1][role], 100)

    def time_amount(minutes: int, rate: Fraction) -> Fraction:
        quantity = round_fraction(Fraction(minutes, 60), places, "half_up")
        return round_fraction(quantity * rate, 2, mode)

    def expense_amount(cents: int) -> Fraction:
        return round_fraction(Fraction(cents, 100) * markup, 2, mode)

    limit = None if month.limit_cents is None else Fraction(month.limit_cents, 100)
    minutes: dict[tuple[str, Fraction], int] = {}
    spent: dict[int, int] = {}
    billed_ids: list[str] = []
    held: list[str] = []
    billed = Fraction(0)  # cap: what the invoice bills so far
    covered = Fraction(0)  # retainer: rate-card value the fee covers so far
    stopped = False
    exact = Fraction(0)

    for i, (mins, day, role) in enumerate(month.entries):
        rate = rate_on(day, role)
        key = (ROLES[role], rate)
        before = minutes.get(key, 0)
        value = Fraction(mins, 60) * rate
        if month.model == "retainer":
            if not stopped and covered + value <= limit:  # type: ignore[operator]
                covered += value
            else:
                stopped = True
                minutes[key] = before + mins
                exact += value
            billed_ids.append(f"t{i}")
            continue
        if month.model == "cap":
            increase = time_amount(before + mins, rate) - (time_amount(before, rate) if before else 0)
            if stopped or billed + increase > limit:  # type: ignore[operator]
                stopped = True
                held.append(f"t{i}")
                continue
            billed += increase
        minutes[key] = before + mins
        exact += value
        billed_ids.append(f"t{i}")

    for i, (cents, category) in enumerate(month.expenses):
        before = spent.get(category, 0)
        if month.model == "cap":
            increase = expense_amount(before + cents) - (expense_amount(before) if before else 0)
            if stopped or billed + increase > limit:  # type: ignore[operator]
                stopped = True
                held.append(f"x{i}")
                continue
            billed += increase
        spent[category] = before + cents
        exact += Fraction(cents, 100) * markup

    lines: list[ExpectedLine] = []
    if month.model == "retainer":
        assert limit is not None
        lines.append(ExpectedLine(Fraction(1), limit, limit, Fraction(0)))
        exact += limit
    for (_role, rate), mins in sorted(minutes.items()):
        quantity = round_fraction(Fraction(mins, 60), places, "half_up")
        lines.append(ExpectedLine(quantity, rate, time_amount(mins, rate), rate * half_step + HALF_CENT))
    for category in sorted(spent):
        amount = expense_amount(spent[category])
        lines.append(ExpectedLine(Fraction(1), amount, amount, HALF_CENT))
    return Expected(
        lines=tuple(lines),
        exact_value=exact,
        billed_time_ids=tuple(billed_ids),
        held_back_ids=tuple(held),
    )


def sample(strategy: st.SearchStrategy[Month], count: int) -> list[Month]:
    """`count` months drawn by hypothesis, for tests that post them to a real ERP one by one (an async
    test cannot be driven by @given against a session-wide connector)."""
    drawn: list[Month] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(month: Month) -> None:
        drawn.append(month)

    collect()
    return drawn[:count]


def invoice_for(
    month: Month, entity: LegalEntity, customer_id: str, lines: tuple[InvoiceLine, ...], reference: str
) -> Invoice:
    issued = date.today()
    return Invoice(
        legal_entity=entity.code,
        customer_id=customer_id,
        customer_name="Rounding sample",
        project_id="p1",
        period=f"{issued.year:04d}-{issued.month:02d}",
        currency=month.currency,
        issue_date=issued,
        due_date=issued + timedelta(days=30),
        reference=reference,
        lines=lines,
    )
