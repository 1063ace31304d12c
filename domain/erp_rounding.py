"""The rounding rule an entity's invoices are rated by: what its ERP stores of a line, and how it books it.

An ERP books a line as (quantity as it stores it) x (unit price as it stores it), rounded to the cent. Rating
exact hours (505 minutes is 8.41666... h) and letting the ERP round them afterwards makes the ERP's total
differ from ours, so rating rounds first, by the places the entity's configuration says its ERP keeps. The
README section "How ps-sync rounds" states the rules and the bound on what rounding can move.

Pure: the TimeToBilling workflow rates with it.
"""

from __future__ import annotations

from canonical import LegalEntity
from canonical.money import RoundingRule

__all__ = ["rounding_rule"]


def rounding_rule(entity: LegalEntity) -> RoundingRule:
    """The rule the entity's invoices are rated by: its ERP's places, and the entity's line rounding."""
    return RoundingRule(
        quantity_places=entity.quantity_places,
        unit_price_places=entity.unit_price_places,
        line_rounding=entity.line_rounding,
    )
