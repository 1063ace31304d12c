"""Starting and signalling workflows from webhooks, by business-key workflow id."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from pssync.settings import Settings
from pssync.workflows.opportunity_to_project import (
    OpportunityChanged,
    OpportunityToProject,
    OpportunityToProjectInput,
    workflow_id,
)
from pssync.workflows.search_attributes import OPPORTUNITY_ID


async def start_opportunity_to_project(
    client: Client, settings: Settings, *, crm: str, opportunity_id: str, notification_id: str
) -> str:
    """Signal-with-start: a running run hears about the change; a finished one is never started again.

    Once this returns, the start (or signal) is durable in Temporal, which is when the CRM may be
    acknowledged.
    """
    wf_id = workflow_id(crm, opportunity_id)
    try:
        await client.start_workflow(
            OpportunityToProject.run,
            OpportunityToProjectInput(
                crm=crm, opportunity_id=opportunity_id, psa="kantata", entities=tuple(settings.entities)
            ),
            id=wf_id,
            task_queue=settings.task_queue,
            start_signal="opportunity_changed",
            start_signal_args=[OpportunityChanged(notification_id=notification_id)],
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(OPPORTUNITY_ID, opportunity_id)]),
        )
    except WorkflowAlreadyStartedError:
        # The deal was already turned into a project: a repeated notification changes nothing.
        pass
    return wf_id


async def signal_if_running(client: Client, workflow_id_: str, signal: str, arg: object) -> bool:
    """Signal a run that may not exist (a webhook about an invoice we do not follow); True if delivered."""
    try:
        await client.get_workflow_handle(workflow_id_).signal(signal, arg)
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return False
        raise
    return True
