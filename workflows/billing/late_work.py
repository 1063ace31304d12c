"""Work approved after its period was invoiced, or after this run began collecting: billed by a later run.

A period already invoiced gets an adjustment invoice or hands its late work to the next run, by the contract's
`late_entries` policy; an adjustment invoice needs nothing here beyond the `adjustment` flag the run carries.
Work approved while this run was collecting or waiting on finance may be missing from its invoice: the run
remembers it (by feed event id, so a repeated event is no new work) and, once finished, continues as new into
a fresh collection of the same project and period, where those same policies decide how it is billed. The
PSA marks what was billed, so the fresh collection never reads it twice.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.psa import OwedItemsInput, PsaActivities
    from canonical import Period, ProjectContract
    from canonical.events import item_key
    from domain.billing_policy import BillingHistory, deferral_period, late_periods
    from runs.time_to_billing import (
        BillNow,
        Collection,
        LateArrivals,
        TimeToBillingInput,
        TimeToBillingResult,
        WorkApproved,
    )
    from workflows.options import VENDOR_CALL

from workflows.billing.run_state import BillingRun

# Runs in flight before these existed finished without a follow-up or an audited bill-now: they replay so.
FOLLOW_UP_PATCH = "bill-work-approved-after-collection"
BILL_NOW_AUDIT_PATCH = "audit-bill-now"
# Runs before this followed up every late approval, also of work their own invoice held.
LATE_ITEMS_INVOICED_PATCH = "no-follow-up-for-late-work-already-invoiced"


class LateWork(BillingRun):
    def __init__(self) -> None:
        super().__init__()
        self._collection_begun = False
        self._seen_event_ids: set[str] = set()
        self._late = LateArrivals()
        self._bill_now_request: BillNow | None = None
        # Messages delivered before the run read its input (signal-with-start, or into a continued run):
        # whether they are late depends on that input.
        self._resumed = False
        self._before_resume: list[WorkApproved | BillNow] = []

    # --- what arrives, and whether this run's collection can still include it ----------------------------

    def _note_approval(self, event: WorkApproved) -> None:
        if not self._resumed:
            self._before_resume.append(event)
            return
        fresh = [
            event_id for event_id in dict.fromkeys(event.event_ids) if event_id not in self._seen_event_ids
        ]
        self._seen_event_ids.update(fresh)
        if not self._collection_begun:
            return
        if fresh:
            late = self._late
            named = (
                {"item_ids": tuple(dict.fromkeys((*late.item_ids, *event.item_ids)))}
                if event.item_ids
                else {"naming_no_items": late.naming_no_items + 1}
            )
            self._late = late.model_copy(update={"event_ids": (*late.event_ids, *fresh), **named})
        elif not event.event_ids:
            # Nothing to recognise a repeat by (a retry or a deferral nudging the run): assume new work.
            self._late = self._late.model_copy(update={"unnamed": self._late.unnamed + 1})

    def _note_bill_now(self, request: BillNow) -> None:
        if not self._resumed:
            self._before_resume.append(request)
            return
        if self._collection_begun:
            # This invoice is already drawn up: what was completed since is billed at once by the follow-up.
            if self._late.bill_now is None:
                self._late = self._late.model_copy(update={"bill_now": request})
        elif self._bill_now_request is None:
            self._bill_now_request = request

    def _resume(self, input: TimeToBillingInput) -> None:
        """Pick up what a continued run or the run this one follows up was handed."""
        if input.carried is not None:
            # Collection was under way before the run continued: anything arriving now may be missed by it.
            self._collection_begun = True
            self._late = input.carried.late or LateArrivals()
            self._seen_event_ids.update(self._late.event_ids)
        handed = input.follow_up_of
        if handed is not None and input.carried is None:
            self._seen_event_ids.update(handed.event_ids)
            if handed.bill_now is not None:
                self._bill_now = True
                self._bill_now_request = handed.bill_now
        self._resumed = True
        for message in self._before_resume:
            if isinstance(message, WorkApproved):
                self._note_approval(message)
            else:
                self._note_bill_now(message)
        self._before_resume.clear()

    def _begin_collecting(self) -> None:
        self._collection_begun = True

    def _continue_if_history_is_long(self, input: TimeToBillingInput, state: Collection) -> None:
        # What arrived late must survive the continue, or the continued run would owe it nothing.
        carried = state.model_copy(update={"late": self._late}) if self._late.owed else state
        super()._continue_if_history_is_long(input, carried)

    # --- bill now -----------------------------------------------------------------------------------------

    async def _record_bill_now(self, input: TimeToBillingInput) -> None:
        """Who asked to bill before the period settled, and whether its month had even closed."""
        request = self._bill_now_request
        if request is None or not workflow.patched(BILL_NOW_AUDIT_PATCH):
            return
        await self._audit(
            "bill_now",
            input,
            {
                "actor": request.actor,
                "milestone_id": request.milestone_id,
                "period_closed": workflow.now().date() > Period(value=input.period).last_day,
                "follow_up": input.follow_up_of is not None,
            },
        )

    # --- after the run: late work ------------------------------------------------------------------------

    async def _follow_up_late_work(
        self, input: TimeToBillingInput, invoiced: frozenset[str] = frozenset()
    ) -> None:
        """Continue as new into a fresh collection when work arrived too late for this run's invoice.

        Late approvals that name their items owe a follow-up only for items neither on the invoice this run
        posted (`invoiced`, as `item_key`s) nor billed or unbillable by the PSA's own account: a feed read in
        several polls names, late, work the run collected anyway, and non-billable time it never bills.
        """
        if not self._late.owed or not workflow.patched(FOLLOW_UP_PATCH):
            return
        if self._late.all_named and workflow.patched(LATE_ITEMS_INVOICED_PATCH):
            elsewhere = tuple(sorted(set(self._late.item_ids) - invoiced))
            owed = (await self._owed(input, elsewhere)) if elsewhere else ()
            if not owed:
                workflow.logger.info(
                    "late approvals owe nothing",
                    extra={"events": len(self._late.event_ids), "items": len(self._late.item_ids)},
                )
                return
        await self._audit(
            "late_work_followed_up",
            input,
            {
                "event_ids": list(self._late.event_ids[:200]),
                "events": len(self._late.event_ids),
                "unnamed": self._late.unnamed,
                "bill_now_by": self._late.bill_now.actor if self._late.bill_now else None,
            },
        )
        # Read again after the audit: approvals that arrived meanwhile go along too.
        workflow.continue_as_new(input.model_copy(update={"carried": None, "follow_up_of": self._late}))

    async def _owed(self, input: TimeToBillingInput, item_ids: tuple[str, ...]) -> tuple[str, ...]:
        found = await workflow.execute_activity_method(
            PsaActivities.owed_items,
            OwedItemsInput(project_id=input.project_id, item_ids=item_ids),
            **VENDOR_CALL,
        )
        return found.item_ids

    def _invoiced_items(self) -> frozenset[str]:
        """The items on the invoice this run posted: what it marks billed."""
        rated = self._rated
        return frozenset(
            [
                *(item_key("time", i) for i in rated.time_entry_ids),
                *(item_key("expense", i) for i in rated.expense_ids),
                *(item_key("milestone", i) for i in rated.milestone_ids),
            ]
        )

    def _periods_to_collect(
        self, input: TimeToBillingInput, contract: ProjectContract, history: BillingHistory
    ) -> tuple[str, ...]:
        """This period, then (under the `next_run` policy) invoiced ones whose late work it also bills."""
        return (
            input.period,
            *late_periods(contract=contract.contract, history=history, period=input.period),
        )

    async def _defer(self, input: TimeToBillingInput, history: BillingHistory) -> TimeToBillingResult:
        """The period is invoiced and late work goes to the next run: hand it on, never drop it."""
        target = deferral_period(period=input.period, today=workflow.now().date())
        await self._start_billing(input, target)
        await self._audit(
            "late_work_deferred",
            input,
            {"to_period": target, "invoiced_as": [p.number for p in history.for_period(input.period)]},
        )
        self._set_stage("deferred")
        return self._result(input, "deferred", deferred_to=target)
