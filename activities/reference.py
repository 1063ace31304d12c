"""ReferenceSync activities: read each source system's set-up and write it into the ledger's reference tables.

Tax rates, accounts and resources missing from a source's list are marked inactive, not deleted: postings and
crosswalk entries may still name them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from canonical.reference import CurrencyRate, Employee, ErpReferenceData, TaxRate
from connectors.call_budget import background_calls
from connectors.roles import ErpReferenceSource, PsaConnector, PsaReferenceSource
from domain.account_mapping import AccountMap
from ledger.account_mapping import account_rules
from ledger.database import Database
from ledger.records import (
    AccountRecord,
    CurrencyRateRecord,
    ItemRecord,
    ResourceRecord,
    TaxRateRecord,
    UpsertSummary,
)
from ledger.repository import (
    upsert_accounts,
    upsert_currency_rates,
    upsert_items,
    upsert_resources,
    upsert_tax_rates,
)


class SyncErpReferenceInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    # The legal entities booking in this ERP: their account mappings are checked against the chart read.
    legal_entities: tuple[str, ...] = ()


class AccountMappingGap(BaseModel):
    """A rule of finance's account mapping whose account the chart just read lacks or holds archived."""

    model_config = ConfigDict(frozen=True)
    legal_entity: str
    kind: str
    key: str
    reason: str


class SyncErpReferenceResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    base_currency: str
    # What validation needs in the workflow; accounts and items are only counted.
    currencies: tuple[CurrencyRate, ...]
    tax_rates: tuple[TaxRate, ...]
    currencies_without_rate: tuple[str, ...]
    written: dict[str, UpsertSummary]
    mapping_gaps: tuple[AccountMappingGap, ...] = ()


class SyncPsaResourcesInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    # The ledger keeps one cost rate per person: the one in this currency.
    cost_currency: str


class SyncPsaResourcesResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    psa: str
    employees: int
    without_cost_rate: tuple[str, ...]
    written: UpsertSummary


def _unsupported(system: str, capability: str) -> ApplicationError:
    return ApplicationError(
        f"the {system} connector does not offer {capability}", type="Unsupported", non_retryable=True
    )


def _fit(text: str, length: int) -> str:
    # Descriptive text only (names, account types): ERPs allow longer labels than the ledger keeps.
    return text if len(text) <= length else text[: length - 1] + "…"


@dataclass(frozen=True)
class ErpRecords:
    currencies: list[CurrencyRateRecord]
    tax_rates: list[TaxRateRecord]
    accounts: list[AccountRecord]
    items: list[ItemRecord]


def erp_records(data: ErpReferenceData) -> ErpRecords:
    system = data.erp
    return ErpRecords(
        # Only currencies with a rate: the ledger's table is of rates (Xero publishes none for foreign ones).
        currencies=[
            CurrencyRateRecord(
                system=system, code=c.code, entity_currency=data.base_currency, rate=c.rate, as_of=data.as_of
            )
            for c in data.currencies
            if c.rate is not None
        ],
        tax_rates=[
            TaxRateRecord(system=system, code=t.code, name=_fit(t.name, 255), rate=t.percent, active=t.active)
            for t in data.tax_rates
        ],
        accounts=[
            AccountRecord(
                system=system, code=a.code, name=_fit(a.name, 255), type=_fit(a.type, 64), active=a.active
            )
            for a in data.accounts
        ],
        items=[ItemRecord(system=system, code=i.code, name=_fit(i.name, 255)) for i in data.items],
    )


def resource_record(system: str, employee: Employee, cost_currency: str) -> ResourceRecord:
    return ResourceRecord(
        system=system,
        external_id=employee.id,
        name=employee.name,
        role=employee.role,
        cost_rate=employee.cost_rate_in(cost_currency),
        active=employee.active,
    )


class ReferenceActivities:
    def __init__(self, erps: ErpRouter, psa: PsaConnector, database: Database) -> None:
        self._erps = erps
        self._psa = psa
        self._db = database

    @activity.defn
    async def sync_erp_reference(self, input: SyncErpReferenceInput) -> SyncErpReferenceResult:
        erp = self._erps.by_system(input.erp)
        if not isinstance(erp, ErpReferenceSource):
            raise _unsupported(input.erp, "reference data")
        # Scheduled reads: they leave the vendor's reserve of calls to posting and new deals.
        with background_calls():
            async with connector_errors():
                data = await erp.reference_data()
        records = erp_records(data)

        def write() -> tuple[dict[str, UpsertSummary], list[AccountMappingGap]]:
            with self._db.session() as session:
                written = {
                    "currencies": upsert_currency_rates(session, system=data.erp, rates=records.currencies),
                    "tax_rates": upsert_tax_rates(
                        session, system=data.erp, tax_rates=records.tax_rates, deactivate_missing=True
                    ),
                    "accounts": upsert_accounts(
                        session, system=data.erp, accounts=records.accounts, deactivate_missing=True
                    ),
                    "items": upsert_items(session, system=data.erp, items=records.items),
                }
                chart = {a.code: a.active for a in records.accounts}
                gaps = [
                    AccountMappingGap(legal_entity=code, kind=rule.kind, key=rule.key, reason=reason)
                    for code in input.legal_entities
                    for rule, reason in AccountMap(
                        legal_entity=code,
                        erp=data.erp,
                        rules=account_rules(session, legal_entity=code),
                        chart=chart,
                    ).problems()
                ]
                return written, gaps

        written, gaps = await asyncio.to_thread(write)
        return SyncErpReferenceResult(
            erp=data.erp,
            base_currency=data.base_currency,
            currencies=data.currencies,
            tax_rates=data.tax_rates,
            currencies_without_rate=tuple(c.code for c in data.currencies if c.rate is None),
            written=written,
            mapping_gaps=tuple(gaps),
        )

    @activity.defn
    async def sync_psa_resources(self, input: SyncPsaResourcesInput) -> SyncPsaResourcesResult:
        if not isinstance(self._psa, PsaReferenceSource):
            raise _unsupported(self._psa.system, "employees")
        with background_calls():
            async with connector_errors():
                employees = await self._psa.employees()
        records = [resource_record(self._psa.system, e, input.cost_currency) for e in employees]

        def write() -> UpsertSummary:
            with self._db.session() as session:
                return upsert_resources(
                    session, system=self._psa.system, resources=records, deactivate_missing=True
                )

        written = await asyncio.to_thread(write)
        return SyncPsaResourcesResult(
            psa=self._psa.system,
            employees=len(employees),
            without_cost_rate=tuple(r.external_id for r in records if r.active and r.cost_rate is None),
            written=written,
        )
