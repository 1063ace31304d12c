"""The messages of an OpportunityToProject run: its input, signals, status and result.

Kept out of the workflow module so that the sandbox, which re-imports that module for every run, does not
rebuild these pydantic models each time; they pass through as they are plain data.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from canonical import BillingModel, ExceptionOwner, LegalEntity

WORKFLOW_TYPE = "OpportunityToProject"


def workflow_id(crm: str, opportunity_id: str) -> str:
    return f"opportunity-to-project:{crm}:{opportunity_id}"


class OpportunityToProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    crm: str
    opportunity_id: str
    psa: str
    entities: tuple[LegalEntity, ...]


class OpportunityChanged(BaseModel):
    """The CRM told us again about this deal (a new notification); if we wait for a fix, look again."""

    model_config = ConfigDict(frozen=True)
    notification_id: str | None = None


class RetryRequest(BaseModel):
    """A person says the cause of the open exception is fixed. For a duplicate-looking customer, finance
    may name the existing ERP customer to use (it must be one of the customers the exception listed)."""

    model_config = ConfigDict(frozen=True)
    actor: str
    note: str | None = None
    erp_customer_id: str | None = None


class OpportunityToProjectStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    opportunity_id: str
    missing_fields: tuple[str, ...] = ()
    legal_entity: str | None = None
    erp: str | None = None
    erp_customer_id: str | None = None
    project_id: str | None = None
    notifications_seen: int = 0
    duplicate_notifications: int = 0
    retries_requested: int = 0
    # While parked: who owns the exception and what it says.
    exception_owner: ExceptionOwner | None = None
    waiting_because: str | None = None


class OpportunityToProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    account_id: str
    legal_entity: str
    erp: str
    erp_customer_id: str
    psa: str
    project_id: str
    billing_model: BillingModel | None = None
    customer_created: bool | None = None
    project_manager: str | None = None
