"""PSA activities: projects, billable work read in heartbeated pages, billed marks, the change feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.errors import connector_errors
from activities.feed_reads import note_psa_feed_read
from canonical import (
    Expense,
    Milestone,
    Period,
    Project,
    ProjectSpec,
    ProjectStatus,
    PsaEvent,
    RateCard,
    ReceivablesSummary,
    Resource,
    TimeEntry,
)
from connectors.paging import Page
from connectors.roles import FeedPoll, PsaConnector
from domain.feed_nudges import BillingNudge, group_billing_nudges
from ledger.database import Database
from ledger.repository import find_external_id, link_ids, set_link_status

T = TypeVar("T", TimeEntry, Expense)


class EnsureProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    spec: ProjectSpec


class EnsureProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project: Project
    created: bool


class HoldProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    external_ref: str
    reason: str


class HoldProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    status: ProjectStatus


class GetProjectBillingSetupInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class GetProjectBillingSetupResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project: Project
    rate_card: RateCard
    # Who is staffed on the project: billing checks every line's resource against it.
    resources: list[Resource] = []


class ReadProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class ReadProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project: Project


class ReadRateCardInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class ReadRateCardResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    rate_card: RateCard


class ReadProjectResourcesInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class ReadProjectResourcesResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    resources: list[Resource]


class FetchWorkBatchInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    period: str
    cursor: str | None = None
    max_items: int = 1000


class OwedItemsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    item_ids: tuple[str, ...]


class OwedItemsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # Those of the items still approved, billable and not billed.
    item_ids: tuple[str, ...]


class FetchTimeBatchResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    entries: list[TimeEntry]
    next_cursor: str | None


class FetchExpenseBatchResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    expenses: list[Expense]
    next_cursor: str | None


class MarkBilledInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    time_entry_ids: list[str]
    expense_ids: list[str]
    invoice_number: str
    milestone_ids: list[str] = []


class MarkBilledResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    marked: int


class FetchUnbilledMilestonesInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class FetchUnbilledMilestonesResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    milestones: list[Milestone]


class PushFinancialsToPsaInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    summary: ReceivablesSummary


class PushFinancialsToPsaResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class PollPsaEventsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    cursor: dict[str, Any] | None = None
    max_events: int = 1000
    # Return the billing nudges the events make instead of the events: a result of a few ids, not a poll's
    # thousand whole events, is what lands in the poller's history. Absent from older pollers.
    grouped: bool = False


class PollPsaEventsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # Only when not `grouped`; older histories hold these.
    events: list[PsaEvent] = []
    cursor: dict[str, Any]
    # More events are waiting: poll again at once instead of sleeping.
    more: bool
    # Set when the feed no longer holds events we never read (downtime longer than its window).
    gap: str | None = None
    # When `grouped`: one per billing run (project, period) the events concern, and how many were read.
    nudges: list[BillingNudge] = []
    events_read: int = 0


class PsaActivities:
    def __init__(self, psa: PsaConnector, database: Database) -> None:
        self._psa = psa
        self._db = database

    def _find_link(self, external_ref: str) -> str | None:
        with self._db.session() as session:
            return find_external_id(
                session, entity="project", canonical_key=external_ref, system=self._psa.system
            )

    def _link(self, external_ref: str, project_id: str) -> None:
        with self._db.session() as session:
            link_ids(
                session,
                entity="project",
                canonical_key=external_ref,
                system=self._psa.system,
                external_id=project_id,
            )

    @activity.defn
    async def ensure_project(self, input: EnsureProjectInput) -> EnsureProjectResult:
        """Crosswalk first, then the PSA's own reference: a retried create can never make a second project."""
        known = await asyncio.to_thread(self._find_link, input.spec.external_ref)
        async with connector_errors():
            if known is not None:
                return EnsureProjectResult(project=await self._psa.get_project(known), created=False)
            existing = await self._psa.find_project(input.spec.external_ref)
            project = existing or await self._psa.ensure_project(input.spec)
        await asyncio.to_thread(self._link, input.spec.external_ref, project.id)
        return EnsureProjectResult(project=project, created=existing is None)

    @activity.defn
    async def hold_project(self, input: HoldProjectInput) -> HoldProjectResult:
        """Compensation: a half-made project must not look active to the people who staff it."""
        async with connector_errors():
            await self._psa.set_project_status(input.project_id, ProjectStatus.ON_HOLD, input.reason)

        def record() -> None:
            with self._db.session() as session:
                set_link_status(
                    session,
                    entity="project",
                    canonical_key=input.external_ref,
                    system=self._psa.system,
                    status=ProjectStatus.ON_HOLD.value,
                    note=input.reason,
                )

        await asyncio.to_thread(record)
        return HoldProjectResult(project_id=input.project_id, status=ProjectStatus.ON_HOLD)

    @activity.defn
    async def get_project_billing_setup(
        self, input: GetProjectBillingSetupInput
    ) -> GetProjectBillingSetupResult:
        """Kept for runs that scheduled it before the three reads below replaced it: one failing call here
        repeats all of them."""
        async with connector_errors():
            project = await self._psa.get_project(input.project_id)
            rate_card = await self._psa.get_rate_card(input.project_id)
            resources = await self._psa.project_resources(input.project_id)
        return GetProjectBillingSetupResult(project=project, rate_card=rate_card, resources=resources)

    # The three reads billing needs are separate activities, run side by side: a failure in one repeats
    # only that read, and together they take as long as the slowest, not the sum.

    @activity.defn
    async def read_project(self, input: ReadProjectInput) -> ReadProjectResult:
        async with connector_errors():
            return ReadProjectResult(project=await self._psa.get_project(input.project_id))

    @activity.defn
    async def read_rate_card(self, input: ReadRateCardInput) -> ReadRateCardResult:
        async with connector_errors():
            return ReadRateCardResult(rate_card=await self._psa.get_rate_card(input.project_id))

    @activity.defn
    async def read_project_resources(self, input: ReadProjectResourcesInput) -> ReadProjectResourcesResult:
        async with connector_errors():
            return ReadProjectResourcesResult(resources=await self._psa.project_resources(input.project_id))

    @activity.defn
    async def fetch_unbilled_milestones(
        self, input: FetchUnbilledMilestonesInput
    ) -> FetchUnbilledMilestonesResult:
        """Re-read at billing time: a milestone event only says where to look, never what to bill."""
        async with connector_errors():
            milestones = await self._psa.unbilled_milestones(input.project_id)
        return FetchUnbilledMilestonesResult(milestones=milestones)

    @activity.defn
    async def fetch_time_batch(self, input: FetchWorkBatchInput) -> FetchTimeBatchResult:
        period = Period(value=input.period)
        items, next_cursor = await _collect(
            lambda cursor: self._psa.time_entries(input.project_id, period, cursor=cursor), input, TimeEntry
        )
        return FetchTimeBatchResult(entries=items, next_cursor=next_cursor)

    @activity.defn
    async def fetch_expense_batch(self, input: FetchWorkBatchInput) -> FetchExpenseBatchResult:
        period = Period(value=input.period)
        items, next_cursor = await _collect(
            lambda cursor: self._psa.expenses(input.project_id, period, cursor=cursor), input, Expense
        )
        return FetchExpenseBatchResult(expenses=items, next_cursor=next_cursor)

    @activity.defn
    async def owed_items(self, input: OwedItemsInput) -> OwedItemsResult:
        """Which of the named items the PSA still holds as billable work nobody billed."""
        async with connector_errors():
            owed = await self._psa.owed_among(input.project_id, input.item_ids)
        return OwedItemsResult(item_ids=tuple(owed))

    @activity.defn
    async def poll_psa_events(self, input: PollPsaEventsInput) -> PollPsaEventsResult:
        """Read the change feed from the cursor; reordering and repeats are absorbed by the cursor."""
        poll = await read_psa_feed(self._psa, self._db, cursor=input.cursor, max_events=input.max_events)
        if input.grouped:
            return PollPsaEventsResult(
                nudges=group_billing_nudges(poll.events),
                events_read=len(poll.events),
                cursor=poll.cursor,
                more=poll.more,
                gap=poll.gap,
            )
        return PollPsaEventsResult(events=list(poll.events), cursor=poll.cursor, more=poll.more, gap=poll.gap)

    @activity.defn
    async def mark_billed(self, input: MarkBilledInput) -> MarkBilledResult:
        async with connector_errors():
            await self._psa.mark_billed(
                time_entry_ids=input.time_entry_ids,
                expense_ids=input.expense_ids,
                invoice_number=input.invoice_number,
                milestone_ids=input.milestone_ids,
            )
        return MarkBilledResult(
            marked=len(input.time_entry_ids) + len(input.expense_ids) + len(input.milestone_ids)
        )

    @activity.defn
    async def push_financials_to_psa(self, input: PushFinancialsToPsaInput) -> PushFinancialsToPsaResult:
        async with connector_errors():
            await self._psa.update_financials(input.project_id, input.summary)
        return PushFinancialsToPsaResult(project_id=input.project_id)


async def read_psa_feed(
    psa: PsaConnector, database: Database, *, cursor: dict[str, Any] | None, max_events: int
) -> FeedPoll:
    """One heartbeated read of the change feed from the cursor, noted for freshness and metrics."""
    async with connector_errors():
        poll = await psa.poll_feed(
            cursor, now=datetime.now(UTC), max_events=max_events, on_page=activity.heartbeat
        )
    await note_psa_feed_read(database, psa=psa.system, events=poll.events)
    return poll


async def _collect(
    pages: Callable[[str | None], AsyncIterator[Page[T]]], input: FetchWorkBatchInput, model: type[T]
) -> tuple[list[T], str | None]:
    """Read pages until the batch is full, heartbeating (cursor, items so far) after each page.

    On a retry the heartbeat says where the last attempt stopped, so pages already read are not read again.
    """
    cursor = input.cursor
    items: list[T] = []
    details: Sequence[Any] = activity.info().heartbeat_details
    if details:
        cursor = details[0]
        items = [model.model_validate(raw) for raw in details[1]]
        if cursor is None:
            return items, None
    async with connector_errors():
        async for page in pages(cursor):
            items.extend(page.items)
            cursor = page.next_cursor
            activity.heartbeat(cursor, [item.model_dump(mode="json") for item in items])
            if cursor is None or len(items) >= input.max_items:
                return items, cursor
    return items, None
