"""Billing nudges from the PSA change feed: which billing runs (project, period) a poll's events concern,
with the event ids and the time entries, expenses and milestones they name (as `item_key`s).

Only these few ids travel through the poller's history; the events themselves stay in the activity, so a
poll of a thousand events does not put a thousand whole events into the workflow's history.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from canonical import ExpensePosted, MilestoneCompleted, Period, TimeApproved
from canonical.events import item_key


class BillingNudge(BaseModel):
    """What one billing run (project, period) hears from a poll of the feed."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    period: str
    event_ids: tuple[str, ...]
    # `item_key`s: a PSA numbers its time entries, expenses and milestones apart.
    item_ids: tuple[str, ...]


def group_billing_nudges(events: Iterable[object]) -> list[BillingNudge]:
    """One nudge per (project, period), in that order; each id once, in the order the feed gave it.

    Events that bill nothing are left out.
    """
    event_ids: dict[tuple[str, str], dict[str, None]] = {}
    item_ids: dict[tuple[str, str], dict[str, None]] = {}
    for event in events:
        if isinstance(event, TimeApproved):
            key = (event.project_id, Period.of(event.entry_date).value)
            item = item_key("time", event.time_entry_id)
        elif isinstance(event, ExpensePosted):
            key = (event.project_id, Period.of(event.entry_date).value)
            item = item_key("expense", event.expense_id)
        elif isinstance(event, MilestoneCompleted):
            # A fixed fee bills the milestone in the period it was completed in.
            key = (event.project_id, Period.of(event.completed_on).value)
            item = item_key("milestone", event.milestone_id)
        else:
            continue
        # Dicts as ordered sets: a repeated event (or two events naming one entry) is named once.
        event_ids.setdefault(key, {})[event.event_id] = None
        item_ids.setdefault(key, {})[item] = None
    return [
        BillingNudge(
            project_id=project_id,
            period=period,
            event_ids=tuple(event_ids[(project_id, period)]),
            item_ids=tuple(item_ids[(project_id, period)]),
        )
        for project_id, period in sorted(event_ids)
    ]
