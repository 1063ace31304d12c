"""Long-running workflows ps-sync keeps alive, started idempotently (CLI and local stack alike)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from pssync.settings import Settings
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
