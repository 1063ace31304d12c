"""The chaos run's table: faults injected and survived, disruptions, and the checks that must be zero."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from chaos.audit import AuditResult
from chaos.disruptions import OutageRecord
from chaos.options import VENDORS, ChaosOptions
from chaos.schedule import RATE_SCALE
from chaos.workload import Deal
from chaos.world import Kill, Restart

FAULT_KINDS = (
    ("server_error", "5xx answers"),
    ("rate_limited", "429 / rate limited (Retry-After where the vendor sends one)"),
    ("timeout", "timeouts (held past the client's 30 s)"),
    ("dropped", "connections cut before the request ran"),
    ("reply_lost", "requests applied, replies lost"),
    ("duplicate_event", "events delivered twice"),
    ("reordered_batch", "event batches reordered"),
)


@dataclass
class ChaosOutcome:
    options: ChaosOptions
    started_at: datetime
    wall_seconds: float
    deals: list[Deal]
    injected: dict[str, Counter[str]]
    outages: list[OutageRecord]
    kills: list[Kill]
    restarts: list[Restart]
    audit: AuditResult
    reconciliation_findings: list[str]
    reconciliation_rows: int
    failure: str | None = None
    settle_problems: list[str] = field(default_factory=list)
    # Every loopback port the run's stack listened on.
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def stuck(self) -> list[str]:
        return [f"deal {d.number} ({d.entity}): {d.stuck}" for d in self.deals if d.stuck]

    @property
    def paid(self) -> int:
        return sum(1 for d in self.deals if d.paid)

    def outage_refusals(self, vendor: str) -> int:
        return sum(o.refused for o in self.outages if o.vendor == vendor)

    def random_faults(self) -> Counter[str]:
        """Every kind summed over the vendors, the outages' 5xx left out (they have their own row)."""
        total: Counter[str] = Counter()
        for vendor, tally in self.injected.items():
            total.update(tally)
            total["server_error"] -= self.outage_refusals(vendor)
        return total

    @property
    def clean(self) -> bool:
        a = self.audit
        return (
            self.failure is None
            and a.duplicate_count == 0
            and a.unbilled_count == 0
            and a.lost_count == 0
            and not self.reconciliation_findings
            and not a.unpaid
            and not a.mismatches
            and not self.stuck
            and self.paid == len(self.deals)
        )

    def summary(self) -> dict[str, object]:
        """The figures the table shows, for tests and scripts."""
        return {
            "clean": self.clean,
            "seed": self.options.seed,
            "deals": len(self.deals),
            "deals_paid": self.paid,
            "faults": dict(self.random_faults()),
            "faults_by_vendor": {vendor: dict(tally) for vendor, tally in self.injected.items()},
            "worker_kills": len(self.kills),
            "temporal_restarts": len(self.restarts),
            "outages": [o.__dict__ for o in self.outages],
            "invoices": dict(self.audit.invoices),
            "duplicates": self.audit.duplicate_count,
            "unbilled": self.audit.unbilled_count,
            "lost": self.audit.lost_count,
            "unpaid": len(self.audit.unpaid),
            "mismatches": len(self.audit.mismatches),
            "stuck": len(self.stuck),
            "reconciliation_findings": len(self.reconciliation_findings),
            "wall_seconds": round(self.wall_seconds, 1),
            "failure": self.failure,
            "ports": self.ports,
        }


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def render(outcome: ChaosOutcome) -> str:
    o, a = outcome.options, outcome.audit
    survived = "yes" if outcome.clean else "**no**"
    entities = Counter(d.entity for d in outcome.deals)
    lines = [
        f"# Chaos run, {outcome.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"Seed {o.seed}; {len(outcome.deals)} deals ({entities['UK']} UK -> Xero, "
        f"{entities['EU']} EU -> Tryton), "
        f"{o.parallel} at a time; {o.workers} worker processes; each fault kind on {o.fault_rate:.1%} of "
        f"ps-sync's calls to each sandbox and {o.fault_rate * RATE_SCALE['tryton']:.2%} at Tryton's proxy "
        f"(lost replies twice that, on writes; timeouts a quarter), after a scripted opening of each kind; "
        f"events duplicated at "
        f"{o.duplicate_event_rate:.0%} and reordered. Faults and outages hit ps-sync's calls only (by its "
        "User-Agent); the people the run plays use the vendors undisturbed. Survived means every deal still "
        "ended paid with every check below at zero.",
        "",
        "| fault or disruption | injected | survived |",
        "|---|---:|---|",
    ]
    random = outcome.random_faults()
    for kind, label in FAULT_KINDS:
        lines.append(f"| {label} | {random[kind]} | {survived} |")
    kills = "; ".join(f"{k.worker} during {k.activity} of {k.workflow_id}" for k in outcome.kills)
    restarts = ", ".join(f"down {r.down_seconds:.1f} s" for r in outcome.restarts)
    outages = ", ".join(f"{x.vendor} {x.seconds:g} s, {x.refused} calls refused" for x in outcome.outages)
    for label, detail, count in (
        ("worker SIGKILLs during posting", kills, len(outcome.kills)),
        ("Temporal server restarts", restarts, len(outcome.restarts)),
        ("vendor outages", outages, len(outcome.outages)),
    ):
        lines.append(f"| {label}{f' ({detail})' if detail else ''} | {count} | {survived} |")
    lines += [
        "",
        "| faults by vendor | " + " | ".join(VENDORS) + " |",
        "|---|" + "---:|" * len(VENDORS),
    ]
    for kind, _ in FAULT_KINDS:
        cells = [str(outcome.injected.get(vendor, Counter())[kind]) for vendor in VENDORS]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| result | value |",
        "|---|---:|",
        f"| deals closed won -> paid | {outcome.paid} of {len(outcome.deals)} |",
        f"| projects (Kantata) / customers (ERPs) | {a.projects} / {a.customers} |",
        f"| invoices in Xero / Tryton | {a.invoices['xero']} / {a.invoices['tryton']} |",
        f"| approved time entries billed | {a.billed_entries} of {a.approved_entries} |",
        f"| **duplicates** | **{a.duplicate_count}** |",
        f"| **unbilled entries** | **{a.unbilled_count}** |",
        f"| **lost events** | **{a.lost_count}** |",
        f"| **reconciliation findings** ({outcome.reconciliation_rows} projects reconciled) | "
        f"**{len(outcome.reconciliation_findings)}** |",
        f"| unpaid invoices | {len(a.unpaid)} |",
        f"| other mismatches | {len(a.mismatches)} |",
        f"| stuck runs | {len(outcome.stuck)} |",
        f"| wall time | {_minutes(outcome.wall_seconds)} |",
    ]
    problems = [
        *([f"run failed: {outcome.failure}"] if outcome.failure else []),
        *outcome.stuck,
        *a.duplicates,
        *a.unbilled,
        *a.lost,
        *a.unpaid,
        *a.mismatches,
        *(f"reconciliation: {finding}" for finding in outcome.reconciliation_findings),
        *outcome.settle_problems,
    ]
    if problems:
        lines += ["", "What did not survive:", ""] + [f"- {problem}" for problem in problems]
    return "\n".join(lines) + "\n"
