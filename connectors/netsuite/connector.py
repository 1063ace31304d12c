"""NetSuiteConnector: the ERP role for the US entity, on SuiteTalk REST web services.

Idempotency: NetSuite takes no idempotency header on synchronous writes, but every record carries an external
id, unique per record type, and `PUT .../<type>/eid:<externalId>` creates the record or updates the one that
already carries it. Every write here uses the caller's key as the external id, looks it up first (so a retry
after a lost reply returns the first record, never touching it), then upserts (so two attempts racing each
other still end with one record).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from canonical import (
    Account,
    CreditNote,
    ErpCustomer,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    LegalEntity,
    Money,
    Payment,
    PostedInvoice,
    name_key,
    tax_number_key,
)
from canonical.dimensions import Dimension, ErpProject, ErpProjectSpec
from canonical.reference import BookedInvoice, ErpReferenceData
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.netsuite import mapping, projects, reference, suiteql
from connectors.netsuite.client import NetSuiteClient, external
from connectors.netsuite.errors import SYSTEM
from connectors.netsuite.lookups import AccountSetup
from connectors.netsuite.oauth2 import TOKEN_PATH, ClientCredentialsAuth, load_private_key
from connectors.netsuite.tba import TokenBasedAuth

if TYPE_CHECKING:
    from config import Settings

DEFAULT_SERVICE_ITEM = "Consulting"
# The record types behind SuiteQL's transaction types, for reading an application's document.
_RECORD_OF_TYPE = {suiteql.PAYMENT: "customerPayment", suiteql.CREDIT_MEMO: "creditMemo"}


def external_id_for(key: str) -> str:
    """Our idempotency key as an external id; a key longer than NetSuite keeps is replaced by its digest."""
    if not key:
        raise ValueError("an idempotency key must not be empty")
    if len(key) <= mapping.EXTERNAL_ID_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def auth_from_settings(settings: Settings) -> httpx.Auth:
    base_url = settings.netsuite_base_url.rstrip("/")
    if settings.netsuite_auth == "oauth2":
        private_key = settings.netsuite_private_key
        if private_key is None or not private_key.get_secret_value().strip():
            raise ValueError(
                "netsuite_auth is oauth2 but netsuite_private_key (PEM text or file path) is not set"
            )
        return ClientCredentialsAuth(
            token_url=base_url + TOKEN_PATH,
            client_id=settings.netsuite_client_id,
            certificate_id=settings.netsuite_certificate_id,
            private_key=load_private_key(private_key.get_secret_value()),
            system=SYSTEM,
        )
    return TokenBasedAuth(
        account_id=settings.netsuite_account_id,
        consumer_key=settings.netsuite_consumer_key,
        consumer_secret=settings.netsuite_consumer_secret.get_secret_value(),
        token_id=settings.netsuite_token_id,
        token_secret=settings.netsuite_token_secret.get_secret_value(),
    )


class NetSuiteConnector:
    """The ERP role over one NetSuite account (one subsidiary books the entity). Never retries; raises the
    connector taxonomy."""

    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        subsidiary_id: str,
        service_item: str = DEFAULT_SERVICE_ITEM,
        max_concurrency: int = 4,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.client = NetSuiteClient(base_url=base_url, auth=auth, max_concurrency=max_concurrency, http=http)
        self.subsidiary_id = subsidiary_id
        self.setup = AccountSetup(self.client, service_item=service_item)

    @classmethod
    def from_settings(cls, settings: Settings, *, http: httpx.AsyncClient | None = None) -> NetSuiteConnector:
        return cls(
            base_url=settings.netsuite_base_url,
            auth=auth_from_settings(settings),
            subsidiary_id=settings.netsuite_subsidiary_id,
            service_item=settings.netsuite_service_item,
            max_concurrency=settings.netsuite_max_concurrency,
            http=http,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- customers ------------------------------------------------------------------------------------------

    async def find_customer(self, account: Account) -> str | None:
        # External ids are unique per record type in NetSuite: one customer at most carries the account id.
        record = await self.client.find_record("customer", external(account.id))
        return str(record["id"]) if record is not None else None

    async def create_customer(self, account: Account, *, entity: LegalEntity, idempotency_key: str) -> str:
        """Upserted under the CRM account id: the account id is the customer's idempotency key, so any retry
        (whatever key it carries) finds the one customer."""
        existing = await self.find_customer(account)
        if existing is not None:
            return existing
        currency_id = await self._currency_id(entity.currency, field="currency")
        payload = mapping.customer_payload(account, subsidiary_id=self.subsidiary_id, currency_id=currency_id)
        return await self.client.upsert("customer", account.id, payload)

    async def find_customers_by_name_and_tax_number(self, name: str, tax_number: str) -> list[ErpCustomer]:
        """SuiteQL narrows by the name's longest word (case folded); the exact name and the tax number are
        compared here, as canonical.name_key and tax_number_key compare them."""
        wanted_name, wanted_tax = name_key(name), tax_number_key(tax_number)
        if not wanted_name or wanted_tax is None:
            raise Rejected(
                "a customer search needs a name and a tax number",
                system=SYSTEM,
                field_errors=[
                    FieldError(field="companyName" if not wanted_name else "vatRegNumber", message="empty")
                ],
            )
        word = max(wanted_name.split(), key=len)
        rows = await self.client.suiteql(suiteql.customers_named_like(word))
        return [
            mapping.erp_customer(row)
            for row in rows
            if name_key(str(row.get("companyname") or "")) == wanted_name
            and tax_number_key(row.get("vatregnumber")) == wanted_tax
        ]

    # --- invoices -------------------------------------------------------------------------------------------

    async def _invoice(self, invoice_id: str, *, expand: bool = False) -> dict[str, Any]:
        if not invoice_id.isdigit():
            raise NotFound(f"{invoice_id!r} is not a NetSuite internal id", system=SYSTEM)
        return await self.client.get_record("invoice", invoice_id, expand=expand)

    async def _currency_of(self, record: dict[str, Any]) -> str:
        currency_id = mapping.ref_id(record.get("currency"))
        if currency_id is None:
            raise ValueError(f"NetSuite record {record.get('id')} has no currency")
        return await self.setup.currency_code(currency_id)

    async def find_invoice(self, reference: str) -> PostedInvoice | None:
        """The invoice carrying our reference. Several live ones is a Conflict; voided ones count only when
        nothing live carries the reference (a voided posting posted again under a new key keeps it)."""
        rows = await self.client.suiteql(suiteql.invoices_with_reference(reference))
        records = [await self._invoice(str(row["id"])) for row in rows]
        found = [(record, mapping.invoice_state(record)) for record in records]
        live = [record for record, state in found if state != InvoiceState.VOIDED]
        if len(live) > 1:
            raise Conflict(
                f"{len(live)} NetSuite invoices carry reference {reference!r}: "
                f"{', '.join(str(r.get('tranId') or r['id']) for r in live)}",
                system=SYSTEM,
            )
        chosen = live or sorted(records, key=lambda r: int(r["id"]))[-1:]
        if not chosen:
            return None
        return mapping.posted_invoice(chosen[0], await self._currency_of(chosen[0]))

    async def post_invoice(
        self, invoice: Invoice, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedInvoice:
        if invoice.legal_entity != entity.code:
            raise Rejected(
                f"invoice {invoice.reference} belongs to entity {invoice.legal_entity}, "
                f"this NetSuite subsidiary books {entity.code}",
                system=SYSTEM,
            )
        external_id = external_id_for(idempotency_key)
        existing = await self.client.find_record("invoice", external(external_id))
        if existing is not None:
            return mapping.posted_invoice(existing, await self._currency_of(existing))
        currency_id = await self._currency_id(invoice.currency, field="currency")
        item_ids = await self._item_ids(invoice)
        tax_ids = await self._tax_ids(invoice)
        # The project the lines' dimensions name; lines without dimensions book on the PSA project's job.
        job_id = await projects.invoice_job(self.client, invoice) or await projects.ensure_job(
            self.client,
            project_code=invoice.project_id,
            project_name=f"{invoice.customer_name}: {invoice.project_id}",
            customer_id=invoice.customer_id,
        )
        payload = mapping.invoice_payload(
            invoice,
            external_id=external_id,
            entity_id=job_id,
            currency_id=currency_id,
            item_ids=item_ids,
            tax_ids=tax_ids,
        )
        invoice_id = await self.client.upsert("invoice", external_id, payload)
        record = await self._invoice(invoice_id)
        return mapping.posted_invoice(record, invoice.currency)

    async def _item_ids(self, invoice: Invoice) -> list[str]:
        """The item each line is booked against. NetSuite has no account on an invoice line: a line books to
        its item's income account, so a line mapped to an account takes an item whose sales book there."""
        ids: list[str] = []
        for index, line in enumerate(invoice.lines):
            if line.account_code is None:
                ids.append(await self._service_item_id())
                continue
            item_id = await self.setup.item_for_account(line.account_code)
            if item_id is None:
                raise Rejected(
                    f"no active NetSuite item books its sales to account {line.account_code}: finance gives "
                    "a service item that income account in NetSuite, or maps the line to another account",
                    system=SYSTEM,
                    field_errors=[
                        FieldError(
                            field=f"item.items[{index}].account",
                            message=f"no item books to account {line.account_code}",
                            code="INVALID_KEY_OR_REF",
                        )
                    ],
                )
            ids.append(item_id)
        return ids

    async def _tax_ids(self, invoice: Invoice) -> dict[str, str]:
        ids: dict[str, str] = {}
        errors: list[FieldError] = []
        for index, line in enumerate(invoice.lines):
            code = await self.setup.tax_code(line.tax_code)
            if code is None:
                errors.append(
                    FieldError(
                        field=f"item.items[{index}].taxCode",
                        message=f"NetSuite has no active tax code {line.tax_code!r}",
                        code="INVALID_KEY_OR_REF",
                    )
                )
            else:
                ids[line.tax_code] = code.id
        if errors:
            raise Rejected(
                f"invoice {invoice.reference} names tax codes NetSuite does not have",
                system=SYSTEM,
                field_errors=errors,
            )
        return ids

    async def _currency_id(self, code: str, *, field: str) -> str:
        currency_id = await self.setup.currency_id(code)
        if currency_id is None:
            raise Rejected(
                f"NetSuite has no currency {code}",
                system=SYSTEM,
                field_errors=[FieldError(field=field, message=f"no currency {code} in the account")],
            )
        return currency_id

    async def _service_item_id(self) -> str:
        item_id = await self.setup.service_item_id()
        if item_id is None:
            raise Rejected(
                f"NetSuite has no active item {self.setup.service_item_name!r} to book service lines against",
                system=SYSTEM,
                field_errors=[FieldError(field="item.items.item", message="configure netsuite_service_item")],
            )
        return item_id

    async def get_invoice(self, invoice_id: str) -> InvoiceStatus:
        record = await self._invoice(invoice_id)
        currency = await self._currency_of(record)
        payments: list[Payment] = []
        credit_notes: list[CreditNote] = []
        for row in await self.client.suiteql(suiteql.applications_to(invoice_id)):
            record_type = _RECORD_OF_TYPE.get(str(row.get("nexttype")))
            if record_type is None:
                continue
            document = await self.client.get_record(record_type, str(row["nextdoc"]), expand=True)
            amount = mapping.applied_to(document, invoice_id)
            if amount is None:
                continue
            if record_type == "customerPayment":
                shared = len([line for line in mapping.sublist(document, "apply") if line.get("apply")]) > 1
                payments.append(mapping.payment(document, invoice_id, amount, currency, shared=shared))
            else:
                credit_notes.append(mapping.credit_note(document, invoice_id, amount, currency))
        return mapping.invoice_status(
            record, currency, payments=tuple(payments), credit_notes=tuple(credit_notes)
        )

    async def void_invoice(self, invoice_id: str) -> None:
        """Void the invoice (NetSuite sets its lines and total to zero and keeps it). Already void is success,
        so a retry cannot fail.

        REST web services expose record actions (POST .../@<action>); we could not confirm from NetSuite's
        documentation that `void` is among the actions offered on invoices (SuiteScript voids through
        N/transaction). An account that does not offer it answers 4xx, which surfaces as Rejected."""
        record = await self._invoice(invoice_id)
        if mapping.invoice_state(record) == InvoiceState.VOIDED:
            return
        await self.client.action("invoice", invoice_id, "void")

    # --- money ----------------------------------------------------------------------------------------------

    def _same_currency(self, currency: str, amount: Money, what: str, number: str) -> None:
        if currency != amount.currency:
            raise Rejected(
                f"{what} of {amount} cannot settle invoice {number} in {currency}",
                system=SYSTEM,
                field_errors=[FieldError(field="currency", message="currency differs from the invoice's")],
            )

    async def apply_payment(
        self, invoice_id: str, amount: Money, *, reference: str, idempotency_key: str
    ) -> Payment:
        """A customer payment of `amount` applied to the invoice, dated today (UTC)."""
        external_id = external_id_for(idempotency_key)
        existing = await self.client.find_record("customerPayment", external(external_id), expand=True)
        if existing is None:
            invoice = await self._invoice(invoice_id)
            currency = await self._currency_of(invoice)
            self._same_currency(currency, amount, "a payment", str(invoice.get("tranId") or invoice_id))
            payload = mapping.payment_payload(
                invoice,
                amount,
                external_id=external_id,
                reference=reference,
                on=datetime.now(UTC).date(),
            )
            payment_id = await self.client.upsert("customerPayment", external_id, payload)
            existing = await self.client.get_record("customerPayment", payment_id, expand=True)
        applied = mapping.applied_to(existing, invoice_id)
        if applied is None:
            raise Conflict(
                f"NetSuite payment {existing['id']} under key {idempotency_key!r} is not applied to invoice "
                f"{invoice_id}: the key was used for another payment",
                system=SYSTEM,
            )
        currency = await self._currency_of(existing)
        return mapping.payment(existing, invoice_id, applied, currency, shared=False)

    async def credit_invoice(
        self, invoice_id: str, amount: Money, *, reason: str, idempotency_key: str
    ) -> CreditNote:
        """A credit memo worth `amount` including tax, at the tax code of the invoice's first line, applied to
        the invoice in the same write."""
        external_id = external_id_for(idempotency_key)
        existing = await self.client.find_record("creditMemo", external(external_id), expand=True)
        if existing is None:
            invoice = await self._invoice(invoice_id, expand=True)
            currency = await self._currency_of(invoice)
            self._same_currency(currency, amount, "a credit", str(invoice.get("tranId") or invoice_id))
            lines = mapping.sublist(invoice, "item")
            tax_id = mapping.ref_id(lines[0].get("taxCode")) if lines else None
            tax = await self.setup.tax_code_by_id(tax_id) if tax_id else None
            if tax is None:
                raise Rejected(
                    f"invoice {invoice_id} has no line with a tax code to credit at",
                    system=SYSTEM,
                    field_errors=[FieldError(field="item.items[0].taxCode", message="missing")],
                )
            payload = mapping.credit_memo_payload(
                invoice,
                amount,
                external_id=external_id,
                reason=reason,
                item_id=await self._service_item_id(),
                tax_id=tax.id,
                tax_percent=tax.percent,
            )
            memo_id = await self.client.upsert("creditMemo", external_id, payload)
            existing = await self.client.get_record("creditMemo", memo_id, expand=True)
        applied = mapping.applied_to(existing, invoice_id)
        if applied is None:
            raise Conflict(
                f"NetSuite credit memo {existing['id']} under key {idempotency_key!r} is not applied to "
                f"invoice {invoice_id}: the key was used for another credit",
                system=SYSTEM,
            )
        return mapping.credit_note(existing, invoice_id, applied, await self._currency_of(existing))

    async def payments_since(self, modified_since: datetime | None) -> list[Payment]:
        """Customer payments created or changed since the instant, one per invoice each applies to."""
        found: list[Payment] = []
        for row in await self.client.suiteql(suiteql.payments_modified_since(modified_since)):
            record = await self.client.get_record("customerPayment", str(row["id"]), expand=True)
            found.extend(mapping.payments(record, await self._currency_of(record)))
        return found

    # --- project dimensions (ErpProjectBooks) ---------------------------------------------------------------

    def booked_dimensions(self, entity: LegalEntity) -> tuple[Dimension, ...] | None:
        return None

    async def ensure_erp_project(self, spec: ErpProjectSpec, *, entity: LegalEntity) -> ErpProject:
        """The project as a job under its customer; its dimensions are the job and the customer."""
        return await projects.ensure_project(self.client, spec)

    # --- reference data and booked invoices (ReferenceSync, Reconciliation) --------------------------------

    async def reference_data(self) -> ErpReferenceData:
        subsidiary = await self.client.get_record("subsidiary", self.subsidiary_id)
        base_currency = await self._currency_of(subsidiary)
        return reference.reference_data(
            base_currency=base_currency,
            currencies=await self.client.suiteql(suiteql.CURRENCIES),
            tax_codes=await self.client.suiteql(suiteql.TAX_CODES),
            accounts=await self.client.suiteql(suiteql.ACCOUNTS),
            items=await self.client.suiteql(suiteql.ITEMS),
            today=datetime.now(UTC).date(),
        )

    async def booked_invoices(self, reference_prefix: str) -> list[BookedInvoice]:
        if not reference_prefix:
            raise ValueError("a reference prefix is required: listing every invoice is not a reconciliation")
        booked: list[BookedInvoice] = []
        jobs: dict[str, dict[str, Any] | None] = {}
        for row in await self.client.suiteql(suiteql.invoices_with_reference_prefix(reference_prefix)):
            record = await self._invoice(str(row["id"]), expand=True)
            accounts = [
                await self.setup.account_of_item(item_id) if item_id else None
                for item_id in (mapping.ref_id(line.get("item")) for line in mapping.sublist(record, "item"))
            ]
            booked.append(
                reference.booked_invoice(
                    record,
                    await self._currency_of(record),
                    accounts=accounts,
                    dimensions=await projects.booked_dimensions(self.client, record, jobs),
                )
            )
        return booked
