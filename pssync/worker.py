"""The composition root: builds connectors, ledger and Temporal worker from settings, and runs it.

Nothing else in ps-sync builds clients or engines, so what a workflow can reach stays free of I/O.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from pssync.activities.billing_starter import StarterActivities
from pssync.activities.crm import CrmActivities
from pssync.activities.erp import ErpActivities
from pssync.activities.erp_router import ErpRouter
from pssync.activities.exceptions import ExceptionActivities, RetryContext
from pssync.activities.invoice_nudges import InvoiceNudgeActivities
from pssync.activities.ledger import LedgerActivities
from pssync.activities.psa import PsaActivities
from pssync.activities.reconciliation import ReconciliationActivities
from pssync.activities.reference import ReferenceActivities
from pssync.connectors.kantata.connector import KantataConnector
from pssync.connectors.roles import CrmConnector, ErpConnector, PsaConnector
from pssync.connectors.salesforce.connector import SalesforceConnector
from pssync.connectors.tryton.connector import TrytonConnector
from pssync.connectors.xero.connector import XeroConnector
from pssync.ledger.database import Database
from pssync.observability.interceptor import LogContextInterceptor
from pssync.observability.logging import configure_logging
from pssync.settings import Settings
from pssync.temporal_client import connect_client
from pssync.workflows.exceptions import ExceptionAction
from pssync.workflows.invoice_to_cash import InvoiceToCash
from pssync.workflows.opportunity_to_project import OpportunityToProject
from pssync.workflows.payment_feed import ErpPaymentPoller
from pssync.workflows.psa_feed import PsaFeedPoller
from pssync.workflows.reconciliation import Reconciliation
from pssync.workflows.reference_sync import ReferenceSync
from pssync.workflows.time_to_billing import TimeToBilling

WORKFLOWS: Sequence[type] = (
    OpportunityToProject,
    TimeToBilling,
    InvoiceToCash,
    PsaFeedPoller,
    ErpPaymentPoller,
    ReferenceSync,
    Reconciliation,
    ExceptionAction,
)

log = structlog.get_logger("pssync.worker")


@dataclass
class Connectors:
    crm: CrmConnector
    psa: PsaConnector
    erps: ErpRouter

    async def aclose(self) -> None:
        await self.crm.aclose()
        await self.psa.aclose()
        await self.erps.aclose()


def build_connectors(settings: Settings) -> Connectors:
    erps: dict[str, ErpConnector] = {
        "xero": XeroConnector.from_settings(settings),
        "tryton": TrytonConnector.from_settings(settings),
    }
    return Connectors(
        crm=SalesforceConnector.from_settings(settings),
        psa=KantataConnector.from_settings(settings),
        erps=ErpRouter(erps, settings.entities),
    )


def activities_for(
    connectors: Connectors, database: Database, client: Client, settings: Settings
) -> list[Any]:
    crm = CrmActivities(connectors.crm)
    psa = PsaActivities(connectors.psa, database)
    erp = ErpActivities(connectors.erps, database)
    ledger = LedgerActivities(database)
    starter = StarterActivities(client, settings.task_queue)
    nudges = InvoiceNudgeActivities(client)
    reference = ReferenceActivities(connectors.erps, connectors.psa, database)
    reconciliation = ReconciliationActivities(connectors.psa, connectors.erps, database)
    exceptions = ExceptionActivities(
        RetryContext(
            client=client,
            task_queue=settings.task_queue,
            entities=tuple(settings.entities),
            crm=connectors.crm,
            psa=connectors.psa.system,
            billing_settle_seconds=300,
            invoice_poll_interval_seconds=3600,
        ),
        database,
    )
    return [
        crm.fetch_opportunity,
        crm.write_back_ids,
        crm.push_receivables_to_crm,
        crm.create_crm_task,
        psa.ensure_project,
        psa.hold_project,
        psa.get_project_billing_setup,
        psa.fetch_time_batch,
        psa.fetch_expense_batch,
        psa.mark_billed,
        psa.fetch_unbilled_milestones,
        psa.push_financials_to_psa,
        psa.poll_psa_events,
        erp.ensure_customer,
        erp.post_invoice,
        erp.get_invoice_status,
        erp.payments_since,
        erp.write_off_invoice,
        ledger.raise_exception,
        ledger.raise_exceptions,
        ledger.audit,
        ledger.save_project_contract,
        ledger.load_project_contract,
        ledger.mark_posting_billed,
        ledger.billing_history,
        starter.start_billing,
        nudges.nudge_invoice_runs,
        reference.sync_erp_reference,
        reference.sync_psa_resources,
        reconciliation.reconciliation_scope,
        reconciliation.gather_evidence,
        exceptions.load_exception,
        exceptions.apply_exception_fix,
        exceptions.retry_exception_process,
        exceptions.retry_progress,
        exceptions.close_exception,
        exceptions.record_findings,
    ]


def build_worker(
    client: Client,
    *,
    settings: Settings,
    connectors: Connectors,
    database: Database,
    executor: ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(connectors, database, client, settings),
        activity_executor=executor,
        interceptors=[LogContextInterceptor()],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings) -> None:
    database = Database.from_url(settings.database_url)
    database.migrate()
    client = await connect_client(settings)
    connectors = build_connectors(settings)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        worker = build_worker(
            client, settings=settings, connectors=connectors, database=database, executor=executor
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_address)
        async with worker:
            await stop.wait()
            log.info("worker_stopping")
        await connectors.aclose()
    database.dispose()
    log.info("worker_stopped")


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
