"""The sandbox's control endpoints (/_sandbox/...), for tests, the demo and the benchmark. Not Xero."""

from __future__ import annotations

from typing import Any

import httpx

from sandboxes.faults import FaultConfig
from sandboxes.xero.config import RateLimitConfig, WebhookConfig
from sandboxes.xero.lock_dates import LockDateSettings


class XeroSandboxControl:
    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=30.0)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = await self._http.request(method, f"/_sandbox{path}", json=body, params=params)
        response.raise_for_status()
        return response.json()

    async def set_faults(self, faults: FaultConfig) -> None:
        await self._call("PUT", "/faults", faults.model_dump(mode="json"))

    async def set_rate_limits(self, limits: RateLimitConfig) -> None:
        await self._call("PUT", "/rate-limits", limits.model_dump(mode="json"))

    async def set_webhooks(self, webhooks: WebhookConfig) -> None:
        await self._call("PUT", "/webhooks", webhooks.model_dump(mode="json"))

    async def set_lock_dates(self, settings: LockDateSettings) -> None:
        await self._call("PUT", "/lock-dates", settings.model_dump(mode="json"))

    async def intent_to_receive(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/webhooks/intent-to-receive")
        return result

    async def flush_webhooks(self, timeout_seconds: float = 10.0) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", "/webhooks/flush", params={"timeout_seconds": timeout_seconds}
        )
        return result

    async def webhook_deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/webhooks/deliveries")
        return result

    async def expire_tokens(self) -> None:
        await self._call("POST", "/expire-tokens")

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/stats")
        return result

    async def health(self) -> bool:
        return bool((await self._call("GET", "/health")).get("status") == "ok")
