"""Month-end rules against an independent oracle, on random project histories.

The oracle below is written from the rules in domain/month_end's docstring with fractions.Fraction and none of
the code's arithmetic: a retainer is earned day by day, cost is summed entry by entry as fractions, rounding
is done on fractions. Each history runs several closes in a row, each starting from the position the one
before left, with time approved and billed late, so the properties cover catch-ups and re-runs too.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical import Money
from canonical.money import RoundingRule, minor_units
from domain.month_end import (
    AcceptedMilestone,
    AccountRole,
    CostRate,
    CostRateHistory,
    Invoiced,
    Journal,
    JournalKind,
    MilestoneAcceptance,
    MonthEndProject,
    PercentageOfCompletion,
    Position,
    ProjectClose,
    RecognitionTerms,
    StraightLineRetainer,
    TimeAndMaterials,
    WorkedTime,
    close_project,
    rerun_adjustments,
)
from domain.month_end.exact import rounded_quotient

PROPERTY = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
CURRENCIES = ("GBP", "JPY", "KWD")
RULES = (
    RoundingRule(quantity_places=4, unit_price_places=4, line_rounding="half_up"),
    RoundingRule(quantity_places=2, unit_price_places=4, line_rounding="half_even"),
)
ROLES = ("Consultant", "Senior")
FIRST_MONTH = date(2026, 1, 1)


# --- the oracle -------------------------------------------------------------------------------------------


def half_up(value: Fraction, places: int) -> Fraction:
    scale = 10**places
    magnitude = math.floor(abs(value) * scale + Fraction(1, 2))
    return Fraction(magnitude if value >= 0 else -magnitude, scale)


def half_even(value: Fraction, places: int) -> Fraction:
    # round() of a Fraction rounds a half to the even neighbour.
    return Fraction(round(value * 10**places), 10**places)


def month_end(index: int) -> date:
    year, month = 2026 + index // 12, index % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def month_value(index: int) -> str:
    end = month_end(index)
    return f"{end.year:04d}-{end.month:02d}"


@dataclass(frozen=True)
class Entry:
    id: str
    person: int
    month: int
    day: int
    minutes: int
    role: str
    bill_rate: Fraction | None
    billable: bool
    # Closes from this index on see the entry (approved late when later than its month), and see it billed.
    approved_in: int
    billed_in: int | None

    @property
    def worked_on(self) -> date:
        return month_end(self.month).replace(day=self.day)


@dataclass(frozen=True)
class History:
    currency: str
    rule: RoundingRule
    months: int
    terms: RecognitionTerms
    entries: tuple[Entry, ...]
    # person -> (effective from, hourly cost)
    cost_rates: tuple[tuple[tuple[date, Fraction], ...], ...]
    invoices: tuple[tuple[date, Fraction], ...]
    milestones: tuple[tuple[Fraction, date | None], ...]

    @property
    def places(self) -> int:
        return minor_units(self.currency)

    def seen(self, close: int) -> list[Entry]:
        return [entry for entry in self.entries if entry.approved_in <= close]


def oracle_cost_rate(history: History, person: int, day: date) -> Fraction | None:
    for effective, hourly in sorted(history.cost_rates[person], reverse=True):
        if effective <= day:
            return hourly
    return None


def oracle_cost(history: History, close: int) -> Fraction:
    cost = Fraction(0)
    for entry in history.seen(close):
        hourly = oracle_cost_rate(history, entry.person, entry.worked_on)
        if hourly is not None:
            cost += Fraction(entry.minutes, 60) * hourly
    return half_up(cost, history.places)


def oracle_invoiced(history: History, close: int) -> Fraction:
    return sum((net for issued, net in history.invoices if issued <= month_end(close)), Fraction(0))


def oracle_recognised(history: History, close: int) -> Fraction:
    terms, end = history.terms, month_end(close)
    if isinstance(terms, PercentageOfCompletion):
        hours = Fraction(sum(e.minutes for e in history.seen(close)), 60)
        return half_up(
            Fraction(terms.fee.amount) * min(Fraction(1), hours / Fraction(terms.budget_hours)),
            history.places,
        )
    if isinstance(terms, MilestoneAcceptance):
        accepted = sum(
            (amount for amount, on in history.milestones if on is not None and on <= end), Fraction(0)
        )
        return min(accepted, Fraction(terms.fee.amount))
    if isinstance(terms, StraightLineRetainer):
        earned, day = Fraction(0), terms.start
        last = end if terms.end is None else min(end, terms.end)
        while day <= last:
            earned += Fraction(terms.amount_per_period.amount) / calendar.monthrange(day.year, day.month)[1]
            day += timedelta(days=1)
        return half_up(earned, history.places)
    raise AssertionError("time and materials has no recognition")


def oracle_wip(history: History, close: int) -> Fraction:
    rule = history.rule
    round_line = half_up if rule.line_rounding == "half_up" else half_even
    minutes: dict[tuple[str, Fraction], int] = {}
    for entry in history.seen(close):
        billed = entry.billed_in is not None and entry.billed_in <= close
        if entry.billable and not billed and entry.bill_rate is not None:
            key = (entry.role, entry.bill_rate)
            minutes[key] = minutes.get(key, 0) + entry.minutes
    wip = Fraction(0)
    for (_, rate), total in minutes.items():
        quantity = half_up(Fraction(total, 60), rule.quantity_places)
        price = half_up(rate, rule.unit_price_places)
        wip += round_line(quantity * price, history.places)
    return wip


# --- random histories -------------------------------------------------------------------------------------


def money(places: int, low: int, high: int) -> st.SearchStrategy[Fraction]:
    return st.integers(low, high).map(lambda units: Fraction(units, 10**places))


MINUTES = st.one_of(st.integers(1, 1440), st.sampled_from([25, 50, 7]))


@st.composite
def histories(draw: st.DrawFn) -> History:
    currency = draw(st.sampled_from(CURRENCIES))
    places = minor_units(currency)
    # Rates with the currency's cents, or with the four decimals an ERP keeps of a unit price.
    rate_places = draw(st.sampled_from([places, 4]))
    unit = 10**places
    rates = money(rate_places, 10**rate_places, 400 * 10**rate_places * (100 if currency == "JPY" else 1))
    months = draw(st.integers(1, 5))
    people = draw(st.integers(1, 3))
    cost_rates = tuple(
        tuple(
            draw(
                st.lists(
                    st.tuples(st.dates(date(2025, 12, 1), month_end(months - 1)), rates),
                    max_size=3,
                    unique_by=lambda rate: rate[0],
                )
            )
        )
        for _ in range(people)
    )
    bill_rates = {role: draw(st.lists(rates, min_size=1, max_size=2)) for role in ROLES}
    entries = []
    for number in range(draw(st.integers(0, 25))):
        month = draw(st.integers(0, months - 1))
        role = draw(st.sampled_from(ROLES))
        approved_in = month + draw(st.integers(0, 2))
        billed_in = draw(st.one_of(st.none(), st.integers(0, 2).map(lambda late: approved_in + late)))  # noqa: B023
        entries.append(
            Entry(
                id=f"t{number}",
                person=draw(st.integers(0, people - 1)),
                month=month,
                day=draw(st.integers(1, month_end(month).day)),
                minutes=draw(MINUTES),
                role=role,
                bill_rate=draw(st.one_of(st.sampled_from(bill_rates[role]), st.none())),
                billable=draw(st.booleans()),
                approved_in=approved_in,
                billed_in=billed_in,
            )
        )
    invoices = tuple(
        draw(
            st.lists(
                st.tuples(st.dates(FIRST_MONTH, month_end(months)), money(places, -50 * unit, 20_000 * unit)),
                max_size=6,
            )
        )
    )
    milestones = tuple(
        draw(
            st.lists(
                st.tuples(
                    money(places, 0, 20_000 * unit),
                    st.one_of(st.none(), st.dates(FIRST_MONTH, month_end(months))),
                ),
                max_size=5,
            )
        )
    )
    kind = draw(st.sampled_from(["time_and_materials", "percentage_of_completion", "milestones", "retainer"]))
    terms: RecognitionTerms
    if kind == "time_and_materials":
        terms = TimeAndMaterials()
    elif kind == "percentage_of_completion":
        fee = draw(money(places, 0, 100_000 * unit))
        # Small round budgets too: a fee in odd cents then often lands on half a cent, where half-up shows.
        budget = draw(
            st.one_of(
                st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(2), Decimal(8)]),
                st.integers(1, 40_000).map(lambda n: Decimal(n).scaleb(-2)),
            )
        )
        terms = PercentageOfCompletion(fee=_money(fee, currency), budget_hours=budget)
    elif kind == "milestones":
        # Around the schedule's sum, so accepted milestones sometimes exceed the fee.
        fee = max(
            Fraction(0),
            sum((amount for amount, _ in milestones), Fraction(0))
            + draw(money(places, -5000 * unit, 5000 * unit)),
        )
        terms = MilestoneAcceptance(fee=_money(fee, currency))
    else:
        start = draw(st.dates(date(2025, 11, 1), date(2026, 4, 30)))
        end = draw(st.one_of(st.none(), st.integers(0, 300).map(lambda days: start + timedelta(days=days))))
        terms = StraightLineRetainer(
            amount_per_period=_money(draw(money(places, 0, 30_000 * unit)), currency), start=start, end=end
        )
    return History(
        currency=currency,
        rule=draw(st.sampled_from(RULES)),
        months=months,
        terms=terms,
        entries=tuple(entries),
        cost_rates=cost_rates,
        invoices=invoices,
        milestones=milestones,
    )


def _money(value: Fraction, currency: str) -> Money:
    # Every value the histories draw is a whole number of 10^-places: exact as a Decimal.
    decimal = Decimal(value.numerator) / Decimal(value.denominator)
    assert Fraction(decimal) == value
    return Money(amount=decimal, currency=currency)


def snapshot(
    history: History, close: int, earlier: Position, *, seen_as_of: int | None = None
) -> MonthEndProject:
    """What the close of month `close` reads; `seen_as_of` lets a re-run see later approvals and billing."""
    as_of = close if seen_as_of is None else seen_as_of
    currency = history.currency
    time = []
    for entry in history.entries:
        if entry.approved_in > as_of or entry.month > close:
            continue
        billed = entry.billed_in is not None and entry.billed_in <= as_of
        time.append(
            WorkedTime(
                id=entry.id,
                person=f"p{entry.person}",
                date=entry.worked_on,
                minutes=entry.minutes,
                role=entry.role,
                bill_rate=_money(entry.bill_rate, currency) if entry.bill_rate is not None else None,
                billable=entry.billable,
                billed=billed,
                invoice_number=f"INV-{entry.billed_in}" if billed else None,
            )
        )
    return MonthEndProject(
        legal_entity="UK",
        project_id="P1",
        period=month_value(close),
        currency=currency,
        rounding=history.rule,
        terms=history.terms,
        time=tuple(time),
        cost_rates=tuple(
            CostRateHistory(
                person=f"p{person}",
                rates=tuple(
                    CostRate(effective_from=day, hourly=_money(rate, currency)) for day, rate in rates
                ),
            )
            for person, rates in enumerate(history.cost_rates)
        ),
        milestones=tuple(
            AcceptedMilestone(id=f"m{n}", name=f"M{n}", amount=_money(amount, currency), accepted_on=on)
            for n, (amount, on) in enumerate(history.milestones)
        ),
        invoices=tuple(
            Invoiced(number=f"I{n}", issued_on=issued, net=_money(net, currency))
            for n, (issued, net) in enumerate(history.invoices)
        ),
        earlier=earlier,
    )


def role_total(journals: list[Journal], role: AccountRole, kind: JournalKind | None = None) -> Fraction:
    return sum(
        (
            Fraction(line.amount.amount)
            for journal in journals
            if kind is None or journal.kind == kind
            for line in journal.lines
            if line.role == role
        ),
        Fraction(0),
    )


def closes(history: History) -> list[tuple[ProjectClose, Position]]:
    """Every month closed in turn, each with the position it started from."""
    position, result = Position.opening(history.currency), []
    for close in range(history.months):
        done = close_project(snapshot(history, close, position))
        result.append((done, position))
        position = done.position
    return result


# --- properties -------------------------------------------------------------------------------------------


@PROPERTY
@given(histories())
def test_cumulative_figures_after_every_close_are_the_oracles_and_never_drift(history: History) -> None:
    posted: list[Journal] = []
    for close, (done, _) in enumerate(closes(history)):
        for journal in done.journals:
            assert sum((Fraction(line.amount.amount) for line in journal.lines), Fraction(0)) == 0
            quantum = Fraction(1, 10**history.places)
            assert all(Fraction(line.amount.amount) % quantum == 0 for line in journal.lines)
        posted += done.to_post

        cost = oracle_cost(history, close)
        assert role_total(posted, AccountRole.LABOUR_COST) == cost
        assert role_total(posted, AccountRole.COST_CLEARING) == -cost
        assert Fraction(done.margin.labour_cost.amount) == cost

        invoiced = oracle_invoiced(history, close)
        if isinstance(history.terms, TimeAndMaterials):
            wip = oracle_wip(history, close)
            accrual = done.journal(JournalKind.WIP_ACCRUAL)
            reversal = done.journal(JournalKind.WIP_REVERSAL)
            assert accrual is not None and reversal is not None
            assert (
                role_total([accrual], AccountRole.WIP) == wip == -role_total([accrual], AccountRole.REVENUE)
            )
            assert [line.amount for line in reversal.lines] == [-line.amount for line in accrual.lines]
            assert reversal.date == month_end(close) + timedelta(days=1)
            assert Fraction(done.margin.revenue.amount) == invoiced + wip
            continue
        recognised = oracle_recognised(history, close)
        assert Fraction(done.position.recognised.amount) == recognised
        # Invoices credit revenue; the recognition journals (credits negative) bring revenue to date to what
        # is recognised.
        assert invoiced - role_total(posted, AccountRole.REVENUE, JournalKind.RECOGNITION) == recognised
        position = recognised - invoiced
        assert role_total(posted, AccountRole.ACCRUED_REVENUE) == max(position, Fraction(0))
        assert role_total(posted, AccountRole.DEFERRED_REVENUE) == min(position, Fraction(0))
        if isinstance(history.terms, PercentageOfCompletion | MilestoneAcceptance):
            assert recognised <= Fraction(history.terms.fee.amount)


@PROPERTY
@given(histories(), st.data())
def test_rerunning_any_close_with_unchanged_inputs_proposes_nothing(
    history: History, data: st.DataObject
) -> None:
    done = closes(history)
    close = data.draw(st.integers(0, history.months - 1))
    first, earlier = done[close]
    again = close_project(snapshot(history, close, earlier))
    assert rerun_adjustments(again, first.to_post) == ()


@PROPERTY
@given(histories(), st.data())
def test_a_rerun_that_sees_more_posts_exactly_the_difference(history: History, data: st.DataObject) -> None:
    done = closes(history)
    close = data.draw(st.integers(0, history.months - 1))
    first, earlier = done[close]
    # Re-run later, after more time was approved and billed.
    again = close_project(snapshot(history, close, earlier, seen_as_of=close + 2))
    adjustments = rerun_adjustments(again, first.to_post)
    for kind in JournalKind:
        for role in AccountRole:
            before = role_total(list(first.to_post), role, kind)
            difference = role_total(list(adjustments), role, kind)
            assert before + difference == role_total(list(again.journals), role, kind)
    assert rerun_adjustments(again, [*first.to_post, *adjustments]) == ()


@settings(max_examples=500, deadline=None)
@given(
    st.integers(-(10**15), 10**15),
    st.integers(0, 6),
    st.integers(1, 10**6),
    st.integers(0, 3),
    st.integers(0, 4),
    st.sampled_from(["half_up", "half_even"]),
)
def test_rounded_quotient_rounds_the_exact_quotient_once(
    units: int, scale: int, divisor: int, divisor_scale: int, places: int, rounding: str
) -> None:
    numerator = Decimal(units).scaleb(-scale)
    denominator = Decimal(divisor).scaleb(-divisor_scale)
    exact = Fraction(units, 10**scale) / Fraction(divisor, 10**divisor_scale)
    expected = half_up(exact, places) if rounding == "half_up" else half_even(exact, places)
    assert Fraction(rounded_quotient(numerator, denominator, places, rounding)) == expected  # type: ignore[arg-type]
