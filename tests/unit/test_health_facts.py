"""The health facts' arithmetic: nearest-rank percentiles and unbilled totals per currency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingress.health_facts import RunAmount, RunGroup, percentile


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.95, 7.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
        ([float(n) for n in range(1, 21)], 0.95, 19.0),
        ([float(n) for n in range(1, 21)], 1.0, 20.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], fraction: float, expected: float | None) -> None:
    assert percentile(values, fraction) == expected


def run(workflow_id: str, total: str | None, currency: str | None) -> RunAmount:
    return RunAmount(
        workflow_id=workflow_id,
        stage="collecting",
        project_id="p",
        period="2026-11",
        legal_entity="UK",
        total=Decimal(total) if total is not None else None,
        currency=currency,
        entries_rated=None,
        running_since=None,
        temporal_url=None,
    )


def test_unbilled_totals_add_up_per_currency_and_count_the_runs_not_yet_rated() -> None:
    group = RunGroup.of(
        [run("a", "1200.10", "GBP"), run("b", "0.90", "GBP"), run("c", "500", "EUR"), run("d", None, None)]
    )
    assert [(t.currency, t.amount, t.runs) for t in group.totals] == [
        ("EUR", Decimal("500"), 1),
        ("GBP", Decimal("1201.00"), 2),
    ]
    assert group.runs_without_total == 1
