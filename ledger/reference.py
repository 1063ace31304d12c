"""Reference data copied from the source systems by ReferenceSync: currencies and rates, tax rates, chart of
accounts, items and resources. Each table is keyed by (system, code) or, for resources, (system, external_id).

An upsert takes one system's batch. With `deactivate_missing=True` (tables with an `active` flag) rows of
that system absent from the batch are marked inactive rather than deleted: postings and crosswalk entries
may still refer to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from canonical import Money
from ledger import checks
from ledger.column_types import fixed_point, utc_now
from ledger.errors import InvalidLedgerInput
from ledger.records import (
    AccountRecord,
    CurrencyRateRecord,
    ItemRecord,
    ResourceRecord,
    TaxRateRecord,
    UpsertSummary,
)
from ledger.tables import (
    FX_PRECISION,
    FX_SCALE,
    MONEY_PRECISION,
    MONEY_SCALE,
    TAX_PRECISION,
    TAX_SCALE,
    Base,
    RefAccount,
    RefCurrency,
    RefItem,
    RefResource,
    RefTaxRate,
)

Rec = TypeVar("Rec", CurrencyRateRecord, TaxRateRecord, AccountRecord, ItemRecord, ResourceRecord)


@dataclass(frozen=True)
class _Table(Generic[Rec]):
    table: type[Base]
    record: type[Rec]
    key: str
    values: Callable[[Rec], dict[str, Any]]
    to_record: Callable[[Any], Rec]
    has_active: bool = True

    def column(self, name: str) -> InstrumentedAttribute[Any]:
        column: InstrumentedAttribute[Any] = getattr(self.table, name)
        return column

    def upsert(
        self, session: Session, system: str, records: Sequence[Rec], deactivate_missing: bool
    ) -> UpsertSummary:
        chosen = checks.system_name("system", system)
        if deactivate_missing and not self.has_active:
            raise InvalidLedgerInput(f"{self.table.__tablename__} has no active flag to deactivate")
        batch: dict[str, dict[str, Any]] = {}
        for index, record in enumerate(records):
            if not isinstance(record, self.record):
                raise InvalidLedgerInput(
                    f"records[{index}] must be {self.record.__name__}, got {type(record).__name__}"
                )
            if record.system != chosen:
                raise InvalidLedgerInput(f"records[{index}] belongs to {record.system}, not {chosen}")
            key = checks.key(f"records[{index}].{self.key}", getattr(record, self.key))
            if key in batch:
                raise InvalidLedgerInput(f"{self.key} {key!r} appears twice in one {chosen} batch")
            batch[key] = self.values(record)

        existing = {
            getattr(row, self.key): row
            for row in session.scalars(select(self.table).where(self.column("system") == chosen))
        }
        now = utc_now()
        inserted = updated = unchanged = deactivated = 0
        for key, values in batch.items():
            row = existing.get(key)
            if row is None:
                session.add(self.table(system=chosen, **{self.key: key}, **values, updated_at=now))
                inserted += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = now  # type: ignore[attr-defined]
                updated += 1
            else:
                unchanged += 1
        if deactivate_missing:
            for key, row in existing.items():
                if key not in batch and row.active:  # type: ignore[attr-defined]
                    row.active = False  # type: ignore[attr-defined]
                    row.updated_at = now  # type: ignore[attr-defined]
                    deactivated += 1
        session.flush()
        return UpsertSummary(inserted=inserted, updated=updated, unchanged=unchanged, deactivated=deactivated)

    def list(self, session: Session, system: str, active_only: bool) -> list[Rec]:
        query = select(self.table).where(self.column("system") == checks.system_name("system", system))
        if active_only:
            query = query.where(self.column("active").is_(True))
        return [self.to_record(row) for row in session.scalars(query.order_by(self.column(self.key)))]

    def get(self, session: Session, system: str, key: str) -> Rec | None:
        row = session.scalar(
            select(self.table).where(
                self.column("system") == checks.system_name("system", system),
                self.column(self.key) == checks.key(self.key, key),
            )
        )
        return None if row is None else self.to_record(row)


def _exact(value: Decimal, *, precision: int, scale: int, field: str) -> Decimal:
    try:
        return fixed_point(value, precision=precision, scale=scale, field=field)
    except ValueError as error:
        raise InvalidLedgerInput(str(error)) from error


_CURRENCIES = _Table(
    table=RefCurrency,
    record=CurrencyRateRecord,
    key="code",
    has_active=False,
    values=lambda r: {
        "entity_currency": r.entity_currency,
        "as_of": r.as_of,
        "rate": _exact(r.rate, precision=FX_PRECISION, scale=FX_SCALE, field=f"rate of {r.code}"),
    },
    to_record=lambda row: CurrencyRateRecord(
        system=row.system,
        code=row.code,
        entity_currency=row.entity_currency,
        rate=row.rate,
        as_of=row.as_of,
    ),
)

_TAX_RATES = _Table(
    table=RefTaxRate,
    record=TaxRateRecord,
    key="code",
    values=lambda r: {
        "name": r.name,
        "active": r.active,
        "rate": _exact(r.rate, precision=TAX_PRECISION, scale=TAX_SCALE, field=f"rate of tax code {r.code}"),
    },
    to_record=lambda row: TaxRateRecord(
        system=row.system,
        code=row.code,
        name=row.name,
        rate=row.rate,
        active=row.active,
    ),
)

_ACCOUNTS = _Table(
    table=RefAccount,
    record=AccountRecord,
    key="code",
    values=lambda r: {"name": r.name, "type": r.type, "active": r.active},
    to_record=lambda row: AccountRecord(
        system=row.system,
        code=row.code,
        name=row.name,
        type=row.type,
        active=row.active,
    ),
)

_ITEMS = _Table(
    table=RefItem,
    record=ItemRecord,
    key="code",
    has_active=False,
    values=lambda r: {"name": r.name},
    to_record=lambda row: ItemRecord(system=row.system, code=row.code, name=row.name),
)


def _resource_values(record: ResourceRecord) -> dict[str, Any]:
    cost = record.cost_rate
    return {
        "name": record.name,
        "role": record.role,
        "active": record.active,
        "cost_rate": None
        if cost is None
        else _exact(
            cost.amount,
            precision=MONEY_PRECISION,
            scale=MONEY_SCALE,
            field=f"cost rate of resource {record.external_id}",
        ),
        "cost_currency": None if cost is None else cost.currency,
    }


def _resource_record(row: RefResource) -> ResourceRecord:
    cost = None if row.cost_rate is None else Money(amount=row.cost_rate, currency=row.cost_currency or "")
    return ResourceRecord(
        system=row.system,
        external_id=row.external_id,
        name=row.name,
        role=row.role,
        cost_rate=cost,
        active=row.active,
    )


_RESOURCES = _Table(
    table=RefResource,
    record=ResourceRecord,
    key="external_id",
    values=_resource_values,
    to_record=_resource_record,
)


def upsert_currency_rates(
    session: Session, *, system: str, rates: Sequence[CurrencyRateRecord]
) -> UpsertSummary:
    return _CURRENCIES.upsert(session, system, rates, deactivate_missing=False)


def list_currency_rates(session: Session, *, system: str) -> list[CurrencyRateRecord]:
    return _CURRENCIES.list(session, system, active_only=False)


def get_currency_rate(session: Session, *, system: str, code: str) -> CurrencyRateRecord | None:
    return _CURRENCIES.get(session, system, code)


def upsert_tax_rates(
    session: Session,
    *,
    system: str,
    tax_rates: Sequence[TaxRateRecord],
    deactivate_missing: bool = False,
) -> UpsertSummary:
    return _TAX_RATES.upsert(session, system, tax_rates, deactivate_missing)


def list_tax_rates(session: Session, *, system: str, active_only: bool = False) -> list[TaxRateRecord]:
    return _TAX_RATES.list(session, system, active_only)


def get_tax_rate(session: Session, *, system: str, code: str) -> TaxRateRecord | None:
    return _TAX_RATES.get(session, system, code)


def upsert_accounts(
    session: Session,
    *,
    system: str,
    accounts: Sequence[AccountRecord],
    deactivate_missing: bool = False,
) -> UpsertSummary:
    return _ACCOUNTS.upsert(session, system, accounts, deactivate_missing)


def list_accounts(session: Session, *, system: str, active_only: bool = False) -> list[AccountRecord]:
    return _ACCOUNTS.list(session, system, active_only)


def get_account(session: Session, *, system: str, code: str) -> AccountRecord | None:
    return _ACCOUNTS.get(session, system, code)


def upsert_items(session: Session, *, system: str, items: Sequence[ItemRecord]) -> UpsertSummary:
    return _ITEMS.upsert(session, system, items, deactivate_missing=False)


def list_items(session: Session, *, system: str) -> list[ItemRecord]:
    return _ITEMS.list(session, system, active_only=False)


def get_item(session: Session, *, system: str, code: str) -> ItemRecord | None:
    return _ITEMS.get(session, system, code)


def upsert_resources(
    session: Session,
    *,
    system: str,
    resources: Sequence[ResourceRecord],
    deactivate_missing: bool = False,
) -> UpsertSummary:
    return _RESOURCES.upsert(session, system, resources, deactivate_missing)


def list_resources(session: Session, *, system: str, active_only: bool = False) -> list[ResourceRecord]:
    return _RESOURCES.list(session, system, active_only)


def get_resource(session: Session, *, system: str, external_id: str) -> ResourceRecord | None:
    return _RESOURCES.get(session, system, external_id)
