"""ExceptionAction: a person's retry (or fix-and-retry) of one exception, carried out durably and followed up.

The ingress or CLI has already recorded the action in the ledger (open -> retrying), which is what makes a
second click a 409 rather than a second retry. This run then:

1. applies the corrected fields to the source system (fix only; a refusal re-opens the item, saying why);
2. retries the process through its entry in `activities.exceptions.PROCESS_ACTIONS` (waiting, when the
   entry says the process is busy, until it is not);
3. follows the retried run: the item is resolved when the run completes without raising it again, re-opened
   when the run ends badly, and left to the process when the process raises it again (it re-opens it itself).

Workflow id `exception-action:{dedupe_key}:{claimed at}`, so one claim has exactly one action run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.exceptions import (
        ApplyFixInput,
        CloseExceptionInput,
        ExceptionActivities,
        LoadExceptionInput,
        RetryOutcome,
        RetryProcessInput,
        RetryProgressInput,
        RetryRequest,
    )
    from ledger.vocab import ExceptionStatus
    from runs.exception_action import (
        FIRST_POLL,
        LONGEST_POLL,
        ExceptionActionInput,
        ExceptionActionResult,
        ExceptionActionStatus,
        Outcome,
    )
    from workflows.options import LEDGER_CALL, VENDOR_CALL


def _what(input: ExceptionActionInput) -> str:
    """Who did what, with the corrections: the item's resolution keeps only this note."""
    if input.action == "fix" and input.corrected_fields:
        fields = ", ".join(f"{name}={value}" for name, value in sorted(input.corrected_fields.items()))
        return f"fix by {input.actor} ({fields})"
    return f"{input.action} by {input.actor}"


def _cause(failure: ActivityError) -> str:
    return str(failure.cause or failure)


@workflow.defn
class ExceptionAction:
    def __init__(self) -> None:
        self._stage = "starting"
        self._exception_id = 0
        self._target: str | None = None
        self._outcome: Outcome | None = None

    @workflow.query
    def status(self) -> ExceptionActionStatus:
        return ExceptionActionStatus(
            stage=self._stage,
            exception_id=self._exception_id,
            retried_workflow_id=self._target,
            outcome=self._outcome,
        )

    @workflow.run
    async def run(self, input: ExceptionActionInput) -> ExceptionActionResult:
        self._exception_id = input.exception_id
        deadline = workflow.now() + timedelta(seconds=input.follow_seconds)
        item = (
            await workflow.execute_local_activity_method(
                ExceptionActivities.load_exception,
                LoadExceptionInput(exception_id=input.exception_id),
                **LEDGER_CALL,
            )
        ).item

        if input.action == "fix":
            self._stage = "applying_fix"
            try:
                await workflow.execute_activity_method(
                    ExceptionActivities.apply_exception_fix,
                    ApplyFixInput(exception_id=item.id, corrected_fields=input.corrected_fields or {}),
                    **VENDOR_CALL,
                )
            except ActivityError as failure:
                return await self._finish(
                    input, "fix_refused", f"the correction was refused: {_cause(failure)}", reopen=True
                )

        self._stage = "retrying"
        request = RetryRequest(
            actor=input.actor,
            note=input.note,
            exception_id=item.id,
            action_workflow_id=workflow.info().workflow_id,
        )
        wait = FIRST_POLL
        while True:
            try:
                outcome = (
                    await workflow.execute_activity_method(
                        ExceptionActivities.retry_exception_process,
                        RetryProcessInput(exception_id=item.id, request=request),
                        **VENDOR_CALL,
                    )
                ).outcome
            except ActivityError as failure:
                return await self._finish(
                    input, "retry_failed", f"the retry could not be made: {_cause(failure)}", reopen=True
                )
            self._target = outcome.workflow_id
            if outcome.state != "busy":
                break
            if workflow.now() >= deadline:
                return await self._finish(input, "still_running", outcome.detail, target=outcome)
            self._stage = "waiting_for_busy_run"
            await workflow.sleep(wait)
            wait = min(wait * 2, LONGEST_POLL)

        if outcome.state == "already_done":
            return await self._finish(input, "resolved", outcome.detail, target=outcome, resolve=True)
        return await self._follow(input, outcome, deadline)

    async def _follow(
        self, input: ExceptionActionInput, target: RetryOutcome, deadline: datetime
    ) -> ExceptionActionResult:
        """Poll the retried run, sparser as time goes on, until it or the item settles."""
        self._stage = "following"
        wait = FIRST_POLL
        while True:
            progress = await workflow.execute_activity_method(
                ExceptionActivities.retry_progress,
                RetryProgressInput(
                    exception_id=input.exception_id, workflow_id=target.workflow_id, run_id=target.run_id
                ),
                **VENDOR_CALL,
            )
            if progress.exception_status == ExceptionStatus.OPEN:
                return await self._finish(
                    input, "raised_again", f"{target.workflow_id} reported the problem again", target=target
                )
            if progress.exception_status == ExceptionStatus.RESOLVED:
                # The retried process (a check run again, say) found the problem gone and resolved it.
                return await self._finish(
                    input, "resolved", f"resolved by {target.workflow_id}", target=target
                )
            if progress.exception_status == ExceptionStatus.SKIPPED:
                return await self._finish(
                    input, "skipped_meanwhile", "a person skipped it meanwhile", target=target
                )
            if progress.run_status == "COMPLETED":
                return await self._finish(
                    input,
                    "resolved",
                    f"{target.workflow_id} completed after the retry",
                    target=target,
                    resolve=True,
                )
            if progress.run_status == "CONTINUED_AS_NEW":
                # A long billing run goes on in a new run of the same id: follow the latest one.
                target = target.model_copy(update={"run_id": None})
            elif progress.run_status not in ("RUNNING", None):
                return await self._finish(
                    input,
                    "retry_failed",
                    f"the retried run {target.workflow_id} ended {progress.run_status}",
                    target=target,
                    reopen=True,
                )
            if workflow.now() >= deadline:
                return await self._finish(
                    input, "still_running", f"{target.workflow_id} is still running", target=target
                )
            await workflow.sleep(wait)
            wait = min(wait * 2, LONGEST_POLL)

    async def _finish(
        self,
        input: ExceptionActionInput,
        outcome: Outcome,
        detail: str,
        *,
        target: RetryOutcome | None = None,
        resolve: bool = False,
        reopen: bool = False,
    ) -> ExceptionActionResult:
        if resolve or reopen:
            await workflow.execute_local_activity_method(
                ExceptionActivities.close_exception,
                CloseExceptionInput(
                    exception_id=input.exception_id,
                    outcome="resolve" if resolve else "reopen",
                    note=f"{_what(input)}: {detail}",
                ),
                **LEDGER_CALL,
            )
        self._stage, self._outcome = "done", outcome
        return ExceptionActionResult(
            exception_id=input.exception_id,
            outcome=outcome,
            retried_workflow_id=target.workflow_id if target else self._target,
            retried_run_id=target.run_id if target else None,
            detail=detail,
        )
