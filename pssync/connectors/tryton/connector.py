"""The ERP role over a real Tryton server (the EU entity's books).

Tryton has no idempotency header, so every write is "look up by our key, then create": the key is stored
on the document in the same `create` call (see mapping.py for which field), which makes a retried post,
payment or credit find the first one instead of making a second.

Tryton is the authority on amounts: it rounds every line to the currency (half-even) and computes taxes.
`post_invoice` therefore compares Tryton's untaxed total with ours before posting and refuses to post an
amount other than the one we billed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from pssync.canonical import (
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
from pssync.canonical.reference import BookedInvoice, ErpReferenceData
from pssync.connectors.errors import Conflict, FieldError, NotFound, Rejected
from pssync.connectors.http import DEFAULT_TIMEOUT
from pssync.connectors.tryton import credits, documents, mapping, reference
from pssync.connectors.tryton.books import TrytonBooks
from pssync.connectors.tryton.rpc import TrytonRpc, next_view_state, view_values

if TYPE_CHECKING:
    from pssync.settings import Settings

SYSTEM = "tryton"

DEFAULT_CONSULTING_PRODUCT = "Consulting services"
DEFAULT_EXPENSES_PRODUCT = "Expenses re-billed"
DEFAULT_PAYMENT_METHOD = "Bank transfer"


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

    @classmethod
    def from_settings(cls, settings: Settings) -> TrytonConnector:
        return cls(
            url=settings.tryton_url,
            database=settings.tryton_database,
            user=settings.tryton_user,
            password=settings.tryton_password,
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
        try:
            number = mapping.tryton_id(invoice_id, what="invoice")
        except ValueError as exc:
            raise NotFound(str(exc), system=SYSTEM, status_code=None) from None
        company = await self.books.company()
        domain = [("id", "=", number), ("type", "=", "out"), ("company", "=", company)]
        if not await self.rpc.search("account.invoice", domain):
            raise NotFound(f"Tryton has no customer invoice {invoice_id}", system=SYSTEM, status_code=None)
        return await documents.read_invoice(self.rpc, number)

    async def find_invoice(self, reference: str) -> PostedInvoice | None:
        company = await self.books.company()
        domain = [("reference", "=", reference), ("type", "=", "out"), ("company", "=", company)]
        found = await documents.read_invoices(self.rpc, await self.rpc.search("account.invoice", domain))
        records = [r for r in found if r["total_amount"] >= 0]  # our credit notes never carry the reference
        candidates = [r for r in records if r["state"] != "cancelled"] or records
        if not candidates:
            return None
        if len(candidates) > 1:
            raise Conflict(f"{len(candidates)} Tryton invoices carry reference {reference!r}", system=SYSTEM)
        return mapping.posted_invoice(
            candidates[0], await self.books.currency_code(candidates[0]["currency"])
        )

    async def post_invoice(
        self, invoice: Invoice, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedInvoice:
        async with self._posting:
            return await self._post_invoice(invoice, entity=entity, idempotency_key=idempotency_key)

    async def _post_invoice(
        self, invoice: Invoice, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedInvoice:
        if invoice.legal_entity != entity.code:
            raise Rejected(
                f"invoice is for entity {invoice.legal_entity}, this is {entity.code}",
                system=SYSTEM,
                field_errors=[FieldError(field="legal_entity", message="wrong legal entity")],
            )
        if not invoice.lines:
            raise Rejected(
                "an invoice needs at least one line",
                system=SYSTEM,
                field_errors=[FieldError(field="lines", message="empty")],
            )
        company = await self.books.company()
        # Credit notes share the field (same model); only an invoice counts here.
        existing = [
            r for r in await documents.by_key(self.rpc, company, idempotency_key) if r["total_amount"] >= 0
        ]
        if len(existing) > 1:
            raise Conflict(
                f"several Tryton invoices carry idempotency key {idempotency_key!r}", system=SYSTEM
            )
        if existing:
            record = existing[0]
            if record["reference"] != invoice.reference:
                raise Conflict(
                    f"idempotency key {idempotency_key!r} was used for invoice {record['reference']!r}, "
                    f"not {invoice.reference!r}",
                    system=SYSTEM,
                )
        else:
            record = await self._create_invoice(invoice, entity, idempotency_key)
        if record["state"] in ("draft", "validated"):
            await self._check_total(record, invoice)
            await documents.post(self.rpc, record["id"])
            record = await documents.read_invoice(self.rpc, record["id"])
        return mapping.posted_invoice(record, invoice.currency)

    async def _create_invoice(
        self, invoice: Invoice, entity: LegalEntity, idempotency_key: str
    ) -> dict[str, Any]:
        try:
            party = mapping.tryton_id(invoice.customer_id, what="customer")
        except ValueError as exc:
            raise Rejected(
                str(exc), system=SYSTEM, field_errors=[FieldError(field="customer_id", message=str(exc))]
            ) from None
        days = (invoice.due_date - invoice.issue_date).days
        if days < 0:
            raise Rejected(
                "due date is before the issue date",
                system=SYSTEM,
                field_errors=[FieldError(field="due_date", message="before issue_date")],
            )
        line_refs = await self.books.line_refs(invoice, entity)
        customer = await self.books.customer(party)
        refs = mapping.InvoiceRefs(
            company=await self.books.company(),
            party=party,
            invoice_address=customer["address"],
            currency=await self.books.currency(invoice.currency, "currency"),
            receivable=customer["receivable"],
            journal=await self.books.journal(),
            payment_term=await self.books.payment_term(days),
        )
        lines = [
            mapping.invoice_line_values(line, index, line_refs[index], refs)
            for index, line in enumerate(invoice.lines)
        ]
        values = mapping.invoice_values(invoice, idempotency_key=idempotency_key, refs=refs, lines=lines)
        (invoice_id,) = await self.rpc.create("account.invoice", [values])
        return await documents.read_invoice(self.rpc, invoice_id)

    async def _check_total(self, record: Mapping[str, Any], invoice: Invoice) -> None:
        """Refuse to post when Tryton's net total differs from ours; the draft is removed, nothing is left."""
        if record["untaxed_amount"] == invoice.total.amount:
            return
        lines = await self.rpc.read("account.invoice.line", record["lines"], ["sequence", "amount"])
        lines.sort(key=lambda line: (line["sequence"] or 0, line["id"]))
        errors = [
            FieldError(
                field=f"lines[{index}].amount",
                code="rounding",
                message=f"line {index} ({ours.description!r}): Tryton {theirs['amount']}, "
                f"ours {ours.amount.amount}",
            )
            for index, (ours, theirs) in enumerate(zip(invoice.lines, lines, strict=False))
            if theirs["amount"] != ours.amount.amount
        ]
        await self.rpc.delete("account.invoice", [record["id"]])
        raise Rejected(
            f"Tryton computes a net total of {record['untaxed_amount']} {invoice.currency}, we billed "
            f"{invoice.total.amount}: Tryton rounds each line to the currency half-even; not posted",
            system=SYSTEM,
            field_errors=errors or [FieldError(field="total", message="totals differ")],
        )

    async def get_invoice(self, invoice_id: str) -> InvoiceStatus:
        record = await self._invoice_record(invoice_id)
        currency = await self.books.currency_code(record["currency"])
        to_pay = await self.rpc.read(
            "account.move.line", record["lines_to_pay"], list(documents.MOVE_LINE_FIELDS)
        )
        maturities = [line["maturity_date"] for line in to_pay if line["maturity_date"]]
        payments, credit_notes = await self._settlements(record, currency)
        status = mapping.invoice_status(
            record,
            currency=currency,
            due_date=min(maturities) if maturities else None,
            payments=payments,
            credit_notes=credit_notes,
        )
        overpaid = await self._overpaid(record)
        if overpaid > 0:
            status = status.model_copy(update={"amount_overpaid": Money(amount=overpaid, currency=currency)})
        return status

    async def _overpaid(self, record: Mapping[str, Any]) -> Decimal:
        """What the invoice's payments brought in beyond what it owed, still open on the receivable.

        Tryton's pay wizard registers an overpayment as a second receivable line in the payment's move; only
        the line for the amount owed becomes a payment line of the invoice, the excess stays unreconciled on
        the party until it is refunded or applied (then it is reconciled, and no longer counted here).
        """
        own = set(record["payment_lines"])
        if not own:
            return Decimal(0)
        lines = await self.rpc.read("account.move.line", sorted(own), ["move"])
        moves = sorted({line["move"] for line in lines})
        extra = await self.rpc.search_read(
            "account.move.line",
            [
                ("move", "in", moves),
                ("account", "=", record["account"]),
                ("id", "not in", sorted(own)),
                ("reconciliation", "=", None),
            ],
            list(documents.MOVE_LINE_FIELDS),
        )
        return sum((mapping.line_amount(line, record["currency"]) for line in extra), Decimal(0))

    async def _settlements(
        self, record: Mapping[str, Any], currency: str
    ) -> tuple[list[Payment], list[CreditNote]]:
        """Payments and allocated credit notes: the invoice's payment lines and whatever reconciled it."""
        own = set(record["lines_to_pay"])
        ids = [
            i
            for i in dict.fromkeys([*record["payment_lines"], *record["reconciliation_lines"]])
            if i not in own
        ]
        if not ids:
            return [], []
        lines = await self.rpc.read("account.move.line", ids, list(documents.MOVE_LINE_FIELDS))
        # A voided invoice is reconciled with its own cancel move: that is not a settlement.
        lines = [line for line in lines if line["move"] != record["cancel_move"]]
        moves = await self._moves({line["move"] for line in lines})
        payments: list[Payment] = []
        credited: dict[int, Decimal] = {}
        for line in sorted(lines, key=lambda line: line["id"]):
            move = moves[line["move"]]
            credit_note = documents.origin_id(move["origin"], "account.invoice")
            if credit_note is not None and credit_note != record["id"]:
                credited[credit_note] = credited.get(credit_note, Decimal(0)) + mapping.line_amount(
                    line, record["currency"]
                )
            else:
                payments.append(
                    mapping.payment_from_line(
                        line,
                        invoice_id=record["id"],
                        currency=currency,
                        invoice_currency_id=record["currency"],
                        move_description=move["description"],
                    )
                )
        notes = [
            mapping.credit_note_from(
                credit, invoice_id=record["id"], currency=currency, amount=credited[credit["id"]]
            )
            for credit in await documents.read_invoices(self.rpc, sorted(credited))
        ]
        return payments, notes

    async def _moves(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        return {
            m["id"]: m
            for m in await self.rpc.read("account.move", sorted(ids), ["id", "origin", "description"])
        }

    # -- payments ------------------------------------------------------------------------------------------

    async def apply_payment(
        self, invoice_id: str, amount: Money, *, reference: str, idempotency_key: str
    ) -> Payment:
        record = await self._invoice_record(invoice_id)
        description = mapping.payment_description(reference, idempotency_key)
        existing = await self._payment_by_key(record, idempotency_key)
        if existing is not None:
            return existing
        currency = await self.books.currency_code(record["currency"])
        documents.check_amount(amount, currency)
        if record["state"] != "posted":
            raise Rejected(
                f"Tryton invoice {record['number'] or record['id']} is {record['state']}, only a "
                "posted invoice takes payments",
                system=SYSTEM,
            )
        if amount.amount > record["amount_to_pay"]:
            raise Rejected(
                f"payment of {amount} exceeds the {record['amount_to_pay']} {currency} still due",
                system=SYSTEM,
                field_errors=[FieldError(field="amount", message="overpayment")],
            )
        method = await self.books.payment_method()
        context = {"active_model": "account.invoice", "active_id": record["id"], "active_ids": [record["id"]]}
        async with self.rpc.wizard_session("account.invoice.pay", context=context) as wizard:
            start = await wizard.start()
            result = await wizard.execute(
                "choice",
                {
                    "start": {
                        **view_values(start),
                        "amount": amount.amount,
                        "payment_method": method,
                        "description": description,
                    }
                },
            )
            if next_view_state(result) == "ask":
                # Less than is due: keep the rest open (a partial payment), never write it off.
                await wizard.execute("pay", {"ask": {**view_values(result), "type": "partial"}})
        payment = await self._payment_by_key(record, idempotency_key)
        if payment is None:
            raise Rejected(f"Tryton's pay wizard recorded no payment for {description!r}", system=SYSTEM)
        return payment

    async def _payment_by_key(self, record: Mapping[str, Any], idempotency_key: str) -> Payment | None:
        domain = [("origin", "=", f"account.invoice,{record['id']}"), ("company", "=", record["company"])]
        moves = await self.rpc.search_read("account.move", domain, ["id", "description"])
        matching = [
            m for m in moves if mapping.split_payment_description(m["description"])[1] == idempotency_key
        ]
        if not matching:
            return None
        if len(matching) > 1:
            raise Conflict(
                f"several Tryton payments carry idempotency key {idempotency_key!r}", system=SYSTEM
            )
        move = matching[0]
        lines = await self.rpc.search_read(
            "account.move.line",
            [("move", "=", move["id"]), ("account", "=", record["account"])],
            list(documents.MOVE_LINE_FIELDS),
        )
        if not lines:
            return None
        return mapping.payment_from_line(
            lines[0],
            invoice_id=record["id"],
            currency=await self.books.currency_code(record["currency"]),
            invoice_currency_id=record["currency"],
            move_description=move["description"],
        )

    async def payments_since(self, modified_since: datetime | None) -> list[Payment]:
        company = await self.books.company()
        domain: list[Any] = [
            ("invoice_payments.type", "=", "out"),
            ("invoice_payments.company", "=", company),
        ]
        if modified_since is not None:
            since = (
                modified_since.astimezone(UTC)
                if modified_since.tzinfo
                else modified_since.replace(tzinfo=UTC)
            )
            domain.append(["OR", ("create_date", ">=", since), ("write_date", ">=", since)])
        lines = await self.rpc.search_read(
            "account.move.line",
            domain,
            [*documents.MOVE_LINE_FIELDS, "invoice_payments"],
            order=[("id", "ASC")],
        )
        if not lines:
            return []
        moves = await self._moves({line["move"] for line in lines})
        invoice_ids = sorted({i for line in lines for i in line["invoice_payments"]})
        currencies = {
            r["id"]: r["currency"]
            for r in await self.rpc.read("account.invoice", invoice_ids, ["id", "currency"])
        }
        payments = []
        for line in lines:
            move = moves[line["move"]]
            for invoice_id in line["invoice_payments"]:
                origin = documents.origin_id(move["origin"], "account.invoice")
                if origin is not None and origin != invoice_id:
                    continue  # a credit note allocated to the invoice, not money received
                payments.append(
                    mapping.payment_from_line(
                        line,
                        invoice_id=invoice_id,
                        currency=await self.books.currency_code(currencies[invoice_id]),
                        invoice_currency_id=currencies[invoice_id],
                        move_description=move["description"],
                    )
                )
        return payments

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

    # -- projects ------------------------------------------------------------------------------------------

    async def ensure_erp_project(self, external_ref: str, name: str, account_id: str) -> str:
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
        (work,) = await self.rpc.create(
            "project.work",
            [
                {
                    "name": name,
                    "type": "project",
                    "company": company,
                    "party": parties[0],
                    "comment": comment,
                    # Invoices come from ps-sync's own billing, not from Tryton's timesheet invoicing.
                    "project_invoice_method": "manual",
                }
            ],
        )
        return str(work)

    # -- reference data and booked invoices (ReferenceSync, Reconciliation) --------------------------------

    async def reference_data(self) -> ErpReferenceData:
        """The company's currency and rates, percentage taxes, chart of accounts and salable products."""
        return await reference.reference_data(self.rpc, self.books, today=datetime.now(UTC).date())

    async def booked_invoices(self, reference_prefix: str) -> list[BookedInvoice]:
        return await reference.booked_invoices(self.rpc, self.books, reference_prefix)
