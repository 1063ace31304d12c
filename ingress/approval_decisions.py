"""Finance's decisions on the TimeToBilling run, for the ingress and the CLI alike.

A decision is an update on the run, not a signal: the run's validator refuses it unless that invoice
(version and total, as the person saw them) is still waiting, so the caller learns at once whether the
decision counted, and of two people deciding at the same moment exactly one wins and the other is told who
did. Reading what waits is a query to the run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, cast

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from canonical import Money
from ingress.identity import Identity
from runs.time_to_billing import ApprovalDecision, ApprovalRecorded, PendingApproval, workflow_id

UPDATES = {"approve": "approve_invoice", "reject": "reject_invoice"}
# The updates that carry a decision.
DECIDED = {
    "approve_invoice": "approved",
    "reject_invoice": "rejected",
}
PENDING_QUERY = "pending_approval"
QUERY_TIMEOUT = timedelta(seconds=10)
UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED)


class ApprovalProblem(Exception):
    """A decision or a read that did not happen; `status` is the HTTP status that says why."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        pending: PendingApproval | None = None,
        decided: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.pending = pending
        self.decided = decided


def rpc_problem(error: RPCError, wf_id: str) -> ApprovalProblem:
    if error.status == RPCStatusCode.NOT_FOUND:
        return ApprovalProblem(404, f"no billing run {wf_id}")
    if error.status in UNAVAILABLE:
        return ApprovalProblem(503, f"Temporal is unavailable, try again shortly: {error.message}")
    return ApprovalProblem(502, f"Temporal refused the call on {wf_id}: {error.message}")


async def read_pending(client: Client, wf_id: str) -> PendingApproval | None:
    """The invoice the run waits on finance for, or None when nothing is waiting."""
    handle = client.get_workflow_handle(wf_id)
    try:
        pending: PendingApproval | None = await handle.query(
            PENDING_QUERY,
            result_type=cast(type, PendingApproval | None),
            rpc_timeout=QUERY_TIMEOUT,
        )
    except RPCError as error:
        raise rpc_problem(error, wf_id) from error
    except RPCTimeoutOrCancelledError as error:
        raise ApprovalProblem(503, f"{wf_id} did not answer in time: is a worker running?") from error
    except WorkflowQueryFailedError as error:
        raise ApprovalProblem(502, f"{wf_id} could not say what is waiting: {error.message}") from error
    return pending


async def _pending_or_none(client: Client, wf_id: str) -> PendingApproval | None:
    try:
        return await read_pending(client, wf_id)
    except ApprovalProblem:
        return None


async def decided(client: Client, wf_id: str) -> str | None:
    """Who decided the run's invoice ("approved by ..."), from the decision update its history completed.

    The history, not the refusal's message, so that the person who lost a race is told who won even once
    the run has finished. Only an update that completed without failure decided anything: one its validator
    accepted may still have lost the race in its handler, and signals no longer decide.
    """
    handle = client.get_workflow_handle(wf_id)
    accepted: dict[str, tuple[str, list[Any]]] = {}
    try:
        async for event in handle.fetch_history_events(rpc_timeout=QUERY_TIMEOUT):
            if event.HasField("workflow_execution_update_accepted_event_attributes"):
                request = event.workflow_execution_update_accepted_event_attributes.accepted_request
                accepted[request.meta.update_id] = (request.input.name, list(request.input.args.payloads))
            elif event.HasField("workflow_execution_update_completed_event_attributes"):
                completed = event.workflow_execution_update_completed_event_attributes
                name, payloads = accepted.get(completed.meta.update_id, ("", []))
                verb = DECIDED.get(name)
                if verb is None or not payloads or not completed.outcome.HasField("success"):
                    continue
                [decision] = await client.data_converter.decode(payloads[:1], [ApprovalDecision])
                return f"{verb} by {decision.approver}"
    except Exception:
        # Naming the winner only adds to a refusal: failing to read the history must not replace it.
        return None
    return None


async def _nothing_waiting_in_a_closed_run(client: Client, wf_id: str) -> ApprovalProblem | None:
    # Temporal answers an update on a finished run as "not found", like a run that never existed; only
    # the latter is a 404.
    try:
        described = await client.get_workflow_handle(wf_id).describe()
    except RPCError:
        return None
    if described.status is None or described.close_time is None:
        return None
    winner = await decided(client, wf_id)
    return ApprovalProblem(
        409,
        f"{wf_id} has finished ({described.status.name.lower()}): nothing is waiting"
        + (f"; it was {winner}" if winner else ""),
        decided=winner,
    )


async def decide(
    client: Client,
    *,
    project_id: str,
    period: str,
    decision: Literal["approve", "reject"],
    by: Identity,
    invoice_version: str,
    expected_total: Money,
    reason: str | None = None,
) -> tuple[str, ApprovalRecorded]:
    """Record `by`'s decision on the waiting invoice of the project's run for the period.

    Raises ApprovalProblem: 404 no such run, 409 refused by the run (nothing waiting, already decided, a
    different version or total; with what is waiting now, if anything), 503 Temporal unavailable.
    """
    wf_id = workflow_id(project_id, period)
    handle = client.get_workflow_handle(wf_id)
    payload = ApprovalDecision(
        approver=by.actor, reason=reason, invoice_version=invoice_version, expected_total=expected_total
    )
    try:
        recorded: ApprovalRecorded = await handle.execute_update(
            UPDATES[decision], payload, result_type=ApprovalRecorded
        )
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        message = getattr(cause, "message", None) or str(cause)
        pending = await _pending_or_none(client, wf_id)
        winner = None if pending is not None else await decided(client, wf_id)
        raise ApprovalProblem(409, message, pending=pending, decided=winner) from failed
    except RPCTimeoutOrCancelledError as error:
        # The run may have taken the decision before the call gave up: say so rather than invite a retry.
        raise ApprovalProblem(
            503,
            f"Temporal did not confirm the decision in time; it may still be recorded: read {wf_id} first",
        ) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            closed = await _nothing_waiting_in_a_closed_run(client, wf_id)
            if closed is not None:
                raise closed from error
        raise rpc_problem(error, wf_id) from error
    if recorded.decided_by is None:
        recorded = recorded.model_copy(update={"decided_by": by.actor})
    return wf_id, recorded
