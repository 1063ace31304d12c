"""The seeded plan of a chaos run: which faults each vendor injects, and when the big disruptions come.

Everything here is drawn from the run's seed, so the same seed shakes the world the same way (the order
of calls still depends on timing, which is why the faults are drawn per call, in order, by each vendor).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos.options import VENDORS, ChaosOptions
from sandboxes.faults import CallFault, FaultConfig

# The product's HTTP clients say who they are; the people the run plays use plain httpx and are left alone.
PSSYNC_USER_AGENT = "ps-sync/"
# Each vendor's first eligible calls get these, so every kind happens even in a short run. They land on the
# pollers' first calls (harmless there) and, for `reply_lost`, on the first write: creating a customer, a
# project, an invoice, or writing ids back to Salesforce, which is where a lost reply matters.
SCRIPTED: dict[str, tuple[CallFault, ...]] = {
    "kantata": ("timeout", "server_error", "rate_limited", "dropped", "reply_lost"),
    "xero": ("rate_limited", "reply_lost"),
    "salesforce": ("server_error", "reply_lost"),
    "tryton": ("rate_limited", "reply_lost"),
}
# Tryton posts an invoice in some thirty JSON-RPC calls, each a chance for a fault: at the sandboxes' rate
# nearly every attempt would fail, so the proxy in front of it injects a third as often.
RATE_SCALE = {"tryton": 0.3}
# The ERPs answer slowly enough for a posting to be caught in flight (and killed); the others a little.
LATENCY_MS = {"salesforce": (10, 60), "kantata": (5, 40), "xero": (250, 600), "tryton": (60, 200)}


@dataclass(frozen=True)
class Outage:
    vendor: str
    at: float
    seconds: float


@dataclass(frozen=True)
class Schedule:
    faults: dict[str, FaultConfig]
    # Seconds after the workload starts.
    temporal_restarts: tuple[float, ...]
    outages: tuple[Outage, ...]
    # Which entity each deal bills in, and how many days of time it logs (3 or more needs approval).
    deal_entities: tuple[str, ...]
    deal_days: tuple[int, ...]

    def outage_config(self, vendor: str) -> FaultConfig:
        """Nothing but 5xx for ps-sync's calls. Same seed and script as the random faults, so switching back
        carries on drawing where they stood, on the same tally."""
        return self.faults[vendor].model_copy(update={"outage": True})


# Faults off, the tally kept.
QUIET = FaultConfig(carry_on=True)


def plan(options: ChaosOptions) -> Schedule:
    rng = random.Random(options.seed)
    faults = {}
    for vendor in VENDORS:
        latency, jitter = LATENCY_MS[vendor]
        rate = options.fault_rate * RATE_SCALE.get(vendor, 1.0)
        faults[vendor] = FaultConfig(
            seed=rng.randrange(1 << 30),
            latency_ms=latency,
            latency_jitter_ms=jitter,
            server_error_rate=rate,
            rate_limit_rate=rate,
            timeout_rate=rate / 4,
            drop_rate=rate,
            reply_lost_rate=rate * 2,
            duplicate_event_rate=options.duplicate_event_rate,
            reorder_events=True,
            user_agents=(PSSYNC_USER_AGENT,),
            scripted=SCRIPTED[vendor],
            retry_after_seconds=options.retry_after_seconds,
            carry_on=True,
        )
    window = (options.disrupt_after, options.disrupt_after + options.disrupt_window)
    restarts = tuple(sorted(round(rng.uniform(*window), 1) for _ in range(options.temporal_restarts)))
    outages = []
    for _ in range(options.outages):
        vendor = rng.choice(options.outage_vendors)
        outages.append(
            Outage(vendor=vendor, at=round(rng.uniform(*window), 1), seconds=options.outage_seconds)
        )
    # UK and EU alternately from a seeded start, so any two consecutive deals cover both ERPs.
    first = rng.randrange(2)
    entities = tuple(("UK", "EU")[(first + number) % 2] for number in range(options.deals))
    days = tuple(rng.randint(2, 5) for _ in range(options.deals))
    return Schedule(
        faults=faults,
        temporal_restarts=restarts,
        outages=tuple(sorted(outages, key=lambda o: o.at)),
        deal_entities=entities,
        deal_days=days,
    )
