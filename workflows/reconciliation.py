"""Reconciliation: per legal entity and billing period, the PSA's approved billable work against the ERP's
invoices and the ledger's postings, by count and amount (rules in `domain.reconcile`).

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
    from runs import search_attributes as sa
    from runs.reconciliation import ReconciliationInput
    from workflows.options import LEDGER_CALL, PAGED_CALL


class ReconciliationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    period: str
    rows: tuple[ReconciliationRow, ...]
    differences: tuple[Difference, ...]
    resolved_exceptions: tuple[int, ...]

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
            resolved += await self._record(entity.code, period.value, found)
            differences.extend(found)
        self._stage = "done"
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set("done")])
        return ReconciliationResult(
            period=period.value,
            rows=tuple(rows),
            differences=tuple(differences),
            resolved_exceptions=tuple(resolved),
        )

    async def _record(self, entity: str, period: str, found: list[Difference]) -> list[int]:
        """Raise what differs now; resolve what differed before and no longer does."""
        items = [
            RaiseExceptionInput(
                dedupe_key=difference.dedupe_key(entity, period),
                process=PROCESS,
                owner=difference.owner,
                reason=difference.reason,
                record=exception_record(difference, legal_entity=entity, period=period),
            )
            for difference in found
        ]
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
