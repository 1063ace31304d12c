"""Billing decisions that are not rating: what this run bills, whether finance must approve it, how late
work is handled, and how rejected lines are reported. Pure, so workflow code can call it and replay it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from canonical import BillingModel, Contract, ExceptionOwner, LegalEntity, Money, Period
from domain.billing_validation import RejectedItem
from domain.rating import Allowance, RejectionCount

# Ids listed in one grouped exception record; the count is always complete.
EXCEPTION_IDS_LISTED = 200
_PLURALS = {"time_entry": "time entries"}


class PriorPosting(BaseModel):
    """An invoice the ledger says was posted for the project (any period)."""

    model_config = ConfigDict(frozen=True)

    period: str
    number: str | None
    amount: Money
    idempotency_key: str
    # False while its entries are not yet marked billed in the PSA.
    billed: bool = True


class BillingHistory(BaseModel):
    model_config = ConfigDict(frozen=True)

    postings: tuple[PriorPosting, ...] = ()

    def for_period(self, period: str) -> tuple[PriorPosting, ...]:
        return tuple(p for p in self.postings if p.period == period)

    def unfinished(self, period: str) -> tuple[PriorPosting, ...]:
        """Invoices of the period the ERP holds whose entries were never marked billed (a run stopped)."""
        return tuple(p for p in self.for_period(period) if not p.billed)

    def billed_to_date(self, currency: str) -> Money:
        total = Money.zero(currency)
        for posting in self.postings:
            if posting.amount.currency == currency:
                total = total + posting.amount
        return total

    def periods_before(self, period: str) -> tuple[str, ...]:
        return tuple(sorted({p.period for p in self.postings if p.period < period}))


LateDecision = Literal["regular", "adjustment", "defer"]


def late_entry_decision(*, contract: Contract, history: BillingHistory, period: str) -> LateDecision:
    """A period already invoiced gets an adjustment invoice, or its late work waits for the next run."""
    if not history.for_period(period):
        return "regular"
    return "adjustment" if contract.late_entries == "adjustment_invoice" else "defer"


def late_periods(*, contract: Contract, history: BillingHistory, period: str) -> tuple[str, ...]:
    """Earlier, already invoiced periods whose late work this run also bills (the `next_run` policy)."""
    if contract.late_entries != "next_run":
        return ()
    return history.periods_before(period)


def deferral_period(*, period: str, today: date) -> str:
    """The next run for work that arrived late: the current month's, and never one already closed."""
    following = next_period(period)
    current = Period.of(today).value
    return max(following, current)


def next_period(period: str) -> str:
    last = Period(value=period).last_day
    return Period.of(date(last.year + (last.month == 12), last.month % 12 + 1, 1)).value


def allowance_for(contract: Contract, history: BillingHistory) -> Allowance | None:
    """A retainer's fee covers time up to its amount; a not-to-exceed cap limits what is left to bill."""
    if contract.billing_model == BillingModel.RETAINER and contract.retainer_amount is not None:
        return Allowance(kind="retainer", limit=contract.retainer_amount)
    if contract.not_to_exceed is not None:
        remaining = contract.not_to_exceed - history.billed_to_date(contract.not_to_exceed.currency)
        if remaining.amount < 0:
            remaining = Money.zero(remaining.currency)
        return Allowance(kind="cap", limit=remaining)
    return None


def retainer_fee(contract: Contract, history: BillingHistory, period: str) -> Money | None:
    """The month's retainer fee, billed once per period: an adjustment run never bills it again."""
    if contract.billing_model != BillingModel.RETAINER or contract.retainer_amount is None:
        return None
    return None if history.for_period(period) else contract.retainer_amount


def approval_reason(*, total: Money, entity: LegalEntity, history: BillingHistory) -> str | None:
    """Why finance must approve before posting, or None: the first invoice of a project, or a large one."""
    if not history.postings:
        return "first invoice of the project"
    if total > entity.approval_threshold:
        return f"total {total} is above the {entity.code} approval threshold {entity.approval_threshold}"
    return None


def invoice_reference(*, project_id: str, period: str, key: str, adjustment: bool) -> str:
    """Our business key in the ERP; an adjustment invoice says so, so finance can tell them apart."""
    marker = "ADJ-" if adjustment else ""
    return f"PS-{project_id}-{period}-{marker}{key[4:12]}"


@dataclass(frozen=True)
class ExceptionGroup:
    """Rejected lines sharing an owner and a broken rule: one exception for a person, not one per line."""

    owner: ExceptionOwner
    rule: str
    kind: str
    reason: str
    item_ids: tuple[str, ...]
    count: int


def group_rejections(
    rejected: Iterable[RejectedItem], counts: Iterable[RejectionCount] = ()
) -> list[ExceptionGroup]:
    """One group per owner, rule and kind; `counts` (when the items kept are a sample) gives the totals."""
    groups: dict[tuple[ExceptionOwner, str, str], list[RejectedItem]] = {}
    for item in rejected:
        groups.setdefault((item.owner, item.rule, item.kind), []).append(item)
    totals = {(c.owner, c.rule, c.kind): c.count for c in counts}
    result = []
    for (owner, rule, kind), items in sorted(groups.items(), key=lambda pair: pair[0]):
        count = max(totals.get((owner, rule, kind), 0), len(items))
        reasons = list(dict.fromkeys(item.reason for item in items))
        result.append(
            ExceptionGroup(
                owner=owner,
                rule=rule,
                kind=kind,
                reason=_summary(kind, count, reasons),
                item_ids=tuple(item.item_id for item in items[:EXCEPTION_IDS_LISTED]),
                count=count,
            )
        )
    return result


def _summary(kind: str, count: int, reasons: Sequence[str]) -> str:
    noun = _PLURALS.get(kind, kind.replace("_", " ") + "s") if count != 1 else kind.replace("_", " ")
    head = f"{count} {noun} cannot be billed: {reasons[0]}"
    if len(reasons) > 1:
        head += f" (and {len(reasons) - 1} similar)"
    return head
