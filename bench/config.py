"""What a benchmark run does: sizes, rates, seed. Kept free of heavy imports, so `pssync` can offer the
`bench` command's options without loading the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from canonical.period import Period


@dataclass(frozen=True)
class BenchConfig:
    sizes: tuple[int, ...] = (10_000, 50_000, 100_000)
    projects: int = 500
    burst_rates: tuple[float, ...] = (1.0, 5.0, 20.0)
    burst_seconds: float = 60.0
    governed_entries: int = 10_000
    governed_projects: int = 100
    ceiling_seconds: float = 15.0
    seed: int = 20250301
    consultants: int = 40
    first_period: str = "2025-03"
    direct_parallel: int = 16
    settle_seconds: int = 3
    # Share of the deals booked by the EU entity in Tryton. Tryton posts an invoice in about 1.8 s of CPU,
    # one at a time (SQLite), for ps-sync and the direct script alike; a larger share measures Tryton more
    # than either of them (bench/results, tryton-fixed: 50 % EU, ratio 0.70).
    eu_share: float = 0.05
    # The direct script's bursts run this long at each rate (its latency settles within seconds).
    direct_burst_seconds: float = 20.0
    # How billing runs start: "feed" (the PSA feed poller reads the approvals, as in production) or
    # "starter" (the benchmark starts each project's run through ps-sync's starter, skipping the feed).
    trigger: str = "feed"
    step_timeout: float = 1800.0
    label: str = "full"
    # Sample the stack's processes through the largest billing and the fastest burst (bench.profiling).
    profile: bool = False

    def periods(self) -> list[str]:
        """One month per size, then one for the governed run, from `first_period` on."""
        first = Period(value=self.first_period).first_day
        months = []
        for offset in range(len(self.sizes) + 1):
            year, month = divmod(first.month - 1 + offset, 12)
            months.append(f"{first.year + year:04d}-{month + 1:02d}")
        return months


SMOKE = BenchConfig(
    sizes=(300,),
    projects=6,
    burst_rates=(2.0,),
    burst_seconds=3.0,
    direct_burst_seconds=3.0,
    governed_entries=60,
    governed_projects=2,
    ceiling_seconds=2.0,
    consultants=8,
    eu_share=0.5,
    step_timeout=120.0,
    label="smoke",
)
