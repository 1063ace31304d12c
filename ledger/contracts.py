"""Project contracts: the commercial terms captured when a deal became a project, read at billing time."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical import ProjectContract
from ledger import checks
from ledger.column_types import utc_now
from ledger.errors import InvalidLedgerInput, StoredRecordInvalid
from ledger.races import insert_unless_present
from ledger.tables import ProjectContractRow


def save_contract(session: Session, *, contract: ProjectContract) -> ProjectContract:
    """Store the project's contract, replacing an earlier version for the same PSA project."""
    if not isinstance(contract, ProjectContract):
        raise InvalidLedgerInput(f"contract must be a ProjectContract, got {type(contract).__name__}")
    psa = checks.system_name("contract.psa", contract.psa)
    project_id = checks.key("contract.project_id", contract.project_id)
    values = {
        "opportunity_id": checks.key("contract.opportunity_id", contract.opportunity_id),
        "legal_entity": checks.key(
            "contract.contract.legal_entity", contract.contract.legal_entity, max_length=16
        ),
        # JSON mode writes Decimals as exact strings, which validate back into the same Decimals.
        "contract": contract.model_dump(mode="json"),
    }

    def find() -> ProjectContractRow | None:
        return _by_project(session, psa, project_id)

    def build() -> ProjectContractRow:
        now = utc_now()
        return ProjectContractRow(psa=psa, project_id=project_id, **values, created_at=now, updated_at=now)

    row, created = insert_unless_present(session, find=find, build=build)
    if not created and any(getattr(row, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = utc_now()
        session.flush()
    return contract


def get_contract(session: Session, *, psa: str, project_id: str) -> ProjectContract | None:
    row = _by_project(session, checks.system_name("psa", psa), checks.key("project_id", project_id))
    if row is None:
        return None
    try:
        return ProjectContract.model_validate(row.contract)
    except ValidationError as error:
        # Written by save_contract, so this means the canonical model changed incompatibly: say so plainly.
        raise StoredRecordInvalid(
            f"stored contract for {psa} project {project_id} no longer matches ProjectContract: {error}"
        ) from error


def contracts_for(session: Session, *, legal_entity: str, psa: str | None = None) -> list[ProjectContract]:
    """Every project contract booked by the legal entity (optionally of one PSA), ordered by project id."""
    query = select(ProjectContractRow).where(
        ProjectContractRow.legal_entity == checks.key("legal_entity", legal_entity, max_length=16)
    )
    if psa is not None:
        query = query.where(ProjectContractRow.psa == checks.system_name("psa", psa))
    contracts = []
    for row in session.scalars(query.order_by(ProjectContractRow.project_id)):
        try:
            contracts.append(ProjectContract.model_validate(row.contract))
        except ValidationError as error:
            raise StoredRecordInvalid(
                f"stored contract for {row.psa} project {row.project_id} no longer matches ProjectContract: "
                f"{error}"
            ) from error
    return contracts


def _by_project(session: Session, psa: str, project_id: str) -> ProjectContractRow | None:
    return session.scalar(
        select(ProjectContractRow).where(
            ProjectContractRow.psa == psa, ProjectContractRow.project_id == project_id
        )
    )
