"""Activities of a contract amendment: the project's contract versions in the ledger, and the PSA project's
budget and milestones brought to the amended contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import connector_errors
from canonical.contract_versions import AmendedProject, ContractVersion, ProjectAmendment
from connectors.roles import PsaConnector, PsaProjectAmender
from ledger.contract_versions import (
    VersionConflict,
    contract_versions,
    project_for_opportunity,
    save_contract_version,
)
from ledger.database import Database


class LoadContractVersionsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    crm: str
    psa: str
    opportunity_id: str


class LoadContractVersionsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # None: no contract recorded for the deal (closed-won did not finish, or another CRM's deal).
    project_id: str | None
    versions: tuple[ContractVersion, ...] = ()


class SaveContractVersionInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: ContractVersion


class SaveContractVersionResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: int


class AmendPsaProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    amendment: ProjectAmendment


class AmendPsaProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    amended: AmendedProject


class AmendmentActivities:
    def __init__(self, psa: PsaConnector, database: Database) -> None:
        self._psa = psa
        self._db = database

    @activity.defn
    def load_contract_versions(self, input: LoadContractVersionsInput) -> LoadContractVersionsResult:
        with self._db.session() as session:
            project_id = project_for_opportunity(
                session, crm=input.crm, psa=input.psa, opportunity_id=input.opportunity_id
            )
            if project_id is None:
                return LoadContractVersionsResult(project_id=None)
            versions = contract_versions(session, psa=input.psa, project_id=project_id)
        return LoadContractVersionsResult(project_id=project_id, versions=versions)

    @activity.defn
    def save_contract_version(self, input: SaveContractVersionInput) -> SaveContractVersionResult:
        try:
            with self._db.session() as session:
                saved = save_contract_version(session, version=input.version)
        except VersionConflict as conflict:
            # Another amendment of the same deal got there first: deciding again is the run's, not a retry's.
            raise ApplicationError(str(conflict), type="VersionConflict", non_retryable=True) from conflict
        return SaveContractVersionResult(version=saved.version)

    @activity.defn
    async def amend_psa_project(self, input: AmendPsaProjectInput) -> AmendPsaProjectResult:
        if not isinstance(self._psa, PsaProjectAmender):
            raise ApplicationError(
                f"PSA {self._psa.system} cannot amend a project's budget and milestones",
                type="Unsupported",
                non_retryable=True,
            )
        async with connector_errors():
            amended = await self._psa.amend_project(input.amendment)
        return AmendPsaProjectResult(amended=amended)
