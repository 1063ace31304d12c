"""The ops page's Month-end section: the latest journals each close posted and each project's margin to
date, and a plain note before any close."""

from __future__ import annotations

from datetime import UTC, datetime

from canonical import Money
from config import Settings
from domain.month_end import JournalKind, MarginSummary, Position
from ingress.ops_page import OpsFacts, render
from ledger.month_end import MonthEndJournalRecord, MonthEndPositionRecord

NOW = datetime(2026, 12, 3, 5, 30, tzinfo=UTC)


def test_the_latest_month_end_journals_are_listed_with_reference_debits_and_erp_id() -> None:
    posted = MonthEndJournalRecord(
        reference="WIP-UK-2026-11-ADJ1",
        legal_entity="UK",
        period="2026-11",
        kind=JournalKind.WIP_ACCRUAL,
        adjustment=1,
        erp="xero",
        journal_id="mj-42",
        total_debits=Money.of("1541.67", "GBP"),
        journals=(),
        posted_at=NOW,
    )
    html = render(OpsFacts(summaries={}, waiting=[], month_end=[posted]), Settings(), NOW)

    section = html.split("<h2>Month-end</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<td>WIP-UK-2026-11-ADJ1</td>" in section and "<td>wip accrual</td>" in section
    assert "<td>1,541.67 GBP</td>" in section and "<td>xero mj-42</td>" in section


def test_each_projects_margin_to_date_is_listed() -> None:
    gbp = lambda amount: Money.of(amount, "GBP")  # noqa: E731
    margin = MarginSummary(
        project_id="30100005",
        period="2026-11",
        currency="GBP",
        revenue=gbp("12000.00"),
        revenue_in_period=gbp("3000.00"),
        labour_cost=gbp("7311.09"),
        labour_cost_in_period=gbp("2010.00"),
        billed=gbp("9000.00"),
        wip=gbp("0"),
        margin=gbp("4688.91"),
        margin_in_period=gbp("990.00"),
        margin_percent=None,
    )
    kept = MonthEndPositionRecord(
        legal_entity="UK",
        period="2026-11",
        project_id="30100005",
        position=Position.opening("GBP"),
        margin=margin,
        closed_at=NOW,
    )
    html = render(OpsFacts(summaries={}, waiting=[], margins=[kept]), Settings(), NOW)

    section = html.split("<h3>Margin by project, to date</h3>", 1)[1].split("<h2>", 1)[0]
    assert "<td>30100005</td><td>GBP</td><td>12,000.00</td><td>7,311.09</td>" in section
    assert "<td>4,688.91</td>" in section


def test_before_any_close_the_section_says_how_to_run_one() -> None:
    html = render(OpsFacts(summaries={}, waiting=[]), Settings(), NOW)
    section = html.split("<h2>Month-end</h2>", 1)[1].split("<h2>", 1)[0]
    assert "pssync close --entity UK --period YYYY-MM" in section
