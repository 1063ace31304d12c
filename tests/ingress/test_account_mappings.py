"""The account mapping through the ingress (in process, on a migrated SQLite ledger): finance reads and
changes rules, ops only reads, the person comes from the token, and accounts are checked against the chart
ReferenceSync last read from the entity's ERP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger.account_mapping import list_account_mappings
from ledger.records import AccountRecord
from ledger.repository import audit_trail, upsert_accounts

from .inprocess import Ingress, bearer, ingress_in_process, migrated_ledger, settings_for

FINANCE = "Fiona Finance"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Ingress]:
    settings = settings_for(tmp_path)
    database = migrated_ledger(settings)
    with database.session() as session:
        upsert_accounts(
            session,
            system="xero",
            accounts=[
                AccountRecord(system="xero", code="200", name="Sales", type="REVENUE"),
                AccountRecord(system="xero", code="260", name="Other Revenue", type="REVENUE"),
                AccountRecord(system="xero", code="299", name="Old Sales", type="REVENUE", active=False),
            ],
        )
    database.dispose()
    async with ingress_in_process(settings) as running:
        yield running


async def test_finance_sets_a_rule_recorded_against_the_person_of_the_token(api: Ingress) -> None:
    response = await api.http.put(
        "/account-mappings/UK/role/Senior Consultant",
        json={"account_code": "260"},
        headers=bearer(api.settings, "finance", FINANCE),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_state"] == "active" and body["account_name"] == "Other Revenue"
    assert body["updated_by"].startswith(f"{FINANCE} <")
    with api.app.state.ledger.session(read_only=True) as session:
        (kept,) = list_account_mappings(session, legal_entity="UK")
        (event,) = audit_trail(session, key="UK:role:Senior Consultant")
    assert kept.rule.account_code == "260" and kept.rule.key == "Senior Consultant"
    assert event.actor == body["updated_by"]


async def test_a_body_naming_the_actor_is_refused(api: Ingress) -> None:
    response = await api.http.put(
        "/account-mappings/UK/service/*",
        json={"account_code": "200", "actor": "someone else"},
        headers=bearer(api.settings, "finance", FINANCE),
    )

    assert response.status_code == 422
    assert "taken from the bearer token" in response.text


async def test_ops_reads_the_mapping_but_may_not_change_it(api: Ingress) -> None:
    await api.http.put(
        "/account-mappings/UK/service/*",
        json={"account_code": "200"},
        headers=bearer(api.settings, "finance", FINANCE),
    )

    refused = await api.http.put(
        "/account-mappings/UK/service/*", json={"account_code": "260"}, headers=bearer(api.settings, "ops")
    )
    listed = await api.http.get("/account-mappings", headers=bearer(api.settings, "ops"))
    anonymous = await api.http.get("/account-mappings")

    assert refused.status_code == 403
    assert anonymous.status_code == 401
    assert [(m["kind"], m["key"], m["account_code"]) for m in listed.json()["items"]] == [
        ("service", "*", "200")
    ]


@pytest.mark.parametrize(("code", "says"), [("299", "holds it archived"), ("999", "has no such account")])
async def test_an_archived_or_unknown_account_is_refused_saying_which(
    api: Ingress, code: str, says: str
) -> None:
    response = await api.http.put(
        "/account-mappings/UK/expense_category/Travel",
        json={"account_code": "260", "cost_account_code": code},
        headers=bearer(api.settings, "finance", FINANCE),
    )

    assert response.status_code == 422
    assert f"cost account '{code}'" in response.json()["detail"] and says in response.json()["detail"]
    with api.app.state.ledger.session(read_only=True) as session:
        assert list_account_mappings(session) == []


async def test_before_the_erps_chart_is_synced_a_rule_is_kept_and_shown_unchecked(api: Ingress) -> None:
    # Tryton (the EU entity's ERP) has not been synced in this ledger.
    response = await api.http.put(
        "/account-mappings/EU/milestone/*",
        json={"account_code": "7000"},
        headers=bearer(api.settings, "finance", FINANCE),
    )

    assert response.status_code == 200, response.text
    assert response.json()["account_state"] == "not_synced"


async def test_unknown_entity_and_kind_are_refused(api: Ingress) -> None:
    finance = bearer(api.settings, "finance", FINANCE)
    entity = await api.http.put(
        "/account-mappings/JP/service/*", json={"account_code": "200"}, headers=finance
    )
    kind = await api.http.put(
        "/account-mappings/UK/department/x", json={"account_code": "200"}, headers=finance
    )

    assert entity.status_code == 404 and "not configured" in entity.json()["detail"]
    assert kind.status_code == 422 and "kind must be one of" in kind.json()["detail"]


async def test_finance_removes_a_rule(api: Ingress) -> None:
    finance = bearer(api.settings, "finance", FINANCE)
    await api.http.put("/account-mappings/UK/retainer/ADV", json={"account_code": "200"}, headers=finance)

    removed = await api.http.delete("/account-mappings/UK/retainer/ADV", headers=finance)
    again = await api.http.delete("/account-mappings/UK/retainer/ADV", headers=finance)

    assert removed.status_code == 200 and removed.json()["removed"]["account_code"] == "200"
    assert again.status_code == 404
