"""Bearer tokens for the people-facing endpoints (approvals, write-offs, exception actions).

`require_identity` gives the verified caller (a person, or outside production a static development token);
`require_role` gives only the role, for endpoints that have no actor to record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from ingress.identity import Identity, TokenRefused, verify_token

CHALLENGE = {"WWW-Authenticate": "Bearer"}
ACTOR_FROM_TOKEN = "the actor is the authenticated caller, taken from the bearer token: leave it out"


def authenticate(request: Request, authorization: str | None) -> Identity:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "missing bearer token", headers=CHALLENGE)
    try:
        return verify_token(request.app.state.settings, authorization[7:])
    except TokenRefused as refused:
        raise HTTPException(401, str(refused), headers=CHALLENGE) from None


def require_identity(*roles: str) -> Callable[..., Identity]:
    def dependency(request: Request, authorization: str | None = Header(default=None)) -> Identity:
        identity = authenticate(request, authorization)
        if identity.role not in roles:
            raise HTTPException(403, f"role {identity.role!r} may not do this; needs one of {sorted(roles)}")
        return identity

    return dependency


def require_role(*roles: str) -> Callable[..., str]:
    check = require_identity(*roles)

    def dependency(request: Request, authorization: str | None = Header(default=None)) -> str:
        return check(request, authorization).role

    return dependency


class ActorFromToken(BaseModel):
    """A request body that must not say who acts. `approver` and `actor` are refused with a message saying
    where the actor comes from, rather than a bare "extra field": older clients sent them."""

    model_config = ConfigDict(extra="forbid")
    approver: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    actor: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("approver", "actor", mode="before")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        raise ValueError(ACTOR_FROM_TOKEN)
