"""Payables: what one supplier is owed for one period becomes one bill per legal entity, posted exactly once,
and the PSA hears when it is paid.

The supplier is the consultant who paid reimbursable expenses (a bill to the employee's supplier record), or
a vendor named on expenses or as the firm a subcontractor works for (a bill to that vendor, holding both).
Rules (domain.payables):
- The run re-reads the supplier's approved payable expenses and subcontracted time of the period from the
  PSA; what is already on a bill is left alone, so a run started again bills only what is new.
- Each expense's line books to the cost account its category maps to in its entity; subcontracted time
  bills at its cost rate, one line per person, project and rate, to its role's cost account. An expense or
  entry without an account (or with one the ERP's chart lacks), or time without a cost rate, is a finance
  exception, and the rest is billed. Every line carries its project's ERP dimensions.
- The supplier is found or created in the ERP of the entity (crosswalk first), the bill posted under a key
  and reference derived from supplier, period, entity and expense ids, and only then are the expenses
  marked in the PSA as on that bill. A permanent refusal is an exception for finance, never a lost bill.
- The bill is then read every interval (or at once on `bill_changed`) until it is paid; its expenses are
  then marked reimbursed in the PSA. A bill voided in the ERP is handed to finance.
- `expenses_approved` while the run waits makes it read the PSA again and bill what is on no bill yet, so
  a scan or an approval heard by a running run is never lost.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities, RaiseExceptionInput
    from activities.payables import (
        EnsureSupplierInput,
        GetBillStatusInput,
        LoadCostAccountsInput,
        LoadCostAccountsResult,
        MarkExpensesInput,
        MarkTimeInput,
        OwedExpense,
        OwedTime,
        PayablesActivities,
        PostBillInput,
        ReadSubcontractedTimeInput,
        ReadSupplierExpensesInput,
        ResolveExceptionsInput,
    )
    from canonical import ExceptionOwner, InvoiceState
    from canonical.payables import Bill, BillLine, Supplier
    from domain.account_mapping import AccountProblem
    from domain.payables import (
        CostedTime,
        bill_key,
        bill_line,
        bill_reference,
        cost_account,
        due_date,
        missing_cost_rate,
        time_bill_lines,
        time_cost_account,
    )
    from runs import search_attributes as sa
    from runs.payables import (
        CHECKS_BEFORE_CONTINUE,
        BillChanged,
        ExpensesApproved,
        PayablesInput,
        PayablesResult,
        PayablesStatus,
        TrackedBill,
    )
    from workflows.options import LEDGER_CALL, PAGED_CALL, POSTING_CALL, VENDOR_CALL

PROCESS = "payables"
# Subcontracted time read, billed and marked alongside expenses.
SUBCONTRACTED_TIME = "payables-subcontracted-time"
# What finance or the PMO may have been asked to fix for a time entry, settled once it is on a bill.
TIME_PROBLEMS = ("cost-rate", "cost-account", "legal-entity")


def _failure(error: ActivityError) -> str:
    cause = error.cause
    return str(cause.message if cause is not None and hasattr(cause, "message") else error)


def _amount(item: OwedExpense) -> str:
    return f"{item.expense.amount.currency} {item.expense.amount.amount}"


@workflow.defn
class Payables:
    def __init__(self) -> None:
        self._stage = "starting"
        self._input: PayablesInput | None = None
        self._bills: list[TrackedBill] = []
        self._problems: list[str] = []
        self._checks = 0
        self._nudged = False
        self._more_approved = False

    @workflow.signal
    def expenses_approved(self, event: ExpensesApproved) -> None:
        self._more_approved = True
        self._nudged = True

    @workflow.signal
    def bill_changed(self, change: BillChanged) -> None:
        self._nudged = True

    @workflow.query
    def status(self) -> PayablesStatus:
        input = self._input
        return PayablesStatus(
            stage=self._stage,
            supplier_key=input.supplier_key if input else "",
            period=input.period if input else "",
            bills=tuple(self._bills),
            problems=tuple(self._problems),
            checks=self._checks,
        )

    @workflow.run
    async def run(self, input: PayablesInput) -> PayablesResult:
        self._input = input
        workflow.upsert_search_attributes([sa.BILLING_PERIOD.value_set(input.period)])
        self._bills = list(input.bills)
        if not input.bills:
            await self._bill(input)
        if not self._bills:
            self._set_stage("nothing_to_bill")
            return PayablesResult(outcome="nothing_to_bill", bills=(), problems=tuple(self._problems))
        return await self._await_payment(input)

    # --- billing --------------------------------------------------------------------------------------------

    async def _bill(self, input: PayablesInput) -> None:
        # This read sees every approval heard so far; one heard during it is read again later.
        self._more_approved = False
        self._set_stage("reading")
        read = await workflow.execute_activity_method(
            PayablesActivities.read_supplier_expenses,
            ReadSupplierExpensesInput(period=input.period, supplier_key=input.supplier_key),
            **PAGED_CALL,
        )
        owed = [o for o in read.expenses if o.expense.bill_number is None]
        supplier = read.supplier
        time: list[OwedTime] = []
        if workflow.patched(SUBCONTRACTED_TIME):
            timed = await workflow.execute_activity_method(
                PayablesActivities.read_subcontracted_time,
                ReadSubcontractedTimeInput(period=input.period, supplier_key=input.supplier_key),
                **PAGED_CALL,
            )
            time = [t for t in timed.time if t.entry.bill_number is None]
            supplier = supplier or timed.supplier
        if supplier is None or not (owed or time):
            return
        by_entity: dict[str, list[OwedExpense]] = {}
        time_by_entity: dict[str, list[OwedTime]] = {}
        for item in owed:
            if item.legal_entity is None:
                await self._raise(
                    input,
                    ExceptionOwner.PMO,
                    f"expense {item.expense.id} of project {item.expense.project_id} cannot be billed: the "
                    "project names no legal entity, so no ERP owes it",
                    key=f"{item.expense.id}:legal-entity",
                    record={"expense_id": item.expense.id, "project_id": item.expense.project_id},
                )
                continue
            by_entity.setdefault(item.legal_entity, []).append(item)
        for worked in time:
            entry = worked.entry
            if worked.legal_entity is None:
                await self._raise(
                    input,
                    ExceptionOwner.PMO,
                    f"time entry {entry.id} of project {entry.project_id} cannot be billed: the project "
                    "names no legal entity, so no ERP owes it",
                    key=f"time:{entry.id}:legal-entity",
                    record={"time_entry_id": entry.id, "project_id": entry.project_id},
                )
                continue
            time_by_entity.setdefault(worked.legal_entity, []).append(worked)
        for legal_entity in sorted(set(by_entity) | set(time_by_entity)):
            await self._bill_entity(
                input,
                supplier,
                legal_entity,
                by_entity.get(legal_entity, []),
                time_by_entity.get(legal_entity, []),
            )

    async def _bill_entity(
        self,
        input: PayablesInput,
        supplier: Supplier,
        legal_entity: str,
        owed: list[OwedExpense],
        time: list[OwedTime],
    ) -> None:
        workflow.upsert_search_attributes([sa.LEGAL_ENTITY.value_set(legal_entity)])
        accounts = await workflow.execute_local_activity_method(
            PayablesActivities.load_cost_accounts,
            LoadCostAccountsInput(legal_entity=legal_entity),
            **LEDGER_CALL,
        )
        lines: list[BillLine] = []
        for item in sorted(owed, key=lambda o: (o.expense.date, o.expense.id)):
            choice = cost_account(accounts.accounts, item.expense.category, legal_entity=legal_entity)
            if isinstance(choice, AccountProblem):
                await self._raise(
                    input,
                    ExceptionOwner.FINANCE,
                    f"expense {item.expense.id} ({_amount(item)}) is not billed: {choice.reason}",
                    key=f"{item.expense.id}:cost-account",
                    record={
                        "expense_id": item.expense.id,
                        "legal_entity": legal_entity,
                        "category": item.expense.category,
                        "rule": choice.rule,
                    },
                )
                continue
            lines.append(bill_line(item.expense, choice.account_code, item.dimensions))
        if time:
            lines.extend(await self._time_lines(input, legal_entity, accounts, time))
        currencies = {line.amount.currency for line in lines}
        for currency in sorted(currencies):
            await self._post(
                input, supplier, legal_entity, [ln for ln in lines if ln.amount.currency == currency]
            )

    async def _time_lines(
        self, input: PayablesInput, legal_entity: str, accounts: LoadCostAccountsResult, time: list[OwedTime]
    ) -> list[BillLine]:
        costed: list[CostedTime] = []
        for worked in sorted(time, key=lambda t: (t.entry.date, t.entry.id)):
            entry = worked.entry
            if entry.cost_rate is None:
                await self._raise(
                    input,
                    ExceptionOwner.FINANCE,
                    missing_cost_rate(entry),
                    key=f"time:{entry.id}:cost-rate",
                    record={
                        "time_entry_id": entry.id,
                        "person_id": entry.person_id,
                        "person_name": entry.person_name,
                        "currency": entry.currency,
                        "project_id": entry.project_id,
                    },
                )
                continue
            choice = time_cost_account(accounts.accounts, entry.role, legal_entity=legal_entity)
            if isinstance(choice, AccountProblem):
                await self._raise(
                    input,
                    ExceptionOwner.FINANCE,
                    f"time entry {entry.id} ({entry.minutes} min of {entry.person_name}) is not billed: "
                    f"{choice.reason}",
                    key=f"time:{entry.id}:cost-account",
                    record={
                        "time_entry_id": entry.id,
                        "legal_entity": legal_entity,
                        "role": entry.role,
                        "rule": choice.rule,
                    },
                )
                continue
            costed.append(
                CostedTime(
                    entry=entry,
                    cost_rate=entry.cost_rate,
                    account_code=choice.account_code,
                    dimensions=worked.dimensions,
                )
            )
        if not costed:
            return []
        if accounts.rounding is None:
            # Loaded by this code, which always sets it: a missing rule is a deployment fault to retry.
            raise RuntimeError(f"no rounding rule was loaded for legal entity {legal_entity}")
        return time_bill_lines(costed, accounts.rounding)

    async def _post(
        self, input: PayablesInput, supplier: Supplier, legal_entity: str, lines: list[BillLine]
    ) -> None:
        self._set_stage("posting")
        expense_ids = [line.expense_id for line in lines if line.expense_id is not None]
        time_ids = [entry_id for line in lines for entry_id in line.time_entry_ids]
        key = bill_key(
            psa=input.psa,
            supplier_key=supplier.key,
            period=input.period,
            legal_entity=legal_entity,
            expense_ids=[source for line in lines for source in line.source_ids],
        )
        try:
            ensured = await workflow.execute_activity_method(
                PayablesActivities.ensure_supplier,
                EnsureSupplierInput(legal_entity=legal_entity, supplier=supplier),
                **VENDOR_CALL,
            )
            today = workflow.now().date()
            bill = Bill(
                reference=bill_reference(key, input.period),
                legal_entity=legal_entity,
                supplier_id=ensured.supplier_id,
                supplier_name=supplier.name,
                currency=lines[0].amount.currency,
                issue_date=today,
                due_date=due_date(today),
                lines=tuple(lines),
            )
            posted = await workflow.execute_activity_method(
                PayablesActivities.post_bill, PostBillInput(bill=bill, idempotency_key=key), **POSTING_CALL
            )
        except ActivityError as error:
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                f"the bill for {supplier.name} ({legal_entity}, {input.period}) was not posted: "
                f"{_failure(error)}",
                key=f"{legal_entity}:post",
                record={
                    "legal_entity": legal_entity,
                    "expense_ids": expense_ids,
                    "time_entry_ids": time_ids,
                    "idempotency_key": key,
                },
            )
            return
        tracked = TrackedBill(
            legal_entity=legal_entity,
            bill_id=posted.posted.bill_id,
            number=posted.posted.number,
            total=posted.posted.total,
            expense_ids=tuple(expense_ids),
            time_entry_ids=tuple(time_ids),
        )
        self._bills.append(tracked)
        if tracked.expense_ids:
            await workflow.execute_activity_method(
                PayablesActivities.mark_expenses_on_bill,
                MarkExpensesInput(expense_ids=tracked.expense_ids, bill_number=tracked.number),
                **VENDOR_CALL,
            )
        if tracked.time_entry_ids:
            await workflow.execute_activity_method(
                PayablesActivities.mark_time_on_bill,
                MarkTimeInput(time_entry_ids=tracked.time_entry_ids, bill_number=tracked.number),
                **VENDOR_CALL,
            )
        # What finance was asked to fix for these expenses is settled by the bill (a retry after a fix).
        settled = (
            [f"{legal_entity}:post"]
            + [
                f"{expense_id}:{problem}"
                for expense_id in expense_ids
                for problem in ("cost-account", "legal-entity")
            ]
            + [f"time:{entry_id}:{problem}" for entry_id in time_ids for problem in TIME_PROBLEMS]
        )
        await workflow.execute_local_activity_method(
            PayablesActivities.resolve_exceptions,
            ResolveExceptionsInput(
                dedupe_keys=tuple(self._dedupe_key(input, key) for key in settled),
                note=f"billed on {tracked.number}",
            ),
            **LEDGER_CALL,
        )

    # --- payment --------------------------------------------------------------------------------------------

    async def _await_payment(self, input: PayablesInput) -> PayablesResult:
        self._set_stage("awaiting_payment")
        while True:
            self._nudged = False
            if self._more_approved:
                await self._bill(input)
                self._set_stage("awaiting_payment")
            await self._check_bills(input)
            if all(bill.settled for bill in self._bills):
                outcome = "reimbursed" if all(bill.paid for bill in self._bills) else "voided"
                self._set_stage(outcome)
                return PayablesResult(
                    outcome=outcome, bills=tuple(self._bills), problems=tuple(self._problems)
                )
            if self._checks >= CHECKS_BEFORE_CONTINUE:
                workflow.continue_as_new(input.model_copy(update={"bills": tuple(self._bills)}))
            # The interval passing is the ordinary way to the next check, not a failure.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._nudged, timeout=timedelta(seconds=input.poll_interval_seconds)
                )

    async def _check_bills(self, input: PayablesInput) -> None:
        self._checks += 1
        for index, bill in enumerate(self._bills):
            if bill.settled:
                continue
            read = await workflow.execute_activity_method(
                PayablesActivities.get_bill_status,
                GetBillStatusInput(legal_entity=bill.legal_entity, bill_id=bill.bill_id),
                **VENDOR_CALL,
            )
            state = read.status.state
            if state == InvoiceState.PAID:
                if bill.expense_ids:
                    await workflow.execute_activity_method(
                        PayablesActivities.mark_expenses_reimbursed,
                        MarkExpensesInput(expense_ids=bill.expense_ids, bill_number=bill.number),
                        **VENDOR_CALL,
                    )
                if bill.time_entry_ids:
                    await workflow.execute_activity_method(
                        PayablesActivities.mark_time_paid,
                        MarkTimeInput(time_entry_ids=bill.time_entry_ids, bill_number=bill.number),
                        **VENDOR_CALL,
                    )
                self._bills[index] = bill.model_copy(update={"paid": True})
            elif state == InvoiceState.VOIDED:
                await self._raise(
                    input,
                    ExceptionOwner.FINANCE,
                    f"bill {bill.number} was voided in the ERP; its expenses and time stay marked as on it "
                    "and are not paid until finance bills them again",
                    key=f"{bill.bill_id}:voided",
                    record={
                        "bill_id": bill.bill_id,
                        "number": bill.number,
                        "expense_ids": list(bill.expense_ids),
                        "time_entry_ids": list(bill.time_entry_ids),
                    },
                )
                # Nobody will pay a void bill: it stops being followed.
                self._bills[index] = bill.model_copy(update={"voided": True})

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def _set_stage(self, stage: str, owner: ExceptionOwner | None = None) -> None:
        self._stage = stage
        updates = [sa.SYNC_STAGE.value_set(stage)]
        if owner is not None:
            updates.append(sa.EXCEPTION_OWNER.value_set(owner.value))
        workflow.upsert_search_attributes(updates)

    def _dedupe_key(self, input: PayablesInput, key: str) -> str:
        return f"{PROCESS}:{input.psa}:{input.supplier_key}:{input.period}:{key}"

    async def _raise(
        self, input: PayablesInput, owner: ExceptionOwner, reason: str, *, key: str, record: dict[str, object]
    ) -> None:
        self._problems.append(reason)
        workflow.upsert_search_attributes([sa.EXCEPTION_OWNER.value_set(owner.value)])
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=self._dedupe_key(input, key),
                process=PROCESS,
                owner=owner,
                reason=reason,
                record={**record, "supplier_key": input.supplier_key, "period": input.period},
            ),
            **LEDGER_CALL,
        )
