"""The messages of an InvoiceToCash run: its input, signals, status and result.

Kept out of the workflow module so that the sandbox, which re-imports that module for every run, does not
rebuild these pydantic models each time; they pass through as they are plain data.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from canonical import Money, ReceivablesSummary

WORKFLOW_TYPE = "InvoiceToCash"


def workflow_id(erp: str, invoice_id: str) -> str:
    return f"invoice-to-cash:{erp}:{invoice_id}"


class InvoiceToCashInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    invoice_id: str
    invoice_number: str
    project_id: str
    psa: str
    crm: str
    opportunity_id: str
    account_id: str
    account_owner_id: str | None = None
    legal_entity: str
    # Payments have no webhook: they are polled. Invoice webhooks only make the next check come sooner.
    poll_interval_seconds: int = 3600
    # Carried over when the run continues as new.
    last_pushed: ReceivablesSummary | None = None
    dunning_stage: int = 0


class InvoiceChanged(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_type: str | None = None
    event_id: str | None = None


class WriteOffRequest(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class InvoiceToCashStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    invoice_id: str
    summary: ReceivablesSummary | None
    checks: int
    nudges: int
    dunning_stage: int = 0
    dunning_skipped: tuple[int, ...] = ()
    write_off_requested_by: str | None = None
    overpaid: Money | None = None


class InvoiceToCashResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: str  # paid | credited | voided | written_off
    invoice_id: str
    invoice_number: str
    summary: ReceivablesSummary
    dunning_stage: int = 0
    overpaid: Money | None = None
    written_off: Money | None = None
    write_off_reason: str | None = None
