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
    # The invoice as the ERP answered its posting, where the answer carried it: the run starts from it
    # instead of reading the invoice back at once. Only a run's first check; never carried over.
    as_posted: ReceivablesSummary | None = None
    # Carried over when the run continues as new.
    last_pushed: ReceivablesSummary | None = None
    dunning_stage: int = 0


class InvoiceChanged(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_type: str | None = None
    event_id: str | None = None


class WriteOffRequest(BaseModel):
    """Finance's write-off of what is still due. `actor` is the authenticated caller (set by the ingress or
    CLI from the verified identity, never from a request body); `expected_due` is the amount due as the
    person saw it, so a write-off of anything else (a payment arrived since) is refused. Optional only so
    that requests recorded before it existed still replay; the ingress and the CLI always send it."""

    model_config = ConfigDict(frozen=True)
    actor: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expected_due: Money | None = None


class WriteOffAccepted(BaseModel):
    """What the run took on: the credit it will make, unless the invoice settles first."""

    model_config = ConfigDict(frozen=True)
    invoice_number: str
    amount_due: Money
    requested_by: str


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
