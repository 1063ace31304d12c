"""ERP activities: customers, invoices posted exactly once, invoice status and payments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from activities.feed_reads import note_payment_feed_read
from activities.keepalive import heartbeating
from activities.posting_metrics import counted_posting
from canonical import (
    Account,
    CreditNote,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    LegalEntity,
    Money,
    Payment,
    PostedInvoice,
)
from canonical.dimensions import ErpProject, ErpProjectSpec
from connectors.call_budget import background_calls, patient_calls
from connectors.roles import ErpConnector, ErpProjectBooks
from domain import customer_master
from domain.idempotency import customer_key, digest
from ledger.database import Database
from ledger.repository import append_audit, find_external_id, get_posting, link_ids, record_posting


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


class EnsureErpProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    psa: str
    spec: ErpProjectSpec


class EnsureErpProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # None when the entity's ERP connector keeps no project dimensions yet (`unsupported` says which).
    erp_project: ErpProject | None
    unsupported: str | None = None


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
    # The posting's key: the ledger records the posting under it, whichever ERP invoice ends up live.
    idempotency_key: str
    # How many invoices this posting had voided for booking a different total. The ERP remembers each voided
    # one under the key it was posted with, so every repost needs a key of its own (`erp_idempotency_key`).
    repost: int = Field(default=0, ge=0)


class PostInvoiceResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    posted: PostedInvoice
    # True when this attempt created the invoice; False when an earlier attempt (or run) already had.
    created: bool
    # The ERP's booked total minus ours, when it differed within the entity's booking tolerance and was
    # accepted: `posted.total` is then the ERP's figure, the one the customer is asked to pay.
    booked_difference: Money | None = None


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
# ApplicationError types after which the invoice under the posting's current ERP key is void in the ERP:
# the ERP booked a total beyond the entity's tolerance and ps-sync voided it, or the invoice the key names
# was voided since. Nothing is billed; a retry must post again under a new key.
BOOKED_DIFFERENTLY = "BookedDifferently"
INVOICE_VOIDED = "InvoiceVoided"
# The ERP booked a total beyond the tolerance and refused the void: the invoice stands until finance voids
# it, so a retry keeps the key (a new one would post a second live invoice) and finds it again.
VOID_REFUSED = "BookedDifferentlyNotVoided"


def erp_idempotency_key(key: str, repost: int) -> str:
    """The key the ERP sees: the posting's own key first, then one per repost after a void."""
    return key if repost == 0 else f"{key}:repost-{repost}"


def within_tolerance(difference: Money, tolerance: Money | None) -> bool:
    """A tolerance in another currency than the invoice's cannot be compared, so it accepts nothing."""
    return (
        tolerance is not None
        and tolerance.currency == difference.currency
        and abs(difference.amount) <= tolerance.amount
    )


def amount_text(money: Money) -> str:
    return f"{money.currency} {money.amount:,}"


def content_hash(invoice: Invoice) -> str:
    # Lines without dimensions hash as they did before lines had any, so a posting recorded then is still
    # recognised when its run posts again.
    undimensioned = {i for i, line in enumerate(invoice.lines) if not line.dimensions}
    return digest(
        invoice.model_dump_json(
            exclude={
                "issue_date": True,
                "due_date": True,
                "lines": {i: {"dimensions"} for i in undimensioned},
            }
        )
    )


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
    async def ensure_erp_project(self, input: EnsureErpProjectInput) -> EnsureErpProjectResult:
        """The project's side of the ERP's books and its dimensions, recorded in the crosswalk."""
        erp, entity = self._erps.for_entity(input.legal_entity)
        if not isinstance(erp, ErpProjectBooks):
            return EnsureErpProjectResult(
                erp_project=None, unsupported=f"the {erp.system} connector keeps no project dimensions"
            )
        async with connector_errors():
            project = await erp.ensure_erp_project(input.spec, entity=entity)

        def link() -> None:
            with self._db.session() as session:
                link_ids(
                    session,
                    entity="erp_project",
                    canonical_key=f"{input.psa}:{input.spec.project_code}",
                    system=erp.system,
                    external_id=project.project_id,
                )

        await asyncio.to_thread(link)
        return EnsureErpProjectResult(erp_project=project)

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
    @counted_posting
    async def post_invoice(self, input: PostInvoiceInput) -> PostInvoiceResult:
        """Post once: the ledger, then the ERP's own record of our reference, and only then create.

        The idempotency key travels to the ERP too, so even a crash between the ERP's answer and our
        ledger write is recovered by the ERP returning the invoice it already holds. A total the ERP booked
        differently is accepted (and audited) within the entity's booking tolerance, else voided before
        failing: the ledger records exactly the invoices that stand in the ERP.
        """
        invoice = input.invoice
        erp, entity = self._erps.for_entity(invoice.legal_entity)
        expected_hash = content_hash(invoice)
        erp_key = erp_idempotency_key(input.idempotency_key, input.repost)
        info = activity.info()

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
            # The ledger holds the ERP's figure, so an accepted difference is still told to the caller.
            before = earlier.total - invoice.total if earlier.total.currency == invoice.currency else None
            return PostInvoiceResult(
                posted=earlier,
                created=False,
                booked_difference=before if before is not None and before.amount else None,
            )
        # The look-up has been paid for by the time a create is held back: failing the attempt would pay for
        # it again on the retry, so the create waits for the budget here, heartbeating.
        with patient_calls(_posting_patience(info)):
            return await self._post_checked(input, erp, entity, expected_hash, erp_key, info)

    async def _post_checked(
        self,
        input: PostInvoiceInput,
        erp: ErpConnector,
        entity: LegalEntity,
        expected_hash: str,
        erp_key: str,
        info: activity.Info,
    ) -> PostInvoiceResult:
        invoice = input.invoice
        async with heartbeating(), connector_errors():
            found = await erp.find_invoice(invoice.reference)
            # A draft left by an attempt that timed out mid-post is finished by posting again under
            # the same key (the connector finds the draft by it), never taken as posted; a voided invoice
            # carrying the reference was replaced (or given up), never taken either.
            live = (
                found
                if found is not None and found.state not in (InvoiceState.DRAFT, InvoiceState.VOIDED)
                else None
            )
            created = live is None
            posted = live or await erp.post_invoice(invoice, entity=entity, idempotency_key=erp_key)
        # An old key can hand back an invoice voided since: Xero replays the reply it stored for the key,
        # Tryton finds the cancelled invoice carrying it.
        void = posted.state == InvoiceState.VOIDED or (
            found is not None and found.state == InvoiceState.VOIDED and found.invoice_id == posted.invoice_id
        )
        difference = posted.total - invoice.total if posted.total.currency == invoice.currency else None
        if difference is None or (
            difference.amount and not within_tolerance(difference, entity.booking_tolerance)
        ):
            if not void:
                await self._void_booked_differently(erp.system, erp, entity, invoice, posted, erp_key)
            raise _booked_differently(erp.system, entity, invoice, posted, erp_key)
        if void:
            number = posted.number or posted.invoice_id
            raise ApplicationError(
                f"{erp.system} holds invoice {number} for {invoice.reference} under idempotency key "
                f"{erp_key}, and it has been voided there: nothing is billed. Retry to post these lines "
                "again as a new invoice.",
                {"erp": erp.system, "invoice_id": posted.invoice_id, "voided_invoice": number},
                type=INVOICE_VOIDED,
                non_retryable=True,
            )
        accepted = difference if difference.amount else None

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
                if accepted is not None:
                    # In the posting's transaction: the difference is on record exactly when the posting is.
                    append_audit(
                        session,
                        workflow_id=info.workflow_id,
                        run_id=info.workflow_run_id,
                        actor="ps-sync",
                        action="booked_difference_accepted",
                        entity="billing_run",
                        key=info.workflow_id or invoice.reference,
                        detail=_difference_detail(erp.system, entity, invoice, posted, accepted, erp_key),
                    )

        await asyncio.to_thread(record)
        return PostInvoiceResult(posted=posted, created=created, booked_difference=accepted)

    async def _void_booked_differently(
        self,
        system: str,
        erp: ErpConnector,
        entity: LegalEntity,
        invoice: Invoice,
        posted: PostedInvoice,
        erp_key: str,
    ) -> None:
        """Void what the ERP booked; if the ERP refuses, the invoice stands and finance is told so."""
        try:
            async with heartbeating(), connector_errors():
                await erp.void_invoice(posted.invoice_id)
        except ApplicationError as failure:
            if not failure.non_retryable:
                raise  # the next attempt finds the same booked invoice and voids it then
            number = posted.number or posted.invoice_id
            raise ApplicationError(
                f"{system} booked {number} at {amount_text(posted.total)}, we computed "
                f"{amount_text(invoice.total)}, and refused to void it ({failure.message}): {number} stands "
                f"in {system} and nothing is billed. Void {number} in {system} (a credit note would leave it "
                "standing), then retry.",
                {**_mismatch_details(system, entity, invoice, posted, erp_key), "standing_invoice": number},
                type=VOID_REFUSED,
                non_retryable=True,
            ) from failure

    @activity.defn
    async def get_invoice_status(self, input: GetInvoiceStatusInput) -> GetInvoiceStatusResult:
        # A status poll can wait; posting and new deals cannot: polls leave them the minute's reserve.
        with background_calls():
            async with connector_errors():
                status = await self._erps.by_system(input.erp).get_invoice(input.invoice_id)
        return GetInvoiceStatusResult(status=status)

    @activity.defn
    async def payments_since(self, input: PaymentsSinceInput) -> PaymentsSinceResult:
        as_of = datetime.now(UTC)
        with background_calls():
            async with connector_errors():
                payments = await self._erps.by_system(input.erp).payments_since(input.modified_since)
        await note_payment_feed_read(self._db, erp=input.erp, read_at=as_of)
        return PaymentsSinceResult(payments=payments, as_of=as_of)


def _mismatch_details(
    system: str, entity: LegalEntity, invoice: Invoice, posted: PostedInvoice, erp_key: str
) -> dict[str, object]:
    tolerance = entity.booking_tolerance
    return {
        "erp": system,
        "invoice_id": posted.invoice_id,
        "number": posted.number,
        "reference": invoice.reference,
        "erp_total": str(posted.total),
        "computed_total": str(invoice.total),
        "tolerance": str(tolerance) if tolerance is not None else None,
        "idempotency_key": erp_key,
    }


def _booked_differently(
    system: str, entity: LegalEntity, invoice: Invoice, posted: PostedInvoice, erp_key: str
) -> ApplicationError:
    """The voided invoice in finance's words: what the ERP did, and what lets a retry bill the work."""
    number = posted.number or posted.invoice_id
    booked, ours = amount_text(posted.total), amount_text(invoice.total)
    tolerance = entity.booking_tolerance
    if posted.total.currency == invoice.currency:
        gap = amount_text(Money(amount=abs((posted.total - invoice.total).amount), currency=invoice.currency))
        limit = (
            f"beyond legal entity {entity.code}'s booking tolerance of {amount_text(tolerance)}"
            if tolerance is not None and tolerance.amount
            else f"and legal entity {entity.code} has no booking tolerance"
        )
        why = f"a difference of {gap}, {limit}"
        fixes = (
            f"raise legal entity {entity.code}'s booking tolerance to at least {gap} and retry, or correct "
            f"{system}'s tax or rounding configuration so it books {ours} and retry"
        )
    else:
        why = "in another currency"
        fixes = f"correct {system}'s configuration so it books {ours} and retry"
    return ApplicationError(
        f"{system} booked {number} at {booked}, we computed {ours} ({why}); {number} was voided, nothing "
        f"is billed. To resolve: {fixes}; either way the retry posts these lines again as a new invoice.",
        {**_mismatch_details(system, entity, invoice, posted, erp_key), "voided_invoice": number},
        type=BOOKED_DIFFERENTLY,
        non_retryable=True,
    )


def _difference_detail(
    system: str,
    entity: LegalEntity,
    invoice: Invoice,
    posted: PostedInvoice,
    difference: Money,
    erp_key: str,
) -> dict[str, object]:
    tolerance = entity.booking_tolerance
    assert tolerance is not None  # only a tolerance accepts a difference
    number = posted.number or posted.invoice_id
    return {
        "message": f"{system} booked {number} at {amount_text(posted.total)}, we computed "
        f"{amount_text(invoice.total)}: accepted within legal entity {entity.code}'s booking tolerance "
        f"of {amount_text(tolerance)}",
        **_mismatch_details(system, entity, invoice, posted, erp_key),
        "difference": str(difference),
    }


# Posting waits for the ERP's call budget inside its attempt up to this, and never so long that the
# attempt's own start-to-close timeout would end it first.
POSTING_PATIENCE_SECONDS = 600.0
_TIMEOUT_MARGIN_SECONDS = 60.0


def _posting_patience(info: activity.Info) -> float:
    timeout = info.start_to_close_timeout
    if timeout is None:
        return POSTING_PATIENCE_SECONDS
    return max(0.0, min(POSTING_PATIENCE_SECONDS, timeout.total_seconds() - _TIMEOUT_MARGIN_SECONDS))
