"""The results as a Markdown document: targets first, then one section per workload."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence

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


def _largest_history(results: Results) -> tuple[str, int]:
    best = ("none", 0)
    for sizes in results.histories:
        if sizes.max_events > best[1]:
            best = (sizes.workflow_type, sizes.max_events)
    return best


def _cpu_pair(phase: Phase) -> str:
    worker, temporal = phase.usage.get("worker"), phase.usage.get("temporal")
    return f"{worker.cpu_seconds if worker else 0:.0f} / {temporal.cpu_seconds if temporal else 0:.0f}"


def _worker_rss(phase: Phase) -> int:
    usage = phase.usage.get("worker")
    return usage.peak_rss if usage else 0


def targets(results: Results) -> list[str]:
    rows: list[list[str]] = []

    def status(met: bool | None) -> str:
        return "n/a" if met is None else "met" if met else "**missed**"

    biggest = max(results.billing, key=lambda b: b.entries) if results.billing else None
    if biggest is not None:
        rows.append(
            [
                f"billing >= 2,000 entries/s end to end at {biggest.entries:,} entries",
                f"{_rate(biggest.pssync_rate)} entries/s",
                status(biggest.pssync_rate >= 2000),
            ]
        )
        ratio = biggest.pssync_rate / biggest.direct_rate
        rows.append(
            [
                f"billing >= 0.5 x the direct script at {biggest.entries:,} entries",
                f"{ratio:.2f} x ({_rate(biggest.direct_rate)} entries/s direct)",
                status(ratio >= 0.5),
            ]
        )
        rss = _worker_rss(biggest.pssync_phase)
        rows.append(
            [
                f"worker RSS <= 300 MB at {biggest.entries:,} entries",
                f"{rss / MB:.0f} MB peak during that billing",
                status(rss <= 300 * MB),
            ]
        )
    smallest = min(results.billing, key=lambda b: b.entries) if results.billing else None
    if biggest is not None and smallest is not None and biggest.entries > smallest.entries:
        factor = biggest.entries / smallest.entries
        time_factor = biggest.pssync_seconds / smallest.pssync_seconds
        rows.append(
            [
                f"growth: {factor:.0f}x the entries costs <= {factor * 1.1:.0f}x the time",
                f"{time_factor:.2f}x the time ({smallest.entries:,} -> {biggest.entries:,})",
                status(time_factor <= factor * 1.1),
            ]
        )
    five = next((b for b in results.bursts if b.rate == 5), None)
    if five is not None and five.pssync:
        p95 = percentile(latencies(five.pssync), 0.95)
        rows.append(["closed-won p95 <= 2 s at 5 deals/s", f"{_s(p95)} s", status(p95 <= 2)])
    ceiling = _ceiling(results)
    sustained = sustained_rate(results.bursts)
    if results.bursts and ceiling:
        estimate = capacity(results.bursts)
        shown = estimate if estimate is not None else sustained
        text = (
            f"{_rate(sustained)} deals/s sustained of the rates tried"
            if sustained is not None
            else "no tried rate was sustained"
        )
        if estimate is not None:
            text += f"; {_rate(estimate)} deals/s completed under overload"
        text += f"; ceiling {_rate(ceiling)} trivial workflows/s"
        rows.append(
            [
                "sustained closed-won rate >= 0.5 x the trivial-workflow ceiling",
                text + (f" ({shown / ceiling:.2f} x)" if shown else ""),
                status(None if shown is None else shown >= 0.5 * ceiling),
            ]
        )
    if results.histories:
        name, events = _largest_history(results)
        rows.append(
            ["no run's history above 10,000 events", f"largest {events:,} ({name})", status(events <= 10_000)]
        )
    return _table(["target", "measured", "status"], rows)


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


def render(results: Results) -> str:
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
        *targets(results),
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
    ]
    return "\n".join(lines)
