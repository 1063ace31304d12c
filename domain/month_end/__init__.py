"""Month-end close rules: revenue recognition, unbilled WIP and labour cost, as journals by account role.

Pure and deterministic (no I/O, clock or randomness), so the month-end workflow calls them and replays them.
`close_project` takes one project's `MonthEndProject` for a legal entity and period and proposes its journals,
findings and margin; `rerun_adjustments` turns a re-run of a posted period into the difference only.

How revenue is recognised, by the terms finance sets on the project (`MonthEndProject.terms`):

- time and materials (`TimeAndMaterials`): revenue is what is invoiced. Approved, billable, unbilled time
  dated up to the period's end is accrued as WIP at its bill rates, valued as billing would invoice it (one
  line per role and rate, hours rounded to the places the entity's ERP keeps, the line by its rounding), on
  the period's last day, and reversed on the next period's first day.
- fixed fee by percentage of completion (`PercentageOfCompletion`: fee, budget hours): recognised to date is
  fee x min(1, approved hours to date / budget hours), billable or not, rounded half-up to the minor unit.
- fixed fee by milestone acceptance (`MilestoneAcceptance`: fee): recognised to date is the sum of the
  milestones accepted on or before the period's last day, never more than the fee.
- retainer, straight line (`StraightLineRetainer`: amount per period, start, optional end): each calendar
  month of the term earns the amount; a month the term starts or ends part-way through earns the amount x
  the term's days in that month / the month's days. Summed exactly to date and rounded half-up once.

Fixed fees and retainers: recognised to date less invoiced to date (the contract's fee invoices, net of
credit notes) is accrued revenue when positive and deferred revenue when negative; each close's journal moves
revenue against that balance from where the last close left it. Invoices book to revenue as they post.

Labour cost, every model: each approved entry's minutes x its person's hourly cost rate in force on the day
/ 60, summed exactly and rounded half-up once, to labour cost (with the project dimension) against cost
clearing. Time with no cost rate is a finding, not a zero.

Every figure is cumulative to date less what earlier closes booked (`Position`), so periods never drift and a
late entry lands in the next close; re-running a period posts only its difference from what was posted. A
re-opened period is re-run together with every later closed period, in order: each close starts from the
position the one before it left. Amounts are in the project's currency; translating a contract currency into
the entity's functional currency is not done here.
"""

from domain.month_end.adjustment import adjustment
from domain.month_end.close import ProjectClose, close_project, rerun_adjustments
from domain.month_end.inputs import (
    AcceptedMilestone,
    CostRate,
    CostRateHistory,
    Invoiced,
    MilestoneAcceptance,
    MonthEndProject,
    PercentageOfCompletion,
    Position,
    RecognitionTerms,
    StraightLineRetainer,
    TimeAndMaterials,
    WorkedTime,
)
from domain.month_end.journal import AccountRole, Finding, Journal, JournalKind, JournalLine
from domain.month_end.margin import MarginSummary
from domain.month_end.sources import SourceRefs

__all__ = [
    "AcceptedMilestone",
    "AccountRole",
    "CostRate",
    "CostRateHistory",
    "Finding",
    "Invoiced",
    "Journal",
    "JournalKind",
    "JournalLine",
    "MarginSummary",
    "MilestoneAcceptance",
    "MonthEndProject",
    "PercentageOfCompletion",
    "Position",
    "ProjectClose",
    "RecognitionTerms",
    "SourceRefs",
    "StraightLineRetainer",
    "TimeAndMaterials",
    "WorkedTime",
    "adjustment",
    "close_project",
    "rerun_adjustments",
]
