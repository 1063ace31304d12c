"""The sandbox's own endpoints (/_sandbox/...): faults, rate limits, webhooks, reset, stats. Not Xero."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sandboxes.faults import FaultConfig
from sandboxes.xero.config import RateLimitConfig, WebhookConfig
from sandboxes.xero.lock_dates import LockDateSettings
from sandboxes.xero.sandbox import XeroSandbox


def add_control_routes(app: FastAPI, sandbox: XeroSandbox) -> None:
    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/_sandbox/faults")
    async def set_faults(faults: FaultConfig) -> dict[str, Any]:
        sandbox.plan.configure(faults)
        return faults.model_dump()

    @app.put("/_sandbox/rate-limits")
    async def set_rate_limits(limits: RateLimitConfig) -> dict[str, Any]:
        sandbox.limiter.configure(limits)
        return limits.model_dump()

    @app.put("/_sandbox/webhooks")
    async def set_webhooks(webhooks: WebhookConfig) -> dict[str, Any]:
        sandbox.webhooks.configure(webhooks)
        return webhooks.model_dump()

    @app.post("/_sandbox/webhooks/intent-to-receive")
    async def intent_to_receive() -> dict[str, Any]:
        return await sandbox.webhooks.intent_to_receive()

    @app.get("/_sandbox/webhooks/deliveries")
    async def deliveries() -> list[dict[str, Any]]:
        return list(sandbox.webhooks.log)

    @app.post("/_sandbox/webhooks/flush")
    async def flush(timeout_seconds: float = 10.0) -> dict[str, Any]:
        """Wait until every queued event has been delivered or given up (tests and the demo)."""
        await sandbox.webhooks.wait_idle(timeout_seconds)
        return sandbox.webhooks.snapshot()

    @app.put("/_sandbox/lock-dates")
    async def set_lock_dates(settings: LockDateSettings) -> dict[str, Any]:
        """Finance setting (or clearing) the organisation's lock dates in Xero's settings."""
        sandbox.books[sandbox.config.tenant_id].lock_dates.set(
            period=settings.period_lock_date, end_of_year=settings.end_of_year_lock_date
        )
        return settings.model_dump(mode="json")

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        sandbox.reset()
        return {"status": "reset"}

    @app.post("/_sandbox/expire-tokens")
    async def expire_tokens() -> dict[str, str]:
        sandbox.tokens.expire_all()
        return {"status": "expired"}

    @app.get("/_sandbox/stats")
    async def stats() -> dict[str, Any]:
        return sandbox.stats()
