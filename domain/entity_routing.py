"""Which of the firm's legal entities books a deal, and so which ERP serves it."""

from __future__ import annotations

from collections.abc import Sequence

from canonical import LegalEntity, Opportunity


def resolve_entity(opportunity: Opportunity, entities: Sequence[LegalEntity]) -> LegalEntity | None:
    """An explicit entity on the opportunity wins; otherwise the account's billing country decides."""
    if opportunity.legal_entity:
        for entity in entities:
            if entity.code == opportunity.legal_entity:
                return entity
        return None
    address = opportunity.account.billing_address
    if address is None:
        return None
    for entity in entities:
        if address.country in entity.countries:
            return entity
    return None
