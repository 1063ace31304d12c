"""What month-end reads from Kantata: a project's approved time to date, billable or not, with its bill rate
and the cost rate Kantata stamped on it when it was logged (`cost_rate_in_cents`: a later cost rate leaves it
alone), and every milestone of the project with the day it was completed. It writes month-end's figures
to date on the project's optional Workspace custom fields (`MONTH_END_FIELDS`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

from canonical import Milestone
from canonical.project_financials import ProjectFinancials
from canonical.worked_time import CostedTimeEntry
from connectors.kantata import mapping
from connectors.kantata.billing import KantataBilling
from connectors.kantata.client import Record
from connectors.kantata.fields import (
    LABOUR_COST_FIELD,
    MARGIN_FIELD,
    MONTH_END_FIELDS,
    RECOGNISED_REVENUE_FIELD,
    WIP_FIELD,
)
from connectors.paging import Page

# Before any time a PSA account holds: "to date" as a range Kantata's filter takes.
_BEGINNING = date(2000, 1, 1)


def _costed(record: Record, role: str | None, invoice_number: str | None) -> CostedTimeEntry:
    currency = str(record["currency"])
    base = record.get("currency_base_unit")
    rate = record.get("rate_in_cents")
    cost = record.get("cost_rate_in_cents")
    return CostedTimeEntry(
        id=str(record["id"]),
        project_id=str(record["workspace_id"]),
        person_id=str(record["user_id"]),
        role=role,
        date=date.fromisoformat(record["date_performed"]),
        minutes=int(record["time_in_minutes"]),
        billable=bool(record["billable"]),
        billed=bool(record.get("is_invoiced")),
        invoice_number=invoice_number,
        bill_rate=None if rate is None else mapping.money(int(rate), currency, base),
        cost_rate=None if cost is None else mapping.money(int(cost), currency, base),
    )


class KantataMonthEnd(KantataBilling):
    async def worked_time(
        self, project_id: str, through: date, *, cursor: str | None = None
    ) -> AsyncIterator[Page[CostedTimeEntry]]:
        params = {
            "workspace_id": project_id,
            "date_performed_between": f"{_BEGINNING.isoformat()}:{through.isoformat()}",
            "approved": "true",
            "from_archived_workspaces": "true",
            "include": "role",
            "order": "created_at:asc",
        }
        async for page in self._time_entry_pages(params, cursor, _costed):
            yield page

    async def project_milestones(self, project_id: str) -> list[Milestone]:
        workspace = (await self._client.get(f"/workspaces/{project_id}", {"include_archived": "true"})).one()
        currency = str(workspace.get("currency") or "")
        stories = await self._milestone_stories({"workspace_id": project_id, "show_archived": "true"})
        return [mapping.to_milestone(story, currency) for story, _ in stories]

    async def push_month_end_financials(self, project_id: str, financials: ProjectFinancials) -> bool:
        """Set the project's month-end fields to these figures (the same figures again change nothing);
        False, and nothing written, when the account has not set the fields up."""
        fields = await self._require_fields()
        if any(name not in fields for name, _ in MONTH_END_FIELDS):
            return False
        values = {
            RECOGNISED_REVENUE_FIELD: financials.recognised_revenue,
            LABOUR_COST_FIELD: financials.labour_cost,
            WIP_FIELD: financials.wip,
            MARGIN_FIELD: financials.margin,
        }
        await self._client.post(
            "/custom_field_values",
            {
                "custom_field_values": [
                    {
                        "subject_type": "Workspace",
                        "subject_id": int(project_id),
                        "custom_field_id": int(fields[name]),
                        "value": [mapping.subunits(amount), amount.currency],
                    }
                    for name, amount in values.items()
                ]
            },
        )
        return True
