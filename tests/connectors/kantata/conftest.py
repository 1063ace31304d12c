"""Fixtures: one Kantata sandbox per session on a free port, the real connector and seeder talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from canonical import Money
from connectors.http import OAuth2ClientCredentials
from connectors.kantata import KantataConnector
from sandboxes.faults import FaultConfig
from sandboxes.kantata import KantataSandboxConfig, create_app
from sandboxes.kantata.seed import Consultant, KantataSeeder, TimeLog
from sandboxes.serve import ServedApp, serve_in_thread

CURRENCY = "GBP"
RATES = {
    date(2024, 1, 1): {"Consultant": "150.00", "Senior Consultant": "220.00"},
    date(2024, 6, 1): {"Consultant": "165.00", "Senior Consultant": "240.00"},
}
DEFAULT_RATE = "100.00"


@dataclass
class Sandbox:
    app: FastAPI
    served: ServedApp
    config: KantataSandboxConfig

    @property
    def url(self) -> str:
        return self.served.url

    def connector(self, http: httpx.AsyncClient | None = None) -> KantataConnector:
        return KantataConnector(
            base_url=self.url,
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            http=http,
        )

    def faults(self, **settings: object) -> None:
        self.app.state.plan.configure(FaultConfig.model_validate(settings))


def start_sandbox(**overrides: object) -> Sandbox:
    config = KantataSandboxConfig.model_validate(overrides)
    app = create_app(config)
    return Sandbox(app=app, served=serve_in_thread(app), config=config)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox()
    yield running
    running.served.stop()


@pytest.fixture(autouse=True)
def _calm_sandbox(sandbox: Sandbox) -> Iterator[None]:
    """Faults, limits and dropped replies last one test only."""
    yield
    state = sandbox.app.state
    state.plan.configure(FaultConfig())
    state.rate_limits.general_per_minute = None
    state.rate_limits.endpoint_per_minute = None
    state.rate_limits.reset()
    state.drop_rules.clear()
    state.kantata.events.max_lag_seconds = 0.0


@pytest.fixture
async def psa(sandbox: Sandbox, people: People) -> AsyncIterator[KantataConnector]:
    """The connector, on an account already set up with people and a rate card."""
    connector = sandbox.connector()
    yield connector
    await connector.aclose()


@pytest.fixture(scope="session")
async def seeder(sandbox: Sandbox) -> AsyncIterator[KantataSeeder]:
    async with KantataSeeder.for_sandbox(sandbox.url) as seed:
        yield seed


@pytest.fixture
async def api(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP to the sandbox's Kantata API, for checking the vendor behaviour itself."""
    auth = OAuth2ClientCredentials(
        token_url=f"{sandbox.url}/oauth/token",
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        system="kantata",
    )
    async with httpx.AsyncClient(base_url=f"{sandbox.url}/api/v1", auth=auth) as client:
        yield client


@dataclass
class People:
    consultant: Consultant
    senior: Consultant
    rate_card_id: str


@pytest.fixture(scope="session")
async def people(seeder: KantataSeeder) -> People:
    consultant = await seeder.consultant("Ada Lovelace", "ada@northwind.example", "Consultant")
    senior = await seeder.consultant("Grace Hopper", "grace@northwind.example", "Senior Consultant")
    card = await seeder.rate_card(
        CURRENCY,
        {
            effective: {role: Money.of(rate, CURRENCY) for role, rate in rates.items()}
            for effective, rates in RATES.items()
        },
        default_rate=Money.of(DEFAULT_RATE, CURRENCY),
    )
    return People(consultant=consultant, senior=senior, rate_card_id=card)


class KantataHarness:
    """The PSA contract's hands in Kantata: people log time and expenses, a manager approves timesheets."""

    currency = CURRENCY
    role = "Consultant"
    page_size = 200
    unknown_project_id = "39999999"

    def __init__(self, seeder: KantataSeeder, people: People) -> None:
        self.seeder = seeder
        self.people = people

    def rate(self, role: str, on: date) -> Money:
        effective = max(day for day in RATES if day <= on)
        return Money.of(RATES[effective][role], CURRENCY)

    async def log_approved_time(
        self, project_id: str, *, day: date, minutes: int, billable: bool = True, count: int = 1
    ) -> list[str]:
        ids = await self._log(project_id, day=day, minutes=minutes, billable=billable, count=count)
        await self.seeder.submit_and_approve(project_id, ids)
        return ids

    async def log_unapproved_time(self, project_id: str, *, day: date, minutes: int) -> str:
        return (await self._log(project_id, day=day, minutes=minutes, billable=True, count=1))[0]

    async def _log(
        self, project_id: str, *, day: date, minutes: int, billable: bool, count: int
    ) -> list[str]:
        await self.seeder.add_to_project(project_id, [self.people.consultant])
        logs = [
            TimeLog(user_id=self.people.consultant.user_id, day=day, minutes=minutes, billable=billable)
        ] * count
        return await self.seeder.log_time(project_id, logs)

    async def log_expense(self, project_id: str, *, day: date, amount: Money, billable: bool = True) -> str:
        return await self.seeder.log_expense(
            project_id, day=day, amount=amount, billable=billable, user_id=self.people.consultant.user_id
        )

    async def complete_milestone(self, project_id: str, name: str) -> str:
        return await self.seeder.complete_milestone(project_id, name)


@pytest.fixture
def psa_harness(seeder: KantataSeeder, people: People) -> KantataHarness:
    return KantataHarness(seeder, people)
