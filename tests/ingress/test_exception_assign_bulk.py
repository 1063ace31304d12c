"""Assigning an exception to a person and acting on a set at once, through the JSON API the workspace and
scripts share: the acting person is the token's, never the body's; one refused item does not stop the rest."""

from __future__ import annotations

import uuid

import httpx

from ingress.exceptions_api import ASSIGNED
from ingress.identity import mint_dev_token
from ledger.records import ExceptionItem
from ledger.repository import audit_trail, open_exception

from ..support.system import System


def queued(system: System, owner: str = "finance") -> ExceptionItem:
    with system.database.session() as session:
        return open_exception(
            session,
            dedupe_key=f"reconciliation:2026-10:UK:{uuid.uuid4().hex[:8]}",
            process="reconciliation",
            owner=owner,
            reason="ledger and ERP disagree",
            record={"legal_entity": "UK", "period": "2026-10"},
        )


def api(system: System, name: str, role: str) -> httpx.AsyncClient:
    assert system.ingress is not None
    token = mint_dev_token(system.settings, name, role)
    return httpx.AsyncClient(
        base_url=system.ingress.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_assigning_records_who_assigned_whom_and_the_item_lists_its_assignee(system: System) -> None:
    item = queued(system)
    async with api(system, "Olga Ops", "ops") as ops:
        named_in_body = await ops.post(
            f"/exceptions/{item.id}/assign", json={"assignee": "Sam", "actor": "someone else"}
        )
        assigned = await ops.post(f"/exceptions/{item.id}/assign", json={"assignee": "  Sam   Sales "})
        listed = await ops.get("/exceptions", params={"owner": "finance"})
        read = await ops.get(f"/exceptions/{item.id}")
    assert named_in_body.status_code == 422 and "token" in named_in_body.text
    assert assigned.status_code == 200, assigned.text
    body = assigned.json()
    assert body["exception"]["assignee"] == "Sam Sales" and body["assigned_by"].startswith("Olga Ops <")
    assert next(i for i in listed.json()["items"] if i["id"] == item.id)["assignee"] == "Sam Sales"
    assert read.json()["assignee"] == "Sam Sales"
    with system.database.session() as session:
        [entry] = [e for e in audit_trail(session, key=item.dedupe_key) if e.action == ASSIGNED]
    assert entry.actor == body["assigned_by"] and entry.detail == {
        "exception_id": item.id,
        "assignee": "Sam Sales",
    }


async def test_finance_assigns_only_finance_items_and_a_closed_item_is_not_assigned(system: System) -> None:
    theirs = queued(system, owner="pmo")
    mine = queued(system)
    async with api(system, "Fiona Finance", "finance") as finance:
        other_team = await finance.post(f"/exceptions/{theirs.id}/assign", json={"assignee": "Fiona"})
        skipped = await finance.post(f"/exceptions/{mine.id}/skip", json={"reason": "booked by hand"})
        closed = await finance.post(f"/exceptions/{mine.id}/assign", json={"assignee": "Fiona"})
    assert other_team.status_code == 403
    assert skipped.status_code == 200
    assert closed.status_code == 409 and "skipped" in closed.text


async def test_bulk_skip_acts_on_each_item_and_reports_the_one_refused(system: System) -> None:
    first, second, theirs = queued(system), queued(system), queued(system, owner="pmo")
    async with api(system, "Fiona Finance", "finance") as finance:
        without_reason = await finance.post(
            "/exceptions/bulk", json={"action": "skip", "exception_ids": [first.id]}
        )
        done = await finance.post(
            "/exceptions/bulk",
            json={
                "action": "skip",
                "exception_ids": [first.id, theirs.id, second.id],
                "reason": "duplicates",
            },
        )
        again = await finance.post(
            "/exceptions/bulk", json={"action": "skip", "exception_ids": [first.id], "reason": "twice"}
        )
    assert without_reason.status_code == 422 and "reason" in without_reason.text
    assert done.status_code == 200, done.text
    outcomes = {o["exception_id"]: o for o in done.json()["items"]}
    assert outcomes[first.id]["outcome"] == outcomes[second.id]["outcome"] == "skipped"
    assert outcomes[theirs.id]["outcome"] == "refused" and outcomes[theirs.id]["status"] == 403
    assert again.json()["items"][0]["status"] == 409
