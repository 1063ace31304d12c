"""Kantata records to canonical models and back. Pure: no I/O, so every rule here is unit-testable.

Units: `time_in_minutes` becomes hours as Decimal(minutes) / 60; money arrives in subunits
(`amount_in_cents`, `rate`, `price_in_cents`) with `currency_base_unit` saying how many make one unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from canonical import (
    BillingModel,
    Expense,
    ExpensePosted,
    Milestone,
    MilestoneCompleted,
    Money,
    Project,
    ProjectStatus,
    PsaEvent,
    RateCard,
    RateCardRate,
    RateCardVersion,
    Resource,
    Task,
    TimeApproved,
    TimeEntry,
)
from canonical.money import minor_units
from connectors.kantata.fields import (
    BILLING_MODEL_FIELD,
    CLIENT_FIELD,
    ERP_INVOICE_MODEL,
    LEGAL_ENTITY_FIELD,
    OPPORTUNITY_MODEL,
    PRACTICE_FIELD,
    SERVICE_NAME,
)

Record = dict[str, Any]
SOURCE = "kantata"
ON_HOLD_MESSAGE = "On Hold"

# Canonical event name -> the Kantata event types polled for it. Projects ps-sync creates require time
# approval, so approvals arrive as `time_entry:updated`; polling `time_entry:created` as well would drag every
# logged entry through the feed. (Time created already approved still maps, if a caller asks for that type.)
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "TimeApproved": ("time_entry:updated",),
    "ExpensePosted": ("expense:created", "expense:updated"),
    "MilestoneCompleted": ("story:updated",),
}


def hours(minutes: int) -> Decimal:
    return Decimal(minutes) / Decimal(60)


def money(subunits: int, currency: str, base_unit: int | None = None) -> Money:
    base = base_unit or 10 ** minor_units(currency)
    return Money(amount=Decimal(subunits) / Decimal(base), currency=currency)


def subunits(amount: Money) -> int:
    """Money as Kantata's integer subunits; refuses amounts finer than the currency's smallest unit."""
    scaled = amount.amount.scaleb(minor_units(amount.currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimal places than {amount.currency} allows")
    return int(scaled)


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"Kantata time without an offset: {value!r}")
    return moment


def external_ref(references: Iterable[Record], model: str) -> str | None:
    """Our reference among a record's external references (service `ps-sync`, the given model)."""
    for reference in references:
        if reference.get("service_name") == SERVICE_NAME and reference.get("service_model") == model:
            return str(reference["service_model_ref"])
    return None


def custom_values(values: Iterable[Record]) -> dict[str, Any]:
    return {str(value.get("custom_field_name")): value.get("value") for value in values}


def practice(fields: Mapping[str, Any]) -> str | None:
    """The project's practice: a blank value (a person cleared it) is no practice."""
    value = fields.get(PRACTICE_FIELD)
    text = " ".join(value.split()) if isinstance(value, str) else ""
    return text or None


def project_status(workspace: Record) -> ProjectStatus:
    if workspace.get("archived"):
        return ProjectStatus.ARCHIVED
    status = workspace.get("status") or {}
    if status.get("message") == ON_HOLD_MESSAGE:
        return ProjectStatus.ON_HOLD
    return ProjectStatus.ACTIVE


def to_task(story: Record) -> Task:
    return Task(
        id=str(story["id"]),
        project_id=str(story["workspace_id"]),
        name=story["title"],
        billable=bool(story.get("billable", True)),
    )


def to_milestone(story: Record, currency: str) -> Milestone:
    """A milestone story; its budget is the milestone's amount, completion is read from its state."""
    budget = story.get("budget_estimate_in_cents")
    completed = story.get("state") == "completed"
    return Milestone(
        id=str(story["id"]),
        project_id=str(story["workspace_id"]),
        name=story["title"],
        amount=None if budget is None else money(int(budget), currency),
        due_date=date.fromisoformat(story["due_date"]) if story.get("due_date") else None,
        completed_on=parse_time(story["updated_at"]).date()
        if completed and story.get("updated_at")
        else None,
    )


def to_resource(user: Record, role_name: str | None) -> Resource:
    return Resource(
        id=str(user["id"]), name=user["full_name"], role=role_name, email=user.get("email_address")
    )


def is_task(story: Record) -> bool:
    return story.get("story_type") in ("task", "deliverable")


def to_project(
    workspace: Record,
    *,
    references: Iterable[Record],
    values: Iterable[Record],
    stories: Iterable[Record],
    leads: Iterable[Record] = (),
) -> Project:
    fields = custom_values(values)
    stories = list(stories)
    lead = next(iter(leads), None)
    currency = workspace.get("currency")
    billing_model = fields.get(BILLING_MODEL_FIELD)
    rate_card_id = workspace.get("rate_card_id")
    return Project(
        id=str(workspace["id"]),
        name=workspace["title"],
        external_ref=external_ref(references, OPPORTUNITY_MODEL),
        status=project_status(workspace),
        legal_entity=fields.get(LEGAL_ENTITY_FIELD),
        currency=workspace.get("currency"),
        billing_model=BillingModel(billing_model) if billing_model in set(BillingModel) else None,
        rate_card_id=str(rate_card_id) if rate_card_id is not None else None,
        customer_name=fields.get(CLIENT_FIELD),
        tasks=tuple(to_task(story) for story in stories if is_task(story)),
        milestones=tuple(
            to_milestone(story, currency)
            for story in stories
            if story.get("story_type") == "milestone" and isinstance(currency, str)
        ),
        project_manager=lead.get("full_name") if lead else None,
        practice=practice(fields),
    )


def to_time_entry(record: Record, *, role_name: str | None, invoice_number: str | None = None) -> TimeEntry:
    return TimeEntry(
        id=str(record["id"]),
        project_id=str(record["workspace_id"]),
        task_id=str(record["story_id"]) if record.get("story_id") is not None else None,
        resource_id=str(record["user_id"]),
        role=role_name,
        date=date.fromisoformat(record["date_performed"]),
        hours=hours(int(record["time_in_minutes"])),
        billable=bool(record["billable"]),
        approved=bool(record["approved"]),
        billed=bool(record.get("is_invoiced")),
        invoice_number=invoice_number,
        notes=record.get("notes"),
    )


def to_expense(record: Record, *, invoice_number: str | None = None) -> Expense:
    return Expense(
        id=str(record["id"]),
        project_id=str(record["workspace_id"]),
        resource_id=str(record["user_id"]) if record.get("user_id") is not None else None,
        date=date.fromisoformat(record["date"]),
        amount=money(int(record["amount_in_cents"]), record["currency"], record.get("currency_base_unit")),
        category=record.get("category"),
        billable=bool(record.get("billable", True)),
        approved=bool(record.get("approved")),
        billed=bool(record.get("is_invoiced")),
        invoice_number=invoice_number,
    )


def invoice_number_of(references: Iterable[Record]) -> str | None:
    return external_ref(references, ERP_INVOICE_MODEL)


def to_rate_card(
    card: Record,
    versions: Iterable[tuple[str, int | None, Mapping[str, int]]],
    role_names: Mapping[str, str],
) -> RateCard:
    """`versions` holds (effective date, default rate, {role id: rate}) per rate card version.

    Kantata bills a role without its own rate at the version's default rate, so every account role gets an
    explicit canonical rate: the one Kantata would apply.
    """
    currency = card["currency"]
    canonical_versions = []
    for effective, default_rate, explicit in sorted(versions, key=lambda version: version[0]):
        rates = []
        for role_id, name in sorted(role_names.items(), key=lambda item: item[1]):
            rate = explicit.get(role_id, default_rate)
            if rate is not None:
                rates.append(RateCardRate(role=name, rate=money(rate, currency)))
        canonical_versions.append(
            RateCardVersion(effective_from=date.fromisoformat(effective), rates=tuple(rates))
        )
    return RateCard(
        id=str(card["id"]),
        name=card.get("title") or f"Rate card {card['id']}",
        currency=currency,
        versions=tuple(canonical_versions),
    )


def to_psa_event(record: Record) -> PsaEvent | None:
    """The canonical event a Kantata subscribed event carries, or None when it carries none of ours.

    Needs `optional_fields=current_payload,payload_changes`: the event alone names its subject, and the
    payloads say what changed. Billing re-reads every entry from Kantata; the event only says where to look.
    """
    event_type = record.get("event_type")
    current = record.get("current_payload")
    if not isinstance(current, dict):
        return None
    changes = record.get("payload_changes") or {}
    occurred_at = parse_time(record["created_at"])
    event_id = str(record["id"])
    subject_id = str(record["subject_id"])

    def became(field: str, value: Any) -> bool:
        change = changes.get(field)
        return isinstance(change, list) and len(change) == 2 and change[1] == value and change[0] != value

    if event_type in ("time_entry:created", "time_entry:updated"):
        approved_now = current.get("approved") is True and (
            event_type == "time_entry:created" or became("approved", True)
        )
        if approved_now:
            return TimeApproved(
                source=SOURCE,
                occurred_at=occurred_at,
                event_id=event_id,
                time_entry_id=subject_id,
                project_id=str(current["workspace_id"]),
                entry_date=date.fromisoformat(current["date_performed"]),
            )
        return None
    if event_type in ("expense:created", "expense:updated"):
        approved_now = current.get("approved") is True and (
            event_type == "expense:created" or became("approved", True)
        )
        if approved_now:
            return ExpensePosted(
                source=SOURCE,
                occurred_at=occurred_at,
                event_id=event_id,
                expense_id=subject_id,
                project_id=str(current["workspace_id"]),
                entry_date=date.fromisoformat(current["date"]),
            )
        return None
    if (
        event_type == "story:updated"
        and current.get("story_type") == "milestone"
        and became("state", "completed")
    ):
        changed_at = parse_time(record.get("subject_changed_at") or record["created_at"])
        return MilestoneCompleted(
            source=SOURCE,
            occurred_at=occurred_at,
            event_id=event_id,
            milestone_id=subject_id,
            project_id=str(current["workspace_id"]),
            completed_on=changed_at.date(),
        )
    return None
