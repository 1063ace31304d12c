"""Does each ERP still have what ps-sync books with? The entity settings name tax codes and a currency;
ReferenceSync checks them against what the ERP publishes, so a tax rate archived in the ERP becomes an
exception for finance before an invoice is refused for it."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from canonical import ExceptionOwner, LegalEntity
from canonical.reference import CurrencyRate, TaxRate

PROCESS = "reference_sync"


class ReferenceGap(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    legal_entity: str
    kind: str  # tax_code | currency | account_mapping
    code: str
    owner: ExceptionOwner
    reason: str

    @property
    def dedupe_key(self) -> str:
        return f"{PROCESS}:{self.erp}:{self.legal_entity}:{self.kind}:{self.code}"


def reference_gaps(
    entity: LegalEntity,
    *,
    erp: str,
    base_currency: str,
    currencies: Iterable[CurrencyRate],
    tax_rates: Iterable[TaxRate],
) -> list[ReferenceGap]:
    """Every tax code the entity bills with must be an active tax rate in its ERP, and the entity's billing
    currency must be the ERP's base currency or one it has enabled."""
    gaps: list[ReferenceGap] = []
    rates = {rate.code: rate for rate in tax_rates}
    for code in entity.tax_codes:
        rate = rates.get(code)
        if rate is None or not rate.active:
            state = "does not exist" if rate is None else "is no longer active"
            gaps.append(
                ReferenceGap(
                    erp=erp,
                    legal_entity=entity.code,
                    kind="tax_code",
                    code=code,
                    owner=ExceptionOwner.FINANCE,
                    reason=f"tax code {code}, which entity {entity.code} bills with, {state} in {erp}: "
                    "invoices using it will be refused",
                )
            )
    known = {currency.code for currency in currencies} | {base_currency}
    if entity.currency not in known:
        gaps.append(
            ReferenceGap(
                erp=erp,
                legal_entity=entity.code,
                kind="currency",
                code=entity.currency,
                owner=ExceptionOwner.FINANCE,
                reason=f"entity {entity.code} bills in {entity.currency}, which {erp} has not enabled "
                f"(base currency {base_currency})",
            )
        )
    return gaps
