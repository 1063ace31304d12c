"""Journals in Xero: manual journals (developer.xero.com/documentation/api/accounting/manualjournals).

A journal goes out as one POSTED manual journal with LineAmountTypes NoTax: each line's LineAmount is our
signed amount (positive a debit, as Xero reads it), its AccountCode, its Description (naming the line's
ledger source) and the dimensions the entity tracks as Tracking by category and option name (tracking.py;
an untracked dimension is left off, as on invoice lines). Manual journals are in the organisation's base
currency only, so a journal in any other currency is refused before it is sent.

Xero keeps no reference field on a manual journal; the Narration is its only text, so it starts with our
reference (`Journal.erp_narration`) and the journal is found again with `Narration.StartsWith(...)`, the
reference compared exactly here. A post looks the reference up before it creates, and the create carries an
Idempotency-Key: a retry within Xero's key window gets Xero's first reply, a later re-run finds the journal.

A journal dated on or before the organisation's period or end of year lock date is refused by Xero with a
ValidationException whose message names the lock date ("The document date cannot be before the period lock
date, currently set at 31-Oct-2026"): it surfaces as `Rejected` carrying those words.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from canonical import LegalEntity, Money
from canonical.dimensions import Dimension, DimensionValue
from canonical.journals import (
    BookedJournal,
    BookedJournalLine,
    Journal,
    JournalLine,
    JournalState,
    PostedJournal,
    reference_of,
    revalidated,
)
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.xero import mapping
from connectors.xero.client import SYSTEM, XeroClient
from connectors.xero.wire import parse_xero_date

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_STATES: dict[str, JournalState] = {
    "DRAFT": "draft",
    "POSTED": "posted",
    "VOIDED": "voided",
    "DELETED": "voided",
    # Archived journals are posted ones Xero has filed away; they still stand in the books.
    "ARCHIVED": "posted",
}
_DIMENSIONS: dict[str, Dimension] = {
    category.lower(): dimension for dimension, category in mapping.TRACKING_CATEGORIES.items()
}


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _line_payload(line: JournalLine, tracked: tuple[Dimension, ...]) -> dict[str, Any]:
    # A dimension the entity does not track has no category to go under: left off, as on invoice lines.
    tracking = [
        {"Name": mapping.TRACKING_CATEGORIES[value.dimension], "Option": value.code}
        for value in line.dimensions
        if value.dimension in tracked
    ]
    return {
        "LineAmount": line.amount.amount,
        "AccountCode": line.account_code,
        "Description": line.booked_description,
        **({"Tracking": tracking} if tracking else {}),
    }


def journal_payload(journal: Journal, tracked: tuple[Dimension, ...]) -> dict[str, Any]:
    return {
        "Narration": journal.erp_narration,
        "Date": journal.date.isoformat(),
        "Status": "POSTED",
        "LineAmountTypes": "NoTax",
        "JournalLines": [_line_payload(line, tracked) for line in journal.lines],
    }


def _state(status: str) -> JournalState:
    try:
        return _STATES[status]
    except KeyError:
        raise ValueError(f"unknown Xero manual journal status {status!r}") from None


def _posted(doc: dict[str, Any], currency: str) -> PostedJournal:
    amounts = [
        mapping.money(line.get("LineAmount"), currency).amount for line in doc.get("JournalLines") or []
    ]
    return PostedJournal(
        erp=SYSTEM,
        journal_id=str(doc["ManualJournalID"]),
        reference=reference_of(str(doc.get("Narration") or "")),
        date=parse_xero_date(str(doc["Date"])),
        state=_state(str(doc["Status"])),
        total_debits=Money(amount=sum((a for a in amounts if a > 0), Decimal(0)), currency=currency),
    )


def _dimension_values(tracking: list[dict[str, Any]]) -> tuple[DimensionValue, ...]:
    values = []
    for item in tracking:
        dimension = _DIMENSIONS.get(str(item.get("Name") or "").lower())
        option = str(item.get("Option") or "")
        if dimension is not None and option:
            values.append(DimensionValue(dimension=dimension, code=option, name=option))
    return tuple(values)


def booked(doc: dict[str, Any], currency: str) -> BookedJournal:
    return BookedJournal(
        journal=_posted(doc, currency),
        narration=str(doc.get("Narration") or ""),
        lines=tuple(
            BookedJournalLine(
                account_code=str(line.get("AccountCode") or ""),
                description=str(line.get("Description") or ""),
                amount=mapping.money(line.get("LineAmount"), currency),
                dimensions=_dimension_values(line.get("Tracking") or []),
            )
            for line in doc.get("JournalLines") or []
        ),
    )


def _refuse(message: str, field: str) -> Rejected:
    return Rejected(message, system=SYSTEM, field_errors=[FieldError(field=field, message=message)])


class XeroJournals:
    """Manual journals of one organisation; its base currency is read once (GET /Organisation) and kept."""

    def __init__(self, client: XeroClient) -> None:
        self._client = client
        self._base_currency: str | None = None

    async def base_currency(self) -> str:
        if self._base_currency is None:
            organisation = (await self._client.get("/Organisation"))["Organisations"][0]
            self._base_currency = str(organisation["BaseCurrency"])
        return self._base_currency

    async def _starting(self, prefix: str) -> list[dict[str, Any]]:
        """Manual journals whose Narration starts with `prefix`, with their lines (paged reads carry them)."""
        where = f"Narration.StartsWith({_literal(prefix)})"
        found: list[dict[str, Any]] = []
        async for page in self._client.pages("/ManualJournals", "ManualJournals", params={"where": where}):
            found.extend(page.items)
        return found

    async def find_journal(self, reference: str) -> PostedJournal | None:
        """The journal carrying our reference. Several live ones is a Conflict; voided ones count only when
        nothing live carries the reference (a re-run then sees it was voided instead of posting it again)."""
        found = [
            doc
            for doc in await self._starting(f"{reference} ")
            if reference_of(str(doc.get("Narration") or "")) == reference
        ]
        live = [doc for doc in found if doc["Status"] not in ("VOIDED", "DELETED")]
        if len(live) > 1:
            raise Conflict(
                f"{len(live)} Xero manual journals carry reference {reference!r}: "
                f"{', '.join(str(doc['ManualJournalID']) for doc in live)}",
                system=SYSTEM,
            )
        chosen = live or sorted(found, key=lambda doc: str(doc.get("UpdatedDateUTC", "")))[-1:]
        return _posted(chosen[0], await self.base_currency()) if chosen else None

    async def post_journal(
        self, journal: Journal, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedJournal:
        try:
            journal = revalidated(journal)
        except ValueError as exc:
            raise _refuse(f"journal {journal.reference} cannot be booked: {exc}", "lines") from None
        if journal.legal_entity != entity.code:
            raise _refuse(
                f"journal {journal.reference} belongs to entity {journal.legal_entity}, this Xero "
                f"organisation books {entity.code}",
                "legal_entity",
            )
        base = await self.base_currency()
        if journal.currency != base:
            raise _refuse(
                f"journal {journal.reference} is in {journal.currency}; Xero's manual journals are in the "
                f"organisation's base currency {base}",
                "currency",
            )
        existing = await self.find_journal(journal.reference)
        if existing is not None:
            return existing
        body = await self._client.put(
            "/ManualJournals",
            {"ManualJournals": [journal_payload(journal, entity.tracked_dimensions)]},
            idempotency_key=idempotency_key,
        )
        return _posted(body["ManualJournals"][0], base)

    async def get_journal(self, journal_id: str) -> BookedJournal:
        if not _GUID.fullmatch(journal_id):
            raise NotFound(f"{journal_id!r} is not a Xero ManualJournalID (a GUID)", system=SYSTEM)
        doc = (await self._client.get(f"/ManualJournals/{journal_id}"))["ManualJournals"][0]
        return booked(doc, await self.base_currency())

    async def booked_journals(self, reference_prefix: str) -> list[BookedJournal]:
        """Journals whose reference starts with the prefix, with their lines, voided ones included."""
        if not reference_prefix:
            raise ValueError("a reference prefix is required: listing every journal is not a reconciliation")
        currency = await self.base_currency()
        return [
            booked(doc, currency)
            for doc in await self._starting(reference_prefix)
            if reference_of(str(doc.get("Narration") or "")).startswith(reference_prefix)
        ]
