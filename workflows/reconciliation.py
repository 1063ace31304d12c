"""Reconciliation: per legal entity and billing period, the PSA's approved billable work against the ERP's
invoices and the ledger's postings, by count and amount (rules in `domain.reconcile`).

After an entity's customer invoices, its supplier bills of the period are held the same way: the ledger's
record of each bill posted against the ERP's bills with ps-sync's reference and the PSA's payable items marked
on them (rules in `domain.reconcile_payables`).

Every difference becomes an exception with the lines that differ, owned by the team that can fix it; a
difference found by an earlier run and gone now is resolved. Run by a Temporal Schedule for the month that
has just closed, and on demand (`pssync reconcile --period 2026-10`), which prints the table of rows.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.exceptions import ExceptionActivities, RecordFindingsInput
    from activities.ledger import RaiseExceptionInput
    from activities.payables_reconciliation import (
        GatherPayablesEvidenceInput,
        PayablesReconciliationActivities,
    )
    from activities.reconciliation import (
        GatherEvidenceInput,
        ReconciliationActivities,
        ReconciliationScopeInput,
    )
    from canonical import Period
    from domain.reconcile import (
        PROCESS,
        Difference,
        ReconciliationRow,
        exception_record,
        reconcile_project,
    )
    from domain.reconcile_payables import (
        PayablesRow,
        payables_exception_record,
        reconcile_payables,
    )
    from runs import search_attributes as sa
    from runs.reconciliation import ReconciliationInput
    from workflows.options import LEDGER_CALL, PAGED_CALL


class ReconciliationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    period: str
    rows: tuple[ReconciliationRow, ...]
    differences: tuple[Difference, ...]
    resolved_exceptions: tuple[int, ...]
    # Each entity's supplier bills of the period, per currency (their differences are among `differences`).
    payables_rows: tuple[PayablesRow, ...] = ()

    @property
    def in_agreement(self) -> bool:
        return not self.differences


@workflow.defn
class Reconciliation:
    def __init__(self) -> None:
        self._stage = "starting"

    @workflow.query
    def stage(self) -> str:
        return self._stage

    @workflow.run
    async def run(self, input: ReconciliationInput) -> ReconciliationResult:
        today = workflow.now().date()
        period = (
            Period(value=input.period)
            if input.period
            else Period.of(today.replace(day=1) - timedelta(days=1))
        )
        workflow.upsert_search_attributes([sa.BILLING_PERIOD.value_set(period.value)])
        unbilled_due = today >= period.last_day + timedelta(days=input.unbilled_grace_days)
        rows: list[ReconciliationRow] = []
        payables_rows: list[PayablesRow] = []
        differences: list[Difference] = []
        resolved: list[int] = []
        for entity in input.entities:
            self._stage = f"reconciling {entity.code}"
            workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set(self._stage)])
            scope = await workflow.execute_local_activity_method(
                ReconciliationActivities.reconciliation_scope,
                ReconciliationScopeInput(legal_entity=entity.code, period=period.value, psa=input.psa),
                **LEDGER_CALL,
            )
            found: list[Difference] = []
            for start in range(0, len(scope.project_ids), input.projects_per_batch):
                gathered = await workflow.execute_activity_method(
                    ReconciliationActivities.gather_evidence,
                    GatherEvidenceInput(
                        legal_entity=entity.code,
                        period=period.value,
                        psa=input.psa,
                        project_ids=scope.project_ids[start : start + input.projects_per_batch],
                    ),
                    **PAGED_CALL,
                )
                for evidence in gathered.evidence:
                    project = reconcile_project(evidence, unbilled_due=unbilled_due)
                    rows.append(project.row)
                    found.extend(project.differences)
            payables: list[RaiseExceptionInput] = []
            if workflow.patched("reconcile-payables"):
                # Recorded with the invoices' findings: one scope per entity and period, so neither set of
                # findings resolves the other's exceptions.
                payables = await self._reconcile_payables(
                    input, entity.code, period.value, unbilled_due, payables_rows, found
                )
            resolved += await self._record(entity.code, period.value, found, payables)
            differences.extend(found)
        self._stage = "done"
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set("done")])
        return ReconciliationResult(
            period=period.value,
            rows=tuple(rows),
            differences=tuple(differences),
            resolved_exceptions=tuple(resolved),
            payables_rows=tuple(payables_rows),
        )

    async def _reconcile_payables(
        self,
        input: ReconciliationInput,
        entity: str,
        period: str,
        unbilled_due: bool,
        rows: list[PayablesRow],
        found: list[Difference],
    ) -> list[RaiseExceptionInput]:
        """The entity's supplier bills: rows added to `rows`, differences to `found`; returns what to raise
        for them (their records name the bill and its supplier)."""
        self._stage = f"reconciling payables {entity}"
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set(self._stage)])
        gathered = await workflow.execute_activity_method(
            PayablesReconciliationActivities.gather_payables_evidence,
            GatherPayablesEvidenceInput(legal_entity=entity, period=period, psa=input.psa),
            **PAGED_CALL,
        )
        evidence = gathered.evidence
        if evidence is None:
            return []
        reconciled = reconcile_payables(evidence, unbilled_due=unbilled_due)
        rows.extend(reconciled.rows)
        found.extend(reconciled.differences)
        return [
            RaiseExceptionInput(
                dedupe_key=difference.dedupe_key(entity, period),
                process=PROCESS,
                owner=difference.owner,
                reason=difference.reason,
                record=payables_exception_record(difference, evidence),
            )
            for difference in reconciled.differences
        ]

    async def _record(
        self,
        entity: str,
        period: str,
        found: list[Difference],
        payables: list[RaiseExceptionInput],
    ) -> list[int]:
        """Raise what differs now; resolve what differed before and no longer does. `payables`: the payables
        findings, ready to raise (they are among `found` too)."""
        raised = {item.dedupe_key for item in payables}
        items = [
            RaiseExceptionInput(
                dedupe_key=difference.dedupe_key(entity, period),
                process=PROCESS,
                owner=difference.owner,
                reason=difference.reason,
                record=exception_record(difference, legal_entity=entity, period=period),
            )
            for difference in found
            if difference.dedupe_key(entity, period) not in raised
        ] + payables
        recorded = await workflow.execute_local_activity_method(
            ExceptionActivities.record_findings,
            RecordFindingsInput(
                process=PROCESS,
                key_prefix=f"{PROCESS}:{entity}:{period}:",
                findings=items,
                note=f"reconciled: {entity} {period} agrees here now",
            ),
            **LEDGER_CALL,
        )
        return recorded.resolved
