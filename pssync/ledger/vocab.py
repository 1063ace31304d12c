"""The ledger's closed vocabularies. Stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class System(StrEnum):
    SALESFORCE = "salesforce"
    KANTATA = "kantata"
    XERO = "xero"
    TRYTON = "tryton"


ERP_SYSTEMS = frozenset({System.XERO, System.TRYTON})


class LinkStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    ARCHIVED = "archived"


class PostingState(StrEnum):
    POSTED = "posted"
    BILLED = "billed"


class ExceptionStatus(StrEnum):
    OPEN = "open"
    RETRYING = "retrying"
    SKIPPED = "skipped"
    RESOLVED = "resolved"


# A person has dealt with these; a new failure with the same dedupe key re-opens them.
CLOSED_EXCEPTION_STATUSES = frozenset({ExceptionStatus.SKIPPED, ExceptionStatus.RESOLVED})


class ExceptionAction(StrEnum):
    RETRY = "retry"
    SKIP = "skip"
    FIX = "fix"
    RESOLVE = "resolve"
