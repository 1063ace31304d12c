"""`KantataConnector`: the PSA role (`pssync.connectors.roles.PsaConnector`) over Kantata OX.

Kantata has no idempotency key, so every write first looks for what a previous attempt may already have
made: projects by our external reference (service `ps-sync`, model `Opportunity`), stories by title and
type within the project, billed marks by the Kantata invoice carrying the ERP invoice number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from pssync.canonical import (
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
from pssync.canonical.reference import Employee
from pssync.connectors.errors import Conflict, FieldError, NotFound, Rejected
from pssync.connectors.kantata import mapping, receivables
from pssync.connectors.kantata.client import SYSTEM, KantataClient, Record
from pssync.connectors.kantata.fields import (
    BILLING_MODEL_FIELD,
    CLIENT_FIELD,
    ERP_AMOUNT_DUE_FIELD,
    ERP_AMOUNT_PAID_FIELD,
    ERP_INVOICE_MODEL,
    ERP_INVOICES_FIELD,
    LEGAL_ENTITY_FIELD,
    OPPORTUNITY_MODEL,
    SERVICE_CODE_FIELD,
    SERVICE_NAME,
    WORKSPACE_CUSTOM_FIELDS,
)
from pssync.connectors.paging import Page
from pssync.connectors.roles import PsaConnector

if TYPE_CHECKING:
    from pssync.settings import Settings

# Kantata project status keys ps-sync sets (Knowledge Base "Project Status List"); see the sandbox's table.
ACTIVE_STATUS_KEY = 310
ON_HOLD_STATUS_KEY = 420
# Kantata requires payment terms on its invoice record; the ERP invoice is the one that is actually collected.
PAYMENT_SCHEDULE_DAYS = 30
# Ids per `only=` request and items per Kantata invoice, to keep URLs and bodies a sane size.
_CHUNK = 200
_INVOICE_ITEMS = 500


def _rejected(message: str, field: str) -> Rejected:
    return Rejected(message, system=SYSTEM, field_errors=[FieldError(field=field, message=message)])


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _plain_ref(value: str, field: str) -> str:
    # Kantata's `*_refs` filters split on commas, so a comma would silently look up two references.
    if not value or "," in value:
        raise _rejected(f"{field} must be non-empty and free of commas, got {value!r}", field)
    return value


class KantataConnector:
    system = SYSTEM

    def __init__(
        self, *, base_url: str, client_id: str, client_secret: str, http: httpx.AsyncClient | None = None
    ) -> None:
        self._client = KantataClient(
            base_url=base_url, client_id=client_id, client_secret=client_secret, http=http
        )
        self._field_ids: dict[str, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KantataConnector:
        return cls(
            base_url=settings.kantata_base_url,
            client_id=settings.kantata_client_id,
            client_secret=settings.kantata_client_secret,
        )

    @property
    def client(self) -> KantataClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- projects -----------------------------------------------------------------------------------------

    async def find_project(self, external_ref: str) -> Project | None:
        workspace = await self._find_workspace(external_ref)
        return None if workspace is None else await self.get_project(str(workspace["id"]))

    async def _find_workspace(self, external_ref: str) -> Record | None:
        envelope = await self._client.get(
            "/workspaces",
            {
                "external_reference_service_name": SERVICE_NAME,
                "external_reference_service_model": OPPORTUNITY_MODEL,
                "external_reference_service_model_refs": _plain_ref(external_ref, "external_ref"),
                # An archived project still holds the reference: finding it is what prevents a second one.
                "include_archived": "true",
                "include": "external_references",
                "per_page": 2,
            },
        )
        matches = [
            workspace
            for workspace in envelope.records()
            if mapping.external_ref(
                envelope.related(workspace, "external_reference_ids", "external_references"),
                OPPORTUNITY_MODEL,
            )
            == external_ref
        ]
        if len(matches) > 1:
            raise Conflict(
                f"{len(matches)} Kantata projects carry reference {external_ref}: "
                f"{', '.join(str(m['id']) for m in matches)}",
                system=SYSTEM,
            )
        return matches[0] if matches else None

    async def ensure_project(self, spec: ProjectSpec) -> Project:
        _plain_ref(spec.external_ref, "external_ref")
        currency = spec.contract.currency
        if spec.budget is not None and spec.budget.currency != currency:
            raise _rejected(f"budget is in {spec.budget.currency}, the contract in {currency}", "budget")
        fields = await self._require_fields()
        workspace = await self._find_workspace(spec.external_ref)
        if workspace is None:
            workspace = await self._create_workspace(spec, fields)
        await self._ensure_stories(str(workspace["id"]), spec)
        return await self.get_project(str(workspace["id"]))

    async def _create_workspace(self, spec: ProjectSpec, fields: dict[str, str]) -> Record:
        rate_card_id = await self._rate_card_for(spec)
        lead = await self._user_named(spec.project_manager) if spec.project_manager else None
        attributes: dict[str, Any] = {
            "title": spec.name,
            "description": f"{spec.customer_name}, {spec.service_code}, from {spec.external_ref}",
            "budgeted": spec.budget is not None,
            "currency": spec.contract.currency,
            "rate_card_id": int(rate_card_id),
            "creator_role": "maven",
            # Approved timesheets are what ps-sync bills, so projects it creates require time approval.
            "require_time_approvals": True,
            "require_expense_approvals": False,
            "status_key": ACTIVE_STATUS_KEY,
            "external_reference": {
                "service_name": SERVICE_NAME,
                "service_model": OPPORTUNITY_MODEL,
                "service_model_ref": spec.external_ref,
                "status": "successful",
            },
            "custom_fields": [
                {"custom_field_id": int(fields[name]), "value": value}
                for name, value in (
                    (CLIENT_FIELD, spec.customer_name),
                    (LEGAL_ENTITY_FIELD, spec.contract.legal_entity),
                    (BILLING_MODEL_FIELD, spec.contract.billing_model.value),
                    (SERVICE_CODE_FIELD, spec.service_code),
                )
            ],
        }
        if spec.budget is not None:
            # Sent as a JSON number written from the Decimal's digits (see client.encode_json).
            attributes["price"] = spec.budget.amount
        if spec.start_date is not None:
            attributes["start_date"] = spec.start_date.isoformat()
        if lead is not None:
            # Without it Kantata makes the API user the lead; the caller sees that on Project.project_manager.
            attributes["primary_maven_id"] = int(lead["id"])
        envelope = await self._client.post("/workspaces", {"workspace": attributes})
        return envelope.one()

    async def _user_named(self, person: str) -> Record | None:
        """The one Kantata user whose full name or email is `person` (ignoring case), else None."""
        wanted = " ".join(person.split()).casefold()
        users, _ = await self._client.all_records("/users", {"search": person.strip()})
        matches = [
            user
            for user in users
            if wanted
            in (
                " ".join(str(user.get("full_name") or "").split()).casefold(),
                str(user.get("email_address") or "").casefold(),
            )
        ]
        return matches[0] if len(matches) == 1 else None

    async def _rate_card_for(self, spec: ProjectSpec) -> str:
        """The rate card in the contract currency: from the set the service names (which must exist: other
        rates would bill the customer wrongly), else the set named after the service code, else the account
        default set (the one Kantata applies when a project names none)."""
        records, envelopes = await self._client.all_records("/rate_card_sets", {"include": "rate_cards"})
        by_title = {record["title"]: record for record in records}
        if spec.rate_card_set is not None and spec.rate_card_set not in by_title:
            raise _rejected(
                f"rate card set {spec.rate_card_set!r} (named by service {spec.service_code}) does not exist "
                "in Kantata",
                "rate_card_set",
            )
        chosen = by_title.get(spec.rate_card_set or spec.service_code) or next(
            (r for r in records if r.get("default")), None
        )
        if chosen is None:
            raise _rejected("the Kantata account has no default rate card set", "rate_card")
        cards = [
            card for envelope in envelopes for card in envelope.related(chosen, "rate_card_ids", "rate_cards")
        ]
        card = next((card for card in cards if card["currency"] == spec.contract.currency), None)
        if card is None:
            raise _rejected(
                f"rate card set {chosen['title']!r} has no {spec.contract.currency} rate card", "rate_card"
            )
        return str(card["id"])

    async def _ensure_stories(self, workspace_id: str, spec: ProjectSpec) -> None:
        stories, _ = await self._client.all_records(
            "/stories", {"workspace_id": workspace_id, "show_archived": "true"}
        )
        present = {(story["title"], story["story_type"]) for story in stories}
        wanted = [(title, "task") for title in spec.tasks] + [
            (title, "milestone") for title in spec.milestones
        ]
        missing = [pair for pair in dict.fromkeys(wanted) if pair not in present]
        # A fixed fee's billing schedule rides on its milestones as their budget (read back by to_milestone).
        charges = {charge.milestone: charge.amount for charge in spec.contract.billing_schedule}
        if missing:
            await self._client.post(
                "/stories",
                {
                    "stories": [
                        {
                            "workspace_id": int(workspace_id),
                            "title": title,
                            "story_type": story_type,
                            "billable": story_type == "task",
                            **(
                                {"budget_estimate_in_cents": mapping.subunits(charges[title])}
                                if story_type == "milestone" and title in charges
                                else {}
                            ),
                        }
                        for title, story_type in missing
                    ]
                },
            )

    async def get_project(self, project_id: str) -> Project:
        envelope = await self._client.get(
            f"/workspaces/{project_id}",
            {
                "include_archived": "true",
                "include": "external_references,custom_field_values,primary_maven",
            },
        )
        workspace = envelope.one()
        stories, _ = await self._client.all_records("/stories", {"workspace_id": project_id})
        return mapping.to_project(
            workspace,
            references=envelope.related(workspace, "external_reference_ids", "external_references"),
            values=envelope.related(workspace, "custom_field_value_ids", "custom_field_values"),
            stories=stories,
            leads=envelope.related(workspace, "primary_maven_id", "users"),
        )

    async def set_project_status(self, project_id: str, status: ProjectStatus, reason: str) -> None:
        envelope = await self._client.get(
            f"/workspaces/{project_id}", {"include_archived": "true", "include": "external_references"}
        )
        workspace = envelope.one()
        attributes: dict[str, Any] = {"archived": status == ProjectStatus.ARCHIVED}
        if status != ProjectStatus.ARCHIVED:
            attributes["status_key"] = (
                ON_HOLD_STATUS_KEY if status == ProjectStatus.ON_HOLD else ACTIVE_STATUS_KEY
            )
        reference = mapping.external_ref(
            envelope.related(workspace, "external_reference_ids", "external_references"), OPPORTUNITY_MODEL
        )
        if reference is not None:
            # The reason travels on our external reference, where Kantata shows integration messages.
            attributes["external_reference"] = {
                "service_name": SERVICE_NAME,
                "service_model": OPPORTUNITY_MODEL,
                "service_model_ref": reference,
                "status": "successful",
                "external_message": f"{status.value}: {reason}"[:255],
            }
        await self._client.put(f"/workspaces/{project_id}", {"workspace": attributes})

    # --- rate cards -----------------------------------------------------------------------------------------

    async def get_rate_card(self, project_id: str) -> RateCard:
        workspace = (await self._client.get(f"/workspaces/{project_id}", {"include_archived": "true"})).one()
        if workspace.get("rate_card_id") is None:
            raise NotFound(f"Kantata project {project_id} has no rate card", system=SYSTEM)
        card = (await self._client.get(f"/rate_cards/{workspace['rate_card_id']}")).one()
        versions: list[tuple[str, int | None, dict[str, int]]] = []
        async for envelope, _ in self._client.pages(
            "/rate_card_versions",
            {
                "rate_card_id": card["id"],
                "include": "rate_card_set_version,rate_card_roles",
            },
        ):
            for version in envelope.records():
                set_versions = envelope.related(version, "rate_card_set_version_id", "rate_card_set_versions")
                if not set_versions:
                    continue
                explicit = {
                    str(role_rate["role_id"]): int(role_rate["rate"])
                    for role_rate in envelope.related(version, "rate_card_role_ids", "rate_card_roles")
                }
                default = version.get("default_rate")
                versions.append(
                    (set_versions[0]["effective_date"], None if default is None else int(default), explicit)
                )
        roles, _ = await self._client.all_records("/roles", {})
        return mapping.to_rate_card(card, versions, {str(role["id"]): role["name"] for role in roles})

    # --- billable work --------------------------------------------------------------------------------------

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
        number = _plain_ref(invoice_number, "invoice_number")
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
        for chunk in _chunks(milestone_ids, _CHUNK):
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

    async def unbilled_milestones(self, project_id: str) -> list[Milestone]:
        """Milestones of the project without an ERP invoice reference; completion and budget as mapped."""
        workspace = (await self._client.get(f"/workspaces/{project_id}", {"include_archived": "true"})).one()
        currency = str(workspace.get("currency") or "")
        stories = await self._milestone_stories({"workspace_id": project_id})
        return [mapping.to_milestone(story, currency) for story, billed in stories if billed is None]

    async def project_resources(self, project_id: str) -> list[Resource]:
        """Participants of the project (the provider team), each in their project role, else their account
        role (GET /participations, include=user,active_roles,primary_role)."""
        resources: list[Resource] = []
        async for envelope, _ in self._client.pages(
            "/participations",
            {"workspace_id": project_id, "include": "user,active_roles,primary_role"},
        ):
            for participation in envelope.records():
                if participation.get("role") not in (None, "maven"):
                    continue  # the client team logs no billable time
                users = envelope.related(participation, "user_id", "users")
                if not users:
                    continue
                roles = envelope.related(participation, "active_role_ids", "roles") or envelope.related(
                    participation, "primary_role_id", "roles"
                )
                resources.append(mapping.to_resource(users[0], roles[0]["name"] if roles else None))
        return resources

    async def _load(self, key: str, ids: list[str]) -> list[Record]:
        """Records by id with their invoice id (`include=invoice`); NotFound names any id Kantata lacks."""
        found: list[Record] = []
        for chunk in _chunks(ids, _CHUNK):
            params: dict[str, str | int] = {
                "only": ",".join(chunk),
                "from_archived_workspaces": "true",
                "per_page": _CHUNK,
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
        for chunk in _chunks(sorted(invoice_ids), _CHUNK):
            envelope = await self._client.get(
                "/invoices", {"only": ",".join(chunk), "include": "external_references", "per_page": _CHUNK}
            )
            for invoice in envelope.records():
                numbers[str(invoice["id"])] = mapping.invoice_number_of(
                    envelope.related(invoice, "external_reference_ids", "external_references")
                )
        return numbers

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
            raise _rejected(str(exc), "invoice_number") from exc
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

    async def _require_fields(self) -> dict[str, str]:
        if self._field_ids is None:
            records, _ = await self._client.all_records("/custom_fields", {"subject_types": "Workspace"})
            self._field_ids = {record["name"]: str(record["id"]) for record in records}
        missing = [name for name, _ in WORKSPACE_CUSTOM_FIELDS if name not in self._field_ids]
        if missing:
            self._field_ids = None
            raise _rejected(
                "the Kantata account lacks the project custom fields ps-sync needs: " + ", ".join(missing),
                "custom_fields",
            )
        return self._field_ids

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
            raise _rejected("created_after must be timezone-aware", "created_after")
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
        async for envelope, number in self._client.pages("/time_entries", params, start=cursor):
            records = envelope.records()
            numbers = await self._invoice_numbers(
                {str(r["invoice_id"]) for r in records if r.get("is_invoiced") and r.get("invoice_id")}
            )
            items = []
            for record in records:
                roles = envelope.related(record, "role_id", "roles")
                entry = mapping.to_time_entry(
                    record,
                    role_name=roles[0]["name"] if roles else None,
                    invoice_number=numbers.get(str(record.get("invoice_id"))),
                )
                if record.get("rate_in_cents") is not None:
                    rate = mapping.money(
                        int(record["rate_in_cents"]), record["currency"], record.get("currency_base_unit")
                    )
                    entry = entry.model_copy(update={"bill_rate": rate})
                items.append(entry)
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


def kantata_event_types(event_types: Sequence[str]) -> list[str]:
    names = list(event_types) or list(mapping.EVENT_TYPES)
    out: list[str] = []
    for name in names:
        if name in mapping.EVENT_TYPES:
            out.extend(mapping.EVENT_TYPES[name])
        elif ":" in name and "," not in name:
            out.append(name)
        else:
            raise _rejected(
                f"unknown event type {name!r}; use {', '.join(mapping.EVENT_TYPES)} or a Kantata "
                "type like time_entry:updated",
                "event_types",
            )
    return list(dict.fromkeys(out))


def as_psa(connector: KantataConnector) -> PsaConnector:
    """The connector in its role; mypy checks here that it satisfies the PSA protocol."""
    return connector
