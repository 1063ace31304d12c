"""XeroConnector: the ERP role for the UK entity, on the Xero Accounting API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

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
from canonical.dimensions import Dimension, ErpProject, ErpProjectSpec
from canonical.journals import BookedJournal, Journal, PostedJournal
from canonical.payables import Bill, BillStatus, PostedBill, Supplier
from canonical.reference import BookedInvoice, ErpReferenceData
from config import Settings
from connectors.call_budget import CallBudgets
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.paging import Page
from connectors.xero import bills, booked_bills, mapping, reference, tracking
from connectors.xero.client import DEFAULT_SCOPES, MAX_WAIT_IN_ATTEMPT_SECONDS, SYSTEM, XeroClient
from connectors.xero.journals import XeroJournals
from connectors.xero.wire import parse_xero_date

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Xero keeps unit amounts to 2 decimal places unless asked for 4; our rates can carry 4.
_UNITDP = {"unitdp": 4}


def _where_literal(value: str) -> str:
    """A string literal for Xero's `where` filter (C#-style double quotes, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class XeroConnector:
    """The ERP role over Xero. Never retries; raises the connector taxonomy.

    Every write carries an Idempotency-Key derived from the caller's key, so a retried activity gets
    Xero's stored reply for the first attempt instead of a second document (within Xero's key window).
    """

    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        identity_url: str,
        client_id: str,
        client_secret: str,
        tenant_id: str,
        max_concurrency: int = 5,
        calls_per_minute: int = 60,
        background_reserve: int | None = None,
        max_wait_in_attempt: float = MAX_WAIT_IN_ATTEMPT_SECONDS,
        http: httpx.AsyncClient | None = None,
        sales_account_code: str = "200",
        bank_account_code: str = "090",
    ) -> None:
        self.client = XeroClient(
            base_url=base_url,
            identity_url=identity_url,
            client_id=client_id,
            client_secret=client_secret,
            tenant_id=tenant_id,
            max_concurrency=max_concurrency,
            calls_per_minute=calls_per_minute,
            background_reserve=background_reserve,
            max_wait_in_attempt=max_wait_in_attempt,
            # Tracking categories and options are organisation settings: making them needs the write scope.
            scopes=(*DEFAULT_SCOPES, "accounting.settings"),
            http=http,
        )
        self.sales_account_code = sales_account_code
        self.bank_account_code = bank_account_code
        self.journals = XeroJournals(self.client)

    @classmethod
    def from_settings(cls, settings: Settings, *, http: httpx.AsyncClient | None = None) -> XeroConnector:
        return cls(
            base_url=settings.xero_base_url,
            identity_url=settings.xero_identity_url,
            client_id=settings.xero_client_id,
            client_secret=settings.xero_client_secret.get_secret_value(),
            tenant_id=settings.xero_tenant_id,
            max_concurrency=settings.xero_max_concurrency,
            calls_per_minute=settings.xero_calls_per_minute,
            background_reserve=settings.xero_background_reserve,
            max_wait_in_attempt=settings.xero_max_wait_in_attempt_seconds,
            http=http,
        )

    def share_call_budgets(self, budgets: CallBudgets) -> None:
        """Xero's minute limit is per tenant: every worker calling this organisation counts in one budget."""
        self.client.share_call_budgets(budgets)

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- customers ------------------------------------------------------------------------------------------

    async def find_customer(self, account: Account) -> str | None:
        body = await self.client.get(
            "/Contacts", params={"where": f"ContactNumber=={_where_literal(account.id)}"}
        )
        contacts = body.get("Contacts", [])
        if len(contacts) > 1:
            raise Conflict(
                f"{len(contacts)} Xero contacts carry ContactNumber {account.id!r}: "
                f"{', '.join(c['ContactID'] for c in contacts)}",
                system=SYSTEM,
            )
        return contacts[0]["ContactID"] if contacts else None

    async def create_customer(self, account: Account, *, entity: LegalEntity, idempotency_key: str) -> str:
        # Looked up first because the key only protects a retry within Xero's window, and Xero refuses a
        # second contact with the same name anyway.
        existing = await self.find_customer(account)
        if existing is not None:
            return existing
        try:
            payload = mapping.contact_payload(account, entity)
        except ValueError as exc:
            raise Rejected(
                str(exc), system=SYSTEM, field_errors=[FieldError(field="ContactNumber", message=str(exc))]
            ) from exc
        body = await self.client.put("/Contacts", {"Contacts": [payload]}, idempotency_key=idempotency_key)
        contact_id: str = body["Contacts"][0]["ContactID"]
        return contact_id

    async def find_customers_by_name_and_tax_number(self, name: str, tax_number: str) -> list[ErpCustomer]:
        """Xero's `searchTerm` narrows by name (case-insensitive, also matching parts of names); the exact
        name and the tax number are compared here, because `where` compares TaxNumber as typed."""
        wanted_name, wanted_tax = name_key(name), tax_number_key(tax_number)
        if not wanted_name or wanted_tax is None:
            raise Rejected(
                "a customer search needs a name and a tax number",
                system=SYSTEM,
                field_errors=[FieldError(field="Name" if not wanted_name else "TaxNumber", message="empty")],
            )
        found: list[ErpCustomer] = []
        async for page in self.client.pages(
            "/Contacts", "Contacts", params={"searchTerm": " ".join(name.split()), "includeArchived": "false"}
        ):
            found.extend(
                mapping.erp_customer(contact)
                for contact in page.items
                if name_key(str(contact.get("Name") or "")) == wanted_name
                and tax_number_key(contact.get("TaxNumber")) == wanted_tax
            )
        return found

    # --- invoices -------------------------------------------------------------------------------------------

    async def find_invoice(self, reference: str) -> PostedInvoice | None:
        """The sales invoice carrying our reference. Several live ones is a Conflict; voided ones only count
        when nothing live carries the reference."""
        where = f'Type=="ACCREC" AND Reference=={_where_literal(reference)}'
        found: list[dict[str, Any]] = []
        async for page in self.client.pages("/Invoices", "Invoices", params={"where": where, **_UNITDP}):
            found.extend(page.items)
        live = [doc for doc in found if doc["Status"] not in ("VOIDED", "DELETED")]
        if len(live) > 1:
            raise Conflict(
                f"{len(live)} Xero invoices carry reference {reference!r}: "
                f"{', '.join(d['InvoiceNumber'] for d in live)}",
                system=SYSTEM,
            )
        chosen = live or sorted(found, key=lambda d: str(d.get("UpdatedDateUTC", "")))[-1:]
        return mapping.posted_invoice(chosen[0]) if chosen else None

    async def post_invoice(
        self, invoice: Invoice, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedInvoice:
        if invoice.legal_entity != entity.code:
            raise Rejected(
                f"invoice {invoice.reference} belongs to entity {invoice.legal_entity}, "
                f"this Xero organisation books {entity.code}",
                system=SYSTEM,
            )
        payload = mapping.invoice_payload(
            invoice, default_account_code=self.sales_account_code, tracked=entity.tracked_dimensions
        )
        body = await self.client.put(
            "/Invoices", {"Invoices": [payload]}, idempotency_key=idempotency_key, params=_UNITDP
        )
        doc = body["Invoices"][0]
        # Xero answers with the whole invoice, amounts due included: following its payment starts from
        # this answer instead of spending another of the tenant's calls on reading it back.
        return mapping.posted_invoice(doc).model_copy(update={"status": mapping.invoice_status(doc)})

    async def _invoice(self, invoice_id: str) -> dict[str, Any]:
        if not _GUID.match(invoice_id):
            raise NotFound(f"{invoice_id!r} is not a Xero InvoiceID (a GUID)", system=SYSTEM)
        body = await self.client.get(f"/Invoices/{invoice_id}", params=_UNITDP)
        invoice: dict[str, Any] = body["Invoices"][0]
        return invoice

    async def get_invoice(self, invoice_id: str) -> InvoiceStatus:
        return mapping.invoice_status(await self._invoice(invoice_id))

    async def void_invoice(self, invoice_id: str) -> None:
        """Void an approved invoice (delete a draft). Already void is success, so a retry cannot fail."""
        invoice = await self._invoice(invoice_id)
        status = invoice["Status"]
        if status in ("VOIDED", "DELETED"):
            return
        target = "DELETED" if status in ("DRAFT", "SUBMITTED") else "VOIDED"
        await self.client.post(
            f"/Invoices/{invoice_id}",
            {"Invoices": [{"InvoiceID": invoice_id, "Status": target}]},
            idempotency_key=f"void:{invoice_id}",
        )

    # --- money ----------------------------------------------------------------------------------------------

    def _same_currency(self, invoice: dict[str, Any], amount: Money, what: str) -> None:
        if invoice["CurrencyCode"] != amount.currency:
            raise Rejected(
                f"{what} of {amount} cannot settle invoice {invoice['InvoiceNumber']} in "
                f"{invoice['CurrencyCode']}",
                system=SYSTEM,
                field_errors=[FieldError(field="Amount", message="currency differs from the invoice's")],
            )

    async def apply_payment(
        self, invoice_id: str, amount: Money, *, reference: str, idempotency_key: str
    ) -> Payment:
        """PUT /Payments into the bank account. The payment is dated today (UTC): a retry under the same
        key on a later day is a different request to Xero and is refused as a Conflict."""
        invoice = await self._invoice(invoice_id)
        self._same_currency(invoice, amount, "a payment")
        payload = mapping.payment_payload(
            invoice_id,
            amount,
            reference=reference,
            account_code=self.bank_account_code,
            on=datetime.now(UTC).date(),
        )
        body = await self.client.put("/Payments", payload, idempotency_key=idempotency_key)
        return mapping.payment(body["Payments"][0], invoice["CurrencyCode"])

    async def credit_invoice(
        self, invoice_id: str, amount: Money, *, reason: str, idempotency_key: str
    ) -> CreditNote:
        """An authorised credit note for `amount` (tax inclusive) allocated to the invoice: two writes, each
        under its own key derived from the caller's, so a retry after either one completes the other."""
        invoice = await self._invoice(invoice_id)
        self._same_currency(invoice, amount, "a credit")
        payload = mapping.credit_note_payload(
            invoice, amount, reason=reason, default_account_code=self.sales_account_code
        )
        created = await self.client.put(
            "/CreditNotes",
            {"CreditNotes": [payload]},
            idempotency_key=f"{idempotency_key}:credit-note",
            params=_UNITDP,
        )
        note = created["CreditNotes"][0]
        await self.client.put(
            f"/CreditNotes/{note['CreditNoteID']}/Allocations",
            mapping.allocation_payload(invoice_id, amount, parse_xero_date(note["Date"])),
            idempotency_key=f"{idempotency_key}:allocation",
        )
        return mapping.credit_note(note, invoice_id, amount)

    async def payment_pages(
        self, modified_since: datetime | None, *, cursor: str | None = None
    ) -> AsyncIterator[Page[Payment]]:
        """Customer payments created or changed since the instant, page by page (Xero sends no payment
        webhooks, so they are polled with If-Modified-Since)."""
        where = 'PaymentType=="ACCRECPAYMENT" AND Status=="AUTHORISED"'
        async for page in self.client.pages(
            "/Payments", "Payments", params={"where": where}, if_modified_since=modified_since, cursor=cursor
        ):
            payments = [mapping.payment(doc, await self._currency_of(doc)) for doc in page.items]
            yield Page(items=payments, cursor=page.cursor, next_cursor=page.next_cursor, extra=page.extra)

    async def _currency_of(self, payment: dict[str, Any]) -> str:
        embedded = payment.get("Invoice") or {}
        if embedded.get("CurrencyCode"):
            return str(embedded["CurrencyCode"])
        return str((await self._invoice(embedded["InvoiceID"]))["CurrencyCode"])

    async def payments_since(self, modified_since: datetime | None) -> list[Payment]:
        payments: list[Payment] = []
        async for page in self.payment_pages(modified_since):
            payments.extend(page.items)
        return payments

    # --- payables (suppliers and ACCPAY bills) -------------------------------------------------------------

    async def ensure_supplier(self, supplier: Supplier, *, entity: LegalEntity, idempotency_key: str) -> str:
        return await bills.ensure_supplier(
            self.client, supplier, entity=entity, idempotency_key=idempotency_key
        )

    async def post_bill(self, bill: Bill, *, entity: LegalEntity, idempotency_key: str) -> PostedBill:
        return await bills.post_bill(self.client, bill, entity=entity, idempotency_key=idempotency_key)

    async def get_bill(self, bill_id: str) -> BillStatus:
        return await bills.get_bill(self.client, bill_id)

    async def pay_bill(self, bill_id: str, amount: Money, *, reference: str, idempotency_key: str) -> Payment:
        return await bills.pay_bill(
            self.client,
            bill_id,
            amount,
            reference=reference,
            bank_account_code=self.bank_account_code,
            idempotency_key=idempotency_key,
        )

    # --- journals (manual journals) ------------------------------------------------------------------------

    async def post_journal(
        self, journal: Journal, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedJournal:
        return await self.journals.post_journal(journal, entity=entity, idempotency_key=idempotency_key)

    async def find_journal(self, reference: str) -> PostedJournal | None:
        return await self.journals.find_journal(reference)

    async def get_journal(self, journal_id: str) -> BookedJournal:
        return await self.journals.get_journal(journal_id)

    async def booked_journals(self, reference_prefix: str) -> list[BookedJournal]:
        return await self.journals.booked_journals(reference_prefix)

    # --- project dimensions (tracking) ---------------------------------------------------------------------

    def booked_dimensions(self, entity: LegalEntity) -> tuple[Dimension, ...] | None:
        # Xero has room for two tracking categories: lines carry only those the entity tracks.
        return entity.tracked_dimensions

    async def ensure_erp_project(self, spec: ErpProjectSpec, *, entity: LegalEntity) -> ErpProject:
        """The project's dimensions the entity tracks (by default project and customer) as options of the
        `Project`, `Customer` and `Practice` tracking categories."""
        return await tracking.ensure_project(self.client, spec, tracked=entity.tracked_dimensions)

    # --- reference data and booked invoices (ReferenceSync, Reconciliation) --------------------------------

    async def reference_data(self) -> ErpReferenceData:
        """The organisation's base currency, enabled currencies, tax rates, chart of accounts and items."""
        organisation = (await self.client.get("/Organisation"))["Organisations"][0]
        lists: dict[str, list[dict[str, Any]]] = {}
        for path in ("Currencies", "TaxRates", "Accounts", "Items"):
            lists[path] = (await self.client.get(f"/{path}")).get(path, [])
        return reference.reference_data(
            organisation=organisation,
            currencies=lists["Currencies"],
            tax_rates=lists["TaxRates"],
            accounts=lists["Accounts"],
            items=lists["Items"],
            today=datetime.now(UTC).date(),
        )

    async def booked_invoices(self, reference_prefix: str) -> list[BookedInvoice]:
        """Sales invoices whose Reference starts with the prefix, with their line items (paged reads carry
        the lines), voided ones included: reconciliation decides what a void means."""
        if not reference_prefix:
            raise ValueError("a reference prefix is required: listing every invoice is not a reconciliation")
        where = f'Type=="ACCREC" AND Reference.StartsWith({_where_literal(reference_prefix)})'
        found: list[BookedInvoice] = []
        async for page in self.client.pages("/Invoices", "Invoices", params={"where": where, **_UNITDP}):
            found.extend(reference.booked_invoice(doc) for doc in page.items)
        return found

    async def booked_bills(self, reference_prefix: str) -> list[BookedBill]:
        """Bills (ACCPAY) whose reference starts with the prefix, with their lines, voided ones included."""
        return await booked_bills.booked_bills(self.client, reference_prefix)
