"""PsaFeedPoller: the PSA has no push webhooks, so a long-running workflow reads its change feed.

The cursor lives in this workflow's state (and is carried across continue-as-new), so the poller
catches up after any downtime from exactly where it stopped. Events only nudge billing: the billing
run re-reads the entries from the PSA before it rates anything.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.billing_starter import StartBillingInput, StarterActivities
    from activities.feed_billing import (
        FeedBillingActivities,
        PollAndNudgeBillingInput,
        PollAndNudgeBillingResult,
    )
    from activities.ledger import LedgerActivities, RaiseExceptionInput
    from activities.psa import PollPsaEventsInput, PsaActivities
    from canonical import ExceptionOwner, ExpensePosted, MilestoneCompleted, Period, TimeApproved
    from domain.feed_nudges import BillingNudge, group_billing_nudges
    from runs import search_attributes as sa
    from runs.psa_feed import PollNow, PsaFeedPollerInput, PsaFeedPollerStatus
    from workflows.options import LEDGER_CALL, PAGED_CALL, VENDOR_CALL

POLLS_BEFORE_CONTINUE = 200
# Each poll that nudges billing itself carries the legal entities' set-up and the cursor in and out of
# history (about 6 KB at benchmark volume): a run continues as new sooner, so its history stays well under
# 1 MB (475 KB and 646 KB in two full benchmark runs at 100,000 entries).
POLLS_BEFORE_CONTINUE_NUDGING = 50
# The activity groups a poll's events into billing nudges, so whole events stay out of this history.
NUDGES_GROUPED_BY_ACTIVITY = "feed-nudges-grouped-by-activity"
# The dev server slows down when flooded: start billing runs a few at a time.
START_BATCH = 10
# One activity per poll reads the feed and nudges the billing runs itself: no billing start per run, with
# its ids and the legal entities' configuration, lands in this history.
POLL_STARTS_BILLING = "feed-poll-starts-billing"


@workflow.defn
class PsaFeedPoller:
    def __init__(self) -> None:
        self._polls = 0
        self._events_seen = 0
        self._nudged = 0
        self._cursor: dict[str, Any] | None = None
        self._poll_now = False
        self._last_gap: str | None = None
        self._waiting = False

    @workflow.signal
    def poll_now(self, request: PollNow) -> None:
        self._poll_now = True

    @workflow.query
    def status(self) -> PsaFeedPollerStatus:
        return PsaFeedPollerStatus(
            polls=self._polls,
            events_seen=self._events_seen,
            billing_runs_nudged=self._nudged,
            cursor=self._cursor,
            last_gap=self._last_gap,
            waiting=self._waiting,
        )

    @workflow.run
    async def run(self, input: PsaFeedPollerInput) -> None:
        self._cursor = input.cursor
        self._events_seen, self._nudged = input.events_seen, input.billing_runs_nudged
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set("polling")])
        while True:
            self._poll_now = False
            if workflow.patched(POLL_STARTS_BILLING):
                polled = await self._poll_and_nudge_billing(input)
                cursor, more = polled.cursor, polled.more
                polls_before_continue = POLLS_BEFORE_CONTINUE_NUDGING
            else:
                cursor, more = await self._poll_then_start_billing(input)
                polls_before_continue = POLLS_BEFORE_CONTINUE
            # Only after the runs were nudged: a crash before this re-reads the same events, never skips them.
            self._cursor = cursor
            if self._polls >= polls_before_continue or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "cursor": self._cursor,
                            "events_seen": self._events_seen,
                            "billing_runs_nudged": self._nudged,
                        }
                    )
                )
            if not more:
                # Caught up: the feed held nothing more at the last poll (ops and the benchmark read this).
                self._waiting = True
                try:
                    await workflow.wait_condition(
                        lambda: self._poll_now, timeout=timedelta(seconds=input.poll_interval_seconds)
                    )
                except TimeoutError:
                    pass
                self._waiting = False

    async def _poll_and_nudge_billing(self, input: PsaFeedPollerInput) -> PollAndNudgeBillingResult:
        # The activity nudges before it returns the new cursor, which the caller keeps only then: a crash or
        # retry reads from the old cursor and nudges again (billing runs drop event ids they heard), so no
        # event is ever skipped.
        result = await workflow.execute_activity_method(
            FeedBillingActivities.poll_and_nudge_billing,
            PollAndNudgeBillingInput(
                psa=input.psa,
                entities=input.entities,
                settle_seconds=input.billing_settle_seconds,
                invoice_poll_interval_seconds=input.invoice_poll_interval_seconds,
                cursor=self._cursor,
            ),
            **PAGED_CALL,
        )
        self._polls += 1
        self._events_seen += result.events_read
        self._nudged += result.runs_nudged
        if result.gap is not None:
            await self._report_gap(input, result.gap)
        return result

    async def _poll_then_start_billing(self, input: PsaFeedPollerInput) -> tuple[dict[str, Any], bool]:
        """As shipped before the poll nudged billing itself: a billing start activity per nudge."""
        grouped = workflow.patched(NUDGES_GROUPED_BY_ACTIVITY)
        result = await workflow.execute_activity_method(
            PsaActivities.poll_psa_events,
            PollPsaEventsInput(cursor=self._cursor, grouped=True)
            if grouped
            else PollPsaEventsInput(cursor=self._cursor),
            **VENDOR_CALL,
        )
        self._polls += 1
        if grouped:
            # A worker not yet upgraded ignores `grouped` and answers with the events: group them here.
            nudges = result.nudges or group_billing_nudges(result.events)
            self._events_seen += result.events_read or len(result.events)
        else:
            nudges = _nudges_as_first_shipped(result.events)
            self._events_seen += len(result.events)
        if result.gap is not None:
            await self._report_gap(input, result.gap)
        await self._nudge_billing(input, nudges)
        return result.cursor, result.more

    async def _nudge_billing(self, input: PsaFeedPollerInput, nudges: list[BillingNudge]) -> None:
        for start in range(0, len(nudges), START_BATCH):
            handles = [
                workflow.start_activity_method(
                    StarterActivities.start_billing,
                    StartBillingInput(
                        project_id=nudge.project_id,
                        period=nudge.period,
                        psa=input.psa,
                        entities=input.entities,
                        settle_seconds=input.billing_settle_seconds,
                        invoice_poll_interval_seconds=input.invoice_poll_interval_seconds,
                        event_ids=nudge.event_ids,
                        item_ids=nudge.item_ids,
                    ),
                    **VENDOR_CALL,
                )
                for nudge in nudges[start : start + START_BATCH]
            ]
            for handle in handles:
                await handle
                self._nudged += 1

    async def _report_gap(self, input: PsaFeedPollerInput, gap: str) -> None:
        self._last_gap = gap
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"psa_feed:{input.psa}:gap:{gap}",
                process="psa_feed",
                owner=ExceptionOwner.INTEGRATION_SUPPORT,
                reason=f"{input.psa} change feed lost events ({gap}); "
                "run reconciliation for the affected periods",
                record={"psa": input.psa, "gap": gap},
            ),
            **LEDGER_CALL,
        )


def _nudges_as_first_shipped(events: list[Any]) -> list[BillingNudge]:
    """Runs from before the activity grouped the events: the same groups, repeats kept and no items named,
    so the billing starts they schedule carry exactly what they first did."""
    groups: dict[tuple[str, str], list[str]] = {}
    for event in events:
        if isinstance(event, TimeApproved | ExpensePosted):
            key = (event.project_id, Period.of(event.entry_date).value)
        elif isinstance(event, MilestoneCompleted):
            # A fixed fee bills the milestone in the period it was completed in.
            key = (event.project_id, Period.of(event.completed_on).value)
        else:
            continue
        groups.setdefault(key, []).append(event.event_id)
    return [
        BillingNudge(project_id=project_id, period=period, event_ids=tuple(event_ids), item_ids=())
        for (project_id, period), event_ids in sorted(groups.items())
    ]
