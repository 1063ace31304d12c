"""Finance's write-off of an invoice an InvoiceToCash run follows, for the ingress and the CLI alike.

A write-off is an update on the run, not a signal: the run's validator refuses it unless the invoice has
money due, no write-off is already under way, and the amount the person names is what is due now, so the
caller learns at once whether it counted, and a payment that arrived while they looked is never written off
by mistake. The person is the verified caller. Reading what is due is a query to the run.
"""

from __future__ import annotations

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from canonical import Money
from ingress.approval_decisions import QUERY_TIMEOUT, UNAVAILABLE, ApprovalProblem
from ingress.identity import Identity
from runs.invoice_to_cash import InvoiceToCashStatus, WriteOffAccepted, WriteOffRequest, workflow_id

UPDATE = "write_off_invoice"
STATUS_QUERY = "status"


class WriteOffProblem(ApprovalProblem):
    """A write-off or a read that did not happen; `status` is the HTTP status that says why, `followed`
    what the run shows now (when it could be read), so the person can decide again on what is due."""

    def __init__(self, status: int, message: str, *, followed: InvoiceToCashStatus | None = None) -> None:
        super().__init__(status, message)
        self.followed = followed


def _rpc_problem(error: RPCError, wf_id: str) -> WriteOffProblem:
    if error.status == RPCStatusCode.NOT_FOUND:
        return WriteOffProblem(404, f"no invoice followed by a running {wf_id}")
    if error.status in UNAVAILABLE:
        return WriteOffProblem(503, f"Temporal is unavailable, try again shortly: {error.message}")
    return WriteOffProblem(502, f"Temporal refused the call on {wf_id}: {error.message}")


async def read_followed(client: Client, erp: str, invoice_id: str) -> InvoiceToCashStatus:
    """What the run following the invoice shows: its stage and the invoice's money as last read."""
    wf_id = workflow_id(erp, invoice_id)
    try:
        status: InvoiceToCashStatus = await client.get_workflow_handle(wf_id).query(
            STATUS_QUERY, result_type=InvoiceToCashStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as error:
        raise _rpc_problem(error, wf_id) from error
    except RPCTimeoutOrCancelledError as error:
        raise WriteOffProblem(503, f"{wf_id} did not answer in time: is a worker running?") from error
    except WorkflowQueryFailedError as error:
        raise WriteOffProblem(502, f"{wf_id} could not say what is due: {error.message}") from error
    return status


async def _followed_or_none(client: Client, erp: str, invoice_id: str) -> InvoiceToCashStatus | None:
    try:
        return await read_followed(client, erp, invoice_id)
    except WriteOffProblem:
        return None


async def write_off(
    client: Client,
    *,
    erp: str,
    invoice_id: str,
    by: Identity,
    reason: str,
    expected_due: Money,
) -> tuple[str, WriteOffAccepted]:
    """Ask the run to credit what is due on the invoice, for `by`, with `reason`.

    Raises WriteOffProblem: 404 no run follows the invoice, 409 refused by the run (nothing due, a write-off
    already under way, another amount due now; with what the run shows now), 503 Temporal unavailable.
    """
    wf_id = workflow_id(erp, invoice_id)
    request = WriteOffRequest(actor=by.actor, reason=reason, expected_due=expected_due)
    try:
        accepted: WriteOffAccepted = await client.get_workflow_handle(wf_id).execute_update(
            UPDATE, request, result_type=WriteOffAccepted
        )
    except WorkflowUpdateFailedError as failed:
        message = getattr(failed.cause, "message", None) or str(failed.cause)
        raise WriteOffProblem(
            409, message, followed=await _followed_or_none(client, erp, invoice_id)
        ) from failed
    except RPCTimeoutOrCancelledError as error:
        # The run may have taken the write-off before the call gave up: say so rather than invite a retry.
        raise WriteOffProblem(
            503,
            f"Temporal did not confirm the write-off in time; it may still be under way: read {wf_id} first",
        ) from error
    except RPCError as error:
        raise _rpc_problem(error, wf_id) from error
    return wf_id, accepted
