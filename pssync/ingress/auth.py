"""Bearer tokens with roles for the people-facing endpoints (approvals, exception actions)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from fastapi import Header, HTTPException, Request


def require_role(*roles: str) -> Callable[..., str]:
    def dependency(request: Request, authorization: str | None = Header(default=None)) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        presented = authorization[7:].strip()
        token_roles: dict[str, str] = request.app.state.settings.token_roles()
        for token, role in token_roles.items():
            if secrets.compare_digest(token, presented):
                if role not in roles:
                    raise HTTPException(403, f"role {role!r} may not do this; needs one of {sorted(roles)}")
                return role
        raise HTTPException(401, "unknown bearer token", headers={"WWW-Authenticate": "Bearer"})

    return dependency
