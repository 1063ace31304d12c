"""The composition root: builds connectors, ledger and Temporal worker from settings, and runs it.

Nothing else in ps-sync builds clients or engines, so what a workflow can reach stays free of I/O.
Connectors are found by the names the settings give them (`crm`, `psa`, each legal entity's `erp`) among
the installed `pssync.connectors` entry points, so this module names no vendor.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.alerts import AlertActivities
from activities.billing_starter import StarterActivities
from activities.contract_amendment import AmendmentActivities
from activities.crm import CrmActivities
from activities.erp import ErpActivities
from activities.erp_router import ErpRouter
from activities.exceptions import ExceptionActivities, RetryContext
from activities.feed_billing import FeedBillingActivities
from activities.invoice_nudges import InvoiceNudgeActivities
from activities.ledger import LedgerActivities
from activities.month_end import MonthEndActivities
from activities.month_end_posting import MonthEndPostingActivities
from activities.payables import PayablesActivities
from activities.payables_reconciliation import PayablesReconciliationActivities
from activities.payables_starter import PayablesStarterActivities
from activities.psa import PsaActivities
from activities.reconciliation import ReconciliationActivities
from activities.reference import ReferenceActivities
from activities.vendor_trouble import VendorTroubleInterceptor
from config import Settings
from connectors.call_budget import CallBudgets, SharesCallBudget
from connectors.roles import CrmConnector, ErpConnector, PsaConnector
from ledger.call_budget import LedgerCallBudgets
from ledger.database import Database
from observability.interceptor import LogContextInterceptor
from observability.logging import configure_logging
from observability.metrics import runtime_with_metrics
from observability.run_metrics import RunMetricsInterceptor
from runs.client import connect_client
from runs.workflow_code import share_workflow_code
from workflows.alert_scan import AlertScan
from workflows.contract_amendment import ContractAmendment
from workflows.exceptions import ExceptionAction
from workflows.invoice_to_cash import InvoiceToCash
from workflows.month_end_close import MonthEndClose
from workflows.opportunity_to_project import OpportunityToProject
from workflows.payables import Payables
from workflows.payables_scan import PayablesScan
from workflows.payment_feed import ErpPaymentPoller
from workflows.psa_feed import PsaFeedPoller
from workflows.reconciliation import Reconciliation
from workflows.reference_sync import ReferenceSync
from workflows.time_to_billing import TimeToBilling

WORKFLOWS: Sequence[type] = (
    OpportunityToProject,
    ContractAmendment,
    TimeToBilling,
    InvoiceToCash,
    PsaFeedPoller,
    ErpPaymentPoller,
    ReferenceSync,
    Reconciliation,
    ExceptionAction,
    AlertScan,
    Payables,
    PayablesScan,
    MonthEndClose,
)

log = structlog.get_logger("worker")

CONNECTOR_ENTRY_POINTS = "pssync.connectors"


class ConnectorUnavailable(RuntimeError):
    """The settings name a connector this installation cannot provide for the role asked of it."""


@dataclass
class Connectors:
    crm: CrmConnector
    psa: PsaConnector
    erps: ErpRouter

    async def aclose(self) -> None:
        await self.crm.aclose()
        await self.psa.aclose()
        await self.erps.aclose()


def installed_connectors() -> list[str]:
    return sorted({point.name for point in entry_points(group=CONNECTOR_ENTRY_POINTS)})


def find_connector(name: str, setting: str) -> EntryPoint:
    """The entry point installed under `name`; `setting` says which setting named it, for the error."""
    found = {point.value: point for point in entry_points(group=CONNECTOR_ENTRY_POINTS, name=name)}
    if not found:
        # Entry points exist only once the package is installed (`pip install -e .` from a checkout).
        installed = ", ".join(installed_connectors()) or "none (is ps-sync installed?)"
        raise ConnectorUnavailable(
            f"{setting} names connector {name!r}, which is not installed "
            f"(entry point group {CONNECTOR_ENTRY_POINTS!r}); installed: {installed}"
        )
    if len(found) > 1:
        raise ConnectorUnavailable(
            f"{setting} names connector {name!r}, which several packages install: {', '.join(sorted(found))}"
        )
    return next(iter(found.values()))


# `role` is a runtime-checkable role protocol: mypy takes no protocol class for a `type[T]` parameter.
def load_connector(
    point: EntryPoint,
    role: type[Any],
    setting: str,
    settings: Settings,
    call_budgets: CallBudgets | None = None,
) -> Any:
    """The connector built by `from_settings(settings)` of what the entry point names.

    It must offer `role` and call itself by its entry point's name: the ledger records a connector's
    `system`, and the worker finds the connector again by the configured name, so the two must agree.
    A connector whose vendor limits calls per tenant is given `call_budgets`, when there are any.
    """
    factory = point.load()
    from_settings = getattr(factory, "from_settings", None)
    if not callable(from_settings):
        raise ConnectorUnavailable(f"connector {point.name!r} ({point.value}) has no from_settings(settings)")
    connector = from_settings(settings)
    if not isinstance(connector, role):
        raise ConnectorUnavailable(
            f"{setting} names connector {point.name!r} ({point.value}), which is not a {role.__name__}"
        )
    if connector.system != point.name:
        raise ConnectorUnavailable(
            f"connector {point.name!r} ({point.value}) calls itself {connector.system!r}; "
            f"its entry point must be named after its system"
        )
    if call_budgets is not None and isinstance(connector, SharesCallBudget):
        connector.share_call_budgets(call_budgets)
    return connector


def build_connectors(settings: Settings, *, call_budgets: CallBudgets | None = None) -> Connectors:
    """The CRM `settings.crm`, the PSA `settings.psa` and one ERP per distinct legal entity `erp`.

    With `call_budgets` (the ledger's, in a worker), vendors' per-tenant call limits are shared by every
    worker of the deployment; without, each connector counts only its own process's calls.
    """
    erp_settings: dict[str, str] = {}
    for entity in settings.entities:
        erp_settings.setdefault(entity.erp, f"the erp of legal entity {entity.code} (PSSYNC_ENTITIES)")
    crm_setting, psa_setting = "crm (PSSYNC_CRM)", "psa (PSSYNC_PSA)"
    # Every name is looked up before any connector is built, so a typo fails before a client is opened.
    crm = find_connector(settings.crm, crm_setting)
    psa = find_connector(settings.psa, psa_setting)
    erps = {name: find_connector(name, setting) for name, setting in erp_settings.items()}
    return Connectors(
        crm=load_connector(crm, CrmConnector, crm_setting, settings, call_budgets),
        psa=load_connector(psa, PsaConnector, psa_setting, settings, call_budgets),
        erps=ErpRouter(
            {
                name: load_connector(point, ErpConnector, erp_settings[name], settings, call_budgets)
                for name, point in erps.items()
            },
            settings.entities,
        ),
    )


def activities_for(
    connectors: Connectors, database: Database, client: Client, settings: Settings
) -> list[Any]:
    crm = CrmActivities(connectors.crm)
    psa = PsaActivities(connectors.psa, database)
    erp = ErpActivities(connectors.erps, database)
    ledger = LedgerActivities(database)
    amendments = AmendmentActivities(connectors.psa, database)
    starter = StarterActivities(client, settings.task_queue, connectors.psa)
    feed_billing = FeedBillingActivities(connectors.psa, database, starter)
    nudges = InvoiceNudgeActivities(client)
    reference = ReferenceActivities(connectors.erps, connectors.psa, database)
    reconciliation = ReconciliationActivities(connectors.psa, connectors.erps, database)
    payables_reconciliation = PayablesReconciliationActivities(connectors.psa, connectors.erps, database)
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
    alerts = AlertActivities(database, client, settings)
    payables = PayablesActivities(connectors.psa, connectors.erps, database)
    payables_starter = PayablesStarterActivities(client, connectors.psa, settings.task_queue)
    month_end = MonthEndActivities(connectors.psa, connectors.erps, database)
    month_end_posting = MonthEndPostingActivities(connectors.erps, database)
    return [
        crm.fetch_opportunity,
        crm.write_back_ids,
        crm.push_receivables_to_crm,
        crm.create_crm_task,
        psa.ensure_project,
        psa.hold_project,
        psa.get_project_billing_setup,
        psa.read_project,
        psa.read_rate_card,
        psa.read_project_resources,
        psa.fetch_time_batch,
        psa.fetch_expense_batch,
        psa.owed_items,
        psa.mark_billed,
        psa.fetch_unbilled_milestones,
        psa.push_financials_to_psa,
        psa.poll_psa_events,
        erp.ensure_customer,
        erp.ensure_erp_project,
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
        amendments.load_contract_versions,
        amendments.save_contract_version,
        amendments.amend_psa_project,
        starter.start_billing,
        feed_billing.poll_and_nudge_billing,
        nudges.nudge_invoice_runs,
        reference.sync_erp_reference,
        reference.sync_psa_resources,
        reconciliation.reconciliation_scope,
        reconciliation.gather_evidence,
        payables_reconciliation.gather_payables_evidence,
        exceptions.load_exception,
        exceptions.apply_exception_fix,
        exceptions.retry_exception_process,
        exceptions.retry_progress,
        exceptions.close_exception,
        exceptions.record_findings,
        alerts.record_alert_incidents,
        alerts.send_alerts,
        payables.read_supplier_expenses,
        payables.read_subcontracted_time,
        payables.load_cost_accounts,
        payables.ensure_supplier,
        payables.post_bill,
        payables.get_bill_status,
        payables.mark_expenses_on_bill,
        payables.mark_expenses_reimbursed,
        payables.mark_time_on_bill,
        payables.mark_time_paid,
        payables.resolve_exceptions,
        payables_starter.start_payables_runs,
        month_end.month_end_scope,
        month_end.close_projects,
        month_end.save_positions,
        month_end.push_month_end_financials,
        month_end_posting.post_month_end_journal,
    ]


def build_worker(
    client: Client,
    *,
    settings: Settings,
    connectors: Connectors,
    database: Database,
    executor: ThreadPoolExecutor,
) -> Worker:
    share_workflow_code("workflows")
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(connectors, database, client, settings),
        activity_executor=executor,
        max_cached_workflows=settings.worker_cached_runs,
        interceptors=[
            LogContextInterceptor(),
            VendorTroubleInterceptor.from_settings(settings, database),
            RunMetricsInterceptor(),
        ],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings) -> None:
    database = Database.from_url(settings.database_url)
    database.migrate()
    # The SDK's metrics and ps-sync's come from the runtime the worker's client is built on.
    runtime = (
        runtime_with_metrics(settings.worker_metrics_address) if settings.worker_metrics_address else None
    )
    client = await connect_client(settings, runtime=runtime)
    if settings.worker_metrics_address:
        log.info("worker_metrics", url=f"http://{settings.worker_metrics_address}/metrics")
    connectors = build_connectors(settings, call_budgets=LedgerCallBudgets(database))
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
