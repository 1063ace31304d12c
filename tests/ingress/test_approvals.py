"""The finance approval endpoint: role tokens, validation, and signalling only runs that exist."""

from __future__ import annotations

import httpx

from ..support.system import System


def decide(system: System, action: str, body: dict[str, object], token: str | None) -> httpx.Response:
    assert system.ingress is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{system.ingress.url}/billing-runs/30199999/2026-10/{action}", json=body, headers=headers
    )


def token_for(system: System, role: str) -> str:
    return next(token for token, has in system.settings.token_roles().items() if has == role)


async def test_approval_without_a_token_gets_401(system: System) -> None:
    assert decide(system, "approve", {"approver": "x"}, None).status_code == 401


async def test_approval_with_an_unknown_token_gets_401(system: System) -> None:
    assert decide(system, "approve", {"approver": "x"}, "forged").status_code == 401


async def test_approval_by_a_role_other_than_finance_gets_403(system: System) -> None:
    response = decide(system, "approve", {"approver": "x"}, token_for(system, "ops"))
    assert response.status_code == 403 and "finance" in response.text


async def test_approval_body_missing_the_approver_gets_422_naming_it(system: System) -> None:
    response = decide(system, "approve", {}, token_for(system, "finance"))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "approver"


async def test_rejection_without_a_reason_gets_422(system: System) -> None:
    response = decide(system, "reject", {"approver": "x"}, token_for(system, "finance"))
    assert response.status_code == 422 and "reason" in response.text


async def test_approval_of_a_run_that_does_not_exist_gets_404(system: System) -> None:
    response = decide(system, "approve", {"approver": "x"}, token_for(system, "finance"))
    assert response.status_code == 404 and "time-to-billing:30199999:2026-10" in response.text
