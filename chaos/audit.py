"""Source held against target, read from the vendors themselves once the chaos has stopped.

Independent of ps-sync's own bookkeeping wherever a vendor can say it: projects are counted in Kantata by
the opportunity they carry, customers in the ERP by the CRM account (code or number) and by name, invoices
in the ERP by the reference of their project and period, billed entries in Kantata by the invoice they sit
on. The ledger is read only to hold its postings (one per billing idempotency key) against the ERP.

- duplicates: a second project, customer or live invoice for one deal, an ERP invoice without its posting,
  or hours invoiced beyond the entries marked with that invoice's number (work billed twice);
- unbilled: approved billable time entries on no invoice;
- lost: something a vendor emitted that left no trace in ps-sync (a closed-won deal without its project
  run, approved time without a billing run, a payment without the invoice's run, a gap the feed reported);
- mismatches: what disagrees without being one of those (an entry billed under a number the ERP does not
  hold, a posting whose invoice the ERP does not show); unpaid: live invoices not paid.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from activities.reconciliation import invoice_reference_prefix
from canonical import Period
from chaos.temporal_waits import Runs
from chaos.workload import Deal
from config import Settings
from connectors.kantata.fields import ERP_INVOICE_MODEL, OPPORTUNITY_MODEL, SERVICE_NAME
from connectors.tryton.rpc import TrytonRpc
from ledger.database import Database
from ledger.repository import postings_for
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.psa_feed import PsaFeedPollerStatus
from runs.psa_feed import workflow_id as feed_id
from sandboxes.kantata.seed import KantataSeeder
from sandboxes.xero.seed import XeroFinanceUser

XERO_DEAD = ("VOIDED", "DELETED")
TRYTON_DEAD = ("cancelled",)
# Deals checked at once (each reads a handful of records from each vendor).
PARALLEL = 4
QUERY_SECONDS = 60.0


@dataclass(frozen=True)
class ErpInvoice:
    invoice_id: str
    number: str
    paid: bool
    hours: Decimal
    lines: int


@dataclass
class AuditResult:
    duplicates: list[str] = field(default_factory=list)
    unbilled: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    unpaid: list[str] = field(default_factory=list)
    duplicate_count: int = 0
    unbilled_count: int = 0
    lost_count: int = 0
    invoices: Counter[str] = field(default_factory=Counter)
    projects: int = 0
    workspaces: int = 0
    customers: int = 0
    approved_entries: int = 0
    billed_entries: int = 0

    def duplicate(self, count: int, what: str) -> None:
        if count > 0:
            self.duplicate_count += count
            self.duplicates.append(what)

    def lose(self, count: int, what: str) -> None:
        if count > 0:
            self.lost_count += count
            self.lost.append(what)


class Auditor:
    def __init__(self, settings: Settings, runs: Runs, period: Period) -> None:
        self._settings = settings
        self._runs = runs
        self._period = period
        self._kantata = KantataSeeder.for_sandbox(settings.kantata_base_url)
        self._xero = XeroFinanceUser.from_settings(settings)
        self._tryton = TrytonRpc(
            url=settings.tryton_url,
            database=settings.tryton_database,
            user=settings.tryton_user,
            password=settings.tryton_password.get_secret_value(),
        )
        self._ledger = Database.from_url(settings.database_url)

    async def aclose(self) -> None:
        await self._kantata.aclose()
        await self._xero.aclose()
        await self._tryton.aclose()
        self._ledger.dispose()

    async def audit(self, deals: Sequence[Deal]) -> AuditResult:
        result = AuditResult()
        gate = asyncio.Semaphore(PARALLEL)

        async def one(deal: Deal) -> None:
            async with gate:
                await self._deal(deal, result)

        await asyncio.gather(*(one(deal) for deal in deals if deal.opportunity_id))
        workspaces = await self._kantata.every("/workspaces", {"include_archived": "true"})
        result.workspaces = len(workspaces)
        # Nothing but the deals makes projects on this stack: any more is a duplicate one of them hides.
        result.duplicate(
            len(workspaces) - result.projects,
            f"Kantata holds {len(workspaces)} projects, {result.projects} of them for the deals",
        )
        await self._feed_gaps(result)
        return result

    async def _deal(self, deal: Deal, result: AuditResult) -> None:
        tag = f"deal {deal.number} ({deal.entity}, opportunity {deal.opportunity_id})"
        if await self._runs.describe(o2p_id("salesforce", deal.opportunity_id)) is None:
            result.lose(1, f"{tag}: closed won, but no OpportunityToProject run exists")
        projects = await self._projects_of(deal.opportunity_id)
        result.projects += len(projects)
        result.duplicate(len(projects) - 1, f"{tag}: {len(projects)} Kantata projects {projects}")
        if deal.erp is None:
            erp = "xero" if deal.entity == "UK" else "tryton"
        else:
            erp = deal.erp
        customers = await self._customers_of(erp, deal)
        result.customers += min(len(customers), 1)
        result.duplicate(len(customers) - 1, f"{tag}: {len(customers)} {erp} customers {sorted(customers)}")
        for project_id in projects:
            await self._billing(deal, tag, erp, project_id, result)
        if deal.payment_applied and deal.cash_workflow:
            if await self._runs.describe(deal.cash_workflow) is None:
                result.lose(1, f"{tag}: payment applied, but no {deal.cash_workflow} run exists")

    async def _billing(self, deal: Deal, tag: str, erp: str, project_id: str, result: AuditResult) -> None:
        period = self._period.value
        prefix = invoice_reference_prefix(project_id, period)
        invoices = await (self._xero_invoices(prefix) if erp == "xero" else self._tryton_invoices(prefix))
        result.invoices[erp] += len(invoices)
        result.duplicate(
            len(invoices) - 1,
            f"{tag}: {len(invoices)} live {erp} invoices for {prefix}*: {[i.number for i in invoices]}",
        )
        for invoice in invoices:
            if not invoice.paid:
                result.unpaid.append(f"{tag}: {erp} invoice {invoice.number} is not paid")

        postings = await asyncio.to_thread(self._postings, project_id, period)
        by_target = {p.target_id: p for p in postings}
        # An extra live invoice is counted once, above; what else is wrong with it is said, not counted again.
        extra = len(invoices) > 1
        for invoice in invoices:
            if invoice.invoice_id not in by_target:
                note = f"{tag}: {erp} invoice {invoice.number} has no posting (no idempotency key of ours)"
                (result.duplicates if extra else result.mismatches).append(note)
        live_ids = {i.invoice_id for i in invoices}
        for posting in postings:
            if posting.target_id not in live_ids:
                result.mismatches.append(
                    f"{tag}: posting {posting.idempotency_key} names {erp} invoice {posting.target_id}, "
                    "which the ERP does not hold live"
                )
        keys = Counter(p.target_id for p in postings)
        for target, count in keys.items():
            result.duplicate(count - 1, f"{tag}: {count} postings (idempotency keys) for invoice {target}")

        entries = await self._kantata.every(
            "/time_entries",
            # `invoice` brings each entry's invoice_id (Kantata leaves it out otherwise).
            {"workspace_id": project_id, "approved": "true", "billable": "true", "include": "invoice"},
        )
        result.approved_entries += len(entries)
        if entries and await self._runs.describe(f"time-to-billing:{project_id}:{period}") is None:
            result.lose(len(entries), f"{tag}: {len(entries)} approved entries, but no billing run exists")
        unbilled = [e for e in entries if not e.get("is_invoiced")]
        if unbilled:
            result.unbilled_count += len(unbilled)
            result.unbilled.append(
                f"{tag}: {len(unbilled)} approved entries unbilled: {[e['id'] for e in unbilled][:10]}"
            )
        numbers = await self._kantata_invoice_numbers(
            {str(e["invoice_id"]) for e in entries if e.get("invoice_id")}
        )
        minutes: Counter[str] = Counter()
        for entry in entries:
            if entry.get("is_invoiced"):
                result.billed_entries += 1
                minutes[numbers.get(str(entry.get("invoice_id")), "")] += int(entry["time_in_minutes"])
        live_numbers = {i.number for i in invoices}
        for number, total in minutes.items():
            if number not in live_numbers:
                result.mismatches.append(
                    f"{tag}: {total / 60:g} h billed in Kantata under {number or 'no number'}, "
                    f"which {erp} does not hold live"
                )
        for invoice in invoices:
            marked = Decimal(minutes.get(invoice.number, 0)) / 60
            # Each ERP line rounds its quantity (Tryton to 2 places, Xero to 4): allow that much per line.
            slack = Decimal("0.01") * invoice.lines
            if invoice.hours > marked + slack:
                note = (
                    f"{tag}: {erp} invoice {invoice.number} bills {invoice.hours} h, the entries marked with "
                    f"its number hold {marked} h (work billed twice)"
                )
                if extra:
                    result.duplicates.append(note)
                else:
                    # Work on the one invoice that no entry of it accounts for: entries billed twice over.
                    per_entry = Decimal(entries[0]["time_in_minutes"]) / 60 if entries else Decimal(8)
                    result.duplicate(max(int((invoice.hours - marked) / per_entry), 1), note)
            elif marked > invoice.hours + slack:
                result.mismatches.append(
                    f"{tag}: {marked} h marked billed as {invoice.number}, which bills {invoice.hours} h"
                )

    def _postings(self, project_id: str, period: str) -> list[Any]:
        with self._ledger.session(read_only=True) as session:
            return list(postings_for(session, project_id=project_id, period=period))

    async def _projects_of(self, opportunity_id: str) -> list[str]:
        body = await self._kantata.call(
            "GET",
            "/workspaces",
            params={
                "external_reference_service_name": SERVICE_NAME,
                "external_reference_service_model": OPPORTUNITY_MODEL,
                "external_reference_service_model_refs": f"salesforce:{opportunity_id}",
                "include_archived": "true",
                "per_page": 200,
            },
        )
        return [str(record["id"]) for record in KantataSeeder.records(body)]

    async def _kantata_invoice_numbers(self, invoice_ids: set[str]) -> dict[str, str]:
        if not invoice_ids:
            return {}
        body = await self._kantata.call(
            "GET",
            "/invoices",
            params={"only": ",".join(sorted(invoice_ids)), "include": "external_references", "per_page": 200},
        )
        references = body.get("external_references", {})
        numbers = {}
        for invoice in KantataSeeder.records(body):
            for ref_id in invoice.get("external_reference_ids", []):
                ref = references.get(str(ref_id), {})
                if ref.get("service_name") == SERVICE_NAME and ref.get("service_model") == ERP_INVOICE_MODEL:
                    numbers[str(invoice["id"])] = str(ref["service_model_ref"])
        return numbers

    async def _customers_of(self, erp: str, deal: Deal) -> set[str]:
        if erp == "xero":
            found: set[str] = set()
            for where in (f'ContactNumber=="{deal.account_id}"', f'Name=="{deal.account_name}"'):
                body = await self._xero.call("GET", "/Contacts", params={"where": where})
                found |= {str(c["ContactID"]) for c in body.get("Contacts", [])}
            return found
        ids: set[int] = set()
        for domain in ([("code", "=", deal.account_id)], [("name", "=", deal.account_name)]):
            ids |= set(await self._tryton.search("party.party", domain))
        return {str(i) for i in ids}

    async def _xero_invoices(self, prefix: str) -> list[ErpInvoice]:
        out = []
        page = 1
        while True:
            body = await self._xero.call(
                "GET",
                "/Invoices",
                params={
                    "where": f'Type=="ACCREC" AND Reference.StartsWith("{prefix}")',
                    "page": page,
                    "unitdp": 4,
                },
            )
            invoices = body.get("Invoices", [])
            for invoice in invoices:
                if invoice.get("Status") in XERO_DEAD:
                    continue
                lines = invoice.get("LineItems", [])
                out.append(
                    ErpInvoice(
                        invoice_id=str(invoice["InvoiceID"]),
                        number=str(invoice.get("InvoiceNumber") or ""),
                        paid=invoice.get("Status") == "PAID",
                        hours=sum((Decimal(str(line.get("Quantity") or 0)) for line in lines), Decimal(0)),
                        lines=len(lines),
                    )
                )
            if len(invoices) < 100:
                return out
            page += 1

    async def _tryton_invoices(self, prefix: str) -> list[ErpInvoice]:
        records = await self._tryton.search_read(
            "account.invoice",
            [
                ("reference", "like", prefix.replace("%", "\\%").replace("_", "\\_") + "%"),
                ("type", "=", "out"),
            ],
            ["number", "state", "lines"],
        )
        out = []
        for record in records:
            if record["state"] in TRYTON_DEAD:
                continue
            lines = [
                line
                for line in await self._tryton.read(
                    "account.invoice.line", record["lines"], ["quantity", "type"]
                )
                if line.get("type", "line") == "line"
            ]
            out.append(
                ErpInvoice(
                    invoice_id=str(record["id"]),
                    number=str(record.get("number") or ""),
                    paid=record["state"] == "paid",
                    hours=sum((Decimal(str(line["quantity"])) for line in lines), Decimal(0)),
                    lines=len(lines),
                )
            )
        return out

    async def _feed_gaps(self, result: AuditResult) -> None:
        status = await self._runs.query(
            feed_id(self._settings.psa),
            "status",
            time.monotonic() + QUERY_SECONDS,
            result_type=PsaFeedPollerStatus,
        )
        if status.last_gap is not None:
            result.lose(1, f"the Kantata feed poller reported lost events: {status.last_gap}")
