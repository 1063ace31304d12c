"""The live state behind the Xero sandbox: store, tokens, faults, limits, webhooks and each tenant's books."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sandboxes.faults import FaultPlan
from sandboxes.oauth import TokenIssuer
from sandboxes.store import SandboxStore
from sandboxes.xero.books import XeroBooks
from sandboxes.xero.config import XeroSandboxConfig
from sandboxes.xero.idempotency import IdempotencyKeys
from sandboxes.xero.ratelimit import RateLimiter
from sandboxes.xero.webhook_sender import WebhookSender


class XeroSandbox:
    """The live state behind the app, reachable as `app.state.sandbox` for tests and the demo."""

    def __init__(self, config: XeroSandboxConfig) -> None:
        self.config = config
        self.store = SandboxStore(config.state_path)
        self.tokens = TokenIssuer({config.client_id: config.client_secret}, config.token_lifetime_seconds)
        self.plan = FaultPlan(config.faults)
        self.limiter = RateLimiter(config.rate_limits)
        self.keys = IdempotencyKeys(self.store, config.idempotency_window_seconds)
        self.webhooks = WebhookSender(
            config.webhooks, plan=self.plan, store=self.store, tenant_id=config.tenant_id
        )
        self.books = {config.tenant_id: XeroBooks(self.store, config.tenant_id, self.webhooks.publish)}
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.connected_at = datetime.now(UTC)

    def reset(self) -> None:
        self.store.reset()
        self.limiter.reset()
        self.webhooks.reset()
        self.plan.configure(self.plan.config)
        self.calls.clear()
        self.statuses.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": sum(self.calls.values()),
            "calls_by_operation": dict(self.calls),
            "responses_by_status": {str(k): v for k, v in self.statuses.items()},
            "faults": dict(self.plan.injected),
            "rate_limited": sum(self.limiter.refused.values()),
            "rate_limited_by_problem": dict(self.limiter.refused),
            "max_in_flight": dict(self.limiter.max_in_flight),
            "tokens_issued": self.tokens.issued_count,
            "idempotent_replays": self.keys.replays,
            "webhooks": self.webhooks.snapshot(),
        }
