"""The ERP role over a real Tryton server (the EU entity's books).

Tryton has no idempotency header, so every write is "look up by our key, then create": the key is stored
on the document in the same `create` call (see mapping.py for which field), which makes a retried post,
payment or credit find the first one instead of making a second.

Tryton is the authority on amounts: it computes every line as quantity x unit price rounded to the currency
(half-even) and computes taxes. Rating rounds quantities to what the entity's ERP stores and prices each line
the way Tryton does (domain.erp_rounding), and lines are sent exactly as rated (quantities within their
unit's digits), so the totals agree by construction; `post_invoice` still compares Tryton's untaxed total
with ours before posting and refuses to post an amount other than the one we billed.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from canonical import (
    Account,
    CreditNote,
    ErpCustomer,
    Invoice,
    InvoiceStatus,
    LegalEntity,
    Money,
    Payment,
    PostedInvoice,
    name_key,
    tax_number_key,
)
from canonical.booked_bills import BookedBill
from canonical.dimensions import Dimension, ErpProject, ErpProjectSpec, practice_code
from canonical.journals import BookedJournal, Journal, PostedJournal
from canonical.payables import Bill, BillStatus, PostedBill, Supplier
from canonical.reference import BookedInvoice, ErpReferenceData
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.http import DEFAULT_TIMEOUT
from connectors.tryton import (
    bills,
    booked_bills,
    credits,
    documents,
    mapping,
    payments,
    posting,
    reference,
    settlements,
)
from connectors.tryton.analytic import TrytonAnalytics
from connectors.tryton.books import TrytonBooks
from connectors.tryton.journals import TrytonJournals
from connectors.tryton.rpc import TrytonRpc

if TYPE_CHECKING:
    from config import Settings

SYSTEM = "tryton"

DEFAULT_CONSULTING_PRODUCT = "Consulting services"
DEFAULT_EXPENSES_PRODUCT = "Expenses re-billed"
DEFAULT_PAYMENT_METHOD = "Bank transfer"


# How often a new project may draw its number from Tryton's work sequence before the refusal stands.
_NUMBER_DRAWS = 3


class TrytonConnector:
    """`ErpConnector` for Tryton 8.2 over JSON-RPC. One instance holds one Tryton session."""

    system = SYSTEM

    def __init__(
        self,
        *,
        url: str,
        database: str,
        user: str,
        password: str,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        consulting_product: str = DEFAULT_CONSULTING_PRODUCT,
        expenses_product: str = DEFAULT_EXPENSES_PRODUCT,
        payment_method: str = DEFAULT_PAYMENT_METHOD,
        max_concurrent_posts: int = 2,
    ) -> None:
        self.rpc = TrytonRpc(
            url=url, database=database, user=user, password=password, http=http, timeout=timeout
        )
        self.books = TrytonBooks(
            self.rpc,
            consulting_product=consulting_product,
            expenses_product=expenses_product,
            payment_method=payment_method,
        )
        # Tryton posts one invoice at a time (~1.5 s of server CPU each, SQLite writes serialised); more in
        # flight only queue up inside Tryton until activities time out and retry (measured in bench/).
        self._posting = asyncio.Semaphore(max_concurrent_posts)
        # Tryton on SQLite reads its work sequence before the create's write transaction begins, so projects
        # created at once draw the same number and all but one are refused: one process creates one at a time.
        self._numbering = asyncio.Lock()
        self.analytics = TrytonAnalytics(self.rpc, self.books)
        self.journals = TrytonJournals(self.rpc, self.books, self.analytics)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrytonConnector:
        return cls(
            url=settings.tryton_url,
            database=settings.tryton_database,
            user=settings.tryton_user,
            password=settings.tryton_password.get_secret_value(),
        )

    async def aclose(self) -> None:
        await self.rpc.aclose()

    # -- customers -----------------------------------------------------------------------------------------

    async def find_customer(self, account: Account) -> str | None:
        await self.books.company()
        found = await self.rpc.search("party.party", [("code", "=", account.id)], limit=2)
        if len(found) > 1:
            raise Conflict(f"several Tryton parties carry code {account.id!r}", system=SYSTEM)
        return str(found[0]) if found else None

    async def create_customer(self, account: Account, *, entity: LegalEntity, idempotency_key: str) -> str:
        # The CRM account id is the party code, which Tryton keeps unique: it is the idempotency key here.
        existing = await self.find_customer(account)
        if existing is not None:
            return existing
        country = (
            await self.books.country(account.billing_address.country) if account.billing_address else None
        )
        try:
            (party,) = await self.rpc.create(
                "party.party", [mapping.party_values(account, country_id=country)]
            )
        except Rejected:
            # A concurrent attempt may have created it between our search and create (codes are unique).
            existing = await self.find_customer(account)
            if existing is not None:
                return existing
            raise
        return str(party)

    async def find_customers_by_name_and_tax_number(self, name: str, tax_number: str) -> list[ErpCustomer]:
        """Parties holding the tax number as an identifier, whose name matches.

        Tryton stores known identifier types (EU VAT among them) compacted, which is what `tax_number_key`
        produces; being letters and digits only, it is also free of `ilike` wildcards, so the search is an
        exact, case-insensitive match. The name is compared here with `name_key`.
        """
        wanted_name, wanted_tax = name_key(name), tax_number_key(tax_number)
        if not wanted_name or wanted_tax is None:
            raise Rejected(
                "a customer search needs a name and a tax number",
                system=SYSTEM,
                field_errors=[FieldError(field="name" if not wanted_name else "tax_number", message="empty")],
            )
        identifiers = await self.rpc.search_read(
            "party.identifier", [("code", "ilike", wanted_tax)], ["party", "code"]
        )
        taxes = {
            row["party"]: row["code"] for row in identifiers if tax_number_key(row["code"]) == wanted_tax
        }
        parties = await self.rpc.read("party.party", sorted(taxes), ["id", "name", "code"])
        return [
            ErpCustomer(
                id=str(party["id"]),
                name=party["name"],
                tax_number=taxes[party["id"]],
                external_ref=party["code"],
            )
            for party in parties
            if name_key(party["name"] or "") == wanted_name
        ]

    # -- invoices ------------------------------------------------------------------------------------------

    async def _invoice_record(self, invoice_id: str) -> dict[str, Any]:
        return await posting.customer_invoice(self.rpc, self.books, invoice_id)

    async def find_invoice(self, reference: str) -> PostedInvoice | None:
        return await posting.find_invoice(self.rpc, self.books, reference)

    async def post_invoice(
        self, invoice: Invoice, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedInvoice:
        async with self._posting:
            return await posting.post_invoice(
                self.rpc,
                self.books,
                invoice,
                entity=entity,
                idempotency_key=idempotency_key,
                analytics=self.analytics,
            )

    async def get_invoice(self, invoice_id: str) -> InvoiceStatus:
        return await settlements.invoice_status(self.rpc, self.books, await self._invoice_record(invoice_id))

    # -- payments ------------------------------------------------------------------------------------------

    async def apply_payment(
        self, invoice_id: str, amount: Money, *, reference: str, idempotency_key: str
    ) -> Payment:
        record = await self._invoice_record(invoice_id)
        return await payments.apply_payment(
            self.rpc, self.books, record, amount, reference=reference, idempotency_key=idempotency_key
        )

    async def payments_since(self, modified_since: datetime | None) -> list[Payment]:
        return await payments.payments_since(self.rpc, self.books, modified_since)

    # -- credits and voids ---------------------------------------------------------------------------------

    async def credit_invoice(
        self, invoice_id: str, amount: Money, *, reason: str, idempotency_key: str
    ) -> CreditNote:
        record = await self._invoice_record(invoice_id)
        currency = await self.books.currency_code(record["currency"])
        found = [
            r
            for r in await documents.by_key(self.rpc, record["company"], idempotency_key)
            if r["id"] != record["id"]
        ]
        if len(found) > 1:
            raise Conflict(
                f"several Tryton credit notes carry idempotency key {idempotency_key!r}", system=SYSTEM
            )
        if found:
            credit = found[0]
            if credit["reference"] != record["number"]:
                raise Conflict(
                    f"idempotency key {idempotency_key!r} credited invoice {credit['reference']!r}, "
                    f"not {record['number']!r}",
                    system=SYSTEM,
                )
        else:
            documents.check_amount(amount, currency)
            if record["state"] != "posted":
                raise Rejected(
                    f"Tryton invoice {record['number'] or record['id']} is {record['state']}; only a "
                    "posted invoice with an amount due can be credited",
                    system=SYSTEM,
                )
            if amount.amount > record["amount_to_pay"]:
                raise Rejected(
                    f"credit of {amount} exceeds the {record['amount_to_pay']} {currency} still due",
                    system=SYSTEM,
                    field_errors=[FieldError(field="amount", message="exceeds amount due")],
                )
            credit = await credits.create_credit_note(self.rpc, record, amount, reason, idempotency_key)
        if credit["state"] in ("draft", "validated"):
            await documents.post(self.rpc, credit["id"])
            credit = await documents.read_invoice(self.rpc, credit["id"])
        await credits.allocate(self.rpc, record["id"], credit)
        return mapping.credit_note_from(
            credit, invoice_id=record["id"], currency=currency, amount=-credit["total_amount"]
        )

    async def void_invoice(self, invoice_id: str) -> None:
        record = await self._invoice_record(invoice_id)
        if record["state"] == "cancelled":
            return
        if record["state"] == "paid" or record["payment_lines"]:
            raise Rejected(
                f"Tryton invoice {record['number']} has payments or credits allocated; credit it "
                "instead of voiding it",
                system=SYSTEM,
            )
        await self.rpc.button("account.invoice", "cancel", [record["id"]])

    # -- payables (suppliers and supplier invoices) --------------------------------------------------------

    async def ensure_supplier(self, supplier: Supplier, *, entity: LegalEntity, idempotency_key: str) -> str:
        # The supplier key is the party code, which Tryton keeps unique: it is the idempotency key here.
        return await bills.ensure_supplier(self.rpc, self.books, supplier)

    async def post_bill(self, bill: Bill, *, entity: LegalEntity, idempotency_key: str) -> PostedBill:
        async with self._posting:
            return await bills.post_bill(
                self.rpc,
                self.books,
                bill,
                entity=entity,
                idempotency_key=idempotency_key,
                analytics=self.analytics,
            )

    async def get_bill(self, bill_id: str) -> BillStatus:
        return await bills.get_bill(self.rpc, self.books, bill_id)

    async def pay_bill(self, bill_id: str, amount: Money, *, reference: str, idempotency_key: str) -> Payment:
        return await bills.pay_bill(
            self.rpc, self.books, bill_id, amount, reference=reference, idempotency_key=idempotency_key
        )

    # -- journals (account moves) --------------------------------------------------------------------------

    async def post_journal(
        self, journal: Journal, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedJournal:
        async with self._posting:
            return await self.journals.post_journal(journal, entity=entity, idempotency_key=idempotency_key)

    async def find_journal(self, reference: str) -> PostedJournal | None:
        return await self.journals.find_journal(reference)

    async def get_journal(self, journal_id: str) -> BookedJournal:
        return await self.journals.get_journal(journal_id)

    async def booked_journals(self, reference_prefix: str) -> list[BookedJournal]:
        return await self.journals.booked_journals(reference_prefix)

    # -- projects ------------------------------------------------------------------------------------------

    def booked_dimensions(self, entity: LegalEntity) -> tuple[Dimension, ...] | None:
        return None

    async def ensure_erp_project(self, spec: ErpProjectSpec, *, entity: LegalEntity) -> ErpProject:
        """The project (`project.work`) for the customer, and project, customer and (when the project has
        one) practice analytic accounts: Tryton has room for every dimension."""
        practice = practice_code(spec.practice) if spec.practice else None
        if spec.practice and not practice:
            raise Rejected(
                f"practice {spec.practice!r} has no letter or digit to code its analytic account by: "
                "the PMO renames it in the PSA",
                system=SYSTEM,
                field_errors=[FieldError(field="practice", message="no letter or digit", code="practice")],
            )
        work = await self.ensure_project_work(spec.project_code, spec.project_name, spec.customer_code)
        dimensions = [
            await self.analytics.ensure("project", spec.project_code, spec.project_name),
            await self.analytics.ensure("customer", spec.customer_code, spec.customer_name),
        ]
        if spec.practice and practice:
            dimensions.append(await self.analytics.ensure("practice", practice, spec.practice))
        return ErpProject(erp=SYSTEM, project_id=work, dimensions=tuple(dimensions))

    async def ensure_project_work(self, external_ref: str, name: str, account_id: str) -> str:
        """The Tryton project (`project.work`) for our project, created for the customer if missing."""
        company = await self.books.company()
        comment = mapping.PROJECT_REF_PREFIX + external_ref
        found = await self.rpc.search(
            "project.work",
            [("type", "=", "project"), ("comment", "=", comment), ("company", "=", company)],
            limit=2,
        )
        if len(found) > 1:
            raise Conflict(f"several Tryton projects carry external ref {external_ref!r}", system=SYSTEM)
        if found:
            return str(found[0])
        parties = await self.rpc.search("party.party", [("code", "=", account_id)], limit=1)
        if not parties:
            raise NotFound(
                f"Tryton has no customer for CRM account {account_id!r}; create it first",
                system=SYSTEM,
                status_code=None,
            )
        work = {
            "name": name,
            "type": "project",
            "company": company,
            "party": parties[0],
            "comment": comment,
            # Invoices come from ps-sync's own billing, not from Tryton's timesheet invoicing.
            "project_invoice_method": "manual",
        }
        draws = 1
        while True:
            try:
                async with self._numbering:
                    (created,) = await self.rpc.create("project.work", [work])
                return str(created)
            except Rejected as refused:
                # The work sequence's number is the only unique field of a new project: a refusal for it is
                # another process's project drawing the same number, and this one draws again.
                if "must be unique" not in str(refused) or draws == _NUMBER_DRAWS:
                    raise
                draws += 1
                await asyncio.sleep(random.uniform(0.05, 0.25) * draws)

    # -- reference data and booked invoices (ReferenceSync, Reconciliation) --------------------------------

    async def reference_data(self) -> ErpReferenceData:
        """The company's currency and rates, percentage taxes, chart of accounts and salable products."""
        return await reference.reference_data(self.rpc, self.books, today=datetime.now(UTC).date())

    async def booked_invoices(self, reference_prefix: str) -> list[BookedInvoice]:
        return await reference.booked_invoices(self.rpc, self.books, reference_prefix)

    async def booked_bills(self, reference_prefix: str) -> list[BookedBill]:
        """Supplier invoices whose reference starts with the prefix, with their lines, cancelled included."""
        return await booked_bills.booked_bills(self.rpc, self.books, reference_prefix)
