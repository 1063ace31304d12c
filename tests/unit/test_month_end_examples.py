"""Month-end rules on worked examples, one per contract kind, with figures computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from canonical import Money
from canonical.money import RoundingRule
from domain.month_end import (
    AcceptedMilestone,
    AccountRole,
    CostRate,
    CostRateHistory,
    Invoiced,
    Journal,
    JournalKind,
    JournalLine,
    MilestoneAcceptance,
    MonthEndProject,
    PercentageOfCompletion,
    Position,
    ProjectClose,
    RecognitionTerms,
    SourceRefs,
    StraightLineRetainer,
    TimeAndMaterials,
    WorkedTime,
    adjustment,
    close_project,
    rerun_adjustments,
)
from domain.month_end.sources import SAMPLE_SIZE

XERO = RoundingRule(quantity_places=4, unit_price_places=4, line_rounding="half_up")
TRYTON = RoundingRule(quantity_places=2, unit_price_places=4, line_rounding="half_even")


def gbp(amount: str) -> Money:
    return Money.of(amount, "GBP")


def rates(person: str, *history: tuple[date, str]) -> CostRateHistory:
    return CostRateHistory(
        person=person, rates=tuple(CostRate(effective_from=day, hourly=gbp(rate)) for day, rate in history)
    )


COST_RATES = (rates("alice", (date(2026, 1, 1), "61.37")), rates("bob", (date(2026, 1, 1), "80")))


def worked(
    entry_id: str,
    day: date,
    minutes: int,
    *,
    person: str = "alice",
    role: str | None = "Consultant",
    rate: str | None = "165.75",
    billable: bool = True,
    invoice: str | None = None,
) -> WorkedTime:
    return WorkedTime(
        id=entry_id,
        person=person,
        date=day,
        minutes=minutes,
        role=role,
        bill_rate=gbp(rate) if rate is not None else None,
        billable=billable,
        billed=invoice is not None,
        invoice_number=invoice,
    )


def project(
    period: str,
    terms: RecognitionTerms,
    *,
    time: tuple[WorkedTime, ...] = (),
    invoices: tuple[Invoiced, ...] = (),
    milestones: tuple[AcceptedMilestone, ...] = (),
    earlier: Position | None = None,
    cost_rates: tuple[CostRateHistory, ...] = COST_RATES,
    rounding: RoundingRule = XERO,
) -> MonthEndProject:
    return MonthEndProject(
        legal_entity="UK",
        project_id="P1",
        period=period,
        currency="GBP",
        rounding=rounding,
        terms=terms,
        time=time,
        cost_rates=cost_rates,
        milestones=milestones,
        invoices=invoices,
        earlier=earlier or Position.opening("GBP"),
    )


def invoice(number: str, day: date, net: str) -> Invoiced:
    return Invoiced(number=number, issued_on=day, net=gbp(net))


def lines(close: ProjectClose, kind: JournalKind) -> list[tuple[AccountRole, str]]:
    journal = close.journal(kind)
    assert journal is not None
    return [(line.role, str(line.amount.amount)) for line in journal.lines]


def balance(journals: list[Journal], role: AccountRole) -> Decimal:
    return sum((journal.total(role).amount for journal in journals), Decimal(0))


MARCH_TIME = (
    worked("t1", date(2026, 3, 2), 505),
    worked("t2", date(2026, 3, 10), 60, invoice="INV-1"),
    worked("t3", date(2026, 3, 11), 25, person="bob", role="Senior", rate="200.00"),
    worked("t4", date(2026, 3, 12), 30, person="bob", billable=False),
)


def test_time_and_materials_accrues_unbilled_time_as_billing_would_rate_it() -> None:
    close = close_project(
        project(
            "2026-03",
            TimeAndMaterials(),
            time=MARCH_TIME,
            invoices=(invoice("INV-1", date(2026, 3, 31), "165.75"),),
        )
    )

    # 505 min = 8.4167 h x 165.75 = 1,395.068025; 25 min = 0.4167 h x 200 = 83.34; billed and non-billable
    # time is not WIP.
    assert lines(close, JournalKind.WIP_ACCRUAL) == [
        (AccountRole.REVENUE, "-1395.07"),
        (AccountRole.REVENUE, "-83.34"),
        (AccountRole.WIP, "1478.41"),
    ]
    accrual = close.journal(JournalKind.WIP_ACCRUAL)
    assert accrual is not None and accrual.date == date(2026, 3, 31)
    assert accrual.lines[0].sources.sample == ("time:t1",)
    assert accrual.lines[2].sources.sample == ("time:t1", "time:t3")
    # Every approved hour costs, billable or not: (565 x 61.37 + 55 x 80) / 60 = 651.2341...
    assert lines(close, JournalKind.LABOUR_COST) == [
        (AccountRole.LABOUR_COST, "651.23"),
        (AccountRole.COST_CLEARING, "-651.23"),
    ]
    assert close.journal(JournalKind.RECOGNITION) is None
    margin = close.margin
    assert (margin.billed, margin.wip, margin.revenue) == (gbp("165.75"), gbp("1478.41"), gbp("1644.16"))
    assert (margin.labour_cost, margin.margin, margin.margin_percent) == (
        gbp("651.23"),
        gbp("992.93"),
        Decimal("60.4"),
    )
    assert close.findings == ()


def test_wip_is_valued_with_the_entitys_erp_rounding() -> None:
    # Tryton keeps 2 decimals of an hour and rounds half-even: 8.42 h x 165.75 = 1,395.615 -> 1,395.62.
    close = close_project(
        project("2026-03", TimeAndMaterials(), time=(worked("t1", date(2026, 3, 2), 505),), rounding=TRYTON)
    )
    assert lines(close, JournalKind.WIP_ACCRUAL) == [
        (AccountRole.REVENUE, "-1395.62"),
        (AccountRole.WIP, "1395.62"),
    ]


def test_wip_is_accrued_at_period_end_and_reversed_on_the_first_of_the_next_across_two_periods() -> None:
    march = close_project(project("2026-03", TimeAndMaterials(), time=MARCH_TIME))
    reversal = march.journal(JournalKind.WIP_REVERSAL)
    assert reversal is not None and reversal.date == date(2026, 4, 1)
    assert lines(march, JournalKind.WIP_REVERSAL) == [
        (AccountRole.REVENUE, "1395.07"),
        (AccountRole.REVENUE, "83.34"),
        (AccountRole.WIP, "-1478.41"),
    ]
    # April: March's t1 and t3 are billed on INV-2; one new April entry is not.
    april_time = (
        worked("t1", date(2026, 3, 2), 505, invoice="INV-2"),
        MARCH_TIME[1],
        worked("t3", date(2026, 3, 11), 25, person="bob", role="Senior", rate="200.00", invoice="INV-2"),
        MARCH_TIME[3],
        worked("t5", date(2026, 4, 20), 50, rate="165.75"),
    )
    april = close_project(project("2026-04", TimeAndMaterials(), time=april_time, earlier=march.position))
    # 50 min = 0.8333 h x 165.75 = 138.119... -> 138.12
    assert lines(april, JournalKind.WIP_ACCRUAL) == [
        (AccountRole.REVENUE, "-138.12"),
        (AccountRole.WIP, "138.12"),
    ]
    posted = [*march.to_post, *april.to_post]
    # On 30 April the WIP account holds April's unbilled time only: March's accrual was reversed on 1 April;
    # April's own reversal waits for 1 May.
    at_april_end = [journal for journal in posted if journal.date <= date(2026, 4, 30)]
    assert balance(at_april_end, AccountRole.WIP) == Decimal("138.12")
    assert balance(posted, AccountRole.WIP) == 0
    # April's labour is its own new entry, 50 x 61.37 / 60 = 51.1416..., posted as cost to date less cost
    # before: (615 x 61.37 + 55 x 80) / 60 = 702.3758... -> 702.38, less 651.23, is 51.15; the period's line
    # takes the rounding residual, so cost to date is always rounded once and never drifts.
    assert lines(april, JournalKind.LABOUR_COST) == [
        (AccountRole.LABOUR_COST, "51.15"),
        (AccountRole.COST_CLEARING, "-51.15"),
    ]


POC = PercentageOfCompletion(fee=gbp("10000.00"), budget_hours=Decimal("120"))


def test_fixed_fee_by_percentage_of_completion_defers_then_accrues() -> None:
    february_time = (worked("f1", date(2026, 2, 10), 2400, billable=False),)
    fee_invoice = invoice("INV-10", date(2026, 2, 15), "5000.00")
    february = close_project(project("2026-02", POC, time=february_time, invoices=(fee_invoice,)))
    # 40 of 120 h: 3,333.33 recognised, 5,000 invoiced -> 1,666.67 deferred.
    assert lines(february, JournalKind.RECOGNITION) == [
        (AccountRole.REVENUE, "1666.67"),
        (AccountRole.DEFERRED_REVENUE, "-1666.67"),
    ]
    assert february.position.recognised == gbp("3333.33")
    assert february.position.revenue_position == gbp("-1666.67")

    march_time = (*february_time, worked("f2", date(2026, 3, 3), 1525, billable=False))
    march = close_project(
        project("2026-03", POC, time=march_time, invoices=(fee_invoice,), earlier=february.position)
    )
    # 65h25m of 120 h: 10,000 x 3,925 / 7,200 = 5,451.388... -> 5,451.39; 451.39 accrued, the deferral undone.
    assert lines(march, JournalKind.RECOGNITION) == [
        (AccountRole.REVENUE, "-2118.06"),
        (AccountRole.ACCRUED_REVENUE, "451.39"),
        (AccountRole.DEFERRED_REVENUE, "1666.67"),
    ]
    assert march.margin.revenue_in_period == gbp("2118.06")
    recognition = march.journal(JournalKind.RECOGNITION)
    assert recognition is not None
    assert recognition.lines[0].sources.sample == ("time:f1", "time:f2")
    assert recognition.lines[1].sources.sample == ("invoice:INV-10", "time:f1", "time:f2")

    april_time = (*march_time, worked("f3", date(2026, 4, 1), 4000, billable=False))
    april = close_project(
        project("2026-04", POC, time=april_time, invoices=(fee_invoice,), earlier=march.position)
    )
    # Past the budget: the whole fee and no more.
    assert april.position.recognised == gbp("10000.00")
    assert lines(april, JournalKind.RECOGNITION) == [
        (AccountRole.REVENUE, "-4548.61"),
        (AccountRole.ACCRUED_REVENUE, "4548.61"),
    ]


def test_percentage_of_completion_rounds_half_a_cent_up() -> None:
    # 100.01 x 1 h / 2 h = 50.005: half-up gives 50.01 (half-even would give 50.00).
    terms = PercentageOfCompletion(fee=gbp("100.01"), budget_hours=Decimal(2))
    close = close_project(project("2026-03", terms, time=(worked("h1", date(2026, 3, 2), 60),)))
    assert close.position.recognised == gbp("50.01")


MILESTONES = MilestoneAcceptance(fee=gbp("9000.00"))


def test_fixed_fee_by_milestone_acceptance_recognises_accepted_milestones() -> None:
    milestones = (
        AcceptedMilestone(id="m1", name="Design", amount=gbp("3000.00"), accepted_on=date(2026, 3, 20)),
        AcceptedMilestone(id="m2", name="Build", amount=gbp("3000.00"), accepted_on=date(2026, 4, 2)),
        AcceptedMilestone(id="m3", name="Go-live", amount=gbp("3000.00")),
    )
    invoices = (invoice("INV-20", date(2026, 3, 25), "3000.00"),)
    march = close_project(project("2026-03", MILESTONES, milestones=milestones, invoices=invoices))
    # Recognised as invoiced: nothing to move.
    recognition = march.journal(JournalKind.RECOGNITION)
    assert recognition is not None and recognition.is_empty
    assert march.position.recognised == gbp("3000.00")

    april = close_project(
        project("2026-04", MILESTONES, milestones=milestones, invoices=invoices, earlier=march.position)
    )
    assert lines(april, JournalKind.RECOGNITION) == [
        (AccountRole.REVENUE, "-3000.00"),
        (AccountRole.ACCRUED_REVENUE, "3000.00"),
    ]
    april_recognition = april.journal(JournalKind.RECOGNITION)
    assert april_recognition is not None
    assert april_recognition.lines[0].sources.sample == ("milestone:m1", "milestone:m2")


def test_accepted_milestones_beyond_the_fee_recognise_the_fee_and_are_a_finding() -> None:
    milestones = (
        AcceptedMilestone(id="m1", name="Design", amount=gbp("6000.00"), accepted_on=date(2026, 3, 1)),
        AcceptedMilestone(id="m2", name="Build", amount=gbp("4000.00"), accepted_on=date(2026, 3, 2)),
    )
    close = close_project(project("2026-03", MILESTONES, milestones=milestones))
    assert close.position.recognised == gbp("9000.00")
    assert [finding.rule for finding in close.findings] == ["milestones_exceed_fee"]


RETAINER = StraightLineRetainer(
    amount_per_period=gbp("3000.00"), start=date(2026, 1, 15), end=date(2026, 6, 14)
)


@pytest.mark.parametrize(
    ("period", "recognised"),
    [
        ("2025-12", "0"),
        # 17 of January's 31 days: 3,000 x 17 / 31 = 1,645.161...
        ("2026-01", "1645.16"),
        ("2026-02", "4645.16"),
        ("2026-05", "13645.16"),
        # 14 of June's 30 days: 1,400.
        ("2026-06", "15045.16"),
        ("2026-09", "15045.16"),
    ],
)
def test_retainer_is_recognised_straight_line_pro_rata_by_days_in_partial_months(
    period: str, recognised: str
) -> None:
    close = close_project(project(period, RETAINER))
    assert close.position.recognised.amount == Decimal(recognised)


def test_retainer_invoiced_in_advance_is_deferred() -> None:
    invoices = (invoice("R-1", date(2026, 1, 15), "3000.00"), invoice("R-2", date(2026, 2, 15), "3000.00"))
    january = close_project(project("2026-01", RETAINER, invoices=invoices))
    # R-2 is issued after January closes, so it is not January's.
    assert lines(january, JournalKind.RECOGNITION) == [
        (AccountRole.REVENUE, "1354.84"),
        (AccountRole.DEFERRED_REVENUE, "-1354.84"),
    ]
    february = close_project(project("2026-02", RETAINER, invoices=invoices, earlier=january.position))
    # 4,645.16 recognised against 6,000 invoiced: still 1,354.84 deferred, so nothing moves.
    recognition = february.journal(JournalKind.RECOGNITION)
    assert recognition is not None and recognition.is_empty
    assert february.margin.revenue_in_period == gbp("3000.00")


def test_rerunning_a_period_posts_only_the_adjustment() -> None:
    first = close_project(project("2026-03", TimeAndMaterials(), time=MARCH_TIME))
    assert rerun_adjustments(first, first.to_post) == ()

    # A 50-minute entry of March is approved after the close ran; the period is run again.
    late = worked("t6", date(2026, 3, 30), 50)
    again = close_project(project("2026-03", TimeAndMaterials(), time=(*MARCH_TIME, late)))
    adjustments = {journal.kind: journal for journal in rerun_adjustments(again, first.to_post)}

    assert set(adjustments) == {JournalKind.WIP_ACCRUAL, JournalKind.WIP_REVERSAL, JournalKind.LABOUR_COST}
    assert all(journal.adjustment for journal in adjustments.values())
    # 555 min = 9.25 h x 165.75 = 1,533.1875 -> 1,533.19, up 138.12 on the 1,395.07 posted.
    accrual = adjustments[JournalKind.WIP_ACCRUAL]
    assert [(line.role, str(line.amount.amount)) for line in accrual.lines] == [
        (AccountRole.REVENUE, "-138.12"),
        (AccountRole.WIP, "138.12"),
    ]
    assert accrual.date == date(2026, 3, 31)
    assert adjustments[JournalKind.WIP_REVERSAL].date == date(2026, 4, 1)
    # (615 x 61.37 + 55 x 80) / 60 = 702.3758... -> 702.38, 51.15 more than the 651.23 posted.
    cost = adjustments[JournalKind.LABOUR_COST]
    assert [(line.role, str(line.amount.amount)) for line in cost.lines] == [
        (AccountRole.COST_CLEARING, "-51.15"),
        (AccountRole.LABOUR_COST, "51.15"),
    ]
    # Posting the adjustments as well leaves nothing to post on a third run.
    assert rerun_adjustments(again, [*first.to_post, *adjustments.values()]) == ()


def test_an_entry_no_longer_there_is_reversed_by_the_adjustment() -> None:
    first = close_project(project("2026-03", TimeAndMaterials(), time=MARCH_TIME))
    # t3 was unapproved after the close: nothing of Senior's time remains.
    again = close_project(project("2026-03", TimeAndMaterials(), time=MARCH_TIME[:2] + MARCH_TIME[3:]))
    accrual = adjustment(
        again.journal(JournalKind.WIP_ACCRUAL) or pytest.fail("no accrual"), first.to_post[:1]
    )
    assert [(line.role, str(line.amount.amount)) for line in accrual.lines] == [
        (AccountRole.REVENUE, "83.34"),
        (AccountRole.WIP, "-83.34"),
    ]


def test_adjustment_refuses_another_projects_journal() -> None:
    close = close_project(project("2026-03", TimeAndMaterials(), time=MARCH_TIME))
    accrual = close.journal(JournalKind.WIP_ACCRUAL)
    assert accrual is not None
    other = accrual.model_copy(update={"project_id": "P2"})
    with pytest.raises(ValueError, match="cannot adjust"):
        adjustment(accrual, [other])


def test_cost_rate_changing_on_the_fifteenth_costs_each_day_at_its_rate() -> None:
    history = (rates("alice", (date(2026, 1, 1), "60.00"), (date(2026, 3, 15), "66.00")),)
    time = (
        worked("c1", date(2026, 3, 14), 480),
        worked("c2", date(2026, 3, 15), 480),
        worked("c3", date(2026, 3, 31), 25, person="carol"),
    )
    close = close_project(project("2026-03", TimeAndMaterials(), time=time, cost_rates=history))
    # 8 h at 60 + 8 h at 66; carol has no cost rate, so her time is a finding, not a zero.
    assert lines(close, JournalKind.LABOUR_COST) == [
        (AccountRole.LABOUR_COST, "1008.00"),
        (AccountRole.COST_CLEARING, "-1008.00"),
    ]
    [finding] = close.findings
    assert finding.rule == "no_cost_rate" and finding.sources.sample == ("time:c3",)
    assert close.margin.uncosted_minutes == 25


def test_time_approved_after_its_period_closed_is_costed_as_a_catch_up() -> None:
    march = close_project(project("2026-03", TimeAndMaterials(), time=MARCH_TIME))
    # April's close sees a March entry approved late, and April's own time.
    late = worked("t7", date(2026, 3, 31), 60, rate=None, billable=False)
    april_entry = worked("t8", date(2026, 4, 1), 120, rate=None, billable=False)
    april = close_project(
        project("2026-04", TimeAndMaterials(), time=(*MARCH_TIME, late, april_entry), earlier=march.position)
    )
    cost = april.journal(JournalKind.LABOUR_COST)
    assert cost is not None
    assert [(line.role, str(line.amount.amount), line.sources.sample) for line in cost.lines] == [
        (AccountRole.LABOUR_COST, "122.74", ("time:t8",)),
        (AccountRole.LABOUR_COST, "61.37", ("time:t1", "time:t2", "time:t3", "time:t4", "time:t7")),
        (
            AccountRole.COST_CLEARING,
            "-184.11",
            ("time:t1", "time:t2", "time:t3", "time:t4", "time:t7", "time:t8"),
        ),
    ]


def test_unbilled_time_without_a_bill_rate_is_a_finding() -> None:
    close = close_project(
        project("2026-03", TimeAndMaterials(), time=(worked("n1", date(2026, 3, 3), 60, rate=None),))
    )
    assert [finding.rule for finding in close.findings] == ["no_bill_rate"]
    accrual = close.journal(JournalKind.WIP_ACCRUAL)
    assert accrual is not None and accrual.is_empty


def test_many_sources_are_named_by_count_sample_and_digest() -> None:
    ids = [f"time:{n:05d}" for n in range(1000)]
    refs = SourceRefs.of(reversed(ids))
    assert refs.count == 1000 and refs.sample == tuple(ids[:SAMPLE_SIZE])
    assert refs.digest == SourceRefs.of(ids).digest != SourceRefs.of(ids[:-1]).digest


def test_sources_are_written_within_a_posted_lines_limit() -> None:
    few = SourceRefs.of(["time:2", "time:1"])
    assert few.text() == "time:1,time:2"
    many = SourceRefs.of(f"time:{'x' * 40}{n:04d}" for n in range(500))
    written = many.text(limit=300)
    assert len(written) <= 300
    assert written.endswith(f"more (sha256 {many.digest})")
    assert written.startswith(many.sample[0])
    shown = written.split(" +")[0].split(",")
    assert f"+{500 - len(shown)} more" in written


def test_a_journal_that_does_not_balance_cannot_be_built() -> None:
    line = JournalLine(
        role=AccountRole.WIP,
        project_id="P1",
        amount=gbp("1.00"),
        description="x",
        sources=SourceRefs(count=0),
    )
    with pytest.raises(ValidationError, match="out by"):
        Journal(
            legal_entity="UK",
            project_id="P1",
            period="2026-03",
            kind=JournalKind.WIP_ACCRUAL,
            date=date(2026, 3, 31),
            currency="GBP",
            lines=(line,),
        )
    with pytest.raises(ValidationError, match="minor unit"):
        Journal(
            legal_entity="UK",
            project_id="P1",
            period="2026-03",
            kind=JournalKind.WIP_ACCRUAL,
            date=date(2026, 3, 31),
            currency="GBP",
            lines=(
                line.model_copy(update={"amount": gbp("0.005")}),
                line.model_copy(update={"amount": gbp("-0.005")}),
            ),
        )


def test_inputs_in_another_currency_are_refused() -> None:
    with pytest.raises(ValidationError, match="EUR"):
        project("2026-03", PercentageOfCompletion(fee=Money.of("100", "EUR"), budget_hours=Decimal(10)))


def test_the_same_entry_twice_is_refused_rather_than_valued_twice() -> None:
    with pytest.raises(ValidationError, match="time entry t1 is given more than once"):
        project("2026-03", TimeAndMaterials(), time=(MARCH_TIME[0], MARCH_TIME[0]))
