"""What the ledger refuses, each with the facts a caller needs to act on it."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidLedgerInput(LedgerError, ValueError):
    """An argument the ledger will not store: blank, too long, outside its vocabulary, or inexact money."""


class CrosswalkConflict(LedgerError):
    """A business key, or an external id, is already linked to something else in the same system."""

    def __init__(
        self,
        message: str,
        *,
        entity: str,
        system: str,
        canonical_key: str,
        external_id: str,
        existing_canonical_key: str,
        existing_external_id: str,
    ) -> None:
        super().__init__(message)
        self.entity = entity
        self.system = system
        self.canonical_key = canonical_key
        self.external_id = external_id
        self.existing_canonical_key = existing_canonical_key
        self.existing_external_id = existing_external_id


class PostingConflict(LedgerError):
    """An idempotency key was recorded before with different content or a different ERP result."""

    def __init__(
        self, message: str, *, idempotency_key: str, differences: dict[str, tuple[str, str]]
    ) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key
        # field -> (recorded, requested), rendered as text so the error serialises cleanly.
        self.differences = differences


class LinkNotFound(LedgerError, LookupError):
    pass


class PostingNotFound(LedgerError, LookupError):
    pass


class ExceptionNotFound(LedgerError, LookupError):
    pass


class InvalidExceptionTransition(LedgerError):
    """An action that the exception's current status does not allow (e.g. retrying a resolved one)."""

    def __init__(self, message: str, *, exception_id: int, status: str, action: str) -> None:
        super().__init__(message)
        self.exception_id = exception_id
        self.status = status
        self.action = action


class StoredRecordInvalid(LedgerError):
    """A stored record no longer reads back as its model: the model changed without a data migration."""
