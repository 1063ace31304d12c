"""The Kantata OX sandbox: a faithful stand-in for `https://api.mavenlink.com` (Kantata's API host).

Point the connector at it by base URL; point the connector at Kantata by changing that URL and the
OAuth client credentials. See the package modules for which documented behaviour each part reproduces.
"""

from __future__ import annotations

from fastapi import FastAPI

from sandboxes.faults import FaultConfig, FaultMiddleware, FaultPlan, Scope
from sandboxes.kantata import (
    billing,
    control,
    custom_fields,
    feed,
    memberships,
    oauth_routes,
    projects,
    timekeeping,
)
from sandboxes.kantata.clock import SandboxClock
from sandboxes.kantata.config import KantataSandboxConfig
from sandboxes.kantata.errors import (
    KantataApiError,
    handle_api_error,
    rate_limited_body,
    unavailable_body,
)
from sandboxes.kantata.middleware import (
    CallStats,
    DropRules,
    JsonSuffixMiddleware,
    RateLimitMiddleware,
    RateLimits,
    ResponseDropMiddleware,
    StatsMiddleware,
)
from sandboxes.kantata.state import KantataState
from sandboxes.oauth import TokenIssuer
from sandboxes.store import SandboxStore

_JSON = [(b"content-type", b"application/json")]


def _rate_limited(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    # Kantata's 429 carries no Retry-After: the docs only say to retry "after a small delay".
    return 429, _JSON, rate_limited_body()


def _server_error(scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 503, _JSON, unavailable_body()


def create_app(config: KantataSandboxConfig | None = None) -> FastAPI:
    config = config or KantataSandboxConfig()
    store = SandboxStore(config.state_path)
    clock = SandboxClock()

    def new_state() -> KantataState:
        state = KantataState(
            store=store,
            clock=clock,
            account_id=config.account_id,
            retention_days=config.event_retention_days,
            seed=config.seed,
        )
        state.events.max_lag_seconds = config.event_lag_max_seconds
        return state

    api = FastAPI(title="Kantata OX sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    api.add_exception_handler(KantataApiError, handle_api_error)
    for module in (projects, custom_fields, timekeeping, billing, feed, oauth_routes, control, memberships):
        api.include_router(module.router)

    plan = FaultPlan()
    stats = CallStats()
    limits = RateLimits(config.rate_limit_per_minute, config.endpoint_rate_limit_per_minute)
    drop_rules = DropRules()
    tokens = TokenIssuer(
        {config.client_id: config.client_secret}, lifetime_seconds=config.token_lifetime_seconds
    )

    # Added innermost first: Starlette makes the last one added the outermost.
    api.add_middleware(ResponseDropMiddleware, stats=stats, rules=drop_rules)
    api.add_middleware(JsonSuffixMiddleware)
    api.add_middleware(RateLimitMiddleware, limits=limits)
    api.add_middleware(
        FaultMiddleware,
        plan=plan,
        rate_limited=_rate_limited,
        server_error=_server_error,
        exempt_prefixes=("/_sandbox", "/oauth"),
    )
    api.add_middleware(StatsMiddleware, stats=stats)

    def reset() -> None:
        with api.state.kantata.lock:
            store.reset()
            clock.reset()
            plan.configure(FaultConfig())
            limits.general_per_minute = config.rate_limit_per_minute
            limits.endpoint_per_minute = config.endpoint_rate_limit_per_minute
            limits.reset()
            drop_rules.clear()
            api.state.refresh_tokens.clear()
            api.state.kantata = new_state()

    api.state.kantata = new_state()
    api.state.plan = plan
    api.state.stats = stats
    api.state.tokens = tokens
    api.state.refresh_tokens = {}
    api.state.rate_limits = limits
    api.state.drop_rules = drop_rules
    api.state.reset = reset
    api.state.config = config
    return api
