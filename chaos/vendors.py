"""The four vendors ps-sync calls, as the chaos run switches their faults and reads what they injected.

Salesforce, Kantata and Xero are the sandboxes; Tryton is the fault proxy in front of the real server. All
four take a FaultConfig at `PUT /_sandbox/faults` and count what they injected at `GET /_sandbox/stats`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from sandboxes.faults import FaultConfig

ATTEMPTS = 5


class Vendors:
    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self._http = httpx.AsyncClient(timeout=10.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def set_faults(self, vendor: str, config: FaultConfig) -> None:
        await self._call("PUT", vendor, "/_sandbox/faults", json=config.model_dump(mode="json"))

    async def set_all(self, configs: dict[str, FaultConfig]) -> None:
        await asyncio.gather(*(self.set_faults(vendor, config) for vendor, config in configs.items()))

    async def stats(self, vendor: str) -> dict[str, Any]:
        body: dict[str, Any] = await self._call("GET", vendor, "/_sandbox/stats")
        return body

    async def injected(self) -> dict[str, Counter[str]]:
        """What each vendor injected, by fault kind (the sandboxes name the tally `faults` or
        `injected_faults`)."""
        out: dict[str, Counter[str]] = {}
        for vendor in self.urls:
            stats = await self.stats(vendor)
            tally = stats.get("injected_faults") or stats.get("faults") or {}
            out[vendor] = Counter({str(kind): int(count) for kind, count in tally.items()})
        return out

    async def flush_webhooks(self) -> dict[str, Any]:
        """Wait for the Xero sandbox to deliver (or give up on) every queued webhook."""
        body: dict[str, Any] = await self._call(
            "POST", "xero", "/_sandbox/webhooks/flush", params={"timeout_seconds": 20}, timeout=30.0
        )
        return body

    async def _call(self, method: str, vendor: str, path: str, **kwargs: Any) -> Any:
        # The control paths are never faulted, but the process may be busy: a few tries.
        for attempt in range(ATTEMPTS):
            try:
                response = await self._http.request(method, self.urls[vendor] + path, **kwargs)
                response.raise_for_status()
                return response.json()
            except httpx.HTTPError:
                if attempt == ATTEMPTS - 1:
                    raise
                await asyncio.sleep(1.0)
        raise AssertionError("unreachable")
