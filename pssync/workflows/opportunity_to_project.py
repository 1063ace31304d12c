"""OpportunityToProject: a closed-won deal becomes an ERP customer and a PSA project, ids written back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pssync.activities.crm import CrmActivities, FetchOpportunityInput, WriteBackInput
    from pssync.activities.erp import EnsureCustomerInput, ErpActivities
    from pssync.activities.ledger import AuditInput, LedgerActivities, RaiseExceptionInput, SaveContractInput
    from pssync.activities.psa import EnsureProjectInput, HoldProjectInput, PsaActivities
    from pssync.canonical import (
        Contract,
        CrmWriteBack,
        ExceptionOwner,
        LegalEntity,
        Opportunity,
        ProjectContract,
        ProjectSpec,
    )
    from pssync.domain.readiness import check_readiness
    from pssync.domain.service_catalog import template_for
    from pssync.workflows import search_attributes as sa
    from pssync.workflows.options import LEDGER_CALL, VENDOR_CALL

PROCESS = "opportunity_to_project"


def workflow_id(crm: str, opportunity_id: str) -> str:
    return f"opportunity-to-project:{crm}:{opportunity_id}"


class OpportunityToProjectInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    crm: str
    opportunity_id: str
    psa: str
    entities: tuple[LegalEntity, ...]


class OpportunityChanged(BaseModel):
    """The CRM told us again about this deal (a new notification); if we wait for a fix, look again."""

    model_config = ConfigDict(frozen=True)
    notification_id: str | None = None


class RetryRequest(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str
    note: str | None = None


class OpportunityToProjectStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    opportunity_id: str
    missing_fields: tuple[str, ...] = ()
    legal_entity: str | None = None
    erp: str | None = None
    erp_customer_id: str | None = None
    project_id: str | None = None
    notifications_seen: int = 0


class OpportunityToProjectResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    opportunity_id: str
    account_id: str
    legal_entity: str
    erp: str
    erp_customer_id: str
    psa: str
    project_id: str


@workflow.defn
class OpportunityToProject:
    def __init__(self) -> None:
        self._stage = "starting"
        self._opportunity_id = ""
        self._missing: tuple[str, ...] = ()
        self._legal_entity: str | None = None
        self._erp: str | None = None
        self._customer_id: str | None = None
        self._project_id: str | None = None
        self._look_again = False
        self._notifications = 0

    @workflow.signal
    def opportunity_changed(self, change: OpportunityChanged) -> None:
        self._notifications += 1
        self._look_again = True

    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        self._look_again = True

    @workflow.query
    def status(self) -> OpportunityToProjectStatus:
        return OpportunityToProjectStatus(
            stage=self._stage,
            opportunity_id=self._opportunity_id,
            missing_fields=self._missing,
            legal_entity=self._legal_entity,
            erp=self._erp,
            erp_customer_id=self._customer_id,
            project_id=self._project_id,
            notifications_seen=self._notifications,
        )

    def _set_stage(self, stage: str, owner: ExceptionOwner | None = None) -> None:
        self._stage = stage
        workflow.upsert_search_attributes(
            [
                sa.SYNC_STAGE.value_set(stage),
                sa.EXCEPTION_OWNER.value_set(owner.value) if owner else sa.EXCEPTION_OWNER.value_unset(),
            ]
        )

    @workflow.run
    async def run(self, input: OpportunityToProjectInput) -> OpportunityToProjectResult:
        self._opportunity_id = input.opportunity_id
        workflow.upsert_search_attributes([sa.OPPORTUNITY_ID.value_set(input.opportunity_id)])
        opportunity, entity = await self._wait_until_ready(input)
        self._legal_entity = entity.code
        workflow.upsert_search_attributes([sa.LEGAL_ENTITY.value_set(entity.code)])

        self._set_stage("creating_customer")
        customer = await workflow.execute_activity_method(
            ErpActivities.ensure_customer,
            EnsureCustomerInput(crm=input.crm, account=opportunity.account, legal_entity=entity.code),
            **VENDOR_CALL,
        )
        self._erp, self._customer_id = customer.erp, customer.customer_id
        workflow.upsert_search_attributes([sa.CUSTOMER_ID.value_set(customer.customer_id)])

        self._set_stage("creating_project")
        spec = _project_spec(input.crm, opportunity, entity)
        project = (
            await workflow.execute_activity_method(
                PsaActivities.ensure_project, EnsureProjectInput(spec=spec), **VENDOR_CALL
            )
        ).project
        self._project_id = project.id
        workflow.upsert_search_attributes([sa.PROJECT_ID.value_set(project.id)])

        # Registered before the steps it undoes: if they fail for good, the project goes on hold.
        compensations: list[Callable[[str], Awaitable[object]]] = [
            lambda reason: workflow.execute_activity_method(
                PsaActivities.hold_project,
                HoldProjectInput(project_id=project.id, external_ref=spec.external_ref, reason=reason),
                **VENDOR_CALL,
            )
        ]
        try:
            await workflow.execute_local_activity_method(
                LedgerActivities.save_project_contract,
                SaveContractInput(
                    contract=ProjectContract(
                        project_id=project.id,
                        psa=input.psa,
                        crm=input.crm,
                        opportunity_id=opportunity.id,
                        account_id=opportunity.account.id,
                        account_owner_id=opportunity.account.owner_id,
                        customer_name=opportunity.account.name,
                        erp=customer.erp,
                        erp_customer_id=customer.customer_id,
                        contract=spec.contract,
                    )
                ),
                **LEDGER_CALL,
            )
            self._set_stage("writing_back")
            await workflow.execute_activity_method(
                CrmActivities.write_back_ids,
                WriteBackInput(
                    write_back=CrmWriteBack(
                        opportunity_id=opportunity.id,
                        account_id=opportunity.account.id,
                        psa_project_id=project.id,
                        erp=customer.erp,
                        erp_customer_id=customer.customer_id,
                        legal_entity=entity.code,
                        sync_status="Project created",
                    )
                ),
                **VENDOR_CALL,
            )
        except ActivityError as failure:
            await self._compensate(input, compensations, failure)
            raise ApplicationError(
                f"opportunity {opportunity.id}: project {project.id} put on hold after a permanent failure",
                type="Compensated",
                non_retryable=True,
            ) from failure

        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(
                action="project_created",
                entity="opportunity",
                key=f"{input.crm}:{opportunity.id}",
                detail={"project_id": project.id, "erp": customer.erp, "customer_id": customer.customer_id},
            ),
            **LEDGER_CALL,
        )
        self._set_stage("done")
        return OpportunityToProjectResult(
            opportunity_id=opportunity.id,
            account_id=opportunity.account.id,
            legal_entity=entity.code,
            erp=customer.erp,
            erp_customer_id=customer.customer_id,
            psa=input.psa,
            project_id=project.id,
        )

    async def _wait_until_ready(self, input: OpportunityToProjectInput) -> tuple[Opportunity, LegalEntity]:
        """Read the deal; while it is incomplete, park it with sales ops and wait for the fix."""
        while True:
            self._look_again = False
            self._set_stage("validating")
            opportunity = (
                await workflow.execute_activity_method(
                    CrmActivities.fetch_opportunity,
                    FetchOpportunityInput(opportunity_id=input.opportunity_id),
                    **VENDOR_CALL,
                )
            ).opportunity
            readiness = check_readiness(opportunity, input.entities)
            self._missing = readiness.missing
            if readiness.ready and readiness.entity is not None:
                return opportunity, readiness.entity
            await workflow.execute_local_activity_method(
                LedgerActivities.raise_exception,
                RaiseExceptionInput(
                    dedupe_key=f"{PROCESS}:{input.crm}:{input.opportunity_id}:readiness",
                    process=PROCESS,
                    owner=ExceptionOwner.SALES_OPS,
                    reason="opportunity is not ready to become a project; missing or invalid: "
                    + "; ".join(readiness.missing),
                    record={
                        "crm": input.crm,
                        "opportunity_id": opportunity.id,
                        "name": opportunity.name,
                        "missing": list(readiness.missing),
                    },
                ),
                **LEDGER_CALL,
            )
            self._set_stage("awaiting_fix", ExceptionOwner.SALES_OPS)
            await workflow.wait_condition(lambda: self._look_again)

    async def _compensate(
        self,
        input: OpportunityToProjectInput,
        compensations: list[Callable[[str], Awaitable[object]]],
        failure: ActivityError,
    ) -> None:
        reason = f"ps-sync could not finish setting up this deal: {failure.cause or failure}"
        self._set_stage("compensating", ExceptionOwner.INTEGRATION_SUPPORT)
        for undo in reversed(compensations):
            await undo(reason)
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.crm}:{input.opportunity_id}:failed",
                process=PROCESS,
                owner=ExceptionOwner.INTEGRATION_SUPPORT,
                reason=reason,
                record={
                    "crm": input.crm,
                    "opportunity_id": input.opportunity_id,
                    "project_id": self._project_id,
                },
            ),
            **LEDGER_CALL,
        )
        self._set_stage("compensated", ExceptionOwner.INTEGRATION_SUPPORT)


def _project_spec(crm: str, opportunity: Opportunity, entity: LegalEntity) -> ProjectSpec:
    template = template_for(opportunity.service_code)
    # Readiness has checked these; the asserts document it for the type checker.
    assert template is not None and opportunity.tax_code is not None and opportunity.currency is not None
    return ProjectSpec(
        external_ref=f"{crm}:{opportunity.id}",
        name=opportunity.name,
        customer_name=opportunity.account.name,
        contract=Contract(
            legal_entity=entity.code,
            currency=opportunity.currency,
            billing_model=template.billing_model,
            tax_code=opportunity.tax_code,
            expense_markup=template.expense_markup,
            payment_terms_days=entity.payment_terms_days,
        ),
        service_code=template.code,
        start_date=opportunity.close_date,
        budget=opportunity.amount,
        project_manager=opportunity.project_manager,
        tasks=template.tasks,
        milestones=template.milestones,
    )
