"""`/_sandbox/*`: test and benchmark controls; not part of Kantata's API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandboxes.faults import FaultConfig
from sandboxes.kantata.middleware import DropRule

router = APIRouter(prefix="/_sandbox")


class RateLimitSettings(BaseModel):
    general_per_minute: int | None = Field(default=None, ge=1)
    endpoint_per_minute: int | None = Field(default=None, ge=1)


class ClockAdvance(BaseModel):
    seconds: float = Field(gt=0)


class DropResponses(BaseModel):
    method: str
    path: str
    count: int = Field(default=1, ge=1)


class EventLag(BaseModel):
    max_lag_seconds: float = Field(ge=0)


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.put("/faults")
async def put_faults(config: FaultConfig, request: Request) -> dict[str, Any]:
    request.app.state.plan.configure(config)
    return config.model_dump()


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    request.app.state.reset()
    return {"status": "reset"}


@router.post("/expire-tokens")
async def expire_tokens(request: Request) -> dict[str, str]:
    request.app.state.tokens.expire_all()
    return {"status": "expired"}


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    app_state = request.app.state
    kantata = app_state.kantata
    records = {
        key: len(kantata.col(key))
        for key in (
            "workspaces",
            "stories",
            "participations",
            "users",
            "time_entries",
            "timesheet_submissions",
            "expenses",
            "invoices",
            "custom_field_values",
            "external_references",
        )
    }
    return JSONResponse(
        {
            **app_state.stats.as_dict(),
            "faults": dict(app_state.plan.injected),
            "tokens_issued": app_state.tokens.issued_count,
            "records": records,
            "events": len(kantata.events),
        }
    )


@router.put("/rate-limits")
async def put_rate_limits(settings: RateLimitSettings, request: Request) -> dict[str, Any]:
    limits = request.app.state.rate_limits
    limits.general_per_minute = settings.general_per_minute
    limits.endpoint_per_minute = settings.endpoint_per_minute
    limits.reset()
    return settings.model_dump()


@router.post("/clock")
async def advance_clock(advance: ClockAdvance, request: Request) -> dict[str, str]:
    now = request.app.state.kantata.clock.advance(advance.seconds)
    return {"now": now.isoformat()}


@router.put("/drop-responses")
async def drop_responses(rule: DropResponses, request: Request) -> dict[str, Any]:
    path = rule.path.removesuffix(".json")
    request.app.state.drop_rules.add(DropRule(method=rule.method.upper(), path=path, remaining=rule.count))
    return rule.model_dump()


@router.put("/event-lag")
async def event_lag(lag: EventLag, request: Request) -> dict[str, Any]:
    request.app.state.kantata.events.max_lag_seconds = lag.max_lag_seconds
    return lag.model_dump()
