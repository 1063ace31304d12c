"""The messages of a ContractAmendment run: a won deal changed in the CRM after its project was made.

Kept out of the workflow module, like the other runs' messages, so the workflow sandbox passes them through.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from canonical import LegalEntity

WORKFLOW_TYPE = "ContractAmendment"

AmendmentOutcome = Literal["unchanged", "amended", "refused"]


def workflow_id(crm: str, opportunity_id: str, notification_id: str) -> str:
    """One run per CRM notification: Salesforce redelivers a notification under the same id until acked."""
    return f"contract-amendment:{crm}:{opportunity_id}:{notification_id}"


class ContractAmendmentInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    crm: str
    opportunity_id: str
    notification_id: str
    psa: str
    entities: tuple[LegalEntity, ...]


class ContractAmendmentResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    project_id: str
    outcome: AmendmentOutcome
    # The version in force after the run: the new one when amended, else the one the change was held against.
    version: int
    changed: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    exception_id: int | None = None
    # False when the PSA refused the new budget or milestones: the ledger has the version, the PMO an item.
    psa_updated: bool = False
