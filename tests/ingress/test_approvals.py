"""Finance's approvals through the ingress and the CLI, on a real Temporal dev server, worker and sandboxes:
person tokens, the queue of waiting invoices, decisions as updates on the run, and write-offs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import cli
from devstack.story import Story, previous_period
from ingress.identity import mint_dev_token
from ledger.repository import audit_trail
from runs.invoice_to_cash import InvoiceToCashStatus
from runs.time_to_billing import TimeToBillingResult
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from ..support.temporal import target_of
from ..workflows.helpers import eventually, project_from_a_won_deal, start_billing
from ..workflows.test_invoice_to_cash import _follow_a_new_invoice as follow_a_new_invoice

FIONA = ("Fiona Finance", "u-fiona")
FRANK = ("Frank Ledger", "u-frank")


def token(system: System, role: str = "finance", person: tuple[str, str] = FIONA) -> str:
    name, subject = person
    return mint_dev_token(system.settings, name, role, subject=subject)


def actor(person: tuple[str, str]) -> str:
    return f"{person[0]} <{person[1]}>"


def ingress(system: System, bearer: str | None) -> httpx.AsyncClient:
    assert system.ingress is not None
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.AsyncClient(base_url=system.ingress.url, headers=headers, timeout=60)


def decide(system: System, action: str, body: dict[str, object], bearer: str | None) -> httpx.Response:
    assert system.ingress is not None
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.post(
        f"{system.ingress.url}/billing-runs/30199999/2026-10/{action}", json=body, headers=headers, timeout=60
    )


SOME_DECISION = {"invoice_version": "v1", "expected_total": {"amount": "100.00", "currency": "GBP"}}


# --- refused before Temporal is asked -----------------------------------------------------------------------


async def test_approval_without_a_token_gets_401(system: System) -> None:
    assert decide(system, "approve", SOME_DECISION, None).status_code == 401


async def test_approval_with_an_unknown_token_gets_401(system: System) -> None:
    assert decide(system, "approve", SOME_DECISION, "forged").status_code == 401


async def test_approval_by_a_role_other_than_finance_gets_403(system: System) -> None:
    response = decide(system, "approve", SOME_DECISION, token(system, "ops"))
    assert response.status_code == 403 and "finance" in response.text


async def test_approval_body_naming_an_approver_gets_422_saying_the_approver_is_the_caller(
    system: System,
) -> None:
    response = decide(system, "approve", {**SOME_DECISION, "approver": "x"}, token(system))
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == "approver" and "token" in problem["message"]


async def test_approval_body_missing_what_was_seen_gets_422_naming_it(system: System) -> None:
    response = decide(system, "approve", {}, token(system))
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["problems"]} == {"invoice_version", "expected_total"}


async def test_rejection_without_a_reason_gets_422(system: System) -> None:
    response = decide(system, "reject", SOME_DECISION, token(system))
    assert response.status_code == 422 and "reason" in response.text


async def test_approval_of_a_run_that_does_not_exist_gets_404(system: System) -> None:
    response = decide(system, "approve", SOME_DECISION, token(system))
    assert response.status_code == 404 and "time-to-billing:30199999:2026-10" in response.text


async def test_static_development_tokens_still_work_outside_production(system: System) -> None:
    dev_finance = next(t for t, role in system.settings.token_roles().items() if role == "finance")
    response = decide(system, "approve", SOME_DECISION, dev_finance)
    assert response.status_code == 404


# --- decisions on a waiting invoice -------------------------------------------------------------------------


@dataclass
class Waiting:
    handle: WorkflowHandle[Any, Any]
    project_id: str
    period: str
    item: dict[str, Any]

    @property
    def seen(self) -> dict[str, Any]:
        """What finance saw in the queue, which a decision names."""
        return {
            "invoice_version": self.item["version"],
            "expected_total": {"amount": self.item["amount"], "currency": self.item["currency"]},
        }

    def path(self, action: str) -> str:
        return f"/billing-runs/{self.project_id}/{self.period}/{action}"


async def listed(system: System, workflow_id: str) -> dict[str, Any]:
    """The run's entry in GET /approvals, once visibility has indexed it."""
    async with ingress(system, token(system)) as api:

        async def probe() -> dict[str, Any] | None:
            response = await api.get("/approvals")
            assert response.status_code == 200, response.text
            queue = response.json()
            for unreadable in queue["unreadable"]:
                # Fail at once with the reason rather than time out: the run is there but says nothing.
                assert unreadable["workflow_id"] != workflow_id, unreadable["problem"]
            return next((i for i in queue["items"] if i["workflow_id"] == workflow_id), None)

        found: dict[str, Any] = await eventually(probe, what=f"{workflow_id} in GET /approvals")
        return found


async def an_invoice_waiting_for_finance(system: System) -> Waiting:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=60)
    await story.prepare()
    created = await project_from_a_won_deal(system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=1)
    handle = await start_billing(system, created.project_id, period=period)

    async def asks_finance() -> bool:
        return (await handle.query(TimeToBilling.status)).stage == "awaiting_approval"

    await eventually(asks_finance, what="the billing run to ask finance")
    item = await listed(system, handle.id)
    return Waiting(handle, created.project_id, period.value, item)


async def test_the_queue_lists_the_waiting_invoice_and_approving_it_records_the_person_and_posts_it(
    system: System,
) -> None:
    waiting = await an_invoice_waiting_for_finance(system)
    item = waiting.item
    assert item["project_id"] == waiting.project_id and item["period"] == waiting.period
    assert item["legal_entity"] == "UK" and item["currency"] == "GBP" and item["customer"]
    assert item["stage"] == "awaiting_approval" and item["reason"]
    assert (
        item["line_count"] >= 1 and sum(int(s["lines"]) for s in item["line_summary"]) == item["line_count"]
    )
    assert item["waited_seconds"] >= 0 and item["asked_at"] < item["remind_at"] < item["escalate_at"]

    async with ingress(system, token(system)) as api:
        response = await api.post(waiting.path("approve"), json=waiting.seen)

    assert response.status_code == 200, response.text
    recorded = response.json()
    assert recorded["decision"] == "approved" and recorded["decided_by"] == actor(FIONA)
    assert recorded["workflow_id"] == waiting.handle.id and recorded["invoice_version"] == item["version"]
    result: TimeToBillingResult = await waiting.handle.result()
    assert result.outcome == "posted"
    with system.database.session() as session:
        approved = [e for e in audit_trail(session, key=waiting.handle.id) if e.action == "invoice_approved"]
    assert approved and approved[0].detail["approver"] == actor(FIONA)


async def test_a_decision_on_another_total_or_version_is_409_and_the_invoice_still_waits(
    system: System,
) -> None:
    waiting = await an_invoice_waiting_for_finance(system)
    other_total = {**waiting.seen, "expected_total": {"amount": "1.00", "currency": waiting.item["currency"]}}
    other_version = {**waiting.seen, "invoice_version": waiting.item["version"] + "-stale"}

    async with ingress(system, token(system)) as api:
        for body in (other_total, other_version):
            response = await api.post(waiting.path("approve"), json=body)
            assert response.status_code == 409, response.text
            refused = response.json()
            assert refused["detail"] and refused["workflow_id"] == waiting.handle.id
            assert refused["pending"]["version"] == waiting.item["version"]
            assert refused["pending"]["total"]["amount"] == waiting.item["amount"]

    assert (await waiting.handle.query(TimeToBilling.status)).stage == "awaiting_approval"


async def test_two_people_approving_at_once_one_wins_and_the_other_is_told_who(system: System) -> None:
    waiting = await an_invoice_waiting_for_finance(system)

    async def approve_as(person: tuple[str, str]) -> httpx.Response:
        async with ingress(system, token(system, person=person)) as api:
            return await api.post(waiting.path("approve"), json=waiting.seen)

    first, second = await asyncio.gather(approve_as(FIONA), approve_as(FRANK))

    assert sorted((first.status_code, second.status_code)) == [200, 409], (first.text, second.text)
    won, lost = (first, second) if first.status_code == 200 else (second, first)
    winner = won.json()["decided_by"]
    assert winner in (actor(FIONA), actor(FRANK))
    assert lost.json()["pending"] is None and lost.json()["decided"] == f"approved by {winner}"
    assert (await waiting.handle.result()).outcome == "posted"


async def test_rejecting_ends_the_run_rejected_by_the_person_and_a_later_decision_is_409(
    system: System,
) -> None:
    waiting = await an_invoice_waiting_for_finance(system)

    async with ingress(system, token(system)) as api:
        rejected = await api.post(waiting.path("reject"), json={**waiting.seen, "reason": "wrong PO number"})
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["decision"] == "rejected" and rejected.json()["decided_by"] == actor(FIONA)
        result: TimeToBillingResult = await waiting.handle.result()
        late = await api.post(waiting.path("approve"), json=waiting.seen)

    assert result.outcome == "rejected"
    assert result.reason is not None and actor(FIONA) in result.reason and "wrong PO number" in result.reason
    assert late.status_code == 409 and late.json()["pending"] is None
    assert late.json()["decided"] == f"rejected by {actor(FIONA)}"


async def test_the_cli_shows_the_waiting_invoice_and_approves_only_the_total_named(
    system: System,
    dev_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    waiting = await an_invoice_waiting_for_finance(system)
    monkeypatch.setenv("PSSYNC_TEMPORAL_ADDRESS", target_of(dev_env))
    monkeypatch.setenv("PSSYNC_DATABASE_URL", system.settings.database_url)
    monkeypatch.setenv("PSSYNC_TOKEN", token(system))

    def run(*argv: str) -> int:
        args = cli.build_parser().parse_args(argv)
        code: int = args.func(args)
        return code

    base = ("approve", waiting.project_id, waiting.period)
    assert await asyncio.to_thread(run, *base) == 2
    assert await asyncio.to_thread(run, *base, "--total", "1.00") == 1
    shown = capsys.readouterr()
    assert waiting.item["amount"] in shown.out and "nothing decided" in shown.err
    assert (await waiting.handle.query(TimeToBilling.status)).stage == "awaiting_approval"

    assert await asyncio.to_thread(run, *base, "--total", waiting.item["amount"]) == 0
    assert f"approved by {actor(FIONA)}" in capsys.readouterr().out
    assert (await waiting.handle.result()).outcome == "posted"


async def test_the_cli_refuses_a_decision_without_a_valid_token(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PSSYNC_TOKEN", raising=False)
    args = cli.build_parser().parse_args(["approve", "P1", "2026-10", "--yes"])
    assert args.func(args) == 2
    args = cli.build_parser().parse_args(
        ["approve", "P1", "2026-10", "--yes", "--token", token(system, "ops")]
    )
    assert args.func(args) == 2


# --- write-off ----------------------------------------------------------------------------------------------


def write_off(system: System, invoice: str, body: Mapping[str, object], bearer: str | None) -> httpx.Response:
    assert system.ingress is not None
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.post(f"{system.ingress.url}/invoices/xero/{invoice}/write-off", json=body, headers=headers)


DUE = {"amount": "1200.00", "currency": "GBP"}


async def test_write_off_without_finance_role_gets_401_or_403(system: System) -> None:
    body = {"reason": "bankrupt", "expected_due": DUE}
    assert write_off(system, "inv-1", body, None).status_code == 401
    assert write_off(system, "inv-1", body, token(system, "ops")).status_code == 403


async def test_write_off_without_a_reason_gets_422_naming_it(system: System) -> None:
    response = write_off(system, "inv-1", {"expected_due": DUE}, token(system))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "reason"


async def test_write_off_without_the_amount_due_gets_422_naming_it(system: System) -> None:
    response = write_off(system, "inv-1", {"reason": "bankrupt"}, token(system))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "expected_due"


async def test_write_off_naming_an_actor_gets_422(system: System) -> None:
    response = write_off(system, "inv-1", {"actor": "x", "reason": "r", "expected_due": DUE}, token(system))
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "actor"


async def test_write_off_of_an_invoice_nobody_follows_gets_404(system: System) -> None:
    response = write_off(system, "inv-404", {"reason": "r", "expected_due": DUE}, token(system))
    assert response.status_code == 404 and "invoice-to-cash:xero:inv-404" in response.text


async def test_write_off_through_the_ingress_ends_the_followed_invoice_written_off_by_the_person(
    system: System, dev_env: WorkflowEnvironment
) -> None:
    followed = await follow_a_new_invoice(system, dev_env)
    await followed.seen("the invoice read", lambda s: s.amount_due == followed.gross)
    gross = {"amount": str(followed.gross.amount), "currency": followed.gross.currency}
    less = {"amount": str(followed.gross.amount - 1), "currency": followed.gross.currency}

    # The run's worker shares this event loop: the requests wait in a thread while it answers them.
    refused = await asyncio.to_thread(
        write_off,
        system,
        followed.input.invoice_id,
        {"reason": "bad debt", "expected_due": less},
        token(system),
    )
    response = await asyncio.to_thread(
        write_off,
        system,
        followed.input.invoice_id,
        {"reason": "customer in administration", "expected_due": gross},
        token(system),
    )
    result = await followed.handle.result()

    assert refused.status_code == 409 and "it changed since you looked" in refused.json()["detail"]
    assert refused.json()["amount_due"] == gross and refused.json()["stage"] == "awaiting_payment"
    assert response.status_code == 202 and response.json()["workflow_id"] == followed.handle.id
    assert response.json()["requested_by"] == actor(FIONA)
    assert response.json()["amount_due"] == gross
    assert result.outcome == "written_off" and result.write_off_reason == "customer in administration"
    status = await followed.handle.query("status", result_type=InvoiceToCashStatus)
    assert status.write_off_requested_by == actor(FIONA)
    assert result.written_off == followed.gross


async def test_the_cli_shows_what_is_due_and_writes_off_only_the_amount_named(
    system: System,
    dev_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    followed = await follow_a_new_invoice(system, dev_env)
    await followed.seen("the invoice read", lambda s: s.amount_due == followed.gross)
    monkeypatch.setenv("PSSYNC_TEMPORAL_ADDRESS", target_of(dev_env))
    monkeypatch.setenv("PSSYNC_DATABASE_URL", system.settings.database_url)
    monkeypatch.setenv("PSSYNC_TOKEN", token(system))

    def run(*argv: str) -> int:
        args = cli.build_parser().parse_args(argv)
        code: int = args.func(args)
        return code

    base = ("write-off", "xero", followed.input.invoice_id, "--reason", "customer in administration")
    assert await asyncio.to_thread(run, *base) == 2
    assert await asyncio.to_thread(run, *base, "--amount", "1.00") == 1
    shown = capsys.readouterr()
    assert f"{followed.gross.amount} {followed.gross.currency} due" in shown.out
    assert "nothing written off" in shown.err
    assert (await followed.handle.query("status", result_type=InvoiceToCashStatus)).stage == (
        "awaiting_payment"
    )

    assert await asyncio.to_thread(run, *base, "--amount", str(followed.gross.amount)) == 0
    assert f"requested by {actor(FIONA)}" in capsys.readouterr().out
    result = await followed.handle.result()
    assert result.outcome == "written_off" and result.written_off == followed.gross
