"""One project's month-end: its journals, findings, margin and the position the next period starts from."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from domain.month_end.adjustment import adjustment
from domain.month_end.inputs import MonthEndProject, Position
from domain.month_end.journal import Finding, Journal, JournalKind
from domain.month_end.labour_cost import labour_cost, labour_cost_journal
from domain.month_end.margin import MarginSummary, margin_summary
from domain.month_end.recognition import recognised_to_date, recognition_journal, revenue_position
from domain.month_end.wip import unbilled_wip, wip_journals


class ProjectClose(BaseModel):
    """The proposal for one project and period. `journals` holds every kind its terms call for, empty ones
    too (an empty proposal is what turns an earlier posting into its reversal on a re-run)."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    project_id: str
    period: str
    journals: tuple[Journal, ...]
    findings: tuple[Finding, ...]
    margin: MarginSummary
    # Where this close leaves the project: the next period's `earlier`.
    position: Position

    def journal(self, kind: JournalKind) -> Journal | None:
        return next((journal for journal in self.journals if journal.kind == kind), None)

    @property
    def to_post(self) -> tuple[Journal, ...]:
        return tuple(journal for journal in self.journals if not journal.is_empty)


def close_project(project: MonthEndProject) -> ProjectClose:
    earlier = project.earlier
    invoiced = project.invoiced()
    cost = labour_cost(project)
    cost_journal = labour_cost_journal(project, cost)
    recognised = recognised_to_date(project)
    wip = unbilled_wip(project)
    journals: list[Journal] = []
    findings: list[Finding] = []
    if recognised is None:
        accrual, reversal = wip_journals(project, wip)
        journals += [accrual, reversal]
        revenue = invoiced + wip.total
        position = earlier.revenue_position
    else:
        journals.append(recognition_journal(project, recognised))
        findings += recognised.findings
        revenue = recognised.amount
        position = revenue_position(recognised.amount, invoiced)
    journals.append(cost_journal)
    findings += wip.findings
    findings += cost.findings
    return ProjectClose(
        legal_entity=project.legal_entity,
        project_id=project.project_id,
        period=project.period,
        journals=tuple(journals),
        findings=tuple(findings),
        margin=margin_summary(
            project_id=project.project_id,
            period=project.period,
            revenue=revenue,
            revenue_before=earlier.recognised,
            labour_cost=cost.to_date,
            labour_cost_before=earlier.labour_cost,
            billed=invoiced,
            wip=wip.total,
            uncosted_minutes=cost.uncosted_minutes,
        ),
        position=Position(
            currency=project.currency, recognised=revenue, revenue_position=position, labour_cost=cost.to_date
        ),
    )


def rerun_adjustments(close: ProjectClose, posted: Sequence[Journal]) -> tuple[Journal, ...]:
    """What re-running the period posts: per kind, the proposal less the journals earlier runs posted for
    it; kinds whose difference is empty post nothing."""
    adjustments = []
    for journal in close.journals:
        same_kind = [earlier for earlier in posted if earlier.kind == journal.kind]
        difference = adjustment(journal, same_kind)
        if not difference.is_empty:
            adjustments.append(difference)
    return tuple(adjustments)
