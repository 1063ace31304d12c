"""The targets table over hand-built results: each figure of the performance issue, met, missed or not
measured, next to the previous run's figures read back from JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import figures
from bench.ceiling import Ceiling
from bench.cli import write
from bench.config import BenchConfig
from bench.firm import Firm
from bench.histories import LargestResult, RunSize, TypeHistories
from bench.procstats import Phase, Usage
from bench.pssync_side import Completion
from bench.report import MB, measure, render, targets
from bench.runner import BillingFigures, BurstFigures, Results
from bench.seeding import DealRecord

RESULTS_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"
DEAL = DealRecord(Firm(1, first_period="2025-03").deals(1)[0], "account", "contact", "opportunity")


def _phase(worker_cpu: float = 0.0, temporal_cpu: float = 0.0, worker_rss_mb: float = 0.0) -> Phase:
    usage = {"worker": Usage(worker_cpu, int(worker_rss_mb * MB)), "temporal": Usage(temporal_cpu, 0)}
    return Phase("billing", started=0.0, ended=1.0, usage=usage)


def _billing(
    entries: int,
    pssync_seconds: float,
    direct_seconds: float,
    *,
    cpu: tuple[float, float] = (163, 137),
    rss_mb: float = 399,
    invoices: int = 500,
) -> BillingFigures:
    return BillingFigures(
        label=f"{entries:,} entries",
        period="2025-03",
        projects=500,
        entries=entries,
        billable=entries,
        invoices=invoices,
        pssync_seconds=pssync_seconds,
        direct_seconds=direct_seconds,
        finance_approvals=invoices,
        pssync_phase=_phase(*cpu, rss_mb),
        direct_phase=Phase("direct", started=0.0, ended=1.0),
    )


def _governed(pssync_seconds: float, xero_calls: dict[str, int], invoices: int) -> BillingFigures:
    figures_ = _billing(10_000, pssync_seconds, 181, invoices=100)
    figures_.projects = 100
    figures_.xero_calls = xero_calls
    figures_.uk_invoices = invoices
    return figures_


def _burst(rate: float, latencies: list[float]) -> BurstFigures:
    done = [
        Completion(DEAL, arrival=i / rate, done=i / rate + latency) for i, latency in enumerate(latencies)
    ]
    return BurstFigures(rate, 60, pssync=done, direct=[], pssync_phase=_phase(), direct_phase=_phase())


def _steady(rate: float, latency: float) -> BurstFigures:
    return _burst(rate, [latency] * 30)


def _backlogged(rate: float) -> BurstFigures:
    # Each deal waits 0.5 s longer than the one before: the queue grows through the burst.
    return _burst(rate, [0.2 + 0.5 * i for i in range(30)])


def _history(workflow_type: str, events: int, size: int, largest_result: int | None) -> TypeHistories:
    result = LargestResult("w", "r", largest_result) if largest_result is not None else None
    return TypeHistories(workflow_type, runs=[RunSize("w", "r", events, size)], largest_result=result)


def _results(**fields: object) -> Results:
    results = Results(
        config=BenchConfig(),
        started_at=datetime(2026, 12, 7, 6, 0, tzinfo=UTC),
        machine={"cpus": "2", "cpu": "test", "memory": "1 GiB", "python": "3.11", "os": "test"},
        firm_digest="0" * 16,
        deals=0,
    )
    return replace(results, **fields)  # type: ignore[arg-type]


def like_the_2026_12_05_run() -> Results:
    """The previous full run's figures, as far as a hand-built run can carry them."""
    return _results(
        billing=[_billing(10_000, 126, 32.3), _billing(100_000, 100_000 / 428, 100_000 / 2704)],
        governed=_governed(
            978, {"createInvoices": 92, "getInvoice": 93, "getInvoices": 749, "getPayments": 35}, 92
        ),
        bursts=[_steady(1, 0.15), _steady(5, 0.18), _backlogged(20)],
        histories=[
            _history("TimeToBilling", 80, 66 * 1024, 44_000),
            _history("PsaFeedPoller", 2_685, 5_281_587, 521_523),
        ],
        ceilings=[("clean server", Ceiling(completed=1568, seconds=15.1))],
    )


def meeting_every_target() -> Results:
    return _results(
        billing=[
            _billing(10_000, 4, 5, cpu=(10, 10), rss_mb=150),
            _billing(100_000, 40, 50, cpu=(20, 20), rss_mb=250),
        ],
        governed=_governed(200, {"getInvoices": 100, "createInvoices": 100}, 100),
        bursts=[_steady(5, 0.2), _steady(20, 0.8)],
        histories=[_history("TimeToBilling", 80, 600 * 1024, 30 * 1024)],
        ceilings=[("clean server", Ceiling(completed=400, seconds=10))],
        make_test_seconds=7 * 60,
    )


def _rows(lines: list[str]) -> list[list[str]]:
    table = [line for line in lines if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[1:]]


def _row(lines: list[str], label_start: str) -> dict[str, str]:
    (found,) = [row for row in _rows(lines) if row[0].startswith(label_start)]
    return dict(zip(["figure", "target", "this run", "previous run", "status"], found, strict=True))


# The 2026-12-05 run, transcribed: a fixed file, unlike latest.json, which every full run replaces.
PREVIOUS = figures.read(RESULTS_DIR / "2026-12-05-0533-full.json")


def test_a_run_like_the_previous_full_one_misses_the_issues_targets_by_its_figures() -> None:
    lines = targets(like_the_2026_12_05_run())

    ratio = _row(lines, "billing, 100,000 entries over 500 projects, ratio to the direct script")
    assert ratio["this run"] == "0.16 x (428 vs 2,704 entries/s)" and ratio["status"] == "**missed**"
    assert (
        _row(lines, "billing, 100,000 entries over 500 projects, end to end")["this run"] == "428 entries/s"
    )
    governed = _row(lines, "governed run")
    assert governed["this run"] == "0.19 x (978 s vs 181 s)" and governed["status"] == "**missed**"
    calls = _row(lines, "Xero calls per posted invoice")
    assert calls["this run"] == "10.5 (969 calls for 92 invoices; getInvoices 749)"
    assert _row(lines, "worker peak RSS at 100,000 entries")["this run"] == "399 MB"
    sustained = _row(lines, "closed-won sustained")
    assert (
        sustained["this run"].startswith("5 deals/s (")
        and "completed under overload" in sustained["this run"]
    )
    assert sustained["status"] == "**missed**"
    assert _row(lines, "CPU per invoice")["this run"] == "0.60 CPU-s (163 + 137 s for 500)"
    histories = _row(lines, "largest activity result")
    assert histories["this run"] == "509 KB (PsaFeedPoller) / 5.0 MB (PsaFeedPoller)"
    assert histories["status"] == "**missed**"
    assert _row(lines, "largest run history in events")["this run"] == "2,685 (PsaFeedPoller)"
    # The benchmark does not time `make test`: without the figure the row says so.
    make_test = _row(lines, "make test wall time")
    assert make_test["this run"] == "n/a" and make_test["status"] == "n/a"


def test_a_run_meeting_every_target_says_met_on_every_row() -> None:
    rows = _rows(targets(meeting_every_target()))

    assert len(rows) == 13
    assert {row[0]: row[4] for row in rows if row[4] != "met"} == {}
    assert _row(targets(meeting_every_target()), "make test wall time")["this run"] == "7.0 min"


def test_the_issues_figures_come_first_and_the_older_targets_after_them() -> None:
    labels = [row[0] for row in _rows(targets(like_the_2026_12_05_run()))]

    assert labels[0].startswith("billing, ") and labels[8].startswith("make test wall time")
    assert labels[9].startswith("growth") and labels[-1] == "largest run history in events"


def test_a_burst_within_its_backlog_but_over_a_second_at_p95_is_not_sustained() -> None:
    results = _results(bursts=[_steady(5, 0.5), _steady(20, 1.5)])

    assert measure(results)["closed_won.sustained_rate"].value == 5
    none_kept = measure(_results(bursts=[_steady(20, 1.5)]))
    assert none_kept["closed_won.sustained_rate"].value == 0
    assert _row(targets(_results(bursts=[_steady(20, 1.5)])), "closed-won sustained")["this run"] == (
        "none of the rates tried"
    )


def test_the_largest_activity_result_is_the_largest_over_every_workflow_type() -> None:
    results = _results(
        histories=[
            _history("PsaFeedPoller", 2_685, 5 * MB, 40 * 1024),
            _history("TimeToBilling", 80, 66 * 1024, 70 * 1024),
            _history("ErpPaymentPoller", 2_201, 252 * 1024, None),
        ]
    )

    found = measure(results)
    assert found["history.largest_activity_result"] == figures.Figure(70 * 1024, "bytes", "TimeToBilling")
    assert found["history.largest_run_bytes"] == figures.Figure(5 * MB, "bytes", "PsaFeedPoller")
    # Within 1 MB of history, but one result above 64 KB: the pair is missed.
    assert _row(targets(results), "largest activity result")["status"] == "**missed**"


def test_a_run_that_measured_nothing_has_not_applicable_rows_and_no_previous_column() -> None:
    rows = _rows(targets(_results()))

    assert {row[2] for row in rows} == {"n/a"}
    assert {row[3] for row in rows} == {"n/a"}
    assert {row[4] for row in rows} == {"n/a"}


def test_the_previous_column_shows_the_seeded_2026_12_05_figures() -> None:
    assert PREVIOUS is not None and PREVIOUS.transcribed_from == "bench/results/2026-12-05-0533-full.md"
    lines = targets(meeting_every_target(), PREVIOUS)

    expected = {
        "billing, 100,000 entries over 500 projects, ratio": "0.16 x (428 vs 2,704 entries/s)",
        "billing, 100,000 entries over 500 projects, end to end": "428 entries/s",
        "governed run": "0.19 x (978 s vs 181 s)",
        "Xero calls per posted invoice": "10.5 (969 calls for 92 invoices; getInvoices 749)",
        "worker peak RSS": "399 MB",
        "closed-won sustained": "5 deals/s (12.1/s completed under overload)",
        "CPU per invoice": "0.60 CPU-s (163 + 137 s for 500)",
        "largest activity result": "509 KB (PsaFeedPoller) / 5.0 MB (PsaFeedPoller)",
        "make test wall time": "13.5 min",
        "largest run history in events": "2,685 (PsaFeedPoller)",
    }
    assert {label: _row(lines, label)["previous run"] for label in expected} == expected
    # The status is this run's, whatever the previous run did.
    assert _row(lines, "CPU per invoice")["status"] == "met"
    assert "Previous run: `2026-12-05-0533-full`, transcribed from" in "\n".join(lines)


def test_a_previous_run_of_another_size_says_its_size() -> None:
    small = _results(billing=[_billing(10_000, 4, 5)])
    previous = figures.Snapshot("earlier", measure(_results(billing=[_billing(50_000, 100, 20)])))

    row = _row(targets(small, previous), "billing, 10,000 entries over 500 projects, end to end")
    assert row["this run"] == "2,500 entries/s"
    assert row["previous run"] == "500 entries/s at 50,000 entries"


def test_write_puts_the_figures_beside_the_markdown_and_a_full_run_also_as_latest(tmp_path: Path) -> None:
    full = like_the_2026_12_05_run()
    path = write(full, render(full), tmp_path)

    assert path.name == "2026-12-07-0600-full.md"
    written = json.loads((tmp_path / "2026-12-07-0600-full.json").read_text())
    assert written["run"] == "2026-12-07-0600-full"
    assert written["figures"]["governed.xero_calls_per_invoice"]["unit"] == "calls/invoice"
    assert written["figures"]["governed.xero_calls_per_invoice"]["value"] == pytest.approx(969 / 92)
    latest = figures.read(tmp_path / figures.LATEST)
    assert latest is not None and latest.figures == measure(full)

    smoke = replace(full, config=replace(full.config, label="smoke"))
    smoke.started_at = datetime(2026, 12, 8, tzinfo=UTC)
    write(smoke, render(smoke, latest), tmp_path)
    assert (tmp_path / "2026-12-08-0000-smoke.json").exists()
    # Only a full run becomes the next run's previous.
    assert figures.read(tmp_path / figures.LATEST) == latest


def test_render_shows_the_previous_run_in_the_targets_table() -> None:
    text = render(meeting_every_target(), PREVIOUS)

    assert "| figure | target | this run | previous run | status |" in text
    assert "13.5 min" in text
