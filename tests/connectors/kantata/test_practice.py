"""A project's practice lives in the optional Workspace custom field "Practice": written at creation when the
service names one, read back as a person leaves it, and simply absent in an account without the field."""

from __future__ import annotations

import uuid
from datetime import date

import httpx

from canonical import BillingModel, Contract, Money, ProjectSpec
from connectors.kantata import KantataConnector
from sandboxes.kantata.seed import KantataSeeder

from .conftest import CURRENCY, start_sandbox


def _spec(practice: str | None) -> ProjectSpec:
    key = uuid.uuid4().hex[:10]
    return ProjectSpec(
        external_ref=f"salesforce:006{key}",
        name=f"Digital delivery {key}",
        customer_name="Acme Ltd",
        contract=Contract(
            legal_entity="UK",
            currency=CURRENCY,
            billing_model=BillingModel.TIME_AND_MATERIALS,
            tax_code="OUTPUT2",
        ),
        service_code="DIG-TM",
        start_date=date(2024, 5, 1),
        budget=Money.of("1000", CURRENCY),
        practice=practice,
    )


async def _practice_values(api: httpx.AsyncClient, project_id: str) -> list[str]:
    body = (await api.get(f"/workspaces/{project_id}", params={"include": "custom_field_values"})).json()
    return [
        v["value"]
        for v in body.get("custom_field_values", {}).values()
        if v["custom_field_name"] == "Practice"
    ]


async def test_a_new_project_is_filed_under_the_services_practice(
    psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec("Digital"))

    assert project.practice == "Digital"
    assert await _practice_values(api, project.id) == ["Digital"]


async def test_a_project_without_a_practice_has_none_written(
    psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    project = await psa.ensure_project(_spec(None))

    assert project.practice is None
    assert await _practice_values(api, project.id) == []


async def test_the_practice_a_person_sets_in_kantata_is_what_the_project_is_found_with(
    psa: KantataConnector, api: httpx.AsyncClient
) -> None:
    spec = _spec(None)
    project = await psa.ensure_project(spec)
    fields = (await api.get("/custom_fields", params={"subject_types": "Workspace"})).json()
    (practice_field,) = [f for f in fields["custom_fields"].values() if f["name"] == "Practice"]

    response = await api.put(
        f"/workspaces/{project.id}",
        json={
            "workspace": {"custom_fields": [{"custom_field_id": int(practice_field["id"]), "value": "Cloud"}]}
        },
    )
    response.raise_for_status()

    assert (await psa.ensure_project(spec)).practice == "Cloud"
    assert (await psa.get_project(project.id)).practice == "Cloud"


async def test_an_account_without_the_practice_field_makes_projects_without_one_and_refuses_nothing() -> None:
    sandbox = start_sandbox()
    try:
        state = sandbox.app.state.kantata
        for field in list(state.col("custom_fields")):
            if field["name"] == "Practice":
                state.col("custom_fields").delete(field["id"])
        async with KantataSeeder.for_sandbox(sandbox.url) as seeder:
            await seeder.rate_card(CURRENCY, {date(2024, 1, 1): {"Consultant": Money.of("100", CURRENCY)}})
        connector = sandbox.connector()
        try:
            project = await connector.ensure_project(_spec("Digital"))
        finally:
            await connector.aclose()

        assert project.practice is None
    finally:
        sandbox.served.stop()
