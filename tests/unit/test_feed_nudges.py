"""Grouping a poll of the PSA change feed into the billing nudges the poller passes on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from canonical import ExpensePosted, InvoiceIssued, MilestoneCompleted, Money, TimeApproved
from domain.feed_nudges import BillingNudge, group_billing_nudges

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def time(event_id: str, entry_id: str, project_id: str, day: date) -> TimeApproved:
    return TimeApproved(
        source="kantata",
        occurred_at=AT,
        event_id=event_id,
        time_entry_id=entry_id,
        project_id=project_id,
        entry_date=day,
    )


def expense(event_id: str, expense_id: str, project_id: str, day: date) -> ExpensePosted:
    return ExpensePosted(
        source="kantata",
        occurred_at=AT,
        event_id=event_id,
        expense_id=expense_id,
        project_id=project_id,
        entry_date=day,
    )


def milestone(event_id: str, milestone_id: str, project_id: str, day: date) -> MilestoneCompleted:
    return MilestoneCompleted(
        source="kantata",
        occurred_at=AT,
        event_id=event_id,
        milestone_id=milestone_id,
        project_id=project_id,
        completed_on=day,
    )


def test_events_group_by_project_and_the_period_of_their_date_with_the_items_they_name() -> None:
    events = [
        time("e1", "t1", "P2", date(2026, 11, 3)),
        expense("e2", "x1", "P1", date(2026, 11, 30)),
        time("e3", "t2", "P1", date(2026, 12, 1)),
        # Delivered twice by the feed: named once.
        time("e1", "t1", "P2", date(2026, 11, 3)),
        milestone("e4", "m1", "P1", date(2026, 11, 15)),
        time("e5", "t3", "P1", date(2026, 11, 2)),
        # Completed in December: billed with December, whatever period its work was in.
        milestone("e6", "m2", "P2", date(2026, 12, 2)),
    ]

    assert group_billing_nudges(events) == [
        BillingNudge(
            project_id="P1",
            period="2026-11",
            event_ids=("e2", "e4", "e5"),
            item_ids=("expense:x1", "milestone:m1", "time:t3"),
        ),
        BillingNudge(project_id="P1", period="2026-12", event_ids=("e3",), item_ids=("time:t2",)),
        BillingNudge(project_id="P2", period="2026-11", event_ids=("e1",), item_ids=("time:t1",)),
        BillingNudge(project_id="P2", period="2026-12", event_ids=("e6",), item_ids=("milestone:m2",)),
    ]


def test_two_events_about_one_entry_name_the_entry_once() -> None:
    # Approved, reopened and approved again: two events, one time entry.
    events = [time("e1", "t1", "P1", date(2026, 11, 3)), time("e2", "t1", "P1", date(2026, 11, 3))]

    [nudge] = group_billing_nudges(events)

    assert nudge.event_ids == ("e1", "e2") and nudge.item_ids == ("time:t1",)


def test_events_that_bill_nothing_make_no_nudge() -> None:
    issued = InvoiceIssued(
        source="xero",
        occurred_at=AT,
        erp="xero",
        invoice_id="inv-1",
        invoice_number="INV-0001",
        project_id="P1",
        total=Money(amount=Decimal("100.00"), currency="GBP"),
    )

    assert group_billing_nudges([issued]) == []
    assert group_billing_nudges([issued, time("e1", "t1", "P1", date(2026, 11, 3))]) == [
        BillingNudge(project_id="P1", period="2026-11", event_ids=("e1",), item_ids=("time:t1",))
    ]


def test_a_time_entry_and_an_expense_numbered_alike_are_two_items() -> None:
    events = [time("e1", "501", "P1", date(2026, 11, 3)), expense("e2", "501", "P1", date(2026, 11, 4))]

    [nudge] = group_billing_nudges(events)

    assert nudge.item_ids == ("time:501", "expense:501")
