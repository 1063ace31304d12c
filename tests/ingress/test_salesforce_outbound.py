"""Salesforce Outbound Messages at the ingress: authenticate, validate, start by business key, then ack."""

from __future__ import annotations

import uuid

import httpx
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from devstack.story import UK_DEAL, Story
from ingress.app import create_app as create_ingress
from runs.opportunity_to_project import OpportunityToProjectResult, OpportunityToProjectStatus, workflow_id
from sandboxes.salesforce.outbound import render_envelope
from sandboxes.salesforce.seed import SalesforceSeeder
from sandboxes.serve import serve_in_thread
from workflows.opportunity_to_project import OpportunityToProject

from ..support.system import System
from ..support.temporal import target_of
from ..workflows.helpers import eventually

PATH = "/webhooks/salesforce/outbound-messages"


def envelope(
    system: System,
    opportunity_id: str,
    *,
    notification_id: str | None = None,
    org_id: str | None = None,
    stage: str = "Closed Won",
) -> bytes:
    return render_envelope(
        org_id=org_id or system.settings.salesforce_org_id,
        action_id="04k8d0000000001AAA",
        base_url=system.settings.salesforce_base_url,
        api_version="v62.0",
        notifications=[
            (
                notification_id or f"04l8d{uuid.uuid4().hex[:13]}",
                "Opportunity",
                {"Id": opportunity_id, "StageName": stage, "IsWon": stage == "Closed Won"},
            )
        ],
        fields=["Id", "StageName", "IsWon"],
    )


def post(system: System, body: bytes, *, token: str | None = "default") -> httpx.Response:
    assert system.ingress is not None
    params = (
        {}
        if token is None
        else {
            "token": system.settings.salesforce_outbound_token.get_secret_value()
            if token == "default"
            else token
        }
    )
    return httpx.post(
        f"{system.ingress.url}{PATH}",
        params=params,
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    )


async def exists(system: System, wf_id: str) -> bool:
    try:
        await system.client.get_workflow_handle(wf_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_outbound_message_with_a_wrong_endpoint_token_gets_401_and_starts_nothing(
    system: System,
) -> None:
    opportunity = "0068d0000099901AAA"
    response = post(system, envelope(system, opportunity), token="not-the-token")
    assert response.status_code == 401
    assert b"endpoint credential" in response.content
    assert not await exists(system, workflow_id("salesforce", opportunity))


async def test_outbound_message_without_a_token_gets_401(system: System) -> None:
    assert post(system, envelope(system, "0068d0000099902AAA"), token=None).status_code == 401


async def test_outbound_message_from_another_org_gets_401_and_starts_nothing(system: System) -> None:
    opportunity = "0068d0000099903AAA"
    response = post(system, envelope(system, opportunity, org_id="00D000000000999EAA"))
    assert response.status_code == 401
    assert b"not the configured org" in response.content
    assert not await exists(system, workflow_id("salesforce", opportunity))


async def test_malformed_outbound_message_gets_422_naming_the_problem(system: System) -> None:
    good = envelope(system, "0068d0000099904AAA").decode()
    without_org = good.replace("<OrganizationId>", "<Org>").replace("</OrganizationId>", "</Org>")
    response = post(system, without_org.encode())
    assert response.status_code == 422
    assert b"OrganizationId" in response.content
    response = post(system, b"this is not xml")
    assert response.status_code == 422 and b"malformed outbound message" in response.content
    assert not await exists(system, workflow_id("salesforce", "0068d0000099904AAA"))


async def test_notification_for_an_opportunity_not_won_is_acked_and_starts_nothing(system: System) -> None:
    opportunity = "0068d0000099905AAA"
    response = post(system, envelope(system, opportunity, stage="Negotiation"))
    assert response.status_code == 200
    assert parse_ack(response.content)
    assert not await exists(system, workflow_id("salesforce", opportunity))


def parse_ack(body: bytes) -> bool:
    return b"<Ack>true</Ack>" in body


async def test_closed_won_in_salesforce_starts_one_run_by_business_key_and_redelivery_starts_nothing_new(
    system: System,
) -> None:
    story = Story(system.settings, system.client, say=lambda _: None)
    await story.prepare()
    deal = await story.close_a_deal(UK_DEAL, uuid.uuid4().hex[:8])
    wf_id = workflow_id("salesforce", deal.opportunity_id)
    handle = system.client.get_workflow_handle(wf_id, result_type=OpportunityToProjectResult)
    # The sandbox delivers the Outbound Message on its own, and the ingress starts the run.
    await eventually(lambda: exists(system, wf_id), what="the ingress to start the run")
    result = await handle.result()
    assert result.opportunity_id == deal.opportunity_id
    first_run = (await handle.describe()).run_id

    # The same notification again, and a new notification for the same deal: acked, nothing new started.
    for _ in range(2):
        response = post(system, envelope(system, deal.opportunity_id))
        assert response.status_code == 200 and parse_ack(response.content)
    description = await handle.describe()
    assert description.run_id == first_run
    assert description.status == WorkflowExecutionStatus.COMPLETED
    runs = [run async for run in system.client.list_workflows(f'WorkflowId = "{wf_id}"')]
    assert len(runs) == 1


async def test_redelivered_notification_id_is_ignored_by_the_waiting_run_but_a_new_one_is_heard(
    system: System,
) -> None:
    story = Story(system.settings, system.client, say=lambda _: None)
    await story.prepare()
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        deal = await salesforce.create_customer_deal(
            account_name=f"Incomplete {uuid.uuid4().hex[:6]}",
            country="GB",
            service_code="ADV-TM",
            omit=["Tax_Code__c"],
        )
    wf_id = workflow_id("salesforce", deal.opportunity_id)
    notification = f"04l8d{uuid.uuid4().hex[:13]}"
    for _ in range(3):  # Salesforce redelivers until acknowledged, with the same notification id
        assert (
            post(system, envelope(system, deal.opportunity_id, notification_id=notification)).status_code
            == 200
        )
    handle = system.client.get_workflow_handle(wf_id)

    async def waiting_for_fix() -> OpportunityToProjectStatus | None:
        status = await handle.query(OpportunityToProject.status)
        return status if status.stage == "awaiting_fix" and status.duplicate_notifications == 2 else None

    status = await eventually(waiting_for_fix, what="the run to park the deal and ignore the repeats")
    assert status.notifications_seen == 1
    post(system, envelope(system, deal.opportunity_id))
    status = await eventually(lambda: _seen(handle, 2), what="a new notification to be heard")
    assert status.duplicate_notifications == 2
    await handle.terminate("test finished")


async def _seen(handle, count: int):  # type: ignore[no-untyped-def]
    status = await handle.query(OpportunityToProject.status)
    return status if status.notifications_seen == count else None


async def test_a_notification_temporal_cannot_record_is_not_acked_so_salesforce_delivers_it_again(
    system: System, dev_env: WorkflowEnvironment
) -> None:
    # An ingress whose Temporal namespace does not exist: the start is refused, as when Temporal is down.
    unrecorded = system.settings.model_copy(
        update={"temporal_address": target_of(dev_env), "temporal_namespace": "no-such-namespace"}
    )
    broken = serve_in_thread(create_ingress(unrecorded))
    opportunity_id = f"0068d{uuid.uuid4().hex[:13]}"
    wf_id = workflow_id("salesforce", opportunity_id)
    body = envelope(system, opportunity_id)
    try:
        async with httpx.AsyncClient(base_url=broken.url) as http:
            refused = await http.post(
                PATH,
                params={"token": system.settings.salesforce_outbound_token.get_secret_value()},
                content=body,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            )
    finally:
        broken.stop()
    assert refused.status_code == 503 and not parse_ack(refused.content)
    assert b"could not record the notification durably" in refused.content
    assert not await exists(system, wf_id)

    # Salesforce's next delivery of the same message reaches a healthy ingress: acked once recorded.
    delivered = post(system, body)
    assert delivered.status_code == 200 and parse_ack(delivered.content)
    assert await exists(system, wf_id)
    await system.client.get_workflow_handle(wf_id).terminate("test: no such opportunity in the sandbox")
