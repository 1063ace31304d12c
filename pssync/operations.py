"""Long-running workflows ps-sync keeps alive, started idempotently (CLI and local stack alike)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from pssync.settings import Settings
from pssync.workflows.payment_feed import ErpPaymentPoller
from pssync.workflows.payment_feed import workflow_id as payment_feed_id
from pssync.workflows.payment_feed_models import ErpPaymentPollerInput
from pssync.workflows.psa_feed import PsaFeedPoller, PsaFeedPollerInput, workflow_id


async def ensure_feed_poller(
    client: Client,
    settings: Settings,
    *,
    psa: str = "kantata",
    billing_settle_seconds: int = 300,
    invoice_poll_interval_seconds: int = 3600,
) -> str:
    """Start the PSA change-feed poller unless it already runs; its cursor lives in the running workflow."""
    handle = await client.start_workflow(
        PsaFeedPoller.run,
        PsaFeedPollerInput(
            psa=psa,
            entities=tuple(settings.entities),
            poll_interval_seconds=settings.kantata_poll_interval_seconds,
            billing_settle_seconds=billing_settle_seconds,
            invoice_poll_interval_seconds=invoice_poll_interval_seconds,
        ),
        id=workflow_id(psa),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return handle.id


async def ensure_payment_pollers(client: Client, settings: Settings) -> list[str]:
    """One payment poller per ERP the legal entities book in, each started unless it already runs."""
    ids = []
    for erp in sorted({entity.erp for entity in settings.entities}):
        handle = await client.start_workflow(
            ErpPaymentPoller.run,
            ErpPaymentPollerInput(erp=erp, poll_interval_seconds=settings.payment_poll_interval_seconds),
            id=payment_feed_id(erp),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        ids.append(handle.id)
    return ids
