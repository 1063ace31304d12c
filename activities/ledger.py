"""Ledger activities: short, local reads and writes of ps-sync's own records (run as local activities)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from temporalio import activity

from activities.billing_latency import note_billing_latency
from canonical import ExceptionOwner, ProjectContract
from canonical.contract_versions import ContractVersion
from domain.account_mapping import AccountMap
from domain.billing_policy import BillingHistory, PriorPosting
from ledger.account_mapping import account_rules
from ledger.contract_versions import contract_versions
from ledger.contracts import get_contract, save_contract
from ledger.database import Database
from ledger.repository import (
    append_audit,
    list_accounts,
    list_tax_rates,
    mark_posting_billed,
    open_exception,
    postings_for,
)
from ledger.vocab import PostingState


class RaiseExceptionInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    dedupe_key: str
    process: str
    owner: ExceptionOwner
    reason: str
    record: dict[str, Any]


class RaiseExceptionResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int


class RaiseExceptionsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    items: list[RaiseExceptionInput]


class RaiseExceptionsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_ids: list[int]


class AuditInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    action: str
    entity: str
    key: str
    detail: dict[str, Any] = {}


class AuditResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    audit_id: int


class SaveContractInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    contract: ProjectContract


class SaveContractResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str


class LoadContractInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    psa: str
    project_id: str


class LoadContractResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # The latest version: what the project is billed under from its version's date on.
    contract: ProjectContract | None
    # Every version, oldest first, once the contract was amended; () in runs recorded before versions.
    versions: tuple[ContractVersion, ...] = ()


class MarkPostingBilledInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    idempotency_key: str


class MarkPostingBilledResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    idempotency_key: str


class BillingHistoryInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    # The ERP the project's entity books in: its synced tax rates come back with the history.
    erp: str | None = None
    # The project's legal entity: its account mapping comes back with the history.
    legal_entity: str | None = None


class BillingHistoryResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    history: BillingHistory
    # Tax code -> still active, as ReferenceSync last read them from the ERP; None before any sync.
    erp_tax_codes: dict[str, bool] | None = None
    # The entity's account mapping with the synced state of the accounts it names; None: no mapping.
    accounts: AccountMap | None = None


class LedgerActivities:
    def __init__(self, database: Database) -> None:
        self._db = database

    @activity.defn
    def raise_exception(self, input: RaiseExceptionInput) -> RaiseExceptionResult:
        info = activity.info()
        with self._db.session() as session:
            item = open_exception(
                session,
                dedupe_key=input.dedupe_key,
                process=input.process,
                owner=input.owner.value,
                reason=input.reason,
                record=input.record,
                workflow_id=info.workflow_id,
                run_id=info.workflow_run_id,
            )
        return RaiseExceptionResult(exception_id=item.id)

    @activity.defn
    def raise_exceptions(self, input: RaiseExceptionsInput) -> RaiseExceptionsResult:
        """Many bad records in one call: a batch with 500 unrateable lines must not cost 500 activities."""
        info = activity.info()
        with self._db.session() as session:
            ids = [
                open_exception(
                    session,
                    dedupe_key=item.dedupe_key,
                    process=item.process,
                    owner=item.owner.value,
                    reason=item.reason,
                    record=item.record,
                    workflow_id=info.workflow_id,
                    run_id=info.workflow_run_id,
                ).id
                for item in input.items
            ]
        return RaiseExceptionsResult(exception_ids=ids)

    @activity.defn
    def audit(self, input: AuditInput) -> AuditResult:
        info = activity.info()
        with self._db.session() as session:
            entry = append_audit(
                session,
                workflow_id=info.workflow_id,
                run_id=info.workflow_run_id,
                actor="ps-sync",
                action=input.action,
                entity=input.entity,
                key=input.key,
                detail=input.detail,
            )
        note_billing_latency(self._db, action=input.action, key=input.key, detail=input.detail)
        return AuditResult(audit_id=entry.id)

    @activity.defn
    def save_project_contract(self, input: SaveContractInput) -> SaveContractResult:
        with self._db.session() as session:
            save_contract(session, contract=input.contract)
        return SaveContractResult(project_id=input.contract.project_id)

    @activity.defn
    def load_project_contract(self, input: LoadContractInput) -> LoadContractResult:
        with self._db.session() as session:
            contract = get_contract(session, psa=input.psa, project_id=input.project_id)
            versions = contract_versions(session, psa=input.psa, project_id=input.project_id)
        # Only an amended contract has more than the one version billing already reads as `contract`.
        return LoadContractResult(contract=contract, versions=versions if len(versions) > 1 else ())

    @activity.defn
    def billing_history(self, input: BillingHistoryInput) -> BillingHistoryResult:
        """Invoices posted for the project so far: first-invoice approval, caps, retainers, late work."""
        with self._db.session() as session:
            postings = postings_for(session, project_id=input.project_id)
            synced = list_tax_rates(session, system=input.erp) if input.erp else []
            accounts = _account_map(session, input.legal_entity, input.erp)
        return BillingHistoryResult(
            erp_tax_codes={rate.code: rate.active for rate in synced} or None,
            accounts=accounts,
            history=BillingHistory(
                postings=tuple(
                    PriorPosting(
                        period=posting.period,
                        number=posting.number,
                        amount=posting.amount,
                        idempotency_key=posting.idempotency_key,
                        billed=posting.state == PostingState.BILLED,
                    )
                    for posting in postings
                )
            ),
        )

    @activity.defn
    def mark_posting_billed(self, input: MarkPostingBilledInput) -> MarkPostingBilledResult:
        with self._db.session() as session:
            mark_posting_billed(session, idempotency_key=input.idempotency_key)
        return MarkPostingBilledResult(idempotency_key=input.idempotency_key)


def _account_map(session: Session, legal_entity: str | None, erp: str | None) -> AccountMap | None:
    if legal_entity is None or erp is None:
        return None
    rules = account_rules(session, legal_entity=legal_entity)
    if not rules:
        return None
    chart = list_accounts(session, system=erp)
    # Only the accounts the rules name travel with the history: a chart can hold hundreds.
    named = {code for rule in rules for code in (rule.account_code, rule.cost_account_code) if code}
    return AccountMap(
        legal_entity=legal_entity,
        erp=erp,
        rules=rules,
        chart={a.code: a.active for a in chart if a.code in named} if chart else None,
    )
