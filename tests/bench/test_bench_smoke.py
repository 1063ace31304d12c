"""The benchmark at smoke size, so it never rots: the whole stack, both worlds, every workload.

Its timings are printed, never asserted (they depend on the machine); what is asserted is that each
workload did its work: every deal became a project, every entry was billed, every history was read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import run
from bench.config import SMOKE
from bench.firm import Firm
from bench.report import latencies, measure, percentile, render
from bench.runner import WORKFLOW_TYPES


def test_the_same_seed_generates_the_same_firm_and_another_seed_a_different_one() -> None:
    def fingerprint(seed: int) -> str:
        firm = Firm(seed, first_period="2025-03", consultants=12)
        deals = firm.deals(30)
        work = [firm.work(deals, period=p, entries=500, projects=10) for p in ("2025-03", "2025-04")]
        return firm.digest(deals, work)

    assert fingerprint(7) == fingerprint(7)
    assert fingerprint(7) != fingerprint(8)


def test_work_is_spread_over_time_and_materials_projects_with_billable_and_non_billable_time() -> None:
    firm = Firm(11, first_period="2025-03", consultants=12)
    deals = firm.deals(40)
    plan = firm.work(deals, period="2025-03", entries=1_001, projects=12)

    assert plan.entries == 1_001
    by_index = {deal.index: deal for deal in deals}
    assert len(plan.deals) == 12
    assert not any(by_index[index].fixed_fee for index in plan.deals)
    per_project = [sum(1 for item in (*plan.time, *plan.expenses) if item.deal == d) for d in plan.deals]
    assert max(per_project) - min(per_project) <= 1
    assert any(not item.billable for item in plan.time)
    assert plan.expenses
    assert all(item.day.strftime("%Y-%m") == "2025-03" and item.day.weekday() < 5 for item in plan.time)
    # Everyone logs time only on the projects they are staffed on.
    assert all(item.consultant in by_index[item.deal].team for item in plan.time)


def test_rate_cards_rise_in_the_middle_of_the_first_billed_month() -> None:
    cards = Firm(3, first_period="2025-03").rate_cards()["GBP"]
    (base, base_rates), (rise, risen) = sorted(cards.items())
    assert rise.isoformat() == "2025-03-16" and base < rise
    assert all(risen[role].amount > base_rates[role].amount for role in base_rates)


def test_smoke_run_bills_every_entry_and_turns_every_deal_into_a_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tryton_home: Path
) -> None:
    results = run(SMOKE, data_dir=tmp_path / "bench", say=lambda _: None)
    text = render(results)
    assert results.failure is None, results.failure

    # The run itself checks Kantata before and after each billing: nothing approved stays unbilled.
    (billing,) = results.billing
    assert billing.entries == SMOKE.sizes[0]
    assert billing.invoices == SMOKE.projects
    assert billing.finance_approvals == SMOKE.projects  # every first invoice of a project waits for finance
    (burst,) = results.bursts
    expected = round(SMOKE.burst_rates[0] * SMOKE.burst_seconds)
    assert len(burst.pssync) == len(burst.direct) == expected
    assert results.governed is not None and results.governed.entries == SMOKE.governed_entries
    assert {sizes.workflow_type for sizes in results.histories if sizes.runs} == set(WORKFLOW_TYPES)
    assert "history.largest_activity_result" in measure(results)
    assert all(ceiling.completed > 0 for _, ceiling in results.ceilings)
    assert "## 1. Billing at scale" in text and "## Targets" in text

    with capsys.disabled():
        print(
            f"\nbench smoke: billing {billing.entries} entries ps-sync {billing.pssync_seconds:.1f}s "
            f"({billing.pssync_rate:.0f}/s), direct {billing.direct_seconds:.1f}s "
            f"({billing.direct_rate:.0f}/s); closed-won p95 "
            f"{percentile(latencies(burst.pssync), 0.95):.2f}s (direct "
            f"{percentile(latencies(burst.direct), 0.95):.2f}s); ceiling "
            f"{results.ceilings[0][1].per_second:.0f} trivial workflows/s"
        )
