"""MonthEndClose: per legal entity and period, revenue recognition, unbilled WIP (accrued at the period's end,
reversed on the next period's first day) and labour cost, posted to the entity's ERP as journals by kind
(rules in `domain.month_end`, recognition terms per contract in `domain.month_end_terms`).

Idempotent by entity, period and kind: a re-run posts only the difference from what earlier runs posted, as
an adjustment journal (`-ADJ1`...), never a second journal. A kind whose roles finance has not mapped, or
that the ERP refuses (a closed period), is a finance exception in the ERP's words and posts nothing, and the
position it would have moved stays where it was, so the next run posts it; the other kinds go on. Each
project's figures to date (revenue, labour cost, billed, WIP, margin) go onto its PSA project. Findings
(time without a cost rate, milestones over the fee...) become exceptions for their owners. Started monthly by
a Temporal Schedule for the month before, per entity, and on demand (`pssync close`).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.exceptions import ExceptionActivities, RecordFindingsInput
    from activities.ledger import RaiseExceptionInput
    from activities.month_end import (
        CloseProjectsInput,
        MonthEndActivities,
        MonthEndScopeInput,
        PositionToKeep,
        ProjectProposal,
        PushFinancialsInput,
        SavePositionsInput,
    )
    from activities.month_end_posting import MonthEndPosting, MonthEndPostingActivities, PostMonthEndInput
    from canonical import ExceptionOwner, Period
    from domain.month_end import Finding, JournalKind, MarginSummary
    from runs import search_attributes as sa
    from runs.month_end_close import PROCESS, MonthEndCloseInput
    from workflows.options import LEDGER_CALL, PAGED_CALL, POSTING_CALL

# Recognition first: it is what finance reads first; the WIP reversal right after its accrual.
KINDS = (JournalKind.RECOGNITION, JournalKind.WIP_ACCRUAL, JournalKind.WIP_REVERSAL, JournalKind.LABOUR_COST)


class MonthEndCloseResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    legal_entity: str
    period: str
    postings: tuple[MonthEndPosting, ...]
    findings: tuple[Finding, ...]
    margins: tuple[MarginSummary, ...]
    raised_exceptions: tuple[int, ...]
    resolved_exceptions: tuple[int, ...]


def _kept(proposal: ProjectProposal, failed: set[tuple[JournalKind, str]]) -> PositionToKeep | None:
    """Where the close leaves the project, less what a journal that did not post would have moved."""
    position, earlier, margin = proposal.position, proposal.earlier, proposal.margin
    if position is None or earlier is None or margin is None:
        return None
    currency = position.currency
    if (JournalKind.RECOGNITION, currency) in failed:
        position = position.model_copy(
            update={"recognised": earlier.recognised, "revenue_position": earlier.revenue_position}
        )
    if (JournalKind.LABOUR_COST, currency) in failed:
        position = position.model_copy(update={"labour_cost": earlier.labour_cost})
    return PositionToKeep(project_id=proposal.project_id, position=position, margin=margin)


@workflow.defn
class MonthEndClose:
    def __init__(self) -> None:
        self._stage = "starting"

    @workflow.query
    def stage(self) -> str:
        return self._stage

    def _at(self, stage: str) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set(stage)])

    @workflow.run
    async def run(self, input: MonthEndCloseInput) -> MonthEndCloseResult:
        today = workflow.now().date()
        last_month = Period.of(today.replace(day=1) - timedelta(days=1))
        period = Period(value=input.period) if input.period else last_month
        entity = input.legal_entity
        workflow.upsert_search_attributes(
            [sa.LEGAL_ENTITY.value_set(entity), sa.BILLING_PERIOD.value_set(period.value)]
        )
        self._at("valuing projects")
        scope = await workflow.execute_local_activity_method(
            MonthEndActivities.month_end_scope,
            MonthEndScopeInput(legal_entity=entity, psa=input.psa),
            **LEDGER_CALL,
        )
        proposals: list[ProjectProposal] = []
        for start in range(0, len(scope.project_ids), input.projects_per_batch):
            closed = await workflow.execute_activity_method(
                MonthEndActivities.close_projects,
                CloseProjectsInput(
                    legal_entity=entity,
                    period=period.value,
                    psa=input.psa,
                    project_ids=scope.project_ids[start : start + input.projects_per_batch],
                ),
                **PAGED_CALL,
            )
            proposals.extend(closed.proposals)
        postings: list[MonthEndPosting] = []
        for kind in KINDS:
            refused = {
                p.currency for p in postings if p.kind == JournalKind.WIP_ACCRUAL and p.outcome != "posted"
            }
            journals = tuple(
                j
                for p in proposals
                for j in p.journals
                if j.kind == kind
                and not j.is_empty
                # A reversal without its accrual would un-book what was never booked: both wait for a re-run.
                and not (kind == JournalKind.WIP_REVERSAL and j.currency in refused)
            )
            if not journals:
                continue
            self._at(f"posting {kind}")
            posted = await workflow.execute_activity_method(
                MonthEndPostingActivities.post_month_end_journal,
                PostMonthEndInput(
                    legal_entity=entity, period=period.value, psa=input.psa, kind=kind, journals=journals
                ),
                **POSTING_CALL,
            )
            postings.extend(posted.postings)
        failed = {(p.kind, p.currency) for p in postings if p.outcome != "posted"}
        kept = [k for k in (_kept(p, failed) for p in proposals) if k is not None]
        self._at("recording positions")
        await workflow.execute_local_activity_method(
            MonthEndActivities.save_positions,
            SavePositionsInput(legal_entity=entity, period=period.value, positions=kept),
            **LEDGER_CALL,
        )
        margins = tuple(p.margin for p in proposals if p.margin is not None)
        if margins:
            self._at("updating project financials")
            await workflow.execute_activity_method(
                MonthEndActivities.push_month_end_financials,
                PushFinancialsInput(margins=list(margins)),
                **PAGED_CALL,
            )
        findings = tuple(f for p in proposals for f in p.findings)
        raised, resolved = await self._record(entity, period.value, findings, postings)
        self._at("done")
        return MonthEndCloseResult(
            legal_entity=entity,
            period=period.value,
            postings=tuple(postings),
            findings=findings,
            margins=margins,
            raised_exceptions=raised,
            resolved_exceptions=resolved,
        )

    async def _record(
        self, entity: str, period: str, findings: tuple[Finding, ...], postings: list[MonthEndPosting]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Raise what is wrong now; resolve what an earlier run of the period raised and is right now."""
        prefix = f"{PROCESS}:{entity}:{period}:"
        items = [
            RaiseExceptionInput(
                dedupe_key=f"{prefix}{finding.rule}:{finding.project_id}",
                process=PROCESS,
                owner=finding.owner,
                reason=finding.reason,
                record={
                    "legal_entity": entity,
                    "period": period,
                    "project_id": finding.project_id,
                    "rule": finding.rule,
                    "sources": finding.sources.text(),
                },
            )
            for finding in findings
        ]
        items += [
            RaiseExceptionInput(
                dedupe_key=f"{prefix}journal:{posting.kind}:{posting.currency}",
                process=PROCESS,
                owner=ExceptionOwner.FINANCE,
                reason=posting.reason or f"{posting.reference} was not posted",
                record={
                    "legal_entity": entity,
                    "period": period,
                    "kind": posting.kind.value,
                    "reference": posting.reference,
                    "outcome": posting.outcome,
                    "projects": list(posting.project_ids),
                },
            )
            for posting in postings
            if posting.outcome != "posted"
        ]
        recorded = await workflow.execute_local_activity_method(
            ExceptionActivities.record_findings,
            RecordFindingsInput(
                process=PROCESS,
                key_prefix=prefix,
                findings=items,
                note=f"month-end: {entity} {period} closes cleanly here now",
            ),
            **LEDGER_CALL,
        )
        return tuple(recorded.raised), tuple(recorded.resolved)
