"""Finance's account mapping over HTTP: which account each kind of invoice line books to, per legal entity.

Roles: `finance` and `ops` read; only `finance` changes a rule, and the change is recorded (on the rule and in
the audit trail) against the person of the verified token, never a name from the body. A rule is checked
against the legal entity's ERP chart of accounts as ReferenceSync last read it: an account the chart lacks or
holds archived is refused. The same functions serve the CLI (`pssync accounts ...`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from canonical import LegalEntity
from config import Settings
from domain.account_mapping import KINDS, AccountRule, MappingKind
from ingress.auth import ActorFromToken, require_identity, require_role
from ingress.exceptions_api import ledger
from ingress.identity import Identity
from ledger.account_mapping import (
    AccountMappingRecord,
    list_account_mappings,
    remove_account_mapping,
    set_account_mapping,
)
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.records import AccountRecord
from ledger.repository import list_accounts

router = APIRouter()

READERS = ("finance", "ops")
EDITORS = ("finance",)
AccountState = Literal["active", "archived", "unknown", "not_synced"]


class MappingProblem(Exception):
    """A change refused before anything was written; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MappingView(BaseModel):
    model_config = ConfigDict(frozen=True)

    legal_entity: str
    erp: str | None
    kind: MappingKind
    key: str
    account_code: str
    # The account as the ERP's synced chart holds it: what finance checks a rule against.
    account_name: str | None
    account_state: AccountState
    cost_account_code: str | None
    cost_account_state: AccountState | None
    updated_by: str
    updated_at: datetime


class MappingList(BaseModel):
    items: list[MappingView]


class MappingBody(ActorFromToken):
    account_code: str = Field(min_length=1, max_length=64)
    cost_account_code: str | None = Field(default=None, min_length=1, max_length=64)


class MappingRemoved(BaseModel):
    removed: MappingView


def _entity(settings: Settings, code: str) -> LegalEntity:
    for entity in settings.entities:
        if entity.code == code:
            return entity
    known = ", ".join(e.code for e in settings.entities)
    raise MappingProblem(404, f"legal entity {code!r} is not configured (configured: {known})")


def _kind(kind: str) -> MappingKind:
    if kind not in KINDS:
        raise MappingProblem(422, f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind  # type: ignore[return-value]


def _state(chart: dict[str, AccountRecord], code: str) -> AccountState:
    if not chart:
        return "not_synced"
    account = chart.get(code)
    if account is None:
        return "unknown"
    return "active" if account.active else "archived"


def _view(record: AccountMappingRecord, erp: str | None, chart: dict[str, AccountRecord]) -> MappingView:
    rule = record.rule
    account = chart.get(rule.account_code)
    return MappingView(
        legal_entity=record.legal_entity,
        erp=erp,
        kind=rule.kind,
        key=rule.key,
        account_code=rule.account_code,
        account_name=account.name if account else None,
        account_state=_state(chart, rule.account_code),
        cost_account_code=rule.cost_account_code,
        cost_account_state=None if rule.cost_account_code is None else _state(chart, rule.cost_account_code),
        updated_by=record.updated_by,
        updated_at=record.updated_at,
    )


def read_mappings(
    database: Database, settings: Settings, legal_entity: str | None = None
) -> list[MappingView]:
    erps = {entity.code: entity.erp for entity in settings.entities}
    if legal_entity is not None:
        _entity(settings, legal_entity)
    with database.session(read_only=True) as session:
        records = list_account_mappings(session, legal_entity=legal_entity)
        charts = {
            erp: {a.code: a for a in list_accounts(session, system=erp)}
            for erp in {erps[r.legal_entity] for r in records if r.legal_entity in erps}
        }
    return [_view(r, erps.get(r.legal_entity), charts.get(erps.get(r.legal_entity, ""), {})) for r in records]


def set_mapping(
    database: Database,
    settings: Settings,
    *,
    legal_entity: str,
    kind: str,
    key: str,
    account_code: str,
    cost_account_code: str | None,
    actor: str,
) -> MappingView:
    """Create or replace a rule, refusing an account the entity's ERP chart lacks or holds archived."""
    entity = _entity(settings, legal_entity)
    try:
        rule = AccountRule(
            kind=_kind(kind), key=key, account_code=account_code, cost_account_code=cost_account_code
        )
    except ValidationError as error:
        raise MappingProblem(422, "; ".join(str(e["msg"]) for e in error.errors())) from None
    with database.session() as session:
        chart = {a.code: a for a in list_accounts(session, system=entity.erp)}
        for code, which in ((rule.account_code, "account"), (rule.cost_account_code, "cost account")):
            state = None if code is None else _state(chart, code)
            if state in ("unknown", "archived"):
                held = "holds it archived" if state == "archived" else "has no such account"
                raise MappingProblem(
                    422,
                    f"{which} {code!r}: {entity.erp}'s chart of accounts for legal entity {entity.code} "
                    f"{held} (as of the last reference sync); choose an active account, or run "
                    "`pssync reference sync` if it was added since",
                )
        try:
            record = set_account_mapping(session, legal_entity=entity.code, rule=rule, actor=actor)
        except InvalidLedgerInput as error:
            raise MappingProblem(422, str(error)) from error
        return _view(record, entity.erp, chart)


def remove_mapping(
    database: Database, settings: Settings, *, legal_entity: str, kind: str, key: str, actor: str
) -> MappingView:
    entity = _entity(settings, legal_entity)
    with database.session() as session:
        try:
            removed = remove_account_mapping(
                session, legal_entity=entity.code, kind=_kind(kind), key=key, actor=actor
            )
        except InvalidLedgerInput as error:
            raise MappingProblem(422, str(error)) from error
        if removed is None:
            raise MappingProblem(404, f"legal entity {entity.code} has no {kind} rule for {key!r}")
        chart = {a.code: a for a in list_accounts(session, system=entity.erp)}
        return _view(removed, entity.erp, chart)


def format_mappings(views: list[MappingView]) -> str:
    """The mapping as a text table, for `pssync accounts list`."""
    if not views:
        return "no account mappings: every line books to its ERP's default account"
    headers = ("entity", "kind", "key", "account", "state", "cost account", "set by")
    rows = [
        (
            v.legal_entity,
            v.kind,
            v.key,
            v.account_code + (f" {v.account_name}" if v.account_name else ""),
            v.account_state,
            (v.cost_account_code or "-") + (f" ({v.cost_account_state})" if v.cost_account_state else ""),
            v.updated_by,
        )
        for v in views
    ]
    widths = [max(len(cells[i]) for cells in (headers, *rows)) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()
        for cells in (headers, *rows)
    )


# --- HTTP ---------------------------------------------------------------------------------------------------


def _http(error: MappingProblem) -> HTTPException:
    return HTTPException(error.status, str(error))


@router.get("/account-mappings", response_model=MappingList)
async def list_mappings(
    request: Request,
    legal_entity: str | None = None,
    database: Database = Depends(ledger),
    _: str = Depends(require_role(*READERS)),
) -> MappingList:
    try:
        views = await asyncio.to_thread(read_mappings, database, request.app.state.settings, legal_entity)
    except MappingProblem as error:
        raise _http(error) from error
    return MappingList(items=views)


@router.put("/account-mappings/{legal_entity}/{kind}/{key:path}", response_model=MappingView)
async def put_mapping(
    legal_entity: str,
    kind: str,
    key: str,
    body: MappingBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*EDITORS)),
) -> MappingView:
    try:
        return await asyncio.to_thread(
            lambda: set_mapping(
                database,
                request.app.state.settings,
                legal_entity=legal_entity,
                kind=kind,
                key=key,
                account_code=body.account_code,
                cost_account_code=body.cost_account_code,
                actor=identity.actor,
            )
        )
    except MappingProblem as error:
        raise _http(error) from error


@router.delete("/account-mappings/{legal_entity}/{kind}/{key:path}", response_model=MappingRemoved)
async def delete_mapping(
    legal_entity: str,
    kind: str,
    key: str,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*EDITORS)),
) -> MappingRemoved:
    try:
        removed = await asyncio.to_thread(
            lambda: remove_mapping(
                database,
                request.app.state.settings,
                legal_entity=legal_entity,
                kind=kind,
                key=key,
                actor=identity.actor,
            )
        )
    except MappingProblem as error:
        raise _http(error) from error
    return MappingRemoved(removed=removed)
