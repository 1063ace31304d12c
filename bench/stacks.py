"""The two worlds a benchmark run starts: ps-sync's stack as `make run` starts it, and a second copy of the
vendors (sandboxes and Tryton, same code and template) for the direct script.

The direct script gets vendors of its own so ps-sync's feed poller and webhooks never see its traffic,
and so both bill identical, freshly seeded months. Every port is free-picked, so a benchmark never
collides with `make run` or with another run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.stack import Stack, StackConfig
from sandboxes.serve import free_port


def _ports() -> dict[str, int]:
    names = ("temporal", "temporal_ui", "ingress", "salesforce", "kantata", "xero", "tryton")
    chosen: dict[str, int] = {}
    while len(chosen) < len(names):
        port = free_port()
        if port not in chosen.values():
            chosen[names[len(chosen)]] = port
    return chosen


def stack_config(data_dir: Path, *, vendors_only: bool) -> StackConfig:
    ports = _ports()
    return StackConfig(
        data_dir=data_dir,
        temporal_port=ports["temporal"],
        temporal_ui_port=ports["temporal_ui"],
        ingress_port=ports["ingress"],
        salesforce_port=ports["salesforce"],
        kantata_port=ports["kantata"],
        xero_port=ports["xero"],
        tryton_port=ports["tryton"],
        with_temporal=not vendors_only,
        with_app=not vendors_only,
        # Rate limits stay off, and the sandbox reports a budget beyond Xero's, so neither world is paced; the
        # governed workload switches Xero's real limits on through its control endpoint.
        xero_rate_limits=False,
        xero_minute_limit=1_000_000,
    )


@dataclass
class Worlds:
    pssync: Stack
    direct: Stack

    def stop(self) -> None:
        self.pssync.stop()
        self.direct.stop()


def start_worlds(data_dir: Path, *, say: object = print) -> Worlds:
    pssync = Stack(stack_config(data_dir / "pssync", vendors_only=False))
    direct = Stack(stack_config(data_dir / "direct", vendors_only=True))
    pssync.start()
    try:
        direct.start()
    except BaseException:
        pssync.stop()
        raise
    return Worlds(pssync=pssync, direct=direct)
