"""Manual journals (developer.xero.com/documentation/api/accounting/manualjournals), as Xero keeps them.

A journal has a Narration (required), a Date (today when left out), a Status (DRAFT unless POSTED is asked
for) and JournalLines: each a LineAmount (positive a debit, negative a credit; kept to the cent), an account
by AccountCode or AccountID, an optional Description and up to two tracking categories. A POSTED journal
must balance, and Xero says by how much it does not: "The total debits (100.00) must equal total credits
(-10.00)" (the spec's own example). Bank accounts take journals; Xero's system accounts (receivables,
payables, VAT, ...) do not, and neither does an account Xero does not know: "Account code '999' is not a
valid code for this document." A posted journal dated on or before a lock date is refused (lock_dates).

Manual journals are in the organisation's base currency; they carry no CurrencyCode.

This sandbox keeps journals without tax (LineAmountTypes NoTax, what ps-sync sends): it does not compute the
tax lines Xero adds for Exclusive or Inclusive journals, and says so rather than booking them wrongly.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandboxes.xero.batches import Doc, Prepared, run_batch, validation_errors
from sandboxes.xero.documents import CENT, money, now_ms, number, parse_date, today
from sandboxes.xero.lock_dates import LockDates
from sandboxes.xero.organisation import Organisation
from sandboxes.xero.tracking import Tracking

NEW_STATUSES = ("DRAFT", "POSTED")
# System accounts a manual journal may still book to (Xero lets an adviser adjust retained earnings).
_JOURNAL_SYSTEM_ACCOUNTS = frozenset({"RETAINEDEARNINGS"})


def _amount_text(value: Decimal) -> str:
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")


class ManualJournals:
    def __init__(self, org: Organisation, lock_dates: LockDates) -> None:
        self._org = org
        self._lock_dates = lock_dates

    def find(self, ident: str) -> Doc | None:
        return self._org.manual_journals.get(ident.lower())

    def listing(self) -> list[Doc]:
        return sorted(self._org.manual_journals, key=lambda doc: (doc["Date"], doc["UpdatedDateUTC"]))

    def _account(self, raw: Doc) -> dict[str, Any] | None:
        code, ident = raw.get("AccountCode"), raw.get("AccountID")
        if isinstance(code, str) and code:
            return self._org.chart.accounts.get(code)
        if isinstance(ident, str) and ident:
            return next(
                (a for a in self._org.chart.accounts.values() if a["AccountID"] == ident.lower()), None
            )
        return None

    def _lines(self, raw_lines: Any, *, posted: bool) -> tuple[list[Doc], list[str]]:
        if raw_lines is None:
            raw_lines = []
        if not isinstance(raw_lines, list):
            return [], ["JournalLines must be a list of journal lines."]
        errors: list[str] = []
        if posted and len(raw_lines) < 2:
            errors.append("A posted manual journal must have at least two journal lines.")
        lines: list[Doc] = []
        tracking = Tracking(self._org.tracking_categories)
        for raw in raw_lines:
            if not isinstance(raw, dict):
                errors.append("Each journal line must be an object.")
                continue
            value = number(raw.get("LineAmount"))
            if value is None:
                errors.append("LineAmount must be a number for every journal line.")
            account = self._account(raw)
            named = raw.get("AccountCode") or raw.get("AccountID")
            if not named:
                errors.append("Account code must be specified for all journal lines.")
            elif (
                account is None
                or account["Status"] != "ACTIVE"
                or (account["SystemAccount"] and account["SystemAccount"] not in _JOURNAL_SYSTEM_ACCOUNTS)
            ):
                errors.append(f"Account code '{named}' is not a valid code for this document.")
            tracked, tracking_errors = tracking.for_line(raw.get("Tracking"))
            errors.extend(tracking_errors)
            if value is None or account is None:
                continue
            line: Doc = {
                "Description": raw.get("Description") if isinstance(raw.get("Description"), str) else "",
                "TaxType": "NONE",
                "TaxAmount": "0.00",
                "LineAmount": _amount_text(value),
                "AccountCode": account["Code"],
                "AccountID": account["AccountID"],
                "Tracking": tracked,
                "IsBlank": False,
            }
            lines.append(line)
        return lines, errors

    @staticmethod
    def _balance_errors(lines: list[Doc]) -> list[str]:
        amounts = [Decimal(line["LineAmount"]) for line in lines]
        debits = sum((a for a in amounts if a > 0), Decimal(0))
        credits = sum((a for a in amounts if a < 0), Decimal(0))
        if debits + credits == 0:
            return []
        return [f"The total debits ({money(debits)}) must equal total credits ({money(credits)})"]

    def _prepare(self, element: Doc) -> Prepared:
        errors: list[str] = []
        if element.get("ManualJournalID"):
            errors.append(
                "ManualJournalID cannot be given when creating manual journals; use POST to update."
            )
        narration = element.get("Narration")
        if not isinstance(narration, str) or not narration.strip():
            errors.append("Narration must be specified.")
        status = element.get("Status", "DRAFT")
        if status not in NEW_STATUSES:
            errors.append(f"Status {status} is not valid for a new manual journal.")
        line_amount_types = element.get("LineAmountTypes", "NoTax")
        if line_amount_types != "NoTax":
            errors.append(
                f"This sandbox keeps manual journals without tax; LineAmountTypes {line_amount_types} is not "
                "supported here (send NoTax)."
            )
        day = parse_date(element["Date"]) if "Date" in element else today()
        if day is None:
            errors.append(f"The date '{element.get('Date')}' is not a valid date.")
        posted = status == "POSTED"
        lines, line_errors = self._lines(element.get("JournalLines"), posted=posted)
        errors.extend(line_errors)
        if posted and not line_errors:
            errors.extend(self._balance_errors(lines))
        if posted and day is not None:
            errors.extend(self._lock_dates.refusals(day))
        if errors:
            return Prepared(errors)
        assert day is not None and isinstance(narration, str)

        def commit() -> Doc:
            doc: Doc = {
                "ManualJournalID": str(uuid.uuid4()),
                "Narration": narration,
                "Date": day.isoformat(),
                "Status": status,
                "LineAmountTypes": "NoTax",
                "JournalLines": lines,
                "ShowOnCashBasisReports": element.get("ShowOnCashBasisReports", True) is not False,
                "HasAttachments": False,
                "UpdatedDateUTC": now_ms(),
            }
            if isinstance(element.get("Url"), str):
                doc["Url"] = element["Url"]
            self._org.manual_journals.put(doc["ManualJournalID"], doc)
            return doc

        return Prepared([], commit)

    @staticmethod
    def _echo(element: Doc, errors: list[str]) -> Doc:
        echo: Doc = {
            key: element[key]
            for key in ("Narration", "Status", "LineAmountTypes")
            if isinstance(element.get(key), str)
        }
        day = parse_date(element.get("Date"))
        if day is not None:
            echo["Date"] = day.isoformat()
        if isinstance(element.get("JournalLines"), list):
            echo["JournalLines"] = [
                {
                    k: (format(v, "f") if isinstance(v, Decimal) else v)
                    for k, v in line.items()
                    if (k in ("Description", "AccountCode") and isinstance(v, str))
                    or (k == "LineAmount" and number(v) is not None)
                }
                for line in element["JournalLines"]
                if isinstance(line, dict)
            ]
        return {
            **echo,
            "StatusAttributeString": "ERROR" if errors else "OK",
            "ValidationErrors": validation_errors(errors),
        }

    def create(self, elements: Any, *, summarize: bool) -> list[Doc]:
        """PUT /ManualJournals."""
        return run_batch(elements, self._prepare, self._echo, summarize=summarize)
