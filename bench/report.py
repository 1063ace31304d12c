"""The results as a Markdown document: targets first, then one section per workload."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bench import profiling
from bench.figures import Figure, Snapshot
from bench.histories import TypeHistories
from bench.procstats import Phase
from bench.pssync_side import Completion
from bench.runner import BENCH_PROCESS, BillingFigures, BurstFigures, Results

MB = 1024 * 1024
# Processes shown as columns of the CPU table; the direct script's vendors are summed into one column.
PSSYNC_PROCESSES = ("worker", "temporal", "ingress", "kantata", "xero", "salesforce", "tryton")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _s(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    return f"{seconds:.2f}" if seconds < 10 else f"{seconds:.1f}" if seconds < 100 else f"{seconds:.0f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --- closed-won ---------------------------------------------------------------------------------------------


def latencies(done: Sequence[Completion]) -> list[float]:
    return [c.latency for c in done]


def in_flight_max(done: Sequence[Completion]) -> int:
    events = sorted([(c.arrival, 1) for c in done] + [(c.done, -1) for c in done])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def completion_rate(done: Sequence[Completion]) -> float:
    if len(done) < 2:
        return math.nan
    span = max(c.done for c in done) - min(c.arrival for c in done)
    return len(done) / span if span > 0 else math.nan


def backlog_grows(done: Sequence[Completion]) -> bool:
    """Latency rising through the burst means work queues faster than it is done: compare the median
    latency of the deals closed in the last third of the burst with those in the first third."""
    if len(done) < 6:
        return False
    ordered = sorted(done, key=lambda c: c.arrival)
    third = len(ordered) // 3
    early = statistics.median(c.latency for c in ordered[:third])
    late = statistics.median(c.latency for c in ordered[-third:])
    return late > 1.5 * early + 0.5


def sustained_rate(bursts: Sequence[BurstFigures]) -> float | None:
    steady = [b.rate for b in bursts if b.pssync and not backlog_grows(b.pssync)]
    return max(steady) if steady else None


def capacity(bursts: Sequence[BurstFigures]) -> float | None:
    """Deals per second ps-sync completed while overloaded (the highest burst that built a backlog)."""
    overloaded = [b for b in bursts if b.pssync and backlog_grows(b.pssync)]
    if not overloaded:
        return None
    return completion_rate(max(overloaded, key=lambda b: b.rate).pssync)


# --- billing ------------------------------------------------------------------------------------------------


def growth(billing: Sequence[BillingFigures]) -> list[str]:
    """Per size, how the time grew against the previous size ("-" for the first)."""
    out = ["-"] if billing else []
    for previous, current in itertools.pairwise(billing):
        out.append(
            f"{current.entries / previous.entries:.1f}x entries, "
            f"{current.pssync_seconds / previous.pssync_seconds:.2f}x time "
            f"(direct {current.direct_seconds / previous.direct_seconds:.2f}x)"
        )
    return out


def _ceiling(results: Results) -> float | None:
    return results.ceilings[0][1].per_second if results.ceilings else None


def _cpu_pair(phase: Phase) -> str:
    worker, temporal = phase.usage.get("worker"), phase.usage.get("temporal")
    return f"{worker.cpu_seconds if worker else 0:.0f} / {temporal.cpu_seconds if temporal else 0:.0f}"


def _worker_rss(phase: Phase) -> int:
    usage = phase.usage.get("worker")
    return usage.peak_rss if usage else 0


# --- targets ------------------------------------------------------------------------------------------------

Figures = Mapping[str, Figure]
KB = 1024
# Closed-won counts as sustained at a rate when its p95 latency stays within this and no backlog grows.
SUSTAINED_P95_SECONDS = 1.0


def sustained_within(bursts: Sequence[BurstFigures], p95_limit: float) -> float | None:
    """The highest rate tried whose p95 latency is within `p95_limit` and whose backlog does not grow."""
    kept = [
        b.rate
        for b in bursts
        if b.pssync and not backlog_grows(b.pssync) and percentile(latencies(b.pssync), 0.95) <= p95_limit
    ]
    return max(kept) if kept else None


def _largest(found: Sequence[tuple[str, int]]) -> tuple[str, int] | None:
    return max(found, key=lambda pair: pair[1]) if found else None


def measure(results: Results) -> dict[str, Figure]:
    """The run's headline figures by name; a figure the run did not measure is absent."""
    found: dict[str, Figure] = {}

    def put(name: str, value: float | None, unit: str, workflow_type: str | None = None) -> None:
        if value is not None and math.isfinite(value):
            found[name] = Figure(float(value), unit, workflow_type)

    biggest = max(results.billing, key=lambda b: b.entries) if results.billing else None
    if biggest is not None:
        put("billing.entries", biggest.entries, "entries")
        put("billing.projects", biggest.projects, "projects")
        put("billing.pssync_rate", biggest.pssync_rate, "entries/s")
        put("billing.direct_rate", biggest.direct_rate, "entries/s")
        put("billing.ratio_to_direct", biggest.pssync_rate / biggest.direct_rate, "x")
        worker, temporal = (biggest.pssync_phase.usage.get(name) for name in ("worker", "temporal"))
        if worker is not None:
            put("billing.worker_peak_rss", worker.peak_rss / MB, "MB")
        if worker is not None and temporal is not None and biggest.invoices:
            put("billing.worker_cpu", worker.cpu_seconds, "CPU-s")
            put("billing.temporal_cpu", temporal.cpu_seconds, "CPU-s")
            put("billing.invoices", biggest.invoices, "invoices")
            put(
                "billing.cpu_per_invoice",
                (worker.cpu_seconds + temporal.cpu_seconds) / biggest.invoices,
                "CPU-s",
            )
    smallest = min(results.billing, key=lambda b: b.entries) if results.billing else None
    if biggest is not None and smallest is not None and biggest.entries > smallest.entries:
        put("growth.entries_factor", biggest.entries / smallest.entries, "x")
        put("growth.time_factor", biggest.pssync_seconds / smallest.pssync_seconds, "x")

    governed = results.governed
    if governed is not None:
        put("governed.entries", governed.entries, "entries")
        put("governed.pssync_seconds", governed.pssync_seconds, "s")
        put("governed.direct_seconds", governed.direct_seconds, "s")
        put("governed.wall_ratio_to_direct", governed.direct_seconds / governed.pssync_seconds, "x")
        calls = sum(governed.xero_calls.values())
        put("governed.xero_calls", calls, "calls")
        for operation, count in governed.xero_calls.items():
            put(f"governed.xero_calls.{operation}", count, "calls")
        put("governed.invoices_posted", governed.uk_invoices, "invoices")
        if governed.uk_invoices:
            put("governed.xero_calls_per_invoice", calls / governed.uk_invoices, "calls/invoice")

    if results.bursts:
        put(
            "closed_won.sustained_rate",
            sustained_within(results.bursts, SUSTAINED_P95_SECONDS) or 0.0,
            "deals/s",
        )
        estimate = capacity(results.bursts)
        put("closed_won.overload_rate", estimate, "deals/s")
        five = next((b for b in results.bursts if b.rate == 5), None)
        if five is not None and five.pssync:
            put("closed_won.p95_at_5", percentile(latencies(five.pssync), 0.95), "s")
        ceiling = _ceiling(results)
        shown = estimate if estimate is not None else sustained_rate(results.bursts)
        if ceiling and shown is not None:
            put("ceiling.clean_server", ceiling, "workflows/s")
            put("closed_won.ratio_to_ceiling", shown / ceiling, "x")

    result = _largest(
        [(h.workflow_type, h.largest_result.bytes) for h in results.histories if h.largest_result is not None]
    )
    if result is not None:
        put("history.largest_activity_result", result[1], "bytes", result[0])
    run_bytes = _largest([(h.workflow_type, h.largest.bytes) for h in results.histories if h.largest])
    if run_bytes is not None:
        put("history.largest_run_bytes", run_bytes[1], "bytes", run_bytes[0])
    run_events = _largest([(h.workflow_type, h.max_events) for h in results.histories if h.runs])
    if run_events is not None:
        put("history.largest_run_events", run_events[1], "events", run_events[0])
    put("make_test.wall_seconds", results.make_test_seconds, "s")
    return found


def _value(figures: Figures, name: str) -> float | None:
    figure = figures.get(name)
    return figure.value if figure is not None else None


def _bytes(value: float) -> str:
    return f"{value / KB:,.0f} KB" if value < MB else f"{value / MB:.1f} MB"


def _history_size(figures: Figures, name: str) -> str:
    figure = figures.get(name)
    return "n/a" if figure is None else f"{_bytes(figure.value)} ({figure.workflow_type})"


def _billing_label(figures: Figures, what: str) -> str:
    entries, projects = _value(figures, "billing.entries"), _value(figures, "billing.projects")
    if entries is None or projects is None:
        return f"billing at the largest size, {what}"
    return f"billing, {entries:,.0f} entries over {projects:,.0f} projects, {what}"


def _billing_ratio(f: Figures) -> str | None:
    ratio, ps, direct = (
        _value(f, n) for n in ("billing.ratio_to_direct", "billing.pssync_rate", "billing.direct_rate")
    )
    if ratio is None or ps is None or direct is None:
        return None
    return f"{ratio:.2f} x ({_rate(ps)} vs {_rate(direct)} entries/s)"


def _governed_ratio(f: Figures) -> str | None:
    ratio, ps, direct = (
        _value(f, n)
        for n in ("governed.wall_ratio_to_direct", "governed.pssync_seconds", "governed.direct_seconds")
    )
    if ratio is None or ps is None or direct is None:
        return None
    return f"{ratio:.2f} x ({_s(ps)} s vs {_s(direct)} s)"


def _calls_per_invoice(f: Figures) -> str | None:
    per, calls, invoices = (
        _value(f, n)
        for n in ("governed.xero_calls_per_invoice", "governed.xero_calls", "governed.invoices_posted")
    )
    if per is None or calls is None or invoices is None:
        return None
    prefix = "governed.xero_calls."
    operations = [
        (name.removeprefix(prefix), fig.value) for name, fig in f.items() if name.startswith(prefix)
    ]
    most = max(operations, key=lambda pair: pair[1], default=None)
    return f"{per:.1f} ({calls:,.0f} calls for {invoices:,.0f} invoices" + (
        f"; {most[0]} {most[1]:,.0f})" if most else ")"
    )


def _worker_rss_cell(f: Figures) -> str | None:
    rss = _value(f, "billing.worker_peak_rss")
    return None if rss is None else f"{rss:.0f} MB"


def _sustained(f: Figures) -> str | None:
    rate, overload = _value(f, "closed_won.sustained_rate"), _value(f, "closed_won.overload_rate")
    if rate is None:
        return None
    text = f"{rate:g} deals/s" if rate > 0 else "none of the rates tried"
    return text + (f" ({overload:.1f}/s completed under overload)" if overload is not None else "")


def _cpu_per_invoice(f: Figures) -> str | None:
    per, worker, temporal, invoices = (
        _value(f, n)
        for n in ("billing.cpu_per_invoice", "billing.worker_cpu", "billing.temporal_cpu", "billing.invoices")
    )
    if per is None or worker is None or temporal is None or invoices is None:
        return None
    return f"{per:.2f} CPU-s ({worker:.0f} + {temporal:.0f} s for {invoices:,.0f})"


def _histories(f: Figures) -> str | None:
    if "history.largest_activity_result" not in f and "history.largest_run_bytes" not in f:
        return None
    result, run = (
        _history_size(f, "history.largest_activity_result"),
        _history_size(f, "history.largest_run_bytes"),
    )
    return f"{result} / {run}"


def _histories_met(f: Figures) -> bool | None:
    result, run = _value(f, "history.largest_activity_result"), _value(f, "history.largest_run_bytes")
    if result is None or run is None:
        return None
    return result <= 64 * KB and run <= MB


def _make_test(f: Figures) -> str | None:
    seconds = _value(f, "make_test.wall_seconds")
    return None if seconds is None else f"{seconds / 60:.1f} min"


def _growth(f: Figures) -> str | None:
    entries, time_factor = _value(f, "growth.entries_factor"), _value(f, "growth.time_factor")
    if entries is None or time_factor is None:
        return None
    return f"{time_factor:.2f}x the time for {entries:.0f}x the entries"


def _growth_met(f: Figures) -> bool | None:
    entries, time_factor = _value(f, "growth.entries_factor"), _value(f, "growth.time_factor")
    return None if entries is None or time_factor is None else time_factor <= 1.1 * entries


def _ceiling_ratio(f: Figures) -> str | None:
    ratio, ceiling = _value(f, "closed_won.ratio_to_ceiling"), _value(f, "ceiling.clean_server")
    if ratio is None or ceiling is None:
        return None
    return f"{ratio:.2f} x ({_rate(ratio * ceiling)} deals/s vs {_rate(ceiling)} trivial workflows/s)"


def _largest_events(f: Figures) -> str | None:
    figure = f.get("history.largest_run_events")
    return None if figure is None else f"{figure.value:,.0f} ({figure.workflow_type})"


def _at_most(name: str, bound: float) -> Callable[[Figures], bool | None]:
    def met(f: Figures) -> bool | None:
        value = _value(f, name)
        return None if value is None else value <= bound

    return met


def _at_least(name: str, bound: float) -> Callable[[Figures], bool | None]:
    def met(f: Figures) -> bool | None:
        value = _value(f, name)
        return None if value is None else value >= bound

    return met


def _simple(name: str, show: Callable[[float], str]) -> Callable[[Figures], str | None]:
    def cell(f: Figures) -> str | None:
        value = _value(f, name)
        return None if value is None else show(value)

    return cell


@dataclass(frozen=True)
class Target:
    label: Callable[[Figures], str]
    target: str
    cell: Callable[[Figures], str | None]
    met: Callable[[Figures], bool | None]
    # The figure giving the workload's size: a previous run of another size says so in its cell.
    size: str | None = None


TARGETS = (
    Target(
        lambda f: _billing_label(f, "ratio to the direct script"),
        ">= 0.5 x",
        _billing_ratio,
        _at_least("billing.ratio_to_direct", 0.5),
        size="billing.entries",
    ),
    Target(
        lambda f: _billing_label(f, "end to end"),
        ">= 2,000 entries/s",
        _simple("billing.pssync_rate", lambda v: f"{_rate(v)} entries/s"),
        _at_least("billing.pssync_rate", 2000),
        size="billing.entries",
    ),
    Target(
        lambda f: "governed run (Xero limits on), wall time ratio to the direct script",
        ">= 0.8 x",
        _governed_ratio,
        _at_least("governed.wall_ratio_to_direct", 0.8),
        size="governed.entries",
    ),
    Target(
        lambda f: "Xero calls per posted invoice, governed",
        "<= 2.2 (floor 2: look-up + create)",
        _calls_per_invoice,
        _at_most("governed.xero_calls_per_invoice", 2.2),
        size="governed.entries",
    ),
    Target(
        lambda f: (
            "worker peak RSS"
            + (f" at {v:,.0f} entries" if (v := _value(f, "billing.entries")) is not None else "")
        ),
        "<= 300 MB",
        _worker_rss_cell,
        _at_most("billing.worker_peak_rss", 300),
        size="billing.entries",
    ),
    Target(
        lambda f: f"closed-won sustained (p95 <= {SUSTAINED_P95_SECONDS:g} s, no growing backlog)",
        ">= 20 deals/s",
        _sustained,
        _at_least("closed_won.sustained_rate", 20),
    ),
    Target(
        lambda f: "CPU per invoice, worker + Temporal",
        "<= 0.1 CPU-s",
        _cpu_per_invoice,
        _at_most("billing.cpu_per_invoice", 0.1),
        size="billing.entries",
    ),
    Target(
        lambda f: "largest activity result / largest run history",
        "<= 64 KB / <= 1 MB",
        _histories,
        _histories_met,
    ),
    Target(
        lambda f: "make test wall time from a fresh clone, 2 cores",
        "<= 8 min",
        _make_test,
        _at_most("make_test.wall_seconds", 8 * 60),
    ),
    Target(
        lambda f: "growth: time against entries, smallest to largest billing",
        "<= 1.1 x the entries factor",
        _growth,
        _growth_met,
    ),
    Target(
        lambda f: "closed-won p95 at 5 deals/s",
        "<= 2 s",
        _simple("closed_won.p95_at_5", lambda v: f"{_s(v)} s"),
        _at_most("closed_won.p95_at_5", 2),
    ),
    Target(
        lambda f: (
            "closed-won rate (sustained, else done under overload) against the trivial-workflow ceiling"
        ),
        ">= 0.5 x",
        _ceiling_ratio,
        _at_least("closed_won.ratio_to_ceiling", 0.5),
    ),
    Target(
        lambda f: "largest run history in events",
        "<= 10,000 events",
        _largest_events,
        _at_most("history.largest_run_events", 10_000),
    ),
)


def _status(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "**missed**"


def targets(results: Results, previous: Snapshot | None = None) -> list[str]:
    """One row per target: this run's figure next to the previous run's, and whether this run met it."""
    current = measure(results)
    before: Figures = previous.figures if previous is not None else {}
    rows = []
    for target in TARGETS:
        earlier = target.cell(before)
        if earlier is not None and target.size is not None:
            size, earlier_size = _value(current, target.size), _value(before, target.size)
            if size is not None and earlier_size is not None and size != earlier_size:
                earlier += f" at {earlier_size:,.0f} entries"
        rows.append(
            [
                target.label(current if target.size is None or target.size in current else before),
                target.target,
                target.cell(current) or "n/a",
                earlier or "n/a",
                _status(target.met(current)),
            ]
        )
    lines = _table(["figure", "target", "this run", "previous run", "status"], rows)
    if previous is not None:
        source = f", transcribed from {previous.transcribed_from}" if previous.transcribed_from else ""
        lines += ["", f"Previous run: `{previous.run}`{source}."]
    return lines


def billing_section(results: Results) -> list[str]:
    rows = []
    for figures, grown in zip(results.billing, growth(results.billing), strict=True):
        rows.append(
            [
                f"{figures.entries:,}",
                f"{figures.billable:,}",
                str(figures.projects),
                f"{figures.invoices} ({figures.uk_invoices} / {figures.invoices - figures.uk_invoices})",
                _s(figures.pssync_seconds),
                _rate(figures.pssync_rate),
                _s(figures.direct_seconds),
                _rate(figures.direct_rate),
                f"{figures.pssync_rate / figures.direct_rate:.2f}",
                str(figures.finance_approvals),
                _cpu_pair(figures.pssync_phase),
                f"{_worker_rss(figures.pssync_phase) / MB:.0f}",
                grown,
                figures.started_by,
            ]
        )
    return _table(
        [
            "approved entries",
            "billable",
            "projects",
            "invoices (Xero / Tryton)",
            "ps-sync s",
            "ps-sync entries/s",
            "direct s",
            "direct entries/s",
            "ratio",
            "finance approvals",
            "worker / Temporal CPU s",
            "worker peak RSS MB",
            "growth vs previous size",
            "runs started by",
        ],
        rows,
    )


def bursts_section(results: Results) -> list[str]:
    rows = []
    for burst in results.bursts:
        ps, direct = latencies(burst.pssync), latencies(burst.direct)
        rows.append(
            [
                f"{burst.rate:g}/s",
                f"{len(burst.pssync)} ({burst.seconds:g} s)",
                " / ".join(_s(percentile(ps, q)) for q in (0.5, 0.95, 0.99)),
                _rate(completion_rate(burst.pssync)),
                str(in_flight_max(burst.pssync)),
                "grows" if backlog_grows(burst.pssync) else "steady",
                f"{len(burst.direct)}",
                " / ".join(_s(percentile(direct, q)) for q in (0.5, 0.95, 0.99)),
                f"{percentile(ps, 0.95) / percentile(direct, 0.95):.1f}" if direct and ps else "n/a",
            ]
        )
    lines = _table(
        [
            "offered",
            "deals (window)",
            "ps-sync p50 / p95 / p99 s",
            "ps-sync done/s",
            "max in flight",
            "backlog",
            "direct deals",
            "direct p50 / p95 / p99 s",
            "p95 ratio",
        ],
        rows,
    )
    sustained, estimate, ceiling = sustained_rate(results.bursts), capacity(results.bursts), _ceiling(results)
    lines.append("")
    lines.append(
        "Highest rate sustained without a growing backlog: "
        + (f"**{sustained:g} deals/s**" if sustained is not None else "**none of the rates tried**")
        + (f"; completed under overload: **{estimate:.1f} deals/s**" if estimate is not None else "")
        + (f"; trivial-workflow ceiling {ceiling:.1f}/s." if ceiling else ".")
    )
    return lines


def _direct_cpu(phase: Phase) -> float:
    return sum(u.cpu_seconds for name, u in phase.usage.items() if name.startswith("direct "))


def resources_section(results: Results) -> list[str]:
    header = ["workload", "wall s", *PSSYNC_PROCESSES, "bench process", "direct vendors"]
    rows = []
    for phase in results.phases:
        usage = phase.usage
        rows.append(
            [
                phase.name,
                _s(phase.seconds),
                *(_s(usage[name].cpu_seconds) if name in usage else "-" for name in PSSYNC_PROCESSES),
                _s(usage[BENCH_PROCESS].cpu_seconds) if BENCH_PROCESS in usage else "-",
                _s(_direct_cpu(phase)),
            ]
        )
    lines = ["CPU seconds per process and workload (2 cores: 2 CPU s per wall second at most):", ""]
    lines += _table(header, rows)
    lines += ["", "Peak resident memory over the whole run:", ""]
    lines += _table(
        ["process", "peak RSS MB"],
        [[name, f"{rss / MB:.0f}"] for name, rss in sorted(results.peak_rss.items(), key=lambda kv: -kv[1])],
    )
    lines += ["", "Workflow histories (closed runs from visibility, open runs described):", ""]
    lines += _table(
        [
            "workflow",
            "runs",
            "events median / max",
            "KB median / max",
            "largest activity result KB",
            "largest events of the biggest run (KB)",
            "events by type in the biggest run",
        ],
        [_history_row(sizes) for sizes in results.histories],
    )
    return lines


def _history_row(sizes: TypeHistories) -> list[str]:
    largest = sizes.largest
    return [
        sizes.workflow_type,
        str(len(sizes.runs)),
        f"{sizes.median_events:,.0f} / {sizes.max_events:,}",
        f"{sizes.median_bytes / 1024:,.1f} / {(largest.bytes if largest else 0) / 1024:,.1f}",
        f"{sizes.largest_result.bytes / 1024:,.1f}" if sizes.largest_result else "-",
        ", ".join(f"{name} {size / 1024:.1f}" for name, size in sizes.largest_events),
        ", ".join(f"{name} {count}" for name, count in sizes.events_by_type.items()),
    ]


def governed_section(results: Results) -> list[str]:
    governed = results.governed
    if governed is None:
        return ["Not run (--governed-entries 0)."]
    uk = governed.uk_invoices
    floor_calls = 2 * uk
    rows = [
        ["approved entries / projects", f"{governed.entries:,} / {governed.projects}", "same"],
        ["invoices posted to Xero", str(uk), str(uk)],
        ["wall time s", _s(governed.pssync_seconds), _s(governed.direct_seconds)],
        ["entries/s", _rate(governed.pssync_rate), _rate(governed.direct_rate)],
        [
            "429 answers from Xero",
            f"{governed.rate_limited}"
            + (
                " (" + ", ".join(f"{k} {v}" for k, v in governed.rate_limited_by_problem.items()) + ")"
                if governed.rate_limited_by_problem
                else ""
            ),
            str(governed.direct_rate_limited),
        ],
        [
            "Xero calls by operation",
            ", ".join(f"{k} {v}" for k, v in governed.xero_calls.items()) or "-",
            ", ".join(f"{k} {v}" for k, v in governed.direct_xero_calls.items()) or "-",
        ],
    ]
    lines = _table(["", "ps-sync", "direct script (waits Retry-After on a 429)"], rows)
    lines += [
        "",
        f"Floor: posting {uk} invoices takes at least {floor_calls} Xero calls (look up by reference, then "
        f"create); at 60 calls a minute that is {max(0.0, (floor_calls - 60) / 60 * 60):.0f} s beyond the "
        "first minute's allowance.",
    ]
    return lines


def render(results: Results, previous: Snapshot | None = None) -> str:
    config = results.config
    started = results.started_at.strftime("%Y-%m-%d %H:%M UTC")
    total = (results.finished_at - results.started_at).total_seconds() if results.finished_at else math.nan
    machine = results.machine
    trigger = (
        "the PSA feed poller"
        if config.trigger == "feed"
        else "the benchmark through ps-sync's billing starter (the feed poller skipped)"
    )
    lines = [
        f"# ps-sync benchmark, {started}",
        "",
        *([f"**The run failed and is incomplete**: {results.failure}", ""] if results.failure else []),
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu']}), {machine['memory']}, "
        f"Python {machine['python']}, {machine['os']}.",
        "- Stack as `make run` starts it: Temporal dev server (SQLite file, WAL), Salesforce, Kantata and "
        "Xero sandboxes (persisted to SQLite, rate limits off unless stated), Tryton 8.2 on SQLite, one "
        "ps-sync worker, the ingress. The direct script runs against a second, identical set of vendors.",
        f"- Run `{config.label}`: seed {config.seed} (firm digest `{results.firm_digest[:16]}`), "
        f"{results.deals} deals, {config.projects} billed projects, EU share {config.eu_share:.0%}, billing "
        f"started by {trigger}, "
        f"total {_s(total)} s.",
        "",
        "## Targets",
        "",
        *targets(results, previous),
        "",
        "## 1. Billing at scale",
        "",
        "From the moment the last timesheet is approved in Kantata to the close of the last TimeToBilling "
        "run (every invoice posted and every entry marked billed; Kantata then holds no approved, billable, "
        "uninvoiced item for the month, which the benchmark checks). Finance approves each invoice that "
        "asks (every first invoice of a project and any above 5,000) through the ingress within about half "
        "a second. The direct script bills the same month on its own vendors with "
        f"{config.direct_parallel} projects in flight. Ratio = ps-sync throughput / direct throughput.",
        "",
        *billing_section(results),
        "",
        *([""] + [f"- {note}" for note in results.notes] if results.notes else []),
        "",
        "## 2. Closed-won bursts",
        "",
        "Deals closed won in Salesforce on a fixed schedule (open loop); latency = close-won API call to the "
        "close of OpportunityToProject (Salesforce outbound message, ingress, ERP customer, PSA project, "
        "write-back). The direct script handles each deal as soon as Salesforce answers the close call "
        f"(its bursts run {config.direct_burst_seconds:g} s). A backlog grows when the latency of the last "
        "third of a burst exceeds 1.5 x that of the first third plus 0.5 s.",
        "",
        *bursts_section(results),
        "",
        "## 3. Resources",
        "",
        *resources_section(results),
        "",
        "## 4. Governed run: Xero's limits on",
        "",
        "Xero sandbox limits switched on (5 calls in progress, 60 a minute, 5,000 a day per tenant) for one "
        "more month, billed the same way.",
        "",
        *governed_section(results),
        "",
        "## 5. Ceiling of the stack",
        "",
        *_table(
            ["when", "trivial workflows completed", "seconds", "per second"],
            [[when, str(c.completed), _s(c.seconds), f"{c.per_second:.1f}"] for when, c in results.ceilings],
        ),
        "",
        "Set-up (not timed as workloads): "
        + "; ".join(f"{name} {_s(seconds)} s" for name, seconds in results.setup_seconds.items())
        + ".",
        "",
        "## 6. Where the time goes",
        "",
        *profiling.section(results.profiles),
    ]
    return "\n".join(lines)
