"""ERP activities: customers, invoices posted exactly once, invoice status and payments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pssync.activities.erp_router import ErpRouter
from pssync.activities.errors import connector_errors
from pssync.activities.keepalive import heartbeating
from pssync.canonical import (
    Account,
    CreditNote,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Money,
    Payment,
    PostedInvoice,
)
from pssync.connectors.roles import ErpConnector
from pssync.domain import customer_master
from pssync.domain.idempotency import customer_key, digest
from pssync.ledger.database import Database
from pssync.ledger.repository import find_external_id, get_posting, link_ids, record_posting


class EnsureCustomerInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    crm: str
    account: Account
    legal_entity: str
    # Finance's answer to a duplicate-looking customer: use this existing ERP customer for the account.
    link_to_customer_id: str | None = None


class EnsureCustomerResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    customer_id: str
    created: bool


class WriteOffInvoiceInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    invoice_id: str
    amount: Money
    reason: str
    idempotency_key: str


class WriteOffInvoiceResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    credit_note: CreditNote


class PostInvoiceInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    invoice: Invoice
    idempotency_key: str


class PostInvoiceResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    posted: PostedInvoice
    # True when this attempt created the invoice; False when an earlier attempt (or run) already had.
    created: bool


class GetInvoiceStatusInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    invoice_id: str


class GetInvoiceStatusResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: InvoiceStatus


class PaymentsSinceInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    modified_since: datetime | None = None


class PaymentsSinceResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    payments: list[Payment]
    # When the read began, by this machine's clock (a workflow's clock may run ahead under time skipping):
    # where the next read's If-Modified-Since is measured from.
    as_of: datetime | None = None


# ApplicationError type for a customer that looks like one the ERP already has (a person decides).
DUPLICATE_CUSTOMER = "DuplicateCustomer"


def content_hash(invoice: Invoice) -> str:
    return digest(invoice.model_dump_json(exclude={"issue_date", "due_date"}))


class ErpActivities:
    def __init__(self, erps: ErpRouter, database: Database) -> None:
        self._erps = erps
        self._db = database

    @activity.defn
    async def ensure_customer(self, input: EnsureCustomerInput) -> EnsureCustomerResult:
        """Crosswalk, then the ERP's own external reference, and only then create."""
        erp, entity = self._erps.for_entity(input.legal_entity)
        canonical_key = f"{input.crm}:{input.account.id}"

        def known() -> str | None:
            with self._db.session() as session:
                return find_external_id(
                    session, entity="customer", canonical_key=canonical_key, system=erp.system
                )

        customer_id = await asyncio.to_thread(known)
        if customer_id is not None:
            return EnsureCustomerResult(erp=erp.system, customer_id=customer_id, created=False)
        async with connector_errors():
            customer_id = await erp.find_customer(input.account)
            created = customer_id is None
            if customer_id is None:
                customer_id = await self._existing_customer_chosen_by_finance(erp, input)
                created = customer_id is None
            if customer_id is None:
                customer_id = await erp.create_customer(
                    input.account,
                    entity=entity,
                    idempotency_key=customer_key(erp=erp.system, account_id=input.account.id),
                )

        def link() -> None:
            with self._db.session() as session:
                link_ids(
                    session,
                    entity="customer",
                    canonical_key=canonical_key,
                    system=erp.system,
                    external_id=customer_id,
                )

        await asyncio.to_thread(link)
        return EnsureCustomerResult(erp=erp.system, customer_id=customer_id, created=created)

    async def _existing_customer_chosen_by_finance(
        self, erp: ErpConnector, input: EnsureCustomerInput
    ) -> str | None:
        """Before creating: the customer finance chose, or a refusal when the company is already there."""
        account = input.account
        candidates = (
            await erp.find_customers_by_name_and_tax_number(account.name, account.tax_number)
            if account.tax_number
            else []
        )
        if input.link_to_customer_id is not None:
            if input.link_to_customer_id not in {c.id for c in candidates}:
                raise ApplicationError(
                    f"{erp.system} customer {input.link_to_customer_id} is not a customer named "
                    f"{account.name!r} with tax number {account.tax_number}: not linked",
                    type="Rejected",
                    non_retryable=True,
                )
            return input.link_to_customer_id
        duplicates = customer_master.duplicates(account, candidates)
        if duplicates:
            raise ApplicationError(
                customer_master.describe(account, duplicates),
                {"candidates": [c.model_dump(mode="json") for c in duplicates]},
                type=DUPLICATE_CUSTOMER,
                non_retryable=True,
            )
        return None

    @activity.defn
    async def write_off_invoice(self, input: WriteOffInvoiceInput) -> WriteOffInvoiceResult:
        """A write-off is a credit note for what is still due, carrying finance's reason."""
        async with connector_errors():
            note = await self._erps.by_system(input.erp).credit_invoice(
                input.invoice_id,
                input.amount,
                reason=f"Write-off: {input.reason}",
                idempotency_key=input.idempotency_key,
            )
        return WriteOffInvoiceResult(credit_note=note)

    @activity.defn
    async def post_invoice(self, input: PostInvoiceInput) -> PostInvoiceResult:
        """Post once: the ledger, then the ERP's own record of our reference, and only then create.

        The idempotency key travels to the ERP too, so even a crash between the ERP's answer and our
        ledger write is recovered by the ERP returning the invoice it already holds.
        """
        invoice = input.invoice
        erp, entity = self._erps.for_entity(invoice.legal_entity)
        expected_hash = content_hash(invoice)

        def posted_before() -> PostedInvoice | None:
            with self._db.session() as session:
                record = get_posting(session, idempotency_key=input.idempotency_key)
            if record is None:
                return None
            if record.content_hash != expected_hash:
                raise ApplicationError(
                    f"idempotency key {input.idempotency_key} was already posted with different content",
                    type="Conflict",
                    non_retryable=True,
                )
            return PostedInvoice(
                erp=record.erp,
                invoice_id=record.target_id,
                number=record.number,
                total=record.amount,
                state="awaiting_payment",
            )

        earlier = await asyncio.to_thread(posted_before)
        if earlier is not None:
            return PostInvoiceResult(posted=earlier, created=False)
        async with heartbeating(), connector_errors():
            found = await erp.find_invoice(invoice.reference)
            created = found is None
            # A draft left by an attempt that timed out mid-post is finished by posting again under
            # the same key (the connector finds the draft by it), never taken as posted.
            posted = (
                found
                if found is not None and found.state != InvoiceState.DRAFT
                else await erp.post_invoice(invoice, entity=entity, idempotency_key=input.idempotency_key)
            )
        if posted.total != invoice.total:
            raise ApplicationError(
                f"{erp.system} booked {posted.total} for invoice {posted.number}, "
                f"we computed {invoice.total}",
                {"erp_total": str(posted.total), "computed_total": str(invoice.total)},
                type="Rejected",
                non_retryable=True,
            )

        def record() -> None:
            with self._db.session() as session:
                record_posting(
                    session,
                    idempotency_key=input.idempotency_key,
                    erp=erp.system,
                    legal_entity=entity.code,
                    project_id=invoice.project_id,
                    period=invoice.period,
                    target_id=posted.invoice_id,
                    number=posted.number,
                    amount=posted.total,
                    content_hash=expected_hash,
                )
                link_ids(
                    session,
                    entity="invoice",
                    canonical_key=invoice.reference,
                    system=erp.system,
                    external_id=posted.invoice_id,
                )

        await asyncio.to_thread(record)
        return PostInvoiceResult(posted=posted, created=created)

    @activity.defn
    async def get_invoice_status(self, input: GetInvoiceStatusInput) -> GetInvoiceStatusResult:
        async with connector_errors():
            status = await self._erps.by_system(input.erp).get_invoice(input.invoice_id)
        return GetInvoiceStatusResult(status=status)

    @activity.defn
    async def payments_since(self, input: PaymentsSinceInput) -> PaymentsSinceResult:
        as_of = datetime.now(UTC)
        async with connector_errors():
            payments = await self._erps.by_system(input.erp).payments_since(input.modified_since)
        return PaymentsSinceResult(payments=payments, as_of=as_of)
