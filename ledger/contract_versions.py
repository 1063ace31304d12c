"""Contract versions: each amendment of a project's contract, dated, with the CRM change that caused it.

Version 1 is what closed-won saved in `project_contract`; it is written here only when the first amendment
is (lazily), so projects made before versions existed read the same. The `project_contract` row always
holds the latest version, so `get_contract` and everything reading it see the amended terms.
"""

from __future__ import annotations

from datetime import date

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical import ProjectContract
from canonical.contract_versions import ContractVersion, CrmChange, version_in_force
from ledger import checks
from ledger.column_types import utc_now
from ledger.contracts import get_contract, save_contract
from ledger.errors import InvalidLedgerInput, LedgerError, StoredRecordInvalid
from ledger.races import insert_unless_present
from ledger.tables import ContractVersionRow, ProjectContractRow

# Version 1 covers every day before the first amendment.
FIRST_DAY = date(1, 1, 1)


class VersionConflict(LedgerError):
    """Another amendment took this version number with other terms: the caller must decide again."""


def contract_versions(session: Session, *, psa: str, project_id: str) -> tuple[ContractVersion, ...]:
    """Every version of the project's contract, oldest first; () when the project has no contract."""
    psa = checks.system_name("psa", psa)
    project_id = checks.key("project_id", project_id)
    rows = _rows(session, psa, project_id)
    if rows:
        return tuple(_version(row) for row in rows)
    contract = get_contract(session, psa=psa, project_id=project_id)
    if contract is None:
        return ()
    return (ContractVersion(version=1, effective_from=FIRST_DAY, contract=contract),)


def contract_in_force(session: Session, *, psa: str, project_id: str, on: date) -> ContractVersion | None:
    """The version whose terms apply to work done on `on`."""
    return version_in_force(contract_versions(session, psa=psa, project_id=project_id), on)


def save_contract_version(session: Session, *, version: ContractVersion) -> ContractVersion:
    """Record an amendment as the next version and make it the project's current contract.

    Saving the same version again (a retried activity) changes nothing; a different one under a number
    already taken is a `VersionConflict`, as is a number that skips one.
    """
    if not isinstance(version, ContractVersion):
        raise InvalidLedgerInput(f"version must be a ContractVersion, got {type(version).__name__}")
    contract = version.contract
    psa = checks.system_name("contract.psa", contract.psa)
    project_id = checks.key("contract.project_id", contract.project_id)
    if version.version < 2 or version.cause is None:
        raise InvalidLedgerInput("an amendment is version 2 or later and names the CRM change behind it")
    existing = contract_versions(session, psa=psa, project_id=project_id)
    if not existing:
        raise InvalidLedgerInput(f"{psa} project {project_id} has no contract to amend")
    if not _rows(session, psa, project_id):
        _insert(session, existing[0])
    taken = {v.version: v for v in existing}
    if version.version in taken:
        if taken[version.version] == version:
            return version
        raise VersionConflict(
            f"{psa} project {project_id} already has a contract version {version.version} with other terms"
        )
    latest = max(taken)
    if version.version != latest + 1:
        raise VersionConflict(
            f"{psa} project {project_id} is at version {latest}; version {version.version} skips one"
        )
    _insert(session, version)
    save_contract(session, contract=contract)
    return version


def _insert(session: Session, version: ContractVersion) -> None:
    contract = version.contract
    psa, project_id = contract.psa, contract.project_id

    def find() -> ContractVersionRow | None:
        return session.scalar(
            select(ContractVersionRow).where(
                ContractVersionRow.psa == psa,
                ContractVersionRow.project_id == project_id,
                ContractVersionRow.version == version.version,
            )
        )

    def build() -> ContractVersionRow:
        return ContractVersionRow(
            psa=psa,
            project_id=project_id,
            version=version.version,
            effective_from=version.effective_from,
            # JSON mode writes Decimals as exact strings, which validate back into the same Decimals.
            contract=contract.model_dump(mode="json"),
            opportunity_id=checks.key("contract.opportunity_id", contract.opportunity_id),
            cause=version.cause.model_dump(mode="json") if version.cause is not None else None,
            created_at=utc_now(),
        )

    row, created = insert_unless_present(session, find=find, build=build)
    if not created and _version(row) != version:
        raise VersionConflict(
            f"{psa} project {project_id} already has a contract version {version.version} with other terms"
        )


def _rows(session: Session, psa: str, project_id: str) -> list[ContractVersionRow]:
    return list(
        session.scalars(
            select(ContractVersionRow)
            .where(ContractVersionRow.psa == psa, ContractVersionRow.project_id == project_id)
            .order_by(ContractVersionRow.version)
        )
    )


def _version(row: ContractVersionRow) -> ContractVersion:
    try:
        return ContractVersion(
            version=row.version,
            effective_from=row.effective_from,
            contract=ProjectContract.model_validate(row.contract),
            cause=CrmChange.model_validate(row.cause) if row.cause is not None else None,
        )
    except ValidationError as error:
        raise StoredRecordInvalid(
            f"stored contract version {row.version} of {row.psa} project {row.project_id} no longer "
            f"matches ContractVersion: {error}"
        ) from error


def project_for_opportunity(session: Session, *, crm: str, psa: str, opportunity_id: str) -> str | None:
    """The PSA project the won deal became, from its recorded contract; None before closed-won finished."""
    rows = session.scalars(
        select(ProjectContractRow).where(
            ProjectContractRow.psa == checks.system_name("psa", psa),
            ProjectContractRow.opportunity_id == checks.key("opportunity_id", opportunity_id),
        )
    )
    projects = sorted(row.project_id for row in rows if row.contract.get("crm") == crm)
    return projects[0] if projects else None
