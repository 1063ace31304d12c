"""Is an opportunity complete enough to create anything from it?"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from canonical import BillingModel, LegalEntity, Opportunity
from domain.entity_routing import resolve_entity
from domain.service_catalog import template_for


class Readiness(BaseModel):
    model_config = ConfigDict(frozen=True)

    missing: tuple[str, ...]
    entity: LegalEntity | None

    @property
    def ready(self) -> bool:
        return not self.missing


def check_readiness(opportunity: Opportunity, entities: Sequence[LegalEntity]) -> Readiness:
    """Every gap is named, so sales ops can fix them all at once rather than one per round trip."""
    missing: list[str] = []
    entity = resolve_entity(opportunity, entities)
    if entity is None:
        missing.append(
            f"legal_entity (unknown entity {opportunity.legal_entity!r})"
            if opportunity.legal_entity
            else "legal_entity (no entity field and no billing country that maps to one)"
        )
    if not opportunity.currency:
        missing.append("currency")
    elif entity is not None and opportunity.currency != entity.currency:
        missing.append(
            f"currency ({opportunity.currency} is not {entity.code}'s billing currency {entity.currency})"
        )
    if not opportunity.tax_code:
        missing.append("tax_code")
    elif entity is not None and opportunity.tax_code not in entity.tax_codes:
        missing.append(f"tax_code ({opportunity.tax_code} is not valid for entity {entity.code})")
    if opportunity.billing_model is None:
        missing.append("billing_model")
    if opportunity.bill_to_contact is None:
        missing.append("bill_to_contact")
    if opportunity.account.billing_address is None:
        missing.append("account.billing_address")
    template = template_for(opportunity.service_code)
    if opportunity.service_code is None:
        missing.append("service_code")
    elif template is None:
        missing.append(f"service_code ({opportunity.service_code!r} is not in the service catalogue)")
    elif opportunity.billing_model is not None and template.billing_model != opportunity.billing_model:
        missing.append(
            f"billing_model ({opportunity.billing_model} does not match service {template.code}, "
            f"which is {template.billing_model})"
        )
    if template is not None and template.billing_model in (BillingModel.FIXED_FEE, BillingModel.RETAINER):
        # The fee is what the milestone schedule or the monthly retainer is computed from.
        if opportunity.amount is None:
            missing.append(f"amount (a {template.billing_model} deal is billed from its amount)")
        elif opportunity.amount.amount <= 0:
            missing.append(f"amount ({opportunity.amount} is not a fee that can be billed)")
    return Readiness(missing=tuple(missing), entity=entity)
