"""The live state behind the NetSuite sandbox: store, books, credentials, tokens, limits, faults, counters."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandboxes.faults import FaultPlan
from sandboxes.netsuite.books import NetSuiteBooks
from sandboxes.netsuite.config import NetSuiteSandboxConfig
from sandboxes.netsuite.governance import Governance
from sandboxes.netsuite.oauth2 import CertificateMappings
from sandboxes.netsuite.seed import seed
from sandboxes.netsuite.tba import NonceRegistry, TbaCredentials
from sandboxes.oauth import TokenIssuer
from sandboxes.store import SandboxStore


def realm_of(account_id: str) -> str:
    """The TBA realm of an account: its id in upper case with `_` (1234567_SB1)."""
    return account_id.strip().upper().replace("-", "_")


class NetSuiteSandbox:
    """Reachable as `app.state.sandbox` for tests and the demo."""

    def __init__(self, config: NetSuiteSandboxConfig) -> None:
        self.config = config
        self.store = SandboxStore(config.state_path)
        seed(self.store, company_name=config.company_name, base_currency=config.base_currency)
        self.books = NetSuiteBooks(self.store)
        self.tba = TbaCredentials(
            realm=realm_of(config.account_id),
            consumer_key=config.consumer_key,
            consumer_secret=config.consumer_secret,
            token_id=config.token_id,
            token_secret=config.token_secret,
        )
        self.nonces = NonceRegistry(config.timestamp_tolerance_seconds)
        self.certificates = CertificateMappings(config.certificates)
        # Client secrets play no part in the client credentials flow: the client is known by its assertion.
        self.tokens = TokenIssuer({}, config.token_lifetime_seconds)
        self.plan = FaultPlan(config.faults)
        self.governance = Governance(config.governance)
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.auth_refused: Counter[str] = Counter()
        self.authenticated: Counter[str] = Counter()

    def reset(self) -> None:
        self.store.reset()
        seed(self.store, company_name=self.config.company_name, base_currency=self.config.base_currency)
        self.governance.reset()
        self.plan.configure(self.plan.config)
        for counter in (self.calls, self.statuses, self.auth_refused, self.authenticated):
            counter.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": sum(self.calls.values()),
            "calls_by_operation": dict(self.calls),
            "responses_by_status": {str(k): v for k, v in self.statuses.items()},
            "faults": dict(self.plan.injected),
            "rate_limited": sum(self.governance.refused.values()),
            "rate_limited_by_code": dict(self.governance.refused),
            "max_in_flight": self.governance.max_in_flight,
            "concurrency_limit": self.governance.config.concurrency_limit,
            "tokens_issued": self.tokens.issued_count,
            "authenticated_by_scheme": dict(self.authenticated),
            "auth_refused": dict(self.auth_refused),
        }
