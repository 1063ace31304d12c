"""Kantata projects (workspaces) for the PSA role: found by our external reference, created with their
stories, read back with their rate card and team, and put on hold or archived."""

from __future__ import annotations

from typing import Any

from canonical import Project, ProjectSpec, ProjectStatus, RateCard, Resource
from canonical.contract_versions import AmendedProject, ProjectAmendment
from connectors.errors import Conflict, NotFound
from connectors.kantata import mapping
from connectors.kantata.access import KantataAccess, plain_ref, rejected
from connectors.kantata.client import SYSTEM, Record
from connectors.kantata.fields import (
    BILLING_MODEL_FIELD,
    CLIENT_FIELD,
    LEGAL_ENTITY_FIELD,
    OPPORTUNITY_MODEL,
    PRACTICE_FIELD,
    SERVICE_CODE_FIELD,
    SERVICE_NAME,
)

# Kantata project status keys ps-sync sets (Knowledge Base "Project Status List"); see the sandbox's table.
ACTIVE_STATUS_KEY = 310
ON_HOLD_STATUS_KEY = 420


class KantataProjects(KantataAccess):
    async def find_project(self, external_ref: str) -> Project | None:
        workspace = await self._find_workspace(external_ref)
        return None if workspace is None else await self.get_project(str(workspace["id"]))

    async def _find_workspace(self, external_ref: str) -> Record | None:
        envelope = await self._client.get(
            "/workspaces",
            {
                "external_reference_service_name": SERVICE_NAME,
                "external_reference_service_model": OPPORTUNITY_MODEL,
                "external_reference_service_model_refs": plain_ref(external_ref, "external_ref"),
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
        plain_ref(spec.external_ref, "external_ref")
        currency = spec.contract.currency
        if spec.budget is not None and spec.budget.currency != currency:
            raise rejected(f"budget is in {spec.budget.currency}, the contract in {currency}", "budget")
        fields = await self._require_fields()
        workspace = await self._find_workspace(spec.external_ref)
        if workspace is None:
            workspace = await self._create_workspace(spec, fields)
        await self._ensure_stories(str(workspace["id"]), spec)
        return await self.get_project(str(workspace["id"]))

    async def _create_workspace(self, spec: ProjectSpec, fields: dict[str, str]) -> Record:
        rate_card_id = await self._rate_card_for(spec)
        lead = await self._user_named(spec.project_manager) if spec.project_manager else None
        values = [
            (CLIENT_FIELD, spec.customer_name),
            (LEGAL_ENTITY_FIELD, spec.contract.legal_entity),
            (BILLING_MODEL_FIELD, spec.contract.billing_model.value),
            (SERVICE_CODE_FIELD, spec.service_code),
        ]
        # Only where the account keeps practices: one without the field files the project under none.
        if spec.practice and PRACTICE_FIELD in fields:
            values.append((PRACTICE_FIELD, spec.practice))
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
                {"custom_field_id": int(fields[name]), "value": value} for name, value in values
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
            raise rejected(
                f"rate card set {spec.rate_card_set!r} (named by service {spec.service_code}) does not exist "
                "in Kantata",
                "rate_card_set",
            )
        chosen = by_title.get(spec.rate_card_set or spec.service_code) or next(
            (r for r in records if r.get("default")), None
        )
        if chosen is None:
            raise rejected("the Kantata account has no default rate card set", "rate_card")
        cards = [
            card for envelope in envelopes for card in envelope.related(chosen, "rate_card_ids", "rate_cards")
        ]
        card = next((card for card in cards if card["currency"] == spec.contract.currency), None)
        if card is None:
            raise rejected(
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

    async def amend_project(self, amendment: ProjectAmendment) -> AmendedProject:
        """Budget (the workspace's price) and milestone stories brought to the amended contract.

        Each write is a set to a value, so a repeated amendment finds nothing left to do.
        """
        project_id = amendment.project_id
        workspace = (await self._client.get(f"/workspaces/{project_id}", {"include_archived": "true"})).one()
        budget_set = False
        if amendment.budget is not None:
            if amendment.budget.currency != workspace.get("currency"):
                raise rejected(
                    f"budget is in {amendment.budget.currency}, the project in {workspace.get('currency')}",
                    "budget",
                )
            if workspace.get("price_in_cents") != mapping.subunits(amendment.budget):
                await self._client.put(
                    f"/workspaces/{project_id}",
                    {"workspace": {"budgeted": True, "price": amendment.budget.amount}},
                )
                budget_set = True
        stories, _ = await self._client.all_records(
            "/stories", {"workspace_id": project_id, "show_archived": "true"}
        )
        milestones = {str(s["title"]): s for s in stories if s.get("story_type") == "milestone"}
        charges = {c.milestone: mapping.subunits(c.amount) for c in amendment.billing_schedule}
        added = [title for title in amendment.milestones if title not in milestones]
        if added:
            await self._client.post(
                "/stories",
                {
                    "stories": [
                        {
                            "workspace_id": int(project_id),
                            "title": title,
                            "story_type": "milestone",
                            "billable": False,
                            **({"budget_estimate_in_cents": charges[title]} if title in charges else {}),
                        }
                        for title in added
                    ]
                },
            )
        repriced, archived = [], []
        for title, story in milestones.items():
            if title in amendment.milestones:
                changes: dict[str, Any] = {}
                if story.get("archived"):
                    changes["archived"] = False
                if title in charges and story.get("budget_estimate_in_cents") != charges[title]:
                    changes["budget_estimate_in_cents"] = charges[title]
                    repriced.append(title)
                if changes:
                    await self._client.put(f"/stories/{story['id']}", {"story": changes})
            elif not story.get("archived") and story.get("state") != "completed":
                await self._client.put(f"/stories/{story['id']}", {"story": {"archived": True}})
                archived.append(title)
        return AmendedProject(
            project_id=project_id,
            budget_set=budget_set,
            added=tuple(added),
            repriced=tuple(repriced),
            archived=tuple(archived),
        )

    # --- rate cards and team --------------------------------------------------------------------------------

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
