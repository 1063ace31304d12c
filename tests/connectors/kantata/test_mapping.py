"""Kantata records to canonical models: exact units, and which subscribed events carry which canonical one."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from canonical import ExpensePosted, MilestoneCompleted, Money, ProjectStatus, TimeApproved
from connectors.kantata import mapping
from connectors.kantata.client import encode_json


def _event(
    event_type: str, current: dict[str, object], changes: dict[str, object] | None = None
) -> dict[str, object]:
    return {
        "id": "800000042",
        "event_type": event_type,
        "subject_type": "TimeEntry",
        "subject_id": 210000001,
        "created_at": "2024-05-14T10:00:05+00:00",
        "subject_changed_at": "2024-05-14T10:00:04+00:00",
        "current_payload": current,
        "payload_changes": changes or {},
    }


def test_minutes_become_exact_decimal_hours() -> None:
    assert mapping.hours(90) == Decimal("1.5")
    assert mapping.hours(45) == Decimal("0.75")
    assert mapping.hours(20) == Decimal(1) / Decimal(3)


def test_subunits_use_the_currency_base_unit() -> None:
    assert mapping.money(12345, "GBP") == Money.of("123.45", "GBP")
    assert mapping.money(12345, "JPY") == Money.of("12345", "JPY")
    assert mapping.money(12345, "BHD", base_unit=1000) == Money.of("12.345", "BHD")


def test_subunits_refuse_amounts_finer_than_the_currency_allows() -> None:
    assert mapping.subunits(Money.of("10.50", "GBP")) == 1050
    with pytest.raises(ValueError, match="more decimal places"):
        mapping.subunits(Money.of("10.505", "GBP"))


def test_decimals_are_sent_as_json_numbers_written_from_their_own_digits() -> None:
    body = encode_json({"price": Decimal("12345.67"), "tiny": Decimal("0.10"), "list": [Decimal("1E+2"), 3]})

    assert body == b'{"price":12345.67,"tiny":0.10,"list":[100,3]}'
    assert json.loads(body, parse_float=Decimal)["price"] == Decimal("12345.67")


def test_floats_are_refused_on_the_way_to_kantata() -> None:
    with pytest.raises(TypeError):
        encode_json({"price": 12.5})


def test_an_approval_change_on_a_time_entry_is_a_time_approved_event() -> None:
    record = _event(
        "time_entry:updated",
        {"approved": True, "workspace_id": "30100001", "date_performed": "2024-05-02"},
        {"approved": [False, True]},
    )

    event = mapping.to_psa_event(record)

    assert isinstance(event, TimeApproved)
    assert event.event_id == "800000042"
    assert event.time_entry_id == "210000001"
    assert event.project_id == "30100001"
    assert event.entry_date == date(2024, 5, 2)
    assert event.occurred_at == datetime(2024, 5, 14, 10, 0, 5, tzinfo=UTC)


def test_other_time_entry_updates_carry_no_canonical_event() -> None:
    invoiced = _event(
        "time_entry:updated",
        {"approved": True, "workspace_id": "1", "date_performed": "2024-05-02"},
        {"is_invoiced": [False, True]},
    )
    unapproved_create = _event(
        "time_entry:created", {"approved": False, "workspace_id": "1", "date_performed": "2024-05-02"}
    )

    assert mapping.to_psa_event(invoiced) is None
    assert mapping.to_psa_event(unapproved_create) is None


def test_time_created_in_a_project_without_approvals_counts_as_approved() -> None:
    record = _event(
        "time_entry:created", {"approved": True, "workspace_id": "1", "date_performed": "2024-05-02"}
    )

    assert isinstance(mapping.to_psa_event(record), TimeApproved)


def test_an_event_without_payloads_cannot_be_mapped() -> None:
    record = _event("time_entry:updated", {})
    del record["current_payload"]

    assert mapping.to_psa_event(record) is None


def test_a_logged_expense_is_an_expense_posted_event() -> None:
    record = _event("expense:created", {"approved": True, "workspace_id": "9", "date": "2024-05-03"})

    event = mapping.to_psa_event(record)

    assert (
        isinstance(event, ExpensePosted)
        and event.expense_id == "210000001"
        and event.entry_date == date(2024, 5, 3)
    )


def test_a_milestone_reaching_completed_is_a_milestone_completed_event() -> None:
    record = _event(
        "story:updated",
        {"story_type": "milestone", "state": "completed", "workspace_id": "7"},
        {"state": ["started", "completed"]},
    )
    task = _event(
        "story:updated",
        {"story_type": "task", "state": "completed", "workspace_id": "7"},
        {"state": ["started", "completed"]},
    )

    event = mapping.to_psa_event(record)

    assert isinstance(event, MilestoneCompleted)
    assert event.completed_on == date(2024, 5, 14)
    assert mapping.to_psa_event(task) is None


def test_a_role_without_its_own_rate_gets_the_version_default_rate() -> None:
    card = {"id": "3101", "title": "Default (GBP)", "currency": "GBP"}
    versions = [("2024-06-01", 10000, {"1": 16500}), ("2024-01-01", 10000, {"1": 15000, "2": 22000})]

    rate_card = mapping.to_rate_card(card, versions, {"1": "Consultant", "2": "Senior", "3": "Analyst"})

    assert [v.effective_from for v in rate_card.versions] == [date(2024, 1, 1), date(2024, 6, 1)]
    assert rate_card.rate_for("Consultant", date(2024, 5, 1)) == Money.of("150", "GBP")
    assert rate_card.rate_for("Consultant", date(2024, 6, 1)) == Money.of("165", "GBP")
    assert rate_card.rate_for("Senior", date(2024, 7, 1)) == Money.of("100", "GBP")
    assert rate_card.rate_for("Analyst", date(2024, 2, 1)) == Money.of("100", "GBP")
    assert rate_card.rate_for("Consultant", date(2023, 12, 31)) is None


def test_project_status_reads_archived_and_the_on_hold_status() -> None:
    assert (
        mapping.project_status({"archived": True, "status": {"message": "In Progress"}})
        == ProjectStatus.ARCHIVED
    )
    assert (
        mapping.project_status({"archived": False, "status": {"message": "On Hold"}}) == ProjectStatus.ON_HOLD
    )
    assert (
        mapping.project_status({"archived": False, "status": {"message": "In Progress"}})
        == ProjectStatus.ACTIVE
    )


def test_a_milestone_story_carries_its_budget_due_date_and_completion() -> None:
    story = {
        "id": "41200007",
        "workspace_id": "30100001",
        "title": "Go-live",
        "story_type": "milestone",
        "state": "completed",
        "budget_estimate_in_cents": 1250000,
        "due_date": "2024-06-30",
        "updated_at": "2024-06-28T16:00:00+00:00",
    }

    milestone = mapping.to_milestone(story, "GBP")

    assert milestone.amount == Money.of("12500.00", "GBP")
    assert milestone.due_date == date(2024, 6, 30)
    assert milestone.completed_on == date(2024, 6, 28)
    assert mapping.to_milestone({**story, "state": "started"}, "GBP").completed_on is None


def test_a_user_becomes_a_resource_with_the_role_kantata_gives_them() -> None:
    user = {"id": "6100002", "full_name": "Ada Lovelace", "email_address": "ada@northwind.example"}

    resource = mapping.to_resource(user, "Consultant")

    assert (resource.id, resource.name, resource.role, resource.email) == (
        "6100002",
        "Ada Lovelace",
        "Consultant",
        "ada@northwind.example",
    )
