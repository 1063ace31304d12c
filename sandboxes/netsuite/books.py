"""One NetSuite account's records and the rules NetSuite applies when they are written.

Records are kept as the record API shows them (camelCase fields, references as {"id": ...}, sublists as
{"items": [...]}), amounts as decimal strings so they survive the store's JSON unchanged. Fields starting
with "_" are the sandbox's own and never leave it.

Rules (NetSuite's, as far as its documentation says; where it does not, as stated here):
- internal ids: entities (customers, jobs) share one sequence, transactions another; external ids are
  unique per record type;
- a transaction line's amount is quantity x rate rounded half-up to the currency's precision (2), unless an
  amount is given, which is kept; tax is the line amount x the tax item's rate, rounded half-up per line;
- subtotal is the sum of line amounts, total adds the tax; an invoice's amount remaining is its total less
  what payments and credit memos apply to it; its status is Open, Paid In Full or Voided;
- a payment or credit memo applies to open invoices of its customer (or the customer's jobs) in its
  currency, never more than an invoice's amount remaining, never more in all than its own amount;
- a direct void sets the invoice's lines and totals to zero and keeps it; an invoice with anything applied
  to it cannot be voided.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sandboxes.netsuite.replies import NetSuiteError
from sandboxes.store import Doc, SandboxStore

ENTITY_TYPES = ("customer", "job")
TRANSACTION_TYPES = {"invoice": "CustInvc", "creditMemo": "CustCred", "customerPayment": "CustPymt"}
READ_ONLY_TYPES = ("subsidiary", "currency", "salesTaxItem", "item", "account")
RECORD_TYPES = (*ENTITY_TYPES, *TRANSACTION_TYPES, *READ_ONLY_TYPES)
SUBLISTS = ("item", "apply", "addressBook")
CENT = Decimal("0.01")
DEFAULT_TERMS_DAYS = 30


def invalid(detail: str, path: str | None = None, code: str = "INVALID_CONTENT") -> NetSuiteError:
    where = {"error_path": path} if path else {}
    return NetSuiteError(400, code, f"Error while accessing resource: {detail}", **where)


def missing(label: str, path: str) -> NetSuiteError:
    return NetSuiteError(400, "USER_ERROR", f"Please enter value(s) for: {label}", error_path=path)


def number(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise invalid(
            f"You have entered an Invalid Field Value {value!r} for the following field: {path}", path
        )
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise invalid(
            f"You have entered an Invalid Field Value {value!r} for the following field: {path}", path
        ) from None
    if not result.is_finite():
        raise invalid(
            f"You have entered an Invalid Field Value {value!r} for the following field: {path}", path
        )
    return result


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def text(value: Decimal) -> str:
    return format(value, "f")


def amount_of(doc: Doc, field: str) -> Decimal:
    value = doc.get(field)
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def ref_of(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("id") not in (None, ""):
        return str(value["id"])
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)
    return None


def lines_of(body: Doc, sublist: str) -> list[Doc]:
    value = body.get(sublist)
    if value is None:
        return []
    items = value.get("items") if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(line, dict) for line in items):
        raise invalid(f'{sublist} must be a sublist of lines ({{"items": [...]}})', sublist)
    return items


def day(value: Any, path: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise invalid(
            f"You have entered an Invalid Field Value {value!r} for the following field: {path}", path
        ) from None


class NetSuiteBooks:
    def __init__(
        self, store: SandboxStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.store = store
        self._clock = clock

    def records(self, record_type: str) -> Any:
        return self.store.collection(record_type)

    def _now(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # --- addressing -----------------------------------------------------------------------------------------

    def find(self, record_type: str, ref: str) -> Doc | None:
        records = self.records(record_type)
        if ref.startswith("eid:"):
            wanted = ref[4:]
            return records.first(lambda doc: doc.get("externalId") == wanted)
        return records.get(ref)

    def get(self, record_type: str, ref: str) -> Doc:
        if record_type not in RECORD_TYPES:
            raise NetSuiteError(404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist.")
        doc = self.find(record_type, ref)
        if doc is None:
            raise NetSuiteError(
                404,
                "NONEXISTENT_ID",
                f"Record '{record_type}' with ID '{ref}' was not found.",
                error_url_path=ref,
            )
        return doc

    def _entity(self, ref: str | None, path: str) -> Doc:
        if ref is None:
            raise missing("Customer", path)
        for record_type in ENTITY_TYPES:
            doc = self.records(record_type).get(ref)
            if doc is not None:
                return doc
        raise invalid(f"You have entered an Invalid Field Value {ref} for the following field: entity", path)

    def top_customer(self, entity: Doc) -> Doc:
        """A job's customer (jobs hang under customers), or the customer itself."""
        seen = 0
        while entity.get("_type") == "job" and seen < 10:
            entity = self.records("customer").get(str(entity["parent"]["id"])) or self.records("job").get(
                str(entity["parent"]["id"])
            )
            seen += 1
        return entity

    def _reference(self, record_type: str, value: Any, path: str, label: str) -> Doc:
        ref = ref_of(value)
        if ref is None:
            raise missing(label, path)
        doc = self.records(record_type).get(ref)
        if doc is None or doc.get("isInactive"):
            raise invalid(
                f"You have entered an Invalid Field Value {ref} for the following field: {path}", path
            )
        return doc

    # --- writes ---------------------------------------------------------------------------------------------

    def create(self, record_type: str, body: Doc) -> Doc:
        with self.store.lock:
            external_id = body.get("externalId")
            if external_id and self.find(record_type, f"eid:{external_id}") is not None:
                raise NetSuiteError(
                    400, "DUP_RCRD", f"A {record_type} record with external ID {external_id} already exists."
                )
            return self._write(record_type, None, body)

    def upsert(self, record_type: str, external_id: str, body: Doc) -> Doc:
        """PUT .../eid:<externalId>: create, or update the record that carries the external id."""
        if body.get("externalId") not in (None, external_id):
            raise invalid("externalId in the body differs from the one in the URL", "externalId")
        with self.store.lock:
            existing = self.find(record_type, f"eid:{external_id}")
            return self._write(record_type, existing, {**body, "externalId": external_id})

    def update(self, record_type: str, ref: str, body: Doc) -> Doc:
        with self.store.lock:
            return self._write(record_type, self.get(record_type, ref), body)

    def delete(self, record_type: str, ref: str) -> None:
        with self.store.lock:
            doc = self.get(record_type, ref)
            if record_type == "invoice" and self.applications_to(str(doc["id"])):
                raise NetSuiteError(
                    400, "USER_ERROR", "This record cannot be deleted because it has dependent records."
                )
            self.records(record_type).delete(str(doc["id"]))

    def _write(self, record_type: str, existing: Doc | None, body: Doc) -> Doc:
        if record_type in READ_ONLY_TYPES or record_type not in RECORD_TYPES:
            raise NetSuiteError(
                405, "INVALID_OPERATION", f"Records of type '{record_type}' cannot be written here."
            )
        writer = {
            "customer": self._customer,
            "job": self._job,
            "invoice": self._invoice,
            "creditMemo": self._credit_memo,
            "customerPayment": self._payment,
        }[record_type]
        doc = writer(existing, body)
        doc["lastModifiedDate"] = self._now()
        doc["_type"] = record_type
        self.records(record_type).put(str(doc["id"]), doc)
        return doc

    def _new_id(self, record_type: str) -> str:
        family = "entity" if record_type in ENTITY_TYPES else "transaction"
        return str(self.store.next_number(family, start=100 if family == "entity" else 1000))

    def _base(self, record_type: str, existing: Doc | None, body: Doc) -> Doc:
        if existing is not None:
            return {**existing}
        doc: Doc = {"id": self._new_id(record_type), "createdDate": self._now()}
        if body.get("externalId"):
            doc["externalId"] = str(body["externalId"])
        return doc

    def _customer(self, existing: Doc | None, body: Doc) -> Doc:
        doc = self._base("customer", existing, body)
        merged = {**doc, **{k: v for k, v in body.items() if not k.startswith("_")}}
        if not str(merged.get("companyName") or "").strip():
            raise missing("Company Name", "companyName")
        subsidiary = self._reference(
            "subsidiary", merged.get("subsidiary") or {"id": "1"}, "subsidiary", "Subsidiary"
        )
        currency = self._reference(
            "currency", merged.get("currency") or subsidiary["currency"], "currency", "Currency"
        )
        lines_of(merged, "addressBook")
        number_ = doc.get("entityId") or f"CUST{self.store.next_number('customer-number', start=1001)}"
        return {
            **merged,
            "entityId": number_,
            "isPerson": bool(merged.get("isPerson", False)),
            "subsidiary": {"id": str(subsidiary["id"])},
            "currency": {"id": str(currency["id"])},
            "isInactive": bool(merged.get("isInactive", False)),
        }

    def _job(self, existing: Doc | None, body: Doc) -> Doc:
        doc = self._base("job", existing, body)
        merged = {**doc, **{k: v for k, v in body.items() if not k.startswith("_")}}
        if not str(merged.get("companyName") or "").strip():
            raise missing("Project Name", "companyName")
        parent = self._entity(ref_of(merged.get("parent")), "parent")
        customer = self.top_customer(parent)
        return {
            **merged,
            "entityId": f"{customer['entityId']} : {merged['companyName']}",
            "parent": {"id": str(parent["id"])},
            "subsidiary": customer["subsidiary"],
            "currency": customer["currency"],
            "isInactive": bool(merged.get("isInactive", False)),
        }

    def _lines(self, body: Doc, path: str = "item") -> tuple[list[Doc], Decimal, Decimal]:
        lines: list[Doc] = []
        subtotal = tax_total = Decimal(0)
        raw_lines = lines_of(body, "item")
        if not raw_lines:
            raise missing("Items", path)
        for index, line in enumerate(raw_lines):
            at = f"item.items[{index}]"
            item = self._reference("item", line.get("item"), f"{at}.item", "Item")
            quantity = number(line.get("quantity", 1), f"{at}.quantity")
            given_amount = line.get("amount")
            if line.get("rate") is not None:
                rate = number(line["rate"], f"{at}.rate")
            elif given_amount is not None and quantity:
                rate = number(given_amount, f"{at}.amount") / quantity
            else:
                raise missing("Rate", f"{at}.rate")
            amount = (
                cents(number(given_amount, f"{at}.amount"))
                if given_amount is not None
                else cents(quantity * rate)
            )
            tax_item = self._reference("salesTaxItem", line.get("taxCode"), f"{at}.taxCode", "Tax Code")
            tax_rate = Decimal(str(tax_item["rate"]))
            tax = cents(amount * tax_rate / 100)
            subtotal += amount
            tax_total += tax
            lines.append(
                {
                    "line": index + 1,
                    "item": {"id": str(item["id"])},
                    "description": str(line.get("description") or item.get("displayName") or ""),
                    "quantity": text(quantity),
                    "rate": text(rate),
                    "amount": text(amount),
                    "taxCode": {"id": str(tax_item["id"])},
                    "taxRate1": text(tax_rate),
                    "tax1Amt": text(tax),
                }
            )
        return lines, subtotal, tax_total

    def _transaction_head(self, record_type: str, existing: Doc | None, body: Doc, entity_field: str) -> Doc:
        doc = self._base(record_type, existing, body)
        if existing is not None and existing.get("_voided"):
            raise NetSuiteError(400, "USER_ERROR", "You cannot edit a voided transaction.")
        merged = {**doc, **{k: v for k, v in body.items() if not k.startswith("_")}}
        entity = self._entity(ref_of(merged.get(entity_field)), entity_field)
        customer = self.top_customer(entity)
        currency_ref = ref_of(merged.get("currency")) or str(customer["currency"]["id"])
        if currency_ref != str(customer["currency"]["id"]):
            raise invalid(f"The currency {currency_ref} is not the customer's currency", "currency")
        tran_date = day(merged.get("tranDate") or self._clock().date().isoformat(), "tranDate")
        return {
            **merged,
            entity_field: {"id": str(entity["id"])},
            "_customer": str(customer["id"]),
            "subsidiary": customer["subsidiary"],
            "currency": {"id": currency_ref},
            "tranDate": tran_date.isoformat(),
        }

    def _invoice(self, existing: Doc | None, body: Doc) -> Doc:
        if existing is not None and "item" in body and self.applications_to(str(existing["id"])):
            raise NetSuiteError(
                400,
                "USER_ERROR",
                "You cannot change the lines of an invoice with payments or credits applied.",
            )
        doc = self._transaction_head("invoice", existing, body, "entity")
        lines, subtotal, tax_total = self._lines(doc)
        due = (
            day(doc.get("dueDate"), "dueDate")
            if doc.get("dueDate")
            else (date.fromisoformat(doc["tranDate"]) + timedelta(days=DEFAULT_TERMS_DAYS))
        )
        tran_id = doc.get("tranId") or f"INV{self.store.next_number('invoice-number', start=10001)}"
        return {
            **doc,
            "tranId": tran_id,
            "dueDate": due.isoformat(),
            "otherRefNum": str(doc.get("otherRefNum") or ""),
            "item": {"items": lines},
            "subtotal": text(subtotal),
            "taxTotal": text(tax_total),
            "total": text(subtotal + tax_total),
        }

    def _check_applications(self, doc: Doc, limit: Decimal, what: str) -> list[Doc]:
        applied: list[Doc] = []
        total = Decimal(0)
        for index, line in enumerate(lines_of(doc, "apply")):
            if not line.get("apply", True):
                continue
            at = f"apply.items[{index}]"
            invoice_id = ref_of(line.get("doc"))
            invoice = self.records("invoice").get(invoice_id) if invoice_id else None
            if invoice is None or invoice.get("_voided"):
                raise invalid(
                    f"You have entered an Invalid Field Value {invoice_id} for the following field: doc",
                    f"{at}.doc",
                )
            if invoice["_customer"] != doc["_customer"]:
                raise invalid(f"Invoice {invoice['tranId']} belongs to another customer", f"{at}.doc")
            if invoice["currency"] != doc["currency"]:
                raise invalid(f"Invoice {invoice['tranId']} is in another currency", f"{at}.doc")
            amount = number(line.get("amount"), f"{at}.amount")
            remaining = self.remaining(invoice, excluding=str(doc["id"]))
            if amount <= 0 or amount > remaining:
                raise invalid(
                    f"The amount applied to {invoice['tranId']} ({amount}) must be more than 0 and at most "
                    f"its amount remaining ({remaining})",
                    f"{at}.amount",
                )
            total += amount
            applied.append(
                {
                    "doc": {"id": str(invoice["id"])},
                    "apply": True,
                    "amount": text(amount),
                    "refNum": invoice["tranId"],
                    "type": "Invoice",
                    "total": invoice["total"],
                    "applyDate": doc["tranDate"],
                }
            )
        if total > limit:
            raise invalid(f"The {what} applies {total}, more than its amount {limit}", "apply")
        return applied

    def _payment(self, existing: Doc | None, body: Doc) -> Doc:
        doc = self._transaction_head("customerPayment", existing, body, "customer")
        amount = number(doc.get("payment"), "payment")
        if amount <= 0:
            raise invalid("The payment amount must be more than 0", "payment")
        applied = self._check_applications(doc, amount, "payment")
        tran_id = doc.get("tranId") or str(self.store.next_number("payment-number", start=1))
        self._touch(applied)
        return {
            **doc,
            "tranId": tran_id,
            "payment": text(amount),
            "apply": {"items": applied},
            "applied": text(sum((Decimal(a["amount"]) for a in applied), Decimal(0))),
            "unapplied": text(amount - sum((Decimal(a["amount"]) for a in applied), Decimal(0))),
            "undepFunds": True,
            "status": {"id": "B", "refName": "Not Deposited"},
        }

    def _credit_memo(self, existing: Doc | None, body: Doc) -> Doc:
        doc = self._transaction_head("creditMemo", existing, body, "entity")
        lines, subtotal, tax_total = self._lines(doc)
        total = subtotal + tax_total
        doc = {**doc, "total": text(total)}
        applied = self._check_applications(doc, total, "credit memo")
        used = sum((Decimal(a["amount"]) for a in applied), Decimal(0))
        tran_id = doc.get("tranId") or f"CM{self.store.next_number('credit-memo-number', start=5001)}"
        self._touch(applied)
        return {
            **doc,
            "tranId": tran_id,
            "item": {"items": lines},
            "subtotal": text(subtotal),
            "taxTotal": text(tax_total),
            "applied": text(used),
            "unapplied": text(total - used),
            "apply": {"items": applied},
            "status": {
                "id": "B" if used == total else "A",
                "refName": "Fully Applied" if used == total else "Open",
            },
        }

    def _touch(self, applied: list[Doc]) -> None:
        """An invoice a payment or credit reaches is modified by it, as NetSuite's lastModifiedDate shows."""
        for line in applied:
            invoice = self.records("invoice").get(line["doc"]["id"])
            if invoice is not None:
                self.records("invoice").put(str(invoice["id"]), {**invoice, "lastModifiedDate": self._now()})

    # --- applications ---------------------------------------------------------------------------------------

    def applications_to(
        self, invoice_id: str, *, excluding: str | None = None
    ) -> list[tuple[str, Doc, Decimal]]:
        """(record type, record, amount) of every payment and credit memo applied to the invoice."""
        found: list[tuple[str, Doc, Decimal]] = []
        for record_type in ("customerPayment", "creditMemo"):
            for doc in self.records(record_type):
                if str(doc["id"]) == excluding or doc.get("_voided"):
                    continue
                for line in lines_of(doc, "apply"):
                    if line.get("apply") and ref_of(line.get("doc")) == invoice_id:
                        found.append((record_type, doc, Decimal(str(line["amount"]))))
        return found

    def remaining(self, invoice: Doc, *, excluding: str | None = None) -> Decimal:
        applied = sum(
            (amount for _, _, amount in self.applications_to(str(invoice["id"]), excluding=excluding)),
            Decimal(0),
        )
        return amount_of(invoice, "total") - applied

    def invoice_view(self, invoice: Doc) -> Doc:
        """The invoice with what depends on others: amount paid and remaining, and its status."""
        remaining = self.remaining(invoice)
        total = amount_of(invoice, "total")
        if invoice.get("_voided"):
            status = {"id": "V", "refName": "Voided"}
        elif remaining == 0:
            status = {"id": "B", "refName": "Paid In Full"}
        else:
            status = {"id": "A", "refName": "Open"}
        return {
            **invoice,
            "amountRemaining": text(remaining),
            "amountPaid": text(total - remaining),
            "status": status,
        }

    def links(self) -> Iterator[Doc]:
        """NextTransactionLineLink rows: an invoice (previous) and each payment or credit memo (next)."""
        for record_type, next_type in (("customerPayment", "CustPymt"), ("creditMemo", "CustCred")):
            for doc in self.records(record_type):
                if doc.get("_voided"):
                    continue
                for line in lines_of(doc, "apply"):
                    if line.get("apply"):
                        yield {
                            "previousdoc": str(line["doc"]["id"]),
                            "previoustype": "CustInvc",
                            "nextdoc": str(doc["id"]),
                            "nexttype": next_type,
                            "linktype": "Payment",
                            "foreignamount": Decimal(str(line["amount"])),
                        }

    # --- actions and transforms -----------------------------------------------------------------------------

    def void(self, record_type: str, ref: str) -> Doc:
        """A direct void: lines and totals to zero, the transaction kept and marked voided."""
        if record_type != "invoice":
            raise NetSuiteError(
                400, "INVALID_OPERATION", f"The action 'void' is not available on {record_type}."
            )
        with self.store.lock:
            invoice = self.get(record_type, ref)
            if invoice.get("_voided"):
                raise NetSuiteError(400, "USER_ERROR", "This transaction has already been voided.")
            if self.applications_to(str(invoice["id"])):
                raise NetSuiteError(
                    400, "USER_ERROR", "You cannot void this invoice: payments or credits are applied to it."
                )
            lines = [{**line, "amount": "0.00", "tax1Amt": "0.00"} for line in lines_of(invoice, "item")]
            voided = {
                **invoice,
                "item": {"items": lines},
                "subtotal": "0.00",
                "taxTotal": "0.00",
                "total": "0.00",
                "memo": f"VOID: {invoice.get('memo') or ''}".strip(),
                "_voided": True,
                "lastModifiedDate": self._now(),
            }
            self.records(record_type).put(str(invoice["id"]), voided)
            return voided

    def transform(self, record_type: str, ref: str, target: str, body: Doc) -> Doc:
        """Invoice -> customer payment or credit memo, applied to the invoice (the UI's Accept Payment and
        Credit buttons)."""
        if record_type != "invoice" or target not in ("customerPayment", "creditMemo"):
            raise NetSuiteError(
                400, "INVALID_OPERATION", f"A {record_type} cannot be transformed to {target}."
            )
        with self.store.lock:
            invoice = self.invoice_view(self.get(record_type, ref))
            remaining = Decimal(invoice["amountRemaining"])
            if target == "customerPayment":
                amount = number(body.get("payment", remaining), "payment")
                seeded: Doc = {
                    "customer": invoice["entity"],
                    "currency": invoice["currency"],
                    "payment": text(amount),
                    "apply": {
                        "items": [{"doc": {"id": str(invoice["id"])}, "apply": True, "amount": text(amount)}]
                    },
                }
            else:
                seeded = {
                    "entity": invoice["entity"],
                    "currency": invoice["currency"],
                    "otherRefNum": invoice.get("otherRefNum"),
                    "item": {"items": [dict(line) for line in lines_of(invoice, "item")]},
                    "apply": {
                        "items": [
                            {"doc": {"id": str(invoice["id"])}, "apply": True, "amount": text(remaining)}
                        ]
                    },
                }
            return self.create(target, {**seeded, **body})
