"""The ingress in-process (httpx.ASGITransport) on a migrated SQLite ledger and a stand-in Temporal client.

Input validation needs no Temporal server: the stand-in records every call that could start or change a
run, answers "no such run" to the rest, and can be made unreachable, as a real client is when the server is
down (RPCError UNAVAILABLE, "tcp connect error").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from ingress.app import create_app
from ingress.identity import mint_dev_token
from ledger.database import Database

BASE_URL = "http://ingress.test"
# The calls that start a run or change one; reads are not recorded.
CHANGES = ("start", "signal", "update")


@dataclass(frozen=True)
class Call:
    kind: str
    workflow_id: str
    detail: str = ""


class _Service:
    def __init__(self, temporal: StandInTemporal) -> None:
        self._temporal = temporal

    async def check_health(self, **_: Any) -> bool:
        self._temporal.reach()
        return True


@dataclass
class _Handle:
    id: str
    temporal: StandInTemporal

    async def signal(self, name: str, *_: Any, **__: Any) -> None:
        self.temporal.reach()
        self.temporal.calls.append(Call("signal", self.id, name))
        raise _not_found(self.id)

    async def execute_update(self, name: str, *_: Any, **__: Any) -> Any:
        self.temporal.reach()
        self.temporal.calls.append(Call("update", self.id, name))
        raise _not_found(self.id)

    async def query(self, *_: Any, **__: Any) -> Any:
        self.temporal.reach()
        raise _not_found(self.id)

    async def describe(self, **_: Any) -> Any:
        self.temporal.reach()
        raise _not_found(self.id)

    async def result(self, **_: Any) -> Any:
        self.temporal.reach()
        raise _not_found(self.id)

    async def fetch_history_events(self, **_: Any) -> AsyncIterator[Any]:
        self.temporal.reach()
        events: tuple[Any, ...] = ()
        for event in events:
            yield event


def _not_found(workflow_id: str) -> RPCError:
    return RPCError(f"workflow not found for ID: {workflow_id}", RPCStatusCode.NOT_FOUND, b"")


@dataclass
class StandInTemporal:
    namespace: str = "default"
    down: bool = False
    calls: list[Call] = field(default_factory=list)
    data_converter: DataConverter = field(default_factory=lambda: DataConverter.default)

    def __post_init__(self) -> None:
        self.service_client = _Service(self)

    def reach(self) -> None:
        if self.down:
            raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")

    def changes(self) -> list[Call]:
        return [call for call in self.calls if call.kind in CHANGES]

    def starts(self) -> list[Call]:
        return [call for call in self.calls if call.kind == "start"]

    async def start_workflow(self, workflow: Any, *_: Any, id: str, **__: Any) -> _Handle:
        self.reach()
        self.calls.append(Call("start", id, str(workflow)))
        return _Handle(id, self)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> _Handle:
        return _Handle(workflow_id, self)

    async def list_workflows(self, *_: Any, **__: Any) -> AsyncIterator[Any]:
        self.reach()
        runs: tuple[Any, ...] = ()
        for run in runs:
            yield run


def settings_for(directory: Path) -> Settings:
    return Settings(environment="test", database_url=f"sqlite:///{directory / 'ledger.sqlite'}")


def migrated_ledger(settings: Settings) -> Database:
    database = Database.from_url(settings.database_url)
    database.migrate()
    return database


def bearer(settings: Settings, role: str, name: str = "Pat Person") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(settings, name, role)}"}


def static_token(settings: Settings, role: str) -> dict[str, str]:
    """A development role token: the codec server takes only these (the Temporal UI has no person token)."""
    token = next(token for token, has in settings.token_roles().items() if has == role)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Ingress:
    app: FastAPI
    settings: Settings
    temporal: StandInTemporal
    http: httpx.AsyncClient


@asynccontextmanager
async def ingress_in_process(settings: Settings) -> AsyncIterator[Ingress]:
    temporal = StandInTemporal()
    app = create_app(settings, client=temporal)  # type: ignore[arg-type]
    # ASGITransport sends no lifespan events: run the app's lifespan around the client instead.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as http:
            yield Ingress(app=app, settings=settings, temporal=temporal, http=http)
