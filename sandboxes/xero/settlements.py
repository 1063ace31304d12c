"""Money against invoices: payments (and deleting them) and credit notes allocated to invoices.

Either moves the invoice's AmountDue; at zero it is PAID, and money taken back re-opens it.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sandboxes.xero.batches import Doc, DocumentNotFound, Prepared, run_batch, validation_errors
from sandboxes.xero.documents import amount, money, now_ms, number, parse_date, today
from sandboxes.xero.invoices import Invoices
from sandboxes.xero.organisation import Organisation


class Settlements:
    def __init__(self, org: Organisation, invoices: Invoices) -> None:
        self._org = org
        self._invoices = invoices

    def allocate_credit(self, credit_note_id: str, elements: Any, *, summarize: bool) -> list[Doc]:
        credit = self._invoices.find_credit_note(credit_note_id)
        if credit is None:
            raise DocumentNotFound(credit_note_id)

        def prepare(element: Doc) -> Prepared:
            errors: list[str] = []
            if credit["Status"] != "AUTHORISED":
                errors.append("Only authorised credit notes with remaining credit can be allocated.")
            raw_invoice = element.get("Invoice")
            invoice = (
                self._invoices.find_invoice(
                    str(raw_invoice.get("InvoiceID") or raw_invoice.get("InvoiceNumber"))
                )
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
                return Prepared(errors)
            assert invoice is not None and value is not None and allocated_on is not None

            def commit() -> Doc:
                allocation: Doc = {
                    "AllocationID": str(uuid.uuid4()),
                    "Amount": money(value),
                    "Date": allocated_on.isoformat(),
                    "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]},
                }
                remaining = amount(credit, "RemainingCredit") - value
                self._org.credit_notes.update(
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

            return Prepared([], commit)

        def echo(element: Doc, errors: list[str]) -> Doc:
            out: Doc = {
                "ValidationErrors": validation_errors(errors),
                "StatusAttributeString": "ERROR" if errors else "OK",
            }
            if number(element.get("Amount")) is not None:
                out["Amount"] = element["Amount"]
            if isinstance(element.get("Date"), str):
                out["Date"] = element["Date"]
            if isinstance(element.get("Invoice"), dict):
                out["Invoice"] = {k: v for k, v in element["Invoice"].items() if k == "InvoiceID"}
            return out

        return run_batch(elements, prepare, echo, summarize=summarize)

    def _settle(self, invoice: Doc, *, due: Decimal, changes: Doc, settled_on: str) -> None:
        """Apply money to an invoice; at zero due it is PAID, and dropping above zero re-opens it."""
        update: Doc = {**changes, "AmountDue": money(due), "UpdatedDateUTC": now_ms()}
        if due == 0:
            update.update(Status="PAID", FullyPaidOnDate=settled_on)
        elif invoice["Status"] == "PAID":
            update.update(Status="AUTHORISED", FullyPaidOnDate=None)
        self._org.invoices.update(invoice["InvoiceID"], update)
        self._org.publish("INVOICE", "UPDATE", invoice["InvoiceID"])

    # --- payments ---------------------------------------------------------------------------------------

    def _prepare_payment(self, element: Doc) -> Prepared:
        errors: list[str] = []
        raw_invoice = element.get("Invoice")
        invoice = None
        if isinstance(raw_invoice, dict) and (
            raw_invoice.get("InvoiceID") or raw_invoice.get("InvoiceNumber")
        ):
            invoice = self._invoices.find_invoice(
                str(raw_invoice.get("InvoiceID") or raw_invoice.get("InvoiceNumber"))
            )
            if invoice is None:
                errors.append("Invoice could not be found.")
        else:
            errors.append("An invoice must be specified for the payment.")
        raw_account = element.get("Account")
        account = None
        if isinstance(raw_account, dict):
            if raw_account.get("Code"):
                account = self._org.chart.accounts.get(str(raw_account["Code"]))
            elif raw_account.get("AccountID"):
                account = next(
                    (
                        a
                        for a in self._org.chart.accounts.values()
                        if a["AccountID"] == raw_account["AccountID"]
                    ),
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
            return Prepared(errors)
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
            self._org.payments.put(payment["PaymentID"], payment)
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

        return Prepared([], commit)

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
            "ValidationErrors": validation_errors(errors),
        }

    def create_payments(self, elements: Any, *, summarize: bool) -> list[Doc]:
        return run_batch(elements, self._prepare_payment, self._echo_payment, summarize=summarize)

    def delete_payment(self, payment_id: str, element: Any) -> list[Doc]:
        payment = self._org.payments.get(payment_id)
        if payment is None:
            raise DocumentNotFound(payment_id)

        def prepare(element: Doc) -> Prepared:
            if element.get("Status") != "DELETED":
                return Prepared(["A payment can only be changed by setting its Status to DELETED."])
            if payment["Status"] == "DELETED":
                return Prepared(["This payment has already been deleted."])

            def commit() -> Doc:
                invoice = self._org.invoices.get(payment["Invoice"]["InvoiceID"])
                updated = self._org.payments.update(
                    payment_id, {"Status": "DELETED", "UpdatedDateUTC": now_ms()}
                )
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

            return Prepared([], commit)

        elements = element.get("Payments", [element]) if isinstance(element, dict) else element
        return run_batch(elements, prepare, self._echo_payment, summarize=True)
