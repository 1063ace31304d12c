"""Starting and signalling runs by business key: the one place that knows each run's id, type and policy.

Everything that starts a run goes through here (the ingress for webhooks and people, the feed poller's
billing starter, exception retries, the CLI, the local stack), so a business key maps to one workflow id
and one reuse policy wherever the start comes from. Runs are named by their workflow type, not by their
class, so nothing below the worker imports workflow code.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from runs import contract_amendment as amendment
from runs import exception_action, month_end_close, payment_feed, psa_feed, reconciliation, reference_sync
from runs import opportunity_to_project as o2p
from runs import time_to_billing as ttb
from runs.search_attributes import OPPORTUNITY_ID


async def start_opportunity_to_project(
    client: Client, settings: Settings, *, crm: str, opportunity_id: str, notification_id: str
) -> str:
    """Signal-with-start: a running run hears about the change; a finished one is never started again.

    Once this returns, the start (or signal) is durable in Temporal, which is when the CRM may be
    acknowledged.
    """
    wf_id = o2p.workflow_id(crm, opportunity_id)
    try:
        await client.start_workflow(
            o2p.WORKFLOW_TYPE,
            o2p.OpportunityToProjectInput(
                crm=crm, opportunity_id=opportunity_id, psa=settings.psa, entities=tuple(settings.entities)
            ),
            id=wf_id,
            task_queue=settings.task_queue,
            start_signal="opportunity_changed",
            start_signal_args=[o2p.OpportunityChanged(notification_id=notification_id)],
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(OPPORTUNITY_ID, opportunity_id)]),
        )
    except WorkflowAlreadyStartedError:
        # The deal's run is closed. Once it completed, the deal is a project and this notification may be a
        # change order: an amendment run per notification looks at it (one that changed no term is a no-op).
        # A run that failed for good is restarted by a person, not by the CRM.
        description = await client.get_workflow_handle(wf_id).describe()
        if description.status == WorkflowExecutionStatus.COMPLETED:
            return await start_contract_amendment(
                client,
                settings,
                crm=crm,
                opportunity_id=opportunity_id,
                notification_id=notification_id,
            )
    return wf_id


async def start_contract_amendment(
    client: Client, settings: Settings, *, crm: str, opportunity_id: str, notification_id: str
) -> str:
    """One amendment run per CRM notification: a redelivered notification starts nothing new."""
    return await start_amendment_run(
        client,
        task_queue=settings.task_queue,
        input=amendment.ContractAmendmentInput(
            crm=crm,
            opportunity_id=opportunity_id,
            notification_id=notification_id,
            psa=settings.psa,
            entities=tuple(settings.entities),
        ),
    )


async def start_amendment_run(
    client: Client, *, task_queue: str, input: amendment.ContractAmendmentInput
) -> str:
    """Start the amendment run named by the input's notification, unless it was started before."""
    wf_id = amendment.workflow_id(input.crm, input.opportunity_id, input.notification_id)
    try:
        await client.start_workflow(
            amendment.WORKFLOW_TYPE,
            input,
            id=wf_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(OPPORTUNITY_ID, input.opportunity_id)]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass
    return wf_id


async def restart_opportunity_to_project(
    client: Client, *, task_queue: str, input: o2p.OpportunityToProjectInput
) -> WorkflowHandle[object, object]:
    """A deal's run again after it failed for good (compensated); a completed deal is never redone."""
    return await client.start_workflow(
        o2p.WORKFLOW_TYPE,
        input,
        id=o2p.workflow_id(input.crm, input.opportunity_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def start_billing(
    client: Client,
    *,
    task_queue: str,
    input: ttb.TimeToBillingInput,
    event_ids: tuple[str, ...] = (),
    item_ids: tuple[str, ...] = (),
) -> WorkflowHandle[object, object]:
    """Signal-with-start the project's billing run for the period.

    A running run hears about the approved work; a finished one is followed by a new run under the same id,
    which bills what the finished one did not (late approvals, fixed lines).
    """
    return await client.start_workflow(
        ttb.WORKFLOW_TYPE,
        input,
        id=ttb.workflow_id(input.project_id, input.period),
        task_queue=task_queue,
        start_signal="work_approved",
        start_signal_args=[ttb.WorkApproved(event_ids=event_ids, item_ids=item_ids)],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def start_billing_now(
    client: Client, *, task_queue: str, input: ttb.TimeToBillingInput, request: ttb.BillNow
) -> WorkflowHandle[object, object]:
    """Signal-with-start the project's billing run for the period with `bill_now`, under the same id and
    policy as `start_billing`: a run waiting for its period bills the work to date at once, a finished one
    is followed by a new run that does."""
    return await client.start_workflow(
        ttb.WORKFLOW_TYPE,
        input,
        id=ttb.workflow_id(input.project_id, input.period),
        task_queue=task_queue,
        start_signal="bill_now",
        start_signal_args=[request],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def start_reconciliation(
    client: Client, *, task_queue: str, workflow_id: str, input: reconciliation.ReconciliationInput
) -> WorkflowHandle[object, object]:
    return await _start_once(client, reconciliation.WORKFLOW_TYPE, input, workflow_id, task_queue)


async def start_month_end_close(
    client: Client, *, task_queue: str, input: month_end_close.MonthEndCloseInput
) -> WorkflowHandle[object, object]:
    """Close the entity's period again; a close of it already running is joined, not doubled."""
    assert input.period is not None, "a close started on demand names its period"
    return await _start_once(
        client,
        month_end_close.WORKFLOW_TYPE,
        input,
        month_end_close.workflow_id(input.legal_entity, input.period),
        task_queue,
    )


async def start_reference_sync(
    client: Client, *, task_queue: str, workflow_id: str, input: reference_sync.ReferenceSyncInput
) -> WorkflowHandle[object, object]:
    return await _start_once(client, reference_sync.WORKFLOW_TYPE, input, workflow_id, task_queue)


async def _start_once(
    client: Client, workflow_type: str, input: object, workflow_id: str, task_queue: str
) -> WorkflowHandle[object, object]:
    """Start the run unless one with this id is running: a repeated request joins that one."""
    return await client.start_workflow(
        workflow_type,
        input,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def start_exception_action(
    client: Client,
    *,
    task_queue: str,
    dedupe_key: str,
    claimed_at: datetime,
    input: exception_action.ExceptionActionInput,
) -> WorkflowHandle[object, object]:
    """One run per claim of an exception item: a second click is refused by the ledger, not started twice."""
    return await client.start_workflow(
        exception_action.WORKFLOW_TYPE,
        input,
        id=exception_action.workflow_id(dedupe_key, claimed_at),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def ensure_feed_poller(
    client: Client,
    settings: Settings,
    *,
    billing_settle_seconds: int = 300,
    invoice_poll_interval_seconds: int = 3600,
) -> str:
    """Start the PSA change-feed poller unless it already runs; its cursor lives in the running workflow."""
    handle = await _start_once(
        client,
        psa_feed.WORKFLOW_TYPE,
        psa_feed.PsaFeedPollerInput(
            psa=settings.psa,
            entities=tuple(settings.entities),
            poll_interval_seconds=settings.psa_poll_interval_seconds,
            billing_settle_seconds=billing_settle_seconds,
            invoice_poll_interval_seconds=invoice_poll_interval_seconds,
        ),
        psa_feed.workflow_id(settings.psa),
        settings.task_queue,
    )
    return handle.id


async def ensure_payment_pollers(client: Client, settings: Settings) -> list[str]:
    """One payment poller per ERP the legal entities book in, each started unless it already runs."""
    ids = []
    for erp in sorted({entity.erp for entity in settings.entities}):
        handle = await _start_once(
            client,
            payment_feed.WORKFLOW_TYPE,
            payment_feed.ErpPaymentPollerInput(
                erp=erp, poll_interval_seconds=settings.payment_poll_interval_seconds
            ),
            payment_feed.workflow_id(erp),
            settings.task_queue,
        )
        ids.append(handle.id)
    return ids


async def signal_retry(client: Client, workflow_id: str, request: object) -> None:
    """Tell a running run that a person fixed what it waits on (the `retry` signal every process has)."""
    await client.get_workflow_handle(workflow_id).signal("retry", request)


async def signal_if_running(client: Client, workflow_id: str, signal: str, arg: object) -> bool:
    """Signal a run that may not exist (a webhook about an invoice we do not follow); True if delivered."""
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False
        raise
    return True
