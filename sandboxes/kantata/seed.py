"""Seeding a Kantata account over its API, as a customer's admin script would: people with roles, a rate
card with dated versions, logged and approved time, expenses, a completed milestone.

Used by the demo, the tests and the benchmark (which logs 100,000 time entries: `log_time` sends Kantata's
bulk create, 100 entries a request, with bounded parallelism). Works against the sandbox or a real account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

import httpx

from sandboxes import exact_json
from sandboxes.kantata.config import KantataSandboxConfig
from sandboxes.kantata.currency import to_subunits

BULK = 100


class SeedError(RuntimeError):
    """Kantata refused a seeding call; the message carries its error body."""


class Amount(Protocol):
    """A Decimal amount in an ISO 4217 currency (ps-sync's Money is one)."""

    @property
    def amount(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...


def subunits(money: Amount) -> int:
    return to_subunits(money.amount, money.currency)


@dataclass(frozen=True)
class Consultant:
    user_id: str
    full_name: str
    email: str
    role: str
    role_id: str


@dataclass(frozen=True)
class TimeLog:
    user_id: str
    day: date
    minutes: int
    story_id: str | None = None
    billable: bool = True
    notes: str | None = None


class KantataSeeder:
    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 60.0,
    ) -> None:
        base = base_url.rstrip("/")
        self._token_url = f"{base}/oauth/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self._token_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=f"{base}/api/v1", timeout=timeout, headers={"Accept": "application/json"}
        )

    @classmethod
    def for_sandbox(cls, base_url: str, config: KantataSandboxConfig | None = None) -> KantataSeeder:
        """A seeder holding the sandbox's own client credentials (the dev defaults unless configured)."""
        config = config or KantataSandboxConfig()
        return cls(base_url=base_url, client_id=config.client_id, client_secret=config.client_secret)

    async def __aenter__(self) -> KantataSeeder:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _bearer(self, stale: str | None = None) -> str:
        """A client-credentials token from Kantata's /oauth/token (RFC 6749 section 4.4)."""
        # Parallel bulk sends share one token: only the first to find it missing or stale asks again.
        async with self._token_lock:
            if self._token is None or self._token == stale:
                response = await self._http.post(
                    self._token_url,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                    },
                )
                if response.status_code != 200:
                    raise SeedError(f"token request -> {response.status_code}: {response.text[:500]}")
                self._token = str(response.json()["access_token"])
            return self._token

    async def call(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {} if body is None else {"Content-Type": "application/json"}
        content = None if body is None else exact_json.dumps(body).encode()
        token = await self._bearer()
        for attempt in range(2):
            response = await self._http.request(
                method,
                path,
                params={k: str(v) for k, v in (params or {}).items()},
                content=content,
                headers={**headers, "Authorization": f"Bearer {token}"},
            )
            if response.status_code != 401 or attempt:
                break
            # An expired token: fetch a fresh one once, as any API client would.
            token = await self._bearer(stale=token)
        if response.status_code >= 400:
            raise SeedError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return {} if response.status_code == 204 else dict(response.json())

    @staticmethod
    def records(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [body[ref["key"]][ref["id"]] for ref in body["results"]]

    async def every(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.call("GET", path, params={**(params or {}), "page": page, "per_page": 200})
            out.extend(self.records(body))
            if page >= body["meta"]["page_count"]:
                return out
            page += 1

    # --- people ---------------------------------------------------------------------------------------------

    async def role(self, name: str) -> str:
        for role in await self.every("/roles"):
            if role["name"].lower() == name.lower():
                return str(role["id"])
        return str(self.records(await self.call("POST", "/roles", body={"role": {"name": name}}))[0]["id"])

    async def consultant(self, full_name: str, email: str, role: str) -> Consultant:
        """An account member with an account role (Kantata creates members through account invitations)."""
        role_id = await self.role(role)
        existing = [
            user
            for user in await self.every("/users", {"search": email})
            if user.get("email_address", "").lower() == email.lower()
        ]
        if existing:
            user_id = str(existing[0]["id"])
        else:
            body = await self.call(
                "POST",
                "/account_invitations",
                body={
                    "account_invitation": {
                        "email_address": email,
                        "full_name": full_name,
                        "role_id": int(role_id),
                    }
                },
            )
            user_id = str(self.records(body)[0]["user_id"])
        return Consultant(user_id=user_id, full_name=full_name, email=email, role=role, role_id=role_id)

    async def cost_rate(self, user_id: str, rate: Amount) -> None:
        """The member's hourly cost in the rate's currency, for time they log from now on."""
        (membership,) = self.records(
            await self.call("GET", "/account_memberships", params={"by_user_id": user_id})
        )
        await self.call(
            "POST",
            "/cost_rates",
            body={
                "cost_rate": {
                    "account_membership_id": int(membership["id"]),
                    "currency": rate.currency,
                    "amount_in_subunits": subunits(rate),
                }
            },
        )

    async def works_for(self, user_id: str, firm: str) -> None:
        """Make the member a subcontractor: the User custom field `Supplier` names the firm they work for."""
        fields = await self.every("/custom_fields", {"subject_types": "User"})
        field = next((f for f in fields if f["name"] == "Supplier"), None)
        if field is None:
            raise SeedError("the account has no User custom field 'Supplier'")
        await self.call(
            "POST",
            "/custom_field_values",
            body={
                "custom_field_value": {
                    "subject_type": "User",
                    "subject_id": int(user_id),
                    "custom_field_id": int(field["id"]),
                    "value": firm,
                }
            },
        )

    async def add_to_project(self, workspace_id: str, consultants: Sequence[Consultant]) -> None:
        present = {
            str(p["user_id"]) for p in await self.every("/participations", {"workspace_id": workspace_id})
        }
        new = [c for c in consultants if c.user_id not in present]
        if new:
            await self.call(
                "POST",
                "/participations",
                body={
                    "participations": [
                        {
                            "workspace_id": int(workspace_id),
                            "user_id": int(c.user_id),
                            "role": "maven",
                            "role_id": int(c.role_id),
                        }
                        for c in new
                    ]
                },
            )

    # --- rate cards -----------------------------------------------------------------------------------------

    async def rate_card(
        self,
        currency: str,
        versions: Mapping[date, Mapping[str, Amount]],
        *,
        set_title: str | None = None,
        default_rate: Amount | None = None,
    ) -> str:
        """The `currency` card of a rate card set (the account default, or `set_title`) with a version per
        effective date holding the given hourly rates by role name. Returns the rate card id."""
        sets = await self.every("/rate_card_sets")
        chosen = next((s for s in sets if (s["title"] == set_title if set_title else s.get("default"))), None)
        if chosen is None:
            if set_title is None:
                raise SeedError("the account has no default rate card set")
            chosen = self.records(
                await self.call("POST", "/rate_card_sets", body={"rate_card_set": {"title": set_title}})
            )[0]
        set_id = str(chosen["id"])
        cards = [
            c
            for c in await self.every("/rate_cards", {"rate_card_set_id": set_id})
            if c["currency"] == currency
        ]
        card_id = (
            str(cards[0]["id"])
            if cards
            else str(
                self.records(
                    await self.call(
                        "POST",
                        "/rate_cards",
                        body={"rate_card": {"rate_card_set_id": int(set_id), "currency": currency}},
                    )
                )[0]["id"]
            )
        )
        set_versions = {
            v["effective_date"]: str(v["id"])
            for v in await self.every("/rate_card_set_versions", {"rate_card_set_id": set_id})
        }
        for effective in sorted(versions):
            if effective.isoformat() not in set_versions:
                body = {
                    "rate_card_set_version": {
                        "rate_card_set_id": int(set_id),
                        "effective_date": effective.isoformat(),
                    }
                }
                set_versions[effective.isoformat()] = str(
                    self.records(await self.call("POST", "/rate_card_set_versions", body=body))[0]["id"]
                )
            card_version = next(
                v
                for v in await self.every(
                    "/rate_card_versions",
                    {
                        "rate_card_id": card_id,
                        "rate_card_set_version_id": set_versions[effective.isoformat()],
                    },
                )
            )
            if default_rate is not None:
                await self.call(
                    "PUT",
                    f"/rate_card_versions/{card_version['id']}",
                    body={"rate_card_version": {"default_rate": subunits(default_rate)}},
                )
            existing = {
                str(r["role_id"]): str(r["id"])
                for r in await self.every("/rate_card_roles", {"rate_card_version_id": card_version["id"]})
            }
            for role_name, rate in versions[effective].items():
                if rate.currency != currency:
                    raise SeedError(f"rate for {role_name} is in {rate.currency}, the card is {currency}")
                role_id = await self.role(role_name)
                if role_id in existing:
                    await self.call(
                        "PUT",
                        f"/rate_card_roles/{existing[role_id]}",
                        body={"rate_card_role": {"rate": subunits(rate)}},
                    )
                else:
                    await self.call(
                        "POST",
                        "/rate_card_roles",
                        body={
                            "rate_card_role": {
                                "rate_card_version_id": int(card_version["id"]),
                                "role_id": int(role_id),
                                "rate": subunits(rate),
                            }
                        },
                    )
        return card_id

    # --- time ---------------------------------------------------------------------------------------------

    async def log_time(self, workspace_id: str, logs: Sequence[TimeLog], *, parallel: int = 4) -> list[str]:
        """Bulk-creates the entries, 100 a request; returns their ids in the order given."""
        batches = [logs[start : start + BULK] for start in range(0, len(logs), BULK)]
        gate = asyncio.Semaphore(parallel)

        async def send(batch: Sequence[TimeLog]) -> list[str]:
            async with gate:
                body = await self.call(
                    "POST",
                    "/time_entries",
                    body={
                        "time_entries": [
                            {
                                "workspace_id": int(workspace_id),
                                "user_id": int(log.user_id),
                                "date_performed": log.day.isoformat(),
                                "time_in_minutes": log.minutes,
                                "billable": log.billable,
                                **({"story_id": int(log.story_id)} if log.story_id else {}),
                                **({"notes": log.notes} if log.notes else {}),
                            }
                            for log in batch
                        ]
                    },
                )
                return [str(ref["id"]) for ref in body["results"]]

        results = await asyncio.gather(*(send(batch) for batch in batches))
        return [entry_id for batch_ids in results for entry_id in batch_ids]

    async def submit_timesheet(self, workspace_id: str, time_entry_ids: Sequence[str], title: str) -> str:
        body = await self.call(
            "POST",
            "/timesheet_submissions",
            body={
                "timesheet_submission": {
                    "workspace_id": int(workspace_id),
                    "title": title,
                    "line_item_ids": [int(i) for i in time_entry_ids],
                }
            },
        )
        return str(body["results"][0]["id"])

    async def approve_timesheet(self, submission_id: str, note: str = "Approved") -> None:
        await self.call(
            "PUT",
            f"/timesheet_submissions/{submission_id}/approve",
            body={"resolution": {"description": note}},
        )

    async def submit_and_approve(
        self, workspace_id: str, time_entry_ids: Sequence[str], *, per_timesheet: int = 500, parallel: int = 4
    ) -> list[str]:
        """One timesheet per person (a timesheet holds one person's time), approved by the manager."""
        by_user: dict[str, list[str]] = {}
        for start in range(0, len(time_entry_ids), 200):
            chunk = time_entry_ids[start : start + 200]
            body = await self.call(
                "GET",
                "/time_entries",
                params={"only": ",".join(chunk), "per_page": 200, "from_archived_workspaces": "true"},
            )
            for entry in self.records(body):
                by_user.setdefault(str(entry["user_id"]), []).append(str(entry["id"]))
        gate = asyncio.Semaphore(parallel)

        async def approve(user_id: str, ids: list[str], part: int) -> str:
            async with gate:
                submission = await self.submit_timesheet(workspace_id, ids, f"Timesheet {user_id}/{part}")
                await self.approve_timesheet(submission)
                return submission

        jobs = [
            approve(user_id, ids[start : start + per_timesheet], start // per_timesheet)
            for user_id, ids in by_user.items()
            for start in range(0, len(ids), per_timesheet)
        ]
        return list(await asyncio.gather(*jobs))

    # --- expenses and milestones --------------------------------------------------------------------------

    async def log_expense(
        self,
        workspace_id: str,
        *,
        day: date,
        amount: Amount,
        category: str = "Travel",
        billable: bool = True,
        user_id: str | None = None,
        notes: str | None = None,
        reimbursable: bool = False,
        vendor: str | None = None,
    ) -> str:
        categories = {c["name"]: str(c["id"]) for c in await self.every("/expense_categories")}
        if category not in categories:
            raise SeedError(f"no expense category {category!r}; the account has {', '.join(categories)}")
        attributes: dict[str, Any] = {
            "workspace_id": int(workspace_id),
            "date": day.isoformat(),
            "expense_category_id": int(categories[category]),
            "category": category,
            "amount_in_cents": subunits(amount),
            "billable": billable,
        }
        if user_id is not None:
            attributes["user_id"] = int(user_id)
        if notes is not None:
            attributes["notes"] = notes
        if reimbursable:
            attributes["reimbursable"] = True
        if vendor is not None:
            attributes["vendor"] = vendor
        body = await self.call("POST", "/expenses", body={"expense": attributes})
        return str(body["results"][0]["id"])

    async def story(self, workspace_id: str, title: str) -> dict[str, Any]:
        for story in await self.every("/stories", {"workspace_id": workspace_id}):
            if story["title"] == title:
                return story
        raise SeedError(f"project {workspace_id} has no task or milestone titled {title!r}")

    async def complete_milestone(self, workspace_id: str, title: str) -> str:
        # A template may name a task and a milestone alike ("Go-live"): only the milestone is meant here.
        milestones = await self.every(
            "/stories", {"workspace_id": workspace_id, "with_story_type": "milestone"}
        )
        story = next((s for s in milestones if s["title"] == title), None)
        if story is None:
            raise SeedError(f"project {workspace_id} has no milestone titled {title!r}")
        await self.call("PUT", f"/stories/{story['id']}", body={"story": {"state": "completed"}})
        return str(story["id"])
