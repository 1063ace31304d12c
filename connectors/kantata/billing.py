"""Billable work in Kantata: approved time, expenses and milestones, and marking them billed.

Kantata has no idempotency key, so a billed mark is Kantata's own invoice record carrying the ERP invoice
number: a retry finds the entries already on it and leaves them alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from canonical import Expense, Milestone, Period, TimeEntry
from canonical.events import item_key
from connectors.errors import Conflict, NotFound
from connectors.kantata import mapping
from connectors.kantata.access import ID_CHUNK, KantataAccess, chunks, plain_ref
from connectors.kantata.client import SYSTEM, Record
from connectors.kantata.fields import ERP_INVOICE_MODEL, SERVICE_NAME
from connectors.paging import Page

# Kantata requires payment terms on its invoice record; the ERP invoice is the one that is actually collected.
PAYMENT_SCHEDULE_DAYS = 30
# Items per Kantata invoice, to keep request bodies a sane size.
_INVOICE_ITEMS = 500


T = TypeVar("T")


def _billed_entry(record: Record, role_name: str | None, invoice_number: str | None) -> TimeEntry:
    entry = mapping.to_time_entry(record, role_name=role_name, invoice_number=invoice_number)
    if record.get("rate_in_cents") is not None:
        subunits, base = int(record["rate_in_cents"]), record.get("currency_base_unit")
        rate = mapping.money(subunits, record["currency"], base)
        entry = entry.model_copy(update={"bill_rate": rate})
    return entry


class KantataBilling(KantataAccess):
    # --- unbilled work --------------------------------------------------------------------------------------

    async def time_entries(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[TimeEntry]]:
        params = {
            "workspace_id": project_id,
            "date_performed_between": f"{period.first_day.isoformat()}:{period.last_day.isoformat()}",
            "approved": "true",
            "billable": "true",
            "uninvoiced": "true",
            "from_archived_workspaces": "true",
            "include": "role",
            # Creation order: entries logged while we page land on the last page, not shifting earlier ones.
            "order": "created_at:asc",
        }
        async for envelope, number in self._client.pages("/time_entries", params, start=cursor):
            items = []
            for record in envelope.records():
                roles = envelope.related(record, "role_id", "roles")
                items.append(mapping.to_time_entry(record, role_name=roles[0]["name"] if roles else None))
            following = envelope.next_page
            yield Page(
                items=items, cursor=str(number), next_cursor=None if following is None else str(following)
            )

    async def expenses(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[Expense]]:
        params = {
            "workspace_id": project_id,
            "date_expensed_between": f"{period.first_day.isoformat()}:{period.last_day.isoformat()}",
            "approved": "true",
            "uninvoiced": "true",
            "from_archived_workspaces": "true",
            "order": "created_at:asc",
        }
        async for envelope, number in self._client.pages("/expenses", params, start=cursor):
            # Kantata has no `billable` filter on expenses, so non-billable ones are dropped here.
            items = [
                mapping.to_expense(record) for record in envelope.records() if record.get("billable", True)
            ]
            following = envelope.next_page
            yield Page(
                items=items, cursor=str(number), next_cursor=None if following is None else str(following)
            )

    async def unbilled_milestones(self, project_id: str) -> list[Milestone]:
        """Milestones of the project without an ERP invoice reference; completion and budget as mapped."""
        workspace = (await self._client.get(f"/workspaces/{project_id}", {"include_archived": "true"})).one()
        currency = str(workspace.get("currency") or "")
        stories = await self._milestone_stories({"workspace_id": project_id})
        return [mapping.to_milestone(story, currency) for story, billed in stories if billed is None]

    async def owed_among(self, project_id: str, item_keys: Sequence[str]) -> list[str]:
        wanted = set(item_keys)
        by_kind: dict[str, list[str]] = defaultdict(list)
        for key in sorted(wanted):
            kind, _, item_id = key.partition(":")
            by_kind[kind].append(item_id)
        owed: list[str] = []
        filters = {
            "workspace_id": project_id,
            "approved": "true",
            "uninvoiced": "true",
            "from_archived_workspaces": "true",
        }
        for chunk in chunks(by_kind["time"], ID_CHUNK):
            params = {**filters, "billable": "true", "only": ",".join(chunk)}
            async for envelope, _ in self._client.pages("/time_entries", params):
                owed += [item_key("time", str(record["id"])) for record in envelope.records()]
        for chunk in chunks(by_kind["expense"], ID_CHUNK):
            params = {**filters, "only": ",".join(chunk)}
            async for envelope, _ in self._client.pages("/expenses", params):
                # No `billable` filter on expenses, as when collecting them.
                owed += [
                    item_key("expense", str(record["id"]))
                    for record in envelope.records()
                    if record.get("billable", True)
                ]
        if by_kind["milestone"]:
            unbilled = await self.unbilled_milestones(project_id)
            owed += [key for m in unbilled if (key := item_key("milestone", m.id)) in wanted]
        return sorted(owed)

    # --- billed or not --------------------------------------------------------------------------------------

    async def approved_time(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[TimeEntry]]:
        """Approved billable time of the project in the period, billed or not; billed entries carry the ERP
        invoice number their Kantata invoice records."""
        params = {
            "workspace_id": project_id,
            "date_performed_between": f"{period.first_day.isoformat()}:{period.last_day.isoformat()}",
            "approved": "true",
            "billable": "true",
            "from_archived_workspaces": "true",
            "include": "role,invoice",
            "order": "created_at:asc",
        }
        async for page in self._time_entry_pages(params, cursor, _billed_entry):
            yield page

    async def _time_entry_pages(
        self,
        params: dict[str, str],
        cursor: str | None,
        build: Callable[[Record, str | None, str | None], T],
    ) -> AsyncIterator[Page[T]]:
        """Time entries page by page, each built from its record, its role's name and the ERP invoice number
        its Kantata invoice records (None while unbilled)."""
        async for envelope, number in self._client.pages("/time_entries", params, start=cursor):
            records = envelope.records()
            numbers = await self._invoice_numbers(
                {str(r["invoice_id"]) for r in records if r.get("is_invoiced") and r.get("invoice_id")}
            )
            items = []
            for record in records:
                roles = envelope.related(record, "role_id", "roles")
                role = roles[0]["name"] if roles else None
                items.append(build(record, role, numbers.get(str(record.get("invoice_id")))))
            following = envelope.next_page
            yield Page(
                items=items, cursor=str(number), next_cursor=None if following is None else str(following)
            )

    async def approved_expenses(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[Expense]]:
        """Approved billable expenses of the project in the period, billed or not, with invoice numbers."""
        params = {
            "workspace_id": project_id,
            "date_expensed_between": f"{period.first_day.isoformat()}:{period.last_day.isoformat()}",
            "approved": "true",
            "from_archived_workspaces": "true",
            "order": "created_at:asc",
        }
        async for envelope, number in self._client.pages("/expenses", params, start=cursor):
            records = [dict(r) for r in envelope.records() if r.get("billable", True)]
            # Kantata's expense has no invoice include: the invoices name their expenses.
            await self._attach_expense_invoices(records)
            numbers = await self._invoice_numbers(
                {str(r["_invoice_id"]) for r in records if r.get("_invoice_id")}
            )
            items = [
                mapping.to_expense(record, invoice_number=numbers.get(str(record.get("_invoice_id"))))
                for record in records
            ]
            following = envelope.next_page
            yield Page(
                items=items, cursor=str(number), next_cursor=None if following is None else str(following)
            )

    # --- billed marks ---------------------------------------------------------------------------------------

    async def mark_billed(
        self,
        *,
        time_entry_ids: Sequence[str],
        expense_ids: Sequence[str],
        invoice_number: str,
        milestone_ids: Sequence[str] = (),
    ) -> None:
        """Put the entries on a Kantata invoice that carries the ERP invoice number as its external reference.

        Kantata marks what it has invoiced itself (`is_invoiced`, `invoice_id`), so its own invoice record is
        how "billed with number X" is represented. Entries already on an invoice carrying X are left alone
        (a retry is a no-op); entries on an invoice carrying another number raise Conflict. A fixed-fee
        milestone (a story, which no Kantata invoice holds) carries the number as its own external reference.
        """
        number = plain_ref(invoice_number, "invoice_number")
        entries = await self._load("time_entries", list(dict.fromkeys(time_entry_ids)))
        expenses = await self._load("expenses", list(dict.fromkeys(expense_ids)))
        numbers = await self._invoice_numbers(
            {str(item["_invoice_id"]) for item in (*entries, *expenses) if item.get("_invoice_id")}
        )
        clashes = [
            f"{kind} {item['id']} is billed as {numbers.get(str(item['_invoice_id'])) or 'another invoice'}"
            for kind, items in (("time entry", entries), ("expense", expenses))
            for item in items
            if item.get("_invoice_id") and numbers.get(str(item["_invoice_id"])) != number
        ]
        if clashes:
            raise Conflict(f"cannot mark billed as {number}: {'; '.join(clashes[:10])}", system=SYSTEM)
        pending: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        for item in entries:
            if not item.get("is_invoiced"):
                pending[str(item["workspace_id"])][0].append(str(item["id"]))
        for item in expenses:
            if not item.get("is_invoiced"):
                pending[str(item["workspace_id"])][1].append(str(item["id"]))
        for workspace_id, (entry_ids, item_ids) in pending.items():
            for start in range(0, max(len(entry_ids), len(item_ids)), _INVOICE_ITEMS):
                await self._client.post(
                    "/invoices",
                    {
                        "invoice": {
                            "workspace_id": int(workspace_id),
                            "time_entry_ids": [int(i) for i in entry_ids[start : start + _INVOICE_ITEMS]],
                            "expense_ids": [int(i) for i in item_ids[start : start + _INVOICE_ITEMS]],
                            "payment_schedule": PAYMENT_SCHEDULE_DAYS,
                            "draft": False,
                            "user_invoice_title": number,
                            "message": f"Billed in the ERP as invoice {number}; recorded by ps-sync.",
                            "suppress_emails": True,
                            "external_reference": {
                                "service_name": SERVICE_NAME,
                                "service_model": ERP_INVOICE_MODEL,
                                "service_model_ref": number,
                                "external_message": number,
                                "status": "successful",
                            },
                        }
                    },
                )
        await self._mark_milestones_billed(list(dict.fromkeys(milestone_ids)), number)

    async def _milestone_stories(self, params: dict[str, str | int]) -> list[tuple[Record, str | None]]:
        """Milestone stories with the ERP invoice number their ps-sync external reference carries."""
        found: list[tuple[Record, str | None]] = []
        async for envelope, _ in self._client.pages(
            "/stories",
            {**params, "with_story_type": "milestone", "include": "external_references"},
        ):
            for story in envelope.records():
                references = envelope.related(story, "external_reference_ids", "external_references")
                found.append((story, mapping.invoice_number_of(references)))
        return found

    async def _mark_milestones_billed(self, milestone_ids: list[str], number: str) -> None:
        if not milestone_ids:
            return
        stories: list[tuple[Record, str | None]] = []
        for chunk in chunks(milestone_ids, ID_CHUNK):
            stories.extend(await self._milestone_stories({"only": ",".join(chunk), "show_archived": "true"}))
        missing = sorted(set(milestone_ids) - {str(story["id"]) for story, _ in stories})
        if missing:
            raise NotFound(f"Kantata has no milestone {', '.join(missing[:20])}", system=SYSTEM)
        clashes = [
            f"milestone {story['id']} is billed as {billed}"
            for story, billed in stories
            if billed not in (None, number)
        ]
        if clashes:
            raise Conflict(f"cannot mark billed as {number}: {'; '.join(clashes[:10])}", system=SYSTEM)
        for story, billed in stories:
            if billed is None:
                await self._client.put(
                    f"/stories/{story['id']}",
                    {
                        "story": {
                            "external_reference": {
                                "service_name": SERVICE_NAME,
                                "service_model": ERP_INVOICE_MODEL,
                                "service_model_ref": number,
                                "external_message": f"Billed in the ERP as invoice {number}",
                                "status": "successful",
                            }
                        }
                    },
                )

    async def _load(self, key: str, ids: list[str]) -> list[Record]:
        """Records by id with their invoice id (`include=invoice`); NotFound names any id Kantata lacks."""
        found: list[Record] = []
        for chunk in chunks(ids, ID_CHUNK):
            params: dict[str, str | int] = {
                "only": ",".join(chunk),
                "from_archived_workspaces": "true",
                "per_page": ID_CHUNK,
            }
            if key == "time_entries":
                params["include"] = "invoice"
            envelope = await self._client.get(f"/{key}", params)
            found.extend({**record, "_invoice_id": record.get("invoice_id")} for record in envelope.records())
        if key == "expenses":
            # Kantata's expense has no `invoice` include: ask the invoices which expenses they hold.
            await self._attach_expense_invoices(found)
        missing = sorted(set(ids) - {str(record["id"]) for record in found})
        if missing:
            raise NotFound(f"Kantata has no {key.replace('_', ' ')} {', '.join(missing[:20])}", system=SYSTEM)
        return found

    async def _attach_expense_invoices(self, expenses: list[Record]) -> None:
        invoiced = {str(e["id"]): e for e in expenses if e.get("is_invoiced")}
        if not invoiced:
            return
        workspaces = sorted({str(e["workspace_id"]) for e in invoiced.values()})
        async for envelope, _ in self._client.pages(
            "/invoices", {"workspace_id": ",".join(workspaces), "include": "expenses"}
        ):
            for invoice in envelope.records():
                for expense_id in invoice.get("expense_ids") or []:
                    if str(expense_id) in invoiced:
                        invoiced[str(expense_id)]["_invoice_id"] = str(invoice["id"])

    async def _invoice_numbers(self, invoice_ids: set[str]) -> dict[str, str | None]:
        numbers: dict[str, str | None] = {}
        for chunk in chunks(sorted(invoice_ids), ID_CHUNK):
            envelope = await self._client.get(
                "/invoices", {"only": ",".join(chunk), "include": "external_references", "per_page": ID_CHUNK}
            )
            for invoice in envelope.records():
                numbers[str(invoice["id"])] = mapping.invoice_number_of(
                    envelope.related(invoice, "external_reference_ids", "external_references")
                )
        return numbers
