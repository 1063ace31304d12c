"""What a ReferenceSync run takes: the entities whose ERPs, and the PSA, it reads reference data from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from canonical import LegalEntity

WORKFLOW_TYPE = "ReferenceSync"


class ReferenceSyncInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    entities: tuple[LegalEntity, ...]
    psa: str
    # The currency of the cost rate the ledger keeps per person; default: the first entity's currency.
    cost_currency: str | None = None
