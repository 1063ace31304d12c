"""Read models the ledger returns: frozen pydantic models, never ORM rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from canonical import ExactDecimal, ExceptionOwner, Money
from ledger.column_types import utc_now
from ledger.vocab import (
    SYSTEM_NAME_PATTERN,
    ExceptionAction,
    ExceptionStatus,
    LinkStatus,
    PostingState,
)

# A CRM, PSA or ERP as the deployment's configuration names it (see ledger.vocab).
SystemName = Annotated[str, StringConstraints(pattern=SYSTEM_NAME_PATTERN)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Link(_Record):
    id: int
    entity: str
    canonical_key: str
    system: SystemName
    external_id: str
    status: LinkStatus
    note: str | None
    created_at: datetime
    updated_at: datetime


class PostingRecord(_Record):
    idempotency_key: str
    erp: SystemName
    legal_entity: str
    project_id: str
    period: str
    target_id: str
    number: str | None
    amount: Money
    content_hash: str
    state: PostingState
    created_at: datetime
    billed_at: datetime | None


class AuditEntry(_Record):
    id: int
    occurred_at: datetime
    workflow_id: str | None
    run_id: str | None
    actor: str
    action: str
    entity: str
    key: str
    detail: dict[str, Any]


class Resolution(_Record):
    """The last action a person took on an exception."""

    action: ExceptionAction
    actor: str
    note: str | None
    corrected_fields: dict[str, Any] | None


class ExceptionItem(_Record):
    id: int
    dedupe_key: str
    process: str
    owner: ExceptionOwner
    reason: str
    record: dict[str, Any]
    status: ExceptionStatus
    workflow_id: str | None
    run_id: str | None
    resolution: Resolution | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    attempts: int

    def age(self, now: datetime | None = None) -> timedelta:
        """How long it has waited since it was first raised (a re-opened item keeps its first date)."""
        return (now or utc_now()) - self.created_at


class OwnerExceptionSummary(_Record):
    """One owner's queue, for the ops page."""

    owner: ExceptionOwner
    by_status: dict[ExceptionStatus, int]
    # The oldest item still waiting (open or retrying); None when nothing waits.
    oldest_waiting_since: datetime | None

    @property
    def waiting(self) -> int:
        return self.by_status[ExceptionStatus.OPEN] + self.by_status[ExceptionStatus.RETRYING]


class UpsertSummary(_Record):
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0


# Reference records are both what ReferenceSync writes and what readers get back.


class CurrencyRateRecord(_Record):
    system: SystemName
    code: str = Field(pattern=r"^[A-Z]{3}$")
    entity_currency: str = Field(pattern=r"^[A-Z]{3}$")
    rate: ExactDecimal = Field(gt=0, description="one unit of `code` in `entity_currency`")
    as_of: date


class TaxRateRecord(_Record):
    system: SystemName
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    rate: ExactDecimal = Field(ge=0, description="a percentage: 20 means 20 %")
    active: bool = True


class AccountRecord(_Record):
    """An account in the ERP's chart of accounts."""

    system: SystemName
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    active: bool = True


class ItemRecord(_Record):
    system: SystemName
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=255)


class ResourceRecord(_Record):
    """A person who books time, with the cost rate the firm pays for their hour."""

    system: SystemName
    external_id: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    role: str | None = Field(default=None, max_length=128)
    cost_rate: Money | None = None
    active: bool = True
