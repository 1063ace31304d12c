"""The finance approval endpoint: role tokens, validation, and signalling only runs that exist."""

from __future__ import annotations

import httpx
from temporalio.testing import WorkflowEnvironment

from ..support.system import System
from ..workflows.test_invoice_to_cash import _follow_a_new_invoice as follow_a_new_invoice


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


# --- write-off ---------------------------------------------------------------------------------------------


def write_off(system: System, invoice: str, body: dict[str, object], token: str | None) -> httpx.Response:
    assert system.ingress is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{system.ingress.url}/invoices/xero/{invoice}/write-off", json=body, headers=headers)


async def test_write_off_without_finance_role_gets_401_or_403(system: System) -> None:
    body = {"actor": "x", "reason": "bankrupt"}
    assert write_off(system, "inv-1", body, None).status_code == 401
    assert write_off(system, "inv-1", body, token_for(system, "ops")).status_code == 403


async def test_write_off_without_a_reason_gets_422_naming_it(system: System) -> None:
    response = write_off(system, "inv-1", {"actor": "x"}, token_for(system, "finance"))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "reason"


async def test_write_off_of_an_invoice_nobody_follows_gets_404(system: System) -> None:
    response = write_off(system, "inv-404", {"actor": "x", "reason": "r"}, token_for(system, "finance"))
    assert response.status_code == 404 and "invoice-to-cash:xero:inv-404" in response.text


async def test_write_off_through_the_ingress_ends_the_followed_invoice_written_off(
    system: System, dev_env: WorkflowEnvironment
) -> None:
    followed = await follow_a_new_invoice(system, dev_env)

    response = write_off(
        system,
        followed.input.invoice_id,
        {"actor": "finance.lead", "reason": "customer in administration"},
        token_for(system, "finance"),
    )
    result = await followed.handle.result()

    assert response.status_code == 202 and response.json()["workflow_id"] == followed.handle.id
    assert result.outcome == "written_off" and result.write_off_reason == "customer in administration"
    assert result.written_off == followed.gross
