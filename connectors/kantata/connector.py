"""`KantataConnector`: the PSA role (`connectors.roles.PsaConnector`) over Kantata OX.

Kantata has no idempotency key, so every write first looks for what a previous attempt may already have
made: projects by our external reference (service `ps-sync`, model `Opportunity`), stories by title and
type within the project, billed marks by the Kantata invoice carrying the ERP invoice number.

The role is assembled from parts: projects and rate cards (`projects`), billable work and billed marks
(`billing`); receivables, the change feed and reference data are here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from canonical import PsaEvent, ReceivablesSummary
from canonical.reference import Employee
from connectors.kantata import mapping, receivables
from connectors.kantata.access import rejected
from connectors.kantata.feed import RETENTION, FeedCursor, created_after_for_poll, merge, unseen
from connectors.kantata.fields import ERP_AMOUNT_DUE_FIELD, ERP_AMOUNT_PAID_FIELD, ERP_INVOICES_FIELD
from connectors.kantata.month_end import KantataMonthEnd
from connectors.kantata.payables import KantataPayables
from connectors.kantata.projects import KantataProjects
from connectors.paging import Page
from connectors.roles import FeedPoll, PsaConnector

if TYPE_CHECKING:
    from config import Settings


# A first poll starts just inside the feed's retention, so the oldest events are not gone mid-read.
FIRST_POLL_MARGIN = timedelta(minutes=1)


class KantataConnector(KantataProjects, KantataMonthEnd, KantataPayables):
    """The PSA role over one Kantata account; `aclose` it when done."""

    @classmethod
    def from_settings(cls, settings: Settings) -> KantataConnector:
        return cls(
            base_url=settings.kantata_base_url,
            client_id=settings.kantata_client_id,
            client_secret=settings.kantata_client_secret.get_secret_value(),
        )

    # --- receivables ----------------------------------------------------------------------------------------

    async def update_financials(self, project_id: str, summary: ReceivablesSummary) -> None:
        fields = await self._require_fields()
        workspace = (await self._client.get(f"/workspaces/{project_id}", {"include_archived": "true"})).one()
        envelope = await self._client.get(
            "/custom_field_values",
            {
                "subject_type": "Workspace",
                "with_subject_id": project_id,
                "with_custom_field_id": fields[ERP_INVOICES_FIELD],
            },
        )
        current = next((value.get("value") for value in envelope.records()), None)
        try:
            text = receivables.merge_line(current if isinstance(current, str) else None, summary)
        except ValueError as exc:
            raise rejected(str(exc), "invoice_number") from exc
        currency = workspace.get("currency") or summary.total.currency
        due, paid = receivables.totals(text, currency)
        await self._client.post(
            "/custom_field_values",
            {
                "custom_field_values": [
                    {
                        "subject_type": "Workspace",
                        "subject_id": int(project_id),
                        "custom_field_id": int(fields[ERP_INVOICES_FIELD]),
                        "value": text,
                    },
                    {
                        "subject_type": "Workspace",
                        "subject_id": int(project_id),
                        "custom_field_id": int(fields[ERP_AMOUNT_DUE_FIELD]),
                        "value": [mapping.subunits(due), currency],
                    },
                    {
                        "subject_type": "Workspace",
                        "subject_id": int(project_id),
                        "custom_field_id": int(fields[ERP_AMOUNT_PAID_FIELD]),
                        "value": [mapping.subunits(paid), currency],
                    },
                ]
            },
        )

    # --- change feed ----------------------------------------------------------------------------------------

    async def events(
        self, *, created_after: datetime, event_types: Sequence[str], cursor: str | None = None
    ) -> AsyncIterator[Page[PsaEvent]]:
        """Subscribed events after the instant, oldest first, as canonical events.

        `event_types` takes canonical names (TimeApproved, ExpensePosted, MilestoneCompleted) or Kantata's own
        (`time_entry:updated`); empty means all three canonical ones. Kantata may deliver an event twice or
        late and out of order: pages hold what it sent, duplicates included; see feed.FeedCursor.
        `Page.extra["latest_created_at"]` is the newest event seen on the page, carried or not.
        """
        if created_after.tzinfo is None:
            raise rejected("created_after must be timezone-aware", "created_after")
        params = {
            "created_after": created_after.astimezone(UTC).isoformat(),
            "event_types": ",".join(kantata_event_types(event_types)),
            "order": "created_at:asc",
            "optional_fields": "current_payload,payload_changes",
        }
        async for envelope, number in self._client.pages("/subscribed_events", params, start=cursor):
            records = envelope.records()
            items = [event for record in records if (event := mapping.to_psa_event(record)) is not None]
            latest = max((mapping.parse_time(record["created_at"]) for record in records), default=None)
            following = envelope.next_page
            yield Page(
                items=items,
                cursor=str(number),
                next_cursor=None if following is None else str(following),
                extra={"latest_created_at": latest, "delivered": len(records)},
            )

    # --- reference data and reconciliation ------------------------------------------------------------------

    async def employees(self) -> list[Employee]:
        """Active account members with their default role and cost rates (GET /account_memberships,
        include=user,default_role,cost_rates); disabled members are left out by Kantata's default filter."""
        found: list[Employee] = []
        async for envelope, _ in self._client.pages(
            "/account_memberships", {"include": "user,default_role,cost_rates", "order": "created_at:asc"}
        ):
            for membership in envelope.records():
                users = envelope.related(membership, "user_id", "users")
                if not users:
                    continue
                roles = envelope.related(membership, "default_role_id", "roles")
                rates = envelope.related(membership, "cost_rate_ids", "cost_rates")
                found.append(
                    Employee(
                        id=str(users[0]["id"]),
                        name=users[0].get("full_name") or str(users[0]["id"]),
                        email=users[0].get("email_address"),
                        role=roles[0]["name"] if roles else None,
                        cost_rates=tuple(
                            mapping.money(int(rate["amount_in_subunits"]), rate["currency"])
                            for rate in sorted(rates, key=lambda rate: str(rate["currency"]))
                        ),
                        active=membership.get("disabled_at") is None,
                    )
                )
        return found

    async def poll_feed(
        self,
        cursor: dict[str, Any] | None,
        *,
        now: datetime,
        max_events: int,
        on_page: Callable[[str | None], None],
    ) -> FeedPoll:
        # A first poll reads everything the feed still holds: billing re-reads and is idempotent.
        position = (
            FeedCursor.model_validate(cursor)
            if cursor
            else FeedCursor.starting_at(now - RETENTION + FIRST_POLL_MARGIN)
        )
        fetched: list[PsaEvent] = []
        fresh = 0
        complete = True
        async for page in self.events(created_after=created_after_for_poll(position), event_types=()):
            fetched.extend(page.items)
            # Only unseen events fill a poll: a busy overlap window re-read from the cursor must not use up
            # the poll before it reaches anything new, or the poller never moves on.
            fresh += len(unseen(position, page.items))
            on_page(page.next_cursor)
            if page.next_cursor is not None and fresh >= max_events:
                complete = False
                break
        merged = merge(position, fetched, now=now, complete=complete)
        gap = f"{merged.gap.since.isoformat()}..{merged.gap.until.isoformat()}" if merged.gap else None
        return FeedPoll(
            events=tuple(merged.events),
            cursor=merged.cursor.model_dump(mode="json"),
            more=not complete,
            gap=gap,
        )


def kantata_event_types(event_types: Sequence[str]) -> list[str]:
    names = list(event_types) or list(mapping.EVENT_TYPES)
    out: list[str] = []
    for name in names:
        if name in mapping.EVENT_TYPES:
            out.extend(mapping.EVENT_TYPES[name])
        elif ":" in name and "," not in name:
            out.append(name)
        else:
            raise rejected(
                f"unknown event type {name!r}; use {', '.join(mapping.EVENT_TYPES)} or a Kantata "
                "type like time_entry:updated",
                "event_types",
            )
    return list(dict.fromkeys(out))


def as_psa(connector: KantataConnector) -> PsaConnector:
    """The connector in its role; mypy checks here that it satisfies the PSA protocol."""
    return connector
