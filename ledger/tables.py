"""The ledger's schema: SQLAlchemy 2 typed declarative models. Only the ledger's own modules touch these."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.alert_vocab import AlertKind, AlertPhase, DeliveryState
from ledger.column_types import ExactNumeric, UtcDateTime, utc_now
from ledger.vocab import SYSTEM_NAME_LENGTH, ExceptionAction, ExceptionStatus, LinkStatus, PostingState

# Named constraints keep Alembic migrations (and SQLite batch rebuilds) deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

MONEY_PRECISION, MONEY_SCALE = 18, 4
FX_PRECISION, FX_SCALE = 18, 8
TAX_PRECISION, TAX_SCALE = 10, 6


def _one_of(column: str, values: type[Any]) -> str:
    return f"{column} IN ({', '.join(repr(str(value)) for value in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMap(Base):
    """The crosswalk: which record in each system stands for one of our business keys."""

    __tablename__ = "id_map"
    __table_args__ = (
        UniqueConstraint("entity", "canonical_key", "system"),
        UniqueConstraint("entity", "system", "external_id"),
        CheckConstraint(_one_of("status", LinkStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))
    canonical_key: Mapped[str] = mapped_column(String(255))
    system: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    external_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class Posting(Base):
    """One invoice posted to an ERP, keyed by the idempotency key the post was made with."""

    __tablename__ = "posting"
    __table_args__ = (
        CheckConstraint(_one_of("state", PostingState), name="state"),
        Index(None, "legal_entity", "period"),
        Index(None, "project_id", "period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    erp: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    legal_entity: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[str] = mapped_column(String(255))
    period: Mapped[str] = mapped_column(String(7))
    target_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(ExactNumeric(MONEY_PRECISION, MONEY_SCALE))
    currency: Mapped[str] = mapped_column(String(3))
    content_hash: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    billed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BillPosting(Base):
    """One supplier bill posted to an ERP, keyed by the idempotency key the post was made with: what
    reconciliation holds the ERP's bills against."""

    __tablename__ = "bill_posting"
    __table_args__ = (Index(None, "legal_entity", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    erp: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    legal_entity: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    supplier_key: Mapped[str] = mapped_column(String(255))
    reference: Mapped[str] = mapped_column(String(255))
    bill_id: Mapped[str] = mapped_column(String(255))
    number: Mapped[str] = mapped_column(String(255))
    total: Mapped[Decimal] = mapped_column(ExactNumeric(MONEY_PRECISION, MONEY_SCALE))
    currency: Mapped[str] = mapped_column(String(3))
    line_count: Mapped[int] = mapped_column(Integer)
    # Per bill line, in the bill's order, the PSA items it pays for (`BillLine.source_ids`).
    source_ids: Mapped[list[list[str]]] = mapped_column(JSON)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index(None, "key", "occurred_at"),
        Index(None, "workflow_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ExceptionEntry(Base):
    """One thing that needs a person, deduplicated by what went wrong where."""

    __tablename__ = "exception"
    __table_args__ = (
        CheckConstraint(_one_of("status", ExceptionStatus), name="status"),
        CheckConstraint(
            f"resolution_action IS NULL OR {_one_of('resolution_action', ExceptionAction)}",
            name="resolution_action",
        ),
        CheckConstraint("attempts >= 1", name="attempts"),
        Index(None, "owner", "status"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    process: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(String(64))
    # The last action a person took; kept when a later failure re-opens the item.
    resolution_action: Mapped[str | None] = mapped_column(String(16))
    resolution_actor: Mapped[str | None] = mapped_column(String(255))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    corrected_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class ProjectContractRow(Base):
    """The commercial terms captured when a deal became a project (canonical ProjectContract as JSON)."""

    __tablename__ = "project_contract"
    __table_args__ = (UniqueConstraint("psa", "project_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    psa: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    project_id: Mapped[str] = mapped_column(String(255))
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    legal_entity: Mapped[str] = mapped_column(String(16))
    contract: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ContractVersionRow(Base):
    """A project's contract from a date on (canonical ProjectContract as JSON) and the CRM change behind it.

    Version 1 is the `project_contract` row itself until the first amendment writes it here too.
    """

    __tablename__ = "contract_version"
    __table_args__ = (UniqueConstraint("psa", "project_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    psa: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    project_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    contract: Mapped[dict[str, Any]] = mapped_column(JSON)
    opportunity_id: Mapped[str] = mapped_column(String(255), index=True)
    # The CRM change (canonical CrmChange as JSON): notification, modification stamp, fields old -> new.
    cause: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RefCurrency(Base):
    """A currency the source system knows, with its rate into the entity's currency."""

    __tablename__ = "ref_currency"
    __table_args__ = (UniqueConstraint("system", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    code: Mapped[str] = mapped_column(String(3))
    entity_currency: Mapped[str] = mapped_column(String(3))
    # One unit of `code` is worth `rate` units of `entity_currency`.
    rate: Mapped[Decimal] = mapped_column(ExactNumeric(FX_PRECISION, FX_SCALE))
    as_of: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RefTaxRate(Base):
    __tablename__ = "ref_tax_rate"
    __table_args__ = (UniqueConstraint("system", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    # A percentage: 20 means 20 %.
    rate: Mapped[Decimal] = mapped_column(ExactNumeric(TAX_PRECISION, TAX_SCALE))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RefAccount(Base):
    __tablename__ = "ref_account"
    __table_args__ = (UniqueConstraint("system", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RefItem(Base):
    __tablename__ = "ref_item"
    __table_args__ = (UniqueConstraint("system", "code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class RefResource(Base):
    __tablename__ = "ref_resource"
    __table_args__ = (
        UniqueConstraint("system", "external_id"),
        CheckConstraint("(cost_rate IS NULL) = (cost_currency IS NULL)", name="cost_rate_has_currency"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str | None] = mapped_column(String(128))
    cost_rate: Mapped[Decimal | None] = mapped_column(ExactNumeric(MONEY_PRECISION, MONEY_SCALE))
    cost_currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class CallBudgetRow(Base):
    """A vendor tenant's calls in the rolling minute, counted for every worker alike (ledger.call_budget)."""

    __tablename__ = "call_budget"
    __table_args__ = (UniqueConstraint("vendor", "tenant"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    vendor: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    tenant: Mapped[str] = mapped_column(String(255))
    # When the calls of the last minute were made (or counted by the vendor), in epoch seconds, oldest first.
    calls: Mapped[list[float]] = mapped_column(JSON)
    # Nobody calls the tenant before this (epoch seconds): the vendor's latest Retry-After.
    blocked_until: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class AccountMappingRow(Base):
    """Finance's rule for one legal entity: work of a kind and key books to an account."""

    __tablename__ = "account_mapping"
    __table_args__ = (UniqueConstraint("legal_entity", "kind", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    legal_entity: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    account_code: Mapped[str] = mapped_column(String(64))
    cost_account_code: Mapped[str | None] = mapped_column(String(64))
    # The person who set the rule last, from their verified token.
    updated_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class FeedState(Base):
    """How far a polled feed has been read: when it last answered, and the newest event it gave."""

    __tablename__ = "feed_state"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The poller's name: `psa-feed:kantata`, `payment-feed:xero`.
    feed: Mapped[str] = mapped_column(String(64), unique=True)
    read_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_event_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    events_read: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class AlertIncident(Base):
    """One incident a team is told about: opened when the alert scan first sees it, cleared when it is gone.

    `subject` names what it is about; when the same subject comes back after clearing it is a new incident,
    with the next `occurrence`.
    """

    __tablename__ = "alert_incident"
    __table_args__ = (
        UniqueConstraint("subject", "occurrence"),
        CheckConstraint(_one_of("kind", AlertKind), name="kind"),
        Index(None, "cleared_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    occurrence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class AlertDelivery(Base):
    """One notification of an incident (its opening or its resolution) through one configured channel."""

    __tablename__ = "alert_delivery"
    __table_args__ = (
        UniqueConstraint("incident_id", "phase", "channel"),
        CheckConstraint(_one_of("phase", AlertPhase), name="phase"),
        CheckConstraint(_one_of("state", DeliveryState), name="state"),
        Index(None, "state", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(BigId, ForeignKey("alert_incident.id"))
    phase: Mapped[str] = mapped_column(String(16))
    # `webhook:{team}` or `email:{team}`, the team as the channels are configured (`default` included).
    channel: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # A sender is at it until then: another sender leaves it alone (and retries it after, if still pending).
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class ProjectRecognition(Base):
    """How finance recognises a fixed-fee project's revenue when not milestone by milestone: percentage of
    completion against budget hours (`pssync recognition set`); no row, milestone acceptance."""

    __tablename__ = "project_recognition"
    __table_args__ = (UniqueConstraint("psa", "project_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    psa: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    project_id: Mapped[str] = mapped_column(String(255))
    budget_hours: Mapped[Decimal] = mapped_column(ExactNumeric(MONEY_PRECISION, MONEY_SCALE))
    # The person who set it last, from their verified token.
    updated_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class MonthEndJournalRow(Base):
    """One month-end journal posted to an entity's ERP (a first run or an adjustment): the proposed journal
    of each project it carries, by account role, so a re-run posts only the difference."""

    __tablename__ = "month_end_journal"
    __table_args__ = (Index(None, "legal_entity", "period", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    legal_entity: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(32))
    # 0 for the period's first journal of the kind, then 1, 2, ... for each adjustment.
    adjustment: Mapped[int] = mapped_column(Integer)
    erp: Mapped[str] = mapped_column(String(SYSTEM_NAME_LENGTH))
    journal_id: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    total_debits: Mapped[Decimal] = mapped_column(ExactNumeric(MONEY_PRECISION, MONEY_SCALE))
    # `domain.month_end.Journal` per project, as JSON.
    journals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class MonthEndPosition(Base):
    """Where an entity's close of a period left each project (`domain.month_end.Position`) and its margin:
    the next period's close starts from it."""

    __tablename__ = "month_end_position"
    __table_args__ = (UniqueConstraint("legal_entity", "period", "project_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    legal_entity: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    project_id: Mapped[str] = mapped_column(String(255))
    position: Mapped[dict[str, Any]] = mapped_column(JSON)
    margin: Mapped[dict[str, Any]] = mapped_column(JSON)
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
