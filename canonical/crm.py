"""What ps-sync writes back to the CRM."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class CrmWriteBack(BaseModel):
    """Ids that other systems gave the deal, written to the CRM by upsert, never blind create."""

    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    account_id: str
    psa_project_id: str | None = None
    erp: str | None = None
    erp_customer_id: str | None = None
    legal_entity: str | None = None
    sync_status: str | None = None


class CrmTask(BaseModel):
    """A to-do for a person in the CRM (dunning, follow-ups); `external_key` makes creation idempotent."""

    model_config = ConfigDict(frozen=True)

    external_key: str = Field(description="our business key, e.g. 'dunning:xero:INV-1:stage-1'")
    related_to_id: str
    owner_id: str | None = None
    subject: str
    description: str
    due_date: date
