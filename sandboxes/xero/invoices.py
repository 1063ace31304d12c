"""Invoices and credit notes: creating them with Xero's checks, and the status changes Xero allows an invoice.

Lines are read and priced by documents.read_lines; a document may name a contact that does not exist yet by
name, and Xero creates it with the document.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sandboxes.xero import chart
from sandboxes.xero.batches import Doc, DocumentNotFound, Prepared, run_batch, validation_errors
from sandboxes.xero.contacts import Contacts
from sandboxes.xero.documents import (
    LINE_AMOUNT_TYPES,
    amount,
    money,
    now_ms,
    number,
    parse_date,
    read_lines,
    today,
)
from sandboxes.xero.organisation import Organisation
from sandboxes.xero.tracking import Tracking


class Invoices:
    def __init__(self, org: Organisation, contacts: Contacts) -> None:
        self._org = org
        self._contacts = contacts

    def find_invoice(self, ident: str) -> Doc | None:
        return self._org.invoices.get(ident) or self._org.invoices.first(
            lambda i: i.get("InvoiceNumber") == ident
        )

    def _prepare_document(self, element: Doc, *, kind: str, unitdp: int | None) -> Prepared:
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
        if currency not in self._org.currencies:
            errors.append(f"The organisation is not subscribed to currency {currency}.")
        contact, contact_error, create_contact = self._contacts.resolve_contact(element.get("Contact"))
        if contact_error:
            errors.append(contact_error)
        number_key = "InvoiceNumber" if kind == "invoice" else "CreditNoteNumber"
        wanted_number = element.get(number_key)
        collection = self._org.invoices if kind == "invoice" else self._org.credit_notes
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
            chart=self._org.chart,
            tracking=Tracking(self._org.tracking_categories).for_line,
        )
        errors.extend(lines.errors)
        if errors:
            return Prepared(errors)
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
                        or f"INV-{self._org.store.next_number(self._org.seq('invoice')):04d}",
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
                    self._contacts.update_contact(party, {"IsCustomer": True})
                self._org.invoices.put(doc["InvoiceID"], doc)
                self._org.publish("INVOICE", "CREATE", doc["InvoiceID"])
            else:
                doc.update(
                    {
                        "CreditNoteID": str(uuid.uuid4()),
                        "CreditNoteNumber": wanted_number
                        or f"CN-{self._org.store.next_number(self._org.seq('credit')):04d}",
                        "RemainingCredit": money(lines.total),
                        "Allocations": [],
                        "Payments": [],
                        "HasErrors": False,
                    }
                )
                if due is not None:
                    doc["DueDate"] = due.isoformat()
                self._org.credit_notes.put(doc["CreditNoteID"], doc)
            return doc

        return Prepared([], commit)

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
            "ValidationErrors": validation_errors(errors),
        }

    def create_invoices(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        def prepare(element: Doc) -> Prepared:
            if element.get("InvoiceID"):
                return Prepared(["InvoiceID cannot be given when creating invoices; use POST to update."])
            return self._prepare_document(element, kind="invoice", unitdp=unitdp)

        return run_batch(elements, prepare, self._echo_document, summarize=summarize)

    def save_invoices(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        """POST /Invoices: update the elements that name an invoice, create the others."""

        def prepare(element: Doc) -> Prepared:
            # Xero matches on InvoiceID, else on an existing InvoiceNumber; anything else is new.
            number = element.get("InvoiceNumber")
            known = number if number and self.find_invoice(str(number)) else None
            ident = element.get("InvoiceID") or known
            if ident:
                return self._prepare_invoice_update(str(ident), element, unitdp=unitdp)
            return self._prepare_document(element, kind="invoice", unitdp=unitdp)

        return run_batch(elements, prepare, self._echo_document, summarize=summarize)

    def update_invoice(self, ident: str, element: Any, *, unitdp: int | None) -> list[Doc]:
        if self.find_invoice(ident) is None:
            raise DocumentNotFound(ident)
        if isinstance(element, dict) and isinstance(element.get("Invoices"), list):
            elements = element["Invoices"]
        else:
            elements = [element]
        return run_batch(
            elements,
            lambda e: self._prepare_invoice_update(ident, e, unitdp=unitdp),
            self._echo_document,
            summarize=True,
        )

    def _prepare_invoice_update(self, ident: str, element: Doc, *, unitdp: int | None) -> Prepared:
        invoice = self.find_invoice(ident)
        if invoice is None:
            return Prepared([f"Invoice {ident} could not be found."])
        current = invoice["Status"]
        wanted = element.get("Status", current)
        settled = amount(invoice, "AmountPaid") > 0 or amount(invoice, "AmountCredited") > 0
        if current in ("VOIDED", "DELETED"):
            return Prepared(["Invoice not of valid status for modification"])
        if current == "PAID" or (settled and (wanted != current or "LineItems" in element)):
            return Prepared(
                ["This document cannot be edited as it has a payment or credit note allocated to it."]
            )
        allowed = {
            "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
            "SUBMITTED": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
            "AUTHORISED": {"AUTHORISED", "VOIDED"},
        }[current]
        if wanted not in allowed:
            return Prepared([f"Invoice status cannot be changed from {current} to {wanted}."])
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
                return Prepared([f"LineAmountTypes must be one of {', '.join(LINE_AMOUNT_TYPES)}."])
            lines = read_lines(
                element["LineItems"],
                sales=invoice["Type"] == "ACCREC",
                line_amount_types=line_amount_types,
                unitdp=unitdp,
                approved=wanted in ("SUBMITTED", "AUTHORISED"),
                chart=self._org.chart,
                tracking=Tracking(self._org.tracking_categories).for_line,
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
            return Prepared(errors)
        changes["Status"] = wanted
        if wanted == "VOIDED":
            changes["AmountDue"] = "0.00"

        def commit() -> Doc:
            updated = self._org.invoices.update(invoice["InvoiceID"], {**changes, "UpdatedDateUTC": now_ms()})
            self._org.publish("INVOICE", "UPDATE", invoice["InvoiceID"])
            return updated

        return Prepared([], commit)

    def create_credit_notes(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        def prepare(element: Doc) -> Prepared:
            return self._prepare_document(element, kind="credit", unitdp=unitdp)

        return run_batch(elements, prepare, self._echo_document, summarize=summarize)

    def find_credit_note(self, ident: str) -> Doc | None:
        return self._org.credit_notes.get(ident) or self._org.credit_notes.first(
            lambda c: c.get("CreditNoteNumber") == ident
        )
