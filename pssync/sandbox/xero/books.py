"""One Xero organisation's books: contacts, invoices, payments and credit notes, with Xero's rules.

Every write takes a batch of elements, as the API does. With `summarize=True` (Xero's default) one bad
element fails the whole batch and nothing is saved; with `summarize=False` the good elements are saved
and the bad ones come back marked with their validation errors
(developer.xero.com/documentation/api/accounting/requests-and-responses, "summarizeErrors").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pssync.sandbox.store import Collection, SandboxStore
from pssync.sandbox.xero import chart
from pssync.sandbox.xero.documents import (
    LINE_AMOUNT_TYPES,
    Chart,
    amount,
    money,
    now_ms,
    number,
    parse_date,
    read_lines,
    today,
)

Doc = dict[str, Any]
Publish = Callable[[str, str, str], None]  # (eventCategory, eventType, resourceId)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTACT_LIMITS = {
    "Name": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "EmailAddress": 255,
    "TaxNumber": 50,
    "FirstName": 255,
    "LastName": 255,
}


class ValidationFailed(Exception):
    """The batch was refused; `elements` are echoed back with their ValidationErrors."""

    def __init__(self, elements: list[Doc]) -> None:
        super().__init__("validation failed")
        self.elements = elements


class DocumentNotFound(Exception):
    pass


@dataclass
class _Prepared:
    """An element checked and ready: its validation errors, or how to save it."""

    errors: list[str]
    commit: Callable[[], Doc] | None = None


# The ContactStatus enum of xero_accounting.yaml.
_CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
# Xero's own words when a document names an archived contact.
_ARCHIVED_CONTACT = (
    "The contact with the specified contact details has been archived. The contact must be un-archived "
    "before creating new invoices or credit notes."
)


def _errors(messages: list[str]) -> list[Doc]:
    return [{"Message": message} for message in messages]


class XeroBooks:
    def __init__(self, store: SandboxStore, tenant_id: str, publish: Publish) -> None:
        self.tenant_id = tenant_id
        self._store = store
        self._publish = publish
        self.chart = Chart(
            accounts={a["Code"]: a for a in chart.accounts()},
            tax_rates={t["TaxType"]: t for t in chart.tax_rates()},
            items={i["Code"]: i for i in chart.items()},
        )
        self._currencies = {c["Code"] for c in chart.currencies()}

    def _collection(self, name: str) -> Collection:
        # Looked up on each use so a store reset leaves no stale collection behind.
        return self._store.collection(f"{self.tenant_id}:{name}")

    @property
    def contacts(self) -> Collection:
        return self._collection("contacts")

    @property
    def invoices(self) -> Collection:
        return self._collection("invoices")

    @property
    def payments(self) -> Collection:
        return self._collection("payments")

    @property
    def credit_notes(self) -> Collection:
        return self._collection("credit_notes")

    # --- batches ----------------------------------------------------------------------------------------

    def _run_batch(
        self,
        elements: Any,
        prepare: Callable[[Doc], _Prepared],
        echo: Callable[[Doc, list[str]], Doc],
        *,
        summarize: bool,
    ) -> list[Doc]:
        if not isinstance(elements, list) or not elements:
            raise ValidationFailed(
                [{"ValidationErrors": _errors(["The request contains no elements to save."])}]
            )
        prepared = [
            prepare(e) if isinstance(e, dict) else _Prepared(["Each element must be an object."])
            for e in elements
        ]
        failed = any(p.errors for p in prepared)
        if failed and summarize:
            raise ValidationFailed(
                [
                    echo(e if isinstance(e, dict) else {}, p.errors)
                    for e, p in zip(elements, prepared, strict=True)
                ]
            )
        results: list[Doc] = []
        for element, item in zip(elements, prepared, strict=True):
            if item.errors or item.commit is None:
                results.append(echo(element if isinstance(element, dict) else {}, item.errors))
            else:
                saved = item.commit()
                results.append({**saved, "StatusAttributeString": "OK"} if not summarize else saved)
        return results

    # --- contacts ---------------------------------------------------------------------------------------

    def find_contact(self, ident: str) -> Doc | None:
        return self.contacts.get(ident) or self.contacts.first(lambda c: c.get("ContactNumber") == ident)

    def _active_name_taken(self, name: str, except_id: str | None = None) -> bool:
        lowered = name.strip().lower()
        return (
            self.contacts.first(
                lambda c: (
                    c["ContactStatus"] == "ACTIVE"
                    and c["Name"].strip().lower() == lowered
                    and c["ContactID"] != except_id
                )
            )
            is not None
        )

    def _contact_errors(self, element: Doc, *, existing_id: str | None) -> list[str]:
        errors: list[str] = []
        name = element.get("Name")
        if existing_id is None and not (isinstance(name, str) and name.strip()):
            errors.append("The contact name must be specified.")
        if isinstance(name, str) and name.strip() and self._active_name_taken(name, existing_id):
            errors.append(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
        for field, limit in _CONTACT_LIMITS.items():
            value = element.get(field)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"The {field} field must be text of at most {limit} characters.")
        email = element.get("EmailAddress")
        if isinstance(email, str) and email and not _EMAIL.match(email):
            errors.append("Email address must be valid.")
        currency = element.get("DefaultCurrency")
        if currency is not None and currency not in self._currencies:
            errors.append(f"The organisation is not subscribed to currency {currency}.")
        status = element.get("ContactStatus")
        if status is not None and status not in _CONTACT_STATUSES:
            errors.append(f"ContactStatus must be one of {', '.join(_CONTACT_STATUSES)}.")
        return errors

    def _contact_fields(self, element: Doc) -> Doc:
        fields: Doc = {
            key: element[key]
            for key in (
                "Name",
                "ContactNumber",
                "AccountNumber",
                "FirstName",
                "LastName",
                "EmailAddress",
                "TaxNumber",
                "DefaultCurrency",
                "IsSupplier",
                "IsCustomer",
                # Archiving (and restoring) a contact is an update of its status.
                "ContactStatus",
            )
            if key in element
        }
        if isinstance(element.get("Addresses"), list):
            fields["Addresses"] = [a for a in element["Addresses"] if isinstance(a, dict)]
        if isinstance(element.get("Phones"), list):
            fields["Phones"] = [p for p in element["Phones"] if isinstance(p, dict)]
        return fields

    def _prepare_contact(self, element: Doc) -> _Prepared:
        existing = self.contacts.get(str(element["ContactID"])) if element.get("ContactID") else None
        if element.get("ContactID") and existing is None:
            return _Prepared([f"Contact with ContactID {element['ContactID']} could not be found."])
        errors = self._contact_errors(element, existing_id=existing["ContactID"] if existing else None)
        if errors:
            return _Prepared(errors)
        if existing is not None:
            return _Prepared([], lambda: self._update_contact(existing, element))
        return _Prepared([], lambda: self._create_contact(element))

    def _create_contact(self, element: Doc) -> Doc:
        contact: Doc = {
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "Addresses": [],
            "Phones": [],
            "IsSupplier": False,
            "IsCustomer": False,
            "ContactGroups": [],
            "ContactPersons": [],
            "HasAttachments": False,
            "HasValidationErrors": False,
            **self._contact_fields(element),
            "UpdatedDateUTC": now_ms(),
        }
        self.contacts.put(contact["ContactID"], contact)
        self._publish("CONTACT", "CREATE", contact["ContactID"])
        return contact

    def _update_contact(self, contact: Doc, element: Doc) -> Doc:
        updated = self.contacts.update(
            contact["ContactID"], {**self._contact_fields(element), "UpdatedDateUTC": now_ms()}
        )
        self._publish("CONTACT", "UPDATE", contact["ContactID"])
        return updated

    def save_contacts(self, elements: Any, *, summarize: bool, allow_update: bool) -> list[Doc]:
        def prepare(element: Doc) -> _Prepared:
            if not allow_update and element.get("ContactID"):
                return _Prepared(["ContactID cannot be given when creating contacts; use POST to update."])
            if allow_update and not element.get("ContactID") and isinstance(element.get("Name"), str):
                # POST matches an existing contact by name, as Xero's update-or-create does.
                match = self.contacts.first(
                    lambda c: c["Name"].strip().lower() == element["Name"].strip().lower()
                )
                if match is not None:
                    element = {**element, "ContactID": match["ContactID"]}
            return self._prepare_contact(element)

        return self._run_batch(elements, prepare, self._echo_contact, summarize=summarize)

    @staticmethod
    def _echo_contact(element: Doc, errors: list[str]) -> Doc:
        echo = {
            key: element[key]
            for key in ("ContactID", "Name", "ContactNumber", "AccountNumber", "EmailAddress")
            if isinstance(element.get(key), str)
        }
        return {
            **echo,
            "HasValidationErrors": bool(errors),
            "StatusAttributeString": "ERROR" if errors else "OK",
            "ValidationErrors": _errors(errors),
        }

    def _resolve_contact(self, raw: Any) -> tuple[Doc | None, str | None, Callable[[], Doc] | None]:
        """The invoice's contact: by ContactID, ContactNumber or Name (created on the fly, as Xero does)."""
        if not isinstance(raw, dict):
            return None, "A contact must be specified.", None
        if raw.get("ContactID"):
            found = self.contacts.get(str(raw["ContactID"]))
            if found is not None and found.get("ContactStatus") == "ARCHIVED":
                return None, _ARCHIVED_CONTACT, None
            return (
                (found, None, None)
                if found
                else (None, f"Contact with ContactID {raw['ContactID']} could not be found.", None)
            )
        if raw.get("ContactNumber"):
            found = self.contacts.first(lambda c: c.get("ContactNumber") == raw["ContactNumber"])
            return (
                (found, None, None)
                if found
                else (None, f"Contact with ContactNumber {raw['ContactNumber']} could not be found.", None)
            )
        name = raw.get("Name")
        if isinstance(name, str) and name.strip():
            found = self.contacts.first(lambda c: c["Name"].strip().lower() == name.strip().lower())
            if found is not None:
                return found, None, None
            return None, None, lambda: self._create_contact({"Name": name})
        return None, "A contact must be specified.", None

    # --- invoices and credit notes ----------------------------------------------------------------------

    def find_invoice(self, ident: str) -> Doc | None:
        return self.invoices.get(ident) or self.invoices.first(lambda i: i.get("InvoiceNumber") == ident)

    def _prepare_document(self, element: Doc, *, kind: str, unitdp: int | None) -> _Prepared:
        """Validate a new invoice (kind 'invoice') or credit note (kind 'credit') and price its lines."""
        types = ("ACCREC", "ACCPAY") if kind == "invoice" else ("ACCRECCREDIT", "ACCPAYCREDIT")
        errors: list[str] = []
        doc_type = element.get("Type")
        if doc_type not in types:
            errors.append(f"Type must be one of {', '.join(types)}.")
        status = element.get("Status", "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"Status {status} is not valid for a new document.")
        line_amount_types = element.get("LineAmountTypes", "Exclusive")
        if line_amount_types not in LINE_AMOUNT_TYPES:
            errors.append(f"LineAmountTypes must be one of {', '.join(LINE_AMOUNT_TYPES)}.")
            line_amount_types = "Exclusive"
        issued = parse_date(element["Date"]) if "Date" in element else today()
        if issued is None:
            errors.append(f"The date '{element.get('Date')}' is not a valid date.")
        due = parse_date(element["DueDate"]) if "DueDate" in element else None
        if "DueDate" in element and due is None:
            errors.append(f"The due date '{element.get('DueDate')}' is not a valid date.")
        currency = element.get("CurrencyCode", chart.BASE_CURRENCY)
        if currency not in self._currencies:
            errors.append(f"The organisation is not subscribed to currency {currency}.")
        contact, contact_error, create_contact = self._resolve_contact(element.get("Contact"))
        if contact_error:
            errors.append(contact_error)
        number_key = "InvoiceNumber" if kind == "invoice" else "CreditNoteNumber"
        wanted_number = element.get(number_key)
        collection = self.invoices if kind == "invoice" else self.credit_notes
        if wanted_number and collection.first(
            lambda d: d.get(number_key) == wanted_number and d["Type"] in ("ACCREC", "ACCRECCREDIT")
        ):
            errors.append(
                "Invoice # must be unique." if kind == "invoice" else "Credit note number must be unique."
            )
        sales = doc_type in ("ACCREC", "ACCRECCREDIT")
        lines = read_lines(
            element.get("LineItems"),
            sales=sales,
            line_amount_types=line_amount_types,
            unitdp=unitdp,
            approved=status in ("SUBMITTED", "AUTHORISED"),
            chart=self.chart,
        )
        errors.extend(lines.errors)
        if errors:
            return _Prepared(errors)
        assert issued is not None

        def commit() -> Doc:
            party = contact if contact is not None else create_contact() if create_contact else None
            assert party is not None
            doc: Doc = {
                "Type": doc_type,
                "Contact": {"ContactID": party["ContactID"], "Name": party["Name"]},
                "Date": issued.isoformat(),
                "Status": status,
                "LineAmountTypes": line_amount_types,
                "LineItems": lines.items,
                "SubTotal": money(lines.sub_total),
                "TotalTax": money(lines.total_tax),
                "Total": money(lines.total),
                "CurrencyCode": currency,
                "CurrencyRate": format(chart.CURRENCY_RATES.get(currency, Decimal(1)), "f"),
                "Reference": element.get("Reference") if isinstance(element.get("Reference"), str) else "",
                "HasAttachments": False,
                "UpdatedDateUTC": now_ms(),
            }
            if kind == "invoice":
                doc.update(
                    {
                        "InvoiceID": str(uuid.uuid4()),
                        "InvoiceNumber": wanted_number
                        or f"INV-{self._store.next_number(self._seq('invoice')):04d}",
                        "DueDate": (due or issued + timedelta(days=30)).isoformat(),
                        "AmountDue": money(lines.total),
                        "AmountPaid": "0.00",
                        "AmountCredited": "0.00",
                        "Payments": [],
                        "CreditNotes": [],
                        "Prepayments": [],
                        "Overpayments": [],
                        "SentToContact": False,
                        "IsDiscounted": False,
                        "HasErrors": False,
                    }
                )
                if status == "AUTHORISED" and doc_type == "ACCREC" and not party.get("IsCustomer"):
                    self._update_contact(party, {"IsCustomer": True})
                self.invoices.put(doc["InvoiceID"], doc)
                self._publish("INVOICE", "CREATE", doc["InvoiceID"])
            else:
                doc.update(
                    {
                        "CreditNoteID": str(uuid.uuid4()),
                        "CreditNoteNumber": wanted_number
                        or f"CN-{self._store.next_number(self._seq('credit')):04d}",
                        "RemainingCredit": money(lines.total),
                        "Allocations": [],
                        "Payments": [],
                        "HasErrors": False,
                    }
                )
                if due is not None:
                    doc["DueDate"] = due.isoformat()
                self.credit_notes.put(doc["CreditNoteID"], doc)
            return doc

        return _Prepared([], commit)

    def _seq(self, name: str) -> str:
        return f"{self.tenant_id}:{name}"

    @staticmethod
    def _echo_document(element: Doc, errors: list[str]) -> Doc:
        echo: Doc = {
            key: element[key]
            for key in (
                "Type",
                "InvoiceID",
                "InvoiceNumber",
                "CreditNoteID",
                "CreditNoteNumber",
                "Reference",
                "Status",
                "CurrencyCode",
            )
            if isinstance(element.get(key), str)
        }
        if (
            isinstance(element.get("LineAmountTypes"), str)
            and element["LineAmountTypes"] in LINE_AMOUNT_TYPES
        ):
            echo["LineAmountTypes"] = element["LineAmountTypes"]
        if isinstance(element.get("Contact"), dict):
            echo["Contact"] = {
                k: v
                for k, v in element["Contact"].items()
                if k in ("ContactID", "Name", "ContactNumber") and isinstance(v, str)
            }
        if isinstance(element.get("LineItems"), list):
            echo["LineItems"] = [
                {
                    k: (format(v, "f") if isinstance(v, Decimal) else v)
                    for k, v in line.items()
                    if (k in ("Description", "AccountCode", "TaxType", "ItemCode") and isinstance(v, str))
                    or (k in ("Quantity", "UnitAmount") and number(v) is not None)
                }
                for line in element["LineItems"]
                if isinstance(line, dict)
            ]
        return {
            **echo,
            "HasErrors": bool(errors),
            "StatusAttributeString": "ERROR" if errors else "OK",
            "ValidationErrors": _errors(errors),
        }

    def create_invoices(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        def prepare(element: Doc) -> _Prepared:
            if element.get("InvoiceID"):
                return _Prepared(["InvoiceID cannot be given when creating invoices; use POST to update."])
            return self._prepare_document(element, kind="invoice", unitdp=unitdp)

        return self._run_batch(elements, prepare, self._echo_document, summarize=summarize)

    def save_invoices(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        """POST /Invoices: update the elements that name an invoice, create the others."""

        def prepare(element: Doc) -> _Prepared:
            # Xero matches on InvoiceID, else on an existing InvoiceNumber; anything else is new.
            number = element.get("InvoiceNumber")
            known = number if number and self.find_invoice(str(number)) else None
            ident = element.get("InvoiceID") or known
            if ident:
                return self._prepare_invoice_update(str(ident), element, unitdp=unitdp)
            return self._prepare_document(element, kind="invoice", unitdp=unitdp)

        return self._run_batch(elements, prepare, self._echo_document, summarize=summarize)

    def update_invoice(self, ident: str, element: Any, *, unitdp: int | None) -> list[Doc]:
        if self.find_invoice(ident) is None:
            raise DocumentNotFound(ident)
        if isinstance(element, dict) and isinstance(element.get("Invoices"), list):
            elements = element["Invoices"]
        else:
            elements = [element]
        return self._run_batch(
            elements,
            lambda e: self._prepare_invoice_update(ident, e, unitdp=unitdp),
            self._echo_document,
            summarize=True,
        )

    def _prepare_invoice_update(self, ident: str, element: Doc, *, unitdp: int | None) -> _Prepared:
        invoice = self.find_invoice(ident)
        if invoice is None:
            return _Prepared([f"Invoice {ident} could not be found."])
        current = invoice["Status"]
        wanted = element.get("Status", current)
        settled = amount(invoice, "AmountPaid") > 0 or amount(invoice, "AmountCredited") > 0
        if current in ("VOIDED", "DELETED"):
            return _Prepared(["Invoice not of valid status for modification"])
        if current == "PAID" or (settled and (wanted != current or "LineItems" in element)):
            return _Prepared(
                ["This document cannot be edited as it has a payment or credit note allocated to it."]
            )
        allowed = {
            "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
            "SUBMITTED": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
            "AUTHORISED": {"AUTHORISED", "VOIDED"},
        }[current]
        if wanted not in allowed:
            return _Prepared([f"Invoice status cannot be changed from {current} to {wanted}."])
        changes: Doc = {}
        errors: list[str] = []
        for key in ("Reference",):
            if key in element:
                changes[key] = element[key]
        for key in ("Date", "DueDate"):
            if key in element:
                parsed = parse_date(element[key])
                if parsed is None:
                    errors.append(f"The date '{element[key]}' is not a valid date.")
                else:
                    changes[key] = parsed.isoformat()
        if "LineItems" in element and wanted != "VOIDED":
            line_amount_types = str(element.get("LineAmountTypes", invoice["LineAmountTypes"]))
            if line_amount_types not in LINE_AMOUNT_TYPES:
                return _Prepared([f"LineAmountTypes must be one of {', '.join(LINE_AMOUNT_TYPES)}."])
            lines = read_lines(
                element["LineItems"],
                sales=invoice["Type"] == "ACCREC",
                line_amount_types=line_amount_types,
                unitdp=unitdp,
                approved=wanted in ("SUBMITTED", "AUTHORISED"),
                chart=self.chart,
            )
            errors.extend(lines.errors)
            changes.update(
                {
                    "LineItems": lines.items,
                    "LineAmountTypes": line_amount_types,
                    "SubTotal": money(lines.sub_total),
                    "TotalTax": money(lines.total_tax),
                    "Total": money(lines.total),
                    "AmountDue": money(lines.total),
                }
            )
        elif wanted in ("SUBMITTED", "AUTHORISED") and not invoice["LineItems"]:
            errors.append("At least one line item must be specified for an approved document.")
        if errors:
            return _Prepared(errors)
        changes["Status"] = wanted
        if wanted == "VOIDED":
            changes["AmountDue"] = "0.00"

        def commit() -> Doc:
            updated = self.invoices.update(invoice["InvoiceID"], {**changes, "UpdatedDateUTC": now_ms()})
            self._publish("INVOICE", "UPDATE", invoice["InvoiceID"])
            return updated

        return _Prepared([], commit)

    def create_credit_notes(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        def prepare(element: Doc) -> _Prepared:
            return self._prepare_document(element, kind="credit", unitdp=unitdp)

        return self._run_batch(elements, prepare, self._echo_document, summarize=summarize)

    def find_credit_note(self, ident: str) -> Doc | None:
        return self.credit_notes.get(ident) or self.credit_notes.first(
            lambda c: c.get("CreditNoteNumber") == ident
        )

    def allocate_credit(self, credit_note_id: str, elements: Any, *, summarize: bool) -> list[Doc]:
        credit = self.find_credit_note(credit_note_id)
        if credit is None:
            raise DocumentNotFound(credit_note_id)

        def prepare(element: Doc) -> _Prepared:
            errors: list[str] = []
            if credit["Status"] != "AUTHORISED":
                errors.append("Only authorised credit notes with remaining credit can be allocated.")
            raw_invoice = element.get("Invoice")
            invoice = (
                self.find_invoice(str(raw_invoice.get("InvoiceID") or raw_invoice.get("InvoiceNumber")))
                if isinstance(raw_invoice, dict)
                else None
            )
            value = number(element.get("Amount"))
            allocated_on = parse_date(element.get("Date"))
            if invoice is None:
                errors.append("Invoice could not be found.")
            if value is None or value <= 0:
                errors.append("The amount to allocate must be a number greater than zero.")
            if allocated_on is None:
                errors.append("Date must be specified for an allocation.")
            if invoice is not None and value is not None and value > 0:
                if invoice["Status"] != "AUTHORISED":
                    errors.append("Credit can only be allocated to authorised invoices with an amount due.")
                if invoice["Contact"]["ContactID"] != credit["Contact"]["ContactID"]:
                    errors.append("The credit note and invoice must be for the same contact.")
                if invoice["CurrencyCode"] != credit["CurrencyCode"]:
                    errors.append("The credit note and invoice must be in the same currency.")
                if value > amount(credit, "RemainingCredit"):
                    errors.append(
                        "The amount to allocate is greater than the remaining credit on the credit note."
                    )
                if value > amount(invoice, "AmountDue"):
                    errors.append("The amount to allocate is greater than the amount due on the invoice.")
            if errors:
                return _Prepared(errors)
            assert invoice is not None and value is not None and allocated_on is not None

            def commit() -> Doc:
                allocation: Doc = {
                    "AllocationID": str(uuid.uuid4()),
                    "Amount": money(value),
                    "Date": allocated_on.isoformat(),
                    "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]},
                }
                remaining = amount(credit, "RemainingCredit") - value
                self.credit_notes.update(
                    credit["CreditNoteID"],
                    {
                        "RemainingCredit": money(remaining),
                        "Status": "PAID" if remaining == 0 else credit["Status"],
                        "Allocations": [*credit["Allocations"], allocation],
                        "UpdatedDateUTC": now_ms(),
                    },
                )
                due = amount(invoice, "AmountDue") - value
                applied = {
                    "CreditNoteID": credit["CreditNoteID"],
                    "CreditNoteNumber": credit["CreditNoteNumber"],
                    "AppliedAmount": money(value),
                    "Total": credit["Total"],
                    "Date": allocated_on.isoformat(),
                }
                self._settle(
                    invoice,
                    due=due,
                    changes={
                        "AmountCredited": money(amount(invoice, "AmountCredited") + value),
                        "CreditNotes": [*invoice["CreditNotes"], applied],
                    },
                    settled_on=allocated_on.isoformat(),
                )
                return {
                    **allocation,
                    "CreditNote": {
                        "CreditNoteID": credit["CreditNoteID"],
                        "CreditNoteNumber": credit["CreditNoteNumber"],
                    },
                }

            return _Prepared([], commit)

        def echo(element: Doc, errors: list[str]) -> Doc:
            out: Doc = {
                "ValidationErrors": _errors(errors),
                "StatusAttributeString": "ERROR" if errors else "OK",
            }
            if number(element.get("Amount")) is not None:
                out["Amount"] = element["Amount"]
            if isinstance(element.get("Date"), str):
                out["Date"] = element["Date"]
            if isinstance(element.get("Invoice"), dict):
                out["Invoice"] = {k: v for k, v in element["Invoice"].items() if k == "InvoiceID"}
            return out

        return self._run_batch(elements, prepare, echo, summarize=summarize)

    def _settle(self, invoice: Doc, *, due: Decimal, changes: Doc, settled_on: str) -> None:
        """Apply money to an invoice; at zero due it is PAID, and dropping above zero re-opens it."""
        update: Doc = {**changes, "AmountDue": money(due), "UpdatedDateUTC": now_ms()}
        if due == 0:
            update.update(Status="PAID", FullyPaidOnDate=settled_on)
        elif invoice["Status"] == "PAID":
            update.update(Status="AUTHORISED", FullyPaidOnDate=None)
        self.invoices.update(invoice["InvoiceID"], update)
        self._publish("INVOICE", "UPDATE", invoice["InvoiceID"])

    # --- payments ---------------------------------------------------------------------------------------

    def _prepare_payment(self, element: Doc) -> _Prepared:
        errors: list[str] = []
        raw_invoice = element.get("Invoice")
        invoice = None
        if isinstance(raw_invoice, dict) and (
            raw_invoice.get("InvoiceID") or raw_invoice.get("InvoiceNumber")
        ):
            invoice = self.find_invoice(str(raw_invoice.get("InvoiceID") or raw_invoice.get("InvoiceNumber")))
            if invoice is None:
                errors.append("Invoice could not be found.")
        else:
            errors.append("An invoice must be specified for the payment.")
        raw_account = element.get("Account")
        account = None
        if isinstance(raw_account, dict):
            if raw_account.get("Code"):
                account = self.chart.accounts.get(str(raw_account["Code"]))
            elif raw_account.get("AccountID"):
                account = next(
                    (a for a in self.chart.accounts.values() if a["AccountID"] == raw_account["AccountID"]),
                    None,
                )
        if account is None:
            errors.append("Account could not be found; specify the bank account by Code or AccountID.")
        elif not account["EnablePaymentsToAccount"]:
            errors.append(
                f"Payments cannot be made to account {account['Code']}: it is not a bank account "
                "and payments are not enabled on it."
            )
        paid_on = parse_date(element.get("Date"))
        if paid_on is None:
            errors.append("Payment date must be specified as a valid date.")
        value = number(element.get("Amount"))
        if value is None or value <= 0:
            errors.append("Payment amount must be a number greater than zero.")
        if invoice is not None:
            if invoice["Status"] != "AUTHORISED":
                errors.append("Payments can only be made against Authorised documents.")
            elif value is not None and value > amount(invoice, "AmountDue"):
                errors.append("Payment amount exceeds the amount outstanding on this document.")
        if errors:
            return _Prepared(errors)
        assert invoice is not None and account is not None and paid_on is not None and value is not None

        def commit() -> Doc:
            payment: Doc = {
                "PaymentID": str(uuid.uuid4()),
                "Date": paid_on.isoformat(),
                "Amount": money(value),
                "BankAmount": money(value),
                "CurrencyRate": invoice["CurrencyRate"],
                "Reference": element.get("Reference") if isinstance(element.get("Reference"), str) else "",
                "IsReconciled": False,
                "Status": "AUTHORISED",
                "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
                "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
                "Invoice": {
                    "InvoiceID": invoice["InvoiceID"],
                    "InvoiceNumber": invoice["InvoiceNumber"],
                    "Type": invoice["Type"],
                    "CurrencyCode": invoice["CurrencyCode"],
                    "Contact": dict(invoice["Contact"]),
                },
                "HasAccount": True,
                "HasValidationErrors": False,
                "UpdatedDateUTC": now_ms(),
            }
            self.payments.put(payment["PaymentID"], payment)
            summary = {
                "PaymentID": payment["PaymentID"],
                "Date": payment["Date"],
                "Amount": payment["Amount"],
                "Reference": payment["Reference"],
                "CurrencyRate": payment["CurrencyRate"],
                "HasAccount": False,
                "HasValidationErrors": False,
            }
            self._settle(
                invoice,
                due=amount(invoice, "AmountDue") - value,
                changes={
                    "AmountPaid": money(amount(invoice, "AmountPaid") + value),
                    "Payments": [*invoice["Payments"], summary],
                },
                settled_on=payment["Date"],
            )
            return payment

        return _Prepared([], commit)

    @staticmethod
    def _echo_payment(element: Doc, errors: list[str]) -> Doc:
        echo: Doc = {key: element[key] for key in ("Reference",) if isinstance(element.get(key), str)}
        if number(element.get("Amount")) is not None:
            echo["Amount"] = element["Amount"]
        if isinstance(element.get("Date"), str):
            echo["Date"] = element["Date"]
        return {
            **echo,
            "HasValidationErrors": bool(errors),
            "StatusAttributeString": "ERROR" if errors else "OK",
            "ValidationErrors": _errors(errors),
        }

    def create_payments(self, elements: Any, *, summarize: bool) -> list[Doc]:
        return self._run_batch(elements, self._prepare_payment, self._echo_payment, summarize=summarize)

    def delete_payment(self, payment_id: str, element: Any) -> list[Doc]:
        payment = self.payments.get(payment_id)
        if payment is None:
            raise DocumentNotFound(payment_id)

        def prepare(element: Doc) -> _Prepared:
            if element.get("Status") != "DELETED":
                return _Prepared(["A payment can only be changed by setting its Status to DELETED."])
            if payment["Status"] == "DELETED":
                return _Prepared(["This payment has already been deleted."])

            def commit() -> Doc:
                invoice = self.invoices.get(payment["Invoice"]["InvoiceID"])
                updated = self.payments.update(payment_id, {"Status": "DELETED", "UpdatedDateUTC": now_ms()})
                if invoice is not None:
                    value = amount(payment, "Amount")
                    self._settle(
                        invoice,
                        due=amount(invoice, "AmountDue") + value,
                        changes={
                            "AmountPaid": money(amount(invoice, "AmountPaid") - value),
                            "Payments": [p for p in invoice["Payments"] if p["PaymentID"] != payment_id],
                        },
                        settled_on=today().isoformat(),
                    )
                return updated

            return _Prepared([], commit)

        elements = element.get("Payments", [element]) if isinstance(element, dict) else element
        return self._run_batch(elements, prepare, self._echo_payment, summarize=True)
