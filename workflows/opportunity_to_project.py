"""OpportunityToProject: a closed-won deal becomes an ERP customer and a PSA project, ids written back.

Rules (issue 5):
- Nothing is created before the deal is ready (legal entity, currency, tax code, billing model, bill-to
  contact and address, service code, and the fee for fixed-fee and retainer deals). An incomplete deal is
  an exception for sales ops naming every gap; the run waits, and the next CRM notification or a `retry`
  signal makes it read the deal again and carry on.
- Any step that fails for good before the project exists (the CRM record cannot be read, the customer
  looks like one the ERP already holds, the service's rate card set is missing, ...) is parked the same
  way, with the owner the failure belongs to; a retry reads the deal again and repeats the steps, which
  are idempotent (crosswalk first), so what was already made is found, not made twice.
- The project's structure comes from the service template (domain.project_setup); a project manager the
  PSA does not know is a PMO exception, not a reason to hold up the deal.
- Once the PSA project exists, a later step that fails for good puts the project on hold with the reason
  (recorded on the crosswalk link too), raises an exception for integration support and fails the run:
  nothing half-made is left looking active. The ERP customer is master data and stays.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities, FetchOpportunityInput, WriteBackInput
    from activities.erp import (
        DUPLICATE_CUSTOMER,
        EnsureCustomerInput,
        EnsureCustomerResult,
        EnsureErpProjectInput,
        ErpActivities,
    )
    from activities.ledger import AuditInput, LedgerActivities, RaiseExceptionInput, SaveContractInput
    from activities.psa import EnsureProjectInput, HoldProjectInput, PsaActivities
    from canonical import (
        CrmWriteBack,
        ExceptionOwner,
        LegalEntity,
        Opportunity,
        Project,
        ProjectContract,
        ProjectSpec,
        name_key,
    )
    from canonical.dimensions import ErpProject, ErpProjectSpec
    from domain.project_setup import project_spec
    from domain.readiness import check_readiness
    from runs import search_attributes as sa
    from runs.opportunity_to_project import (
        OpportunityChanged,
        OpportunityToProjectInput,
        OpportunityToProjectResult,
        OpportunityToProjectStatus,
        RetryRequest,
    )
    from workflows.options import LEDGER_CALL, VENDOR_CALL

PROCESS = "opportunity_to_project"
# The ERP-side project (Xero tracking options, Tryton project and analytic accounts) made at closed-won.
ERP_PROJECT = "erp-project-at-closed-won"
MAX_REMEMBERED_NOTIFICATIONS = 100
T = TypeVar("T")


class _Parked(Exception):
    """A step failed for good and is now an exception; the run waits and starts over from the deal."""


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
        self._duplicates = 0
        # Salesforce redelivers a notification until it is acknowledged: the same id changes nothing.
        self._notification_ids: list[str] = []
        self._retries = 0
        self._link_to_customer: str | None = None
        self._owner: ExceptionOwner | None = None
        self._waiting_because: str | None = None

    @workflow.signal
    def opportunity_changed(self, change: OpportunityChanged) -> None:
        if change.notification_id is not None:
            if change.notification_id in self._notification_ids:
                self._duplicates += 1
                return
            self._notification_ids = [
                *self._notification_ids[-(MAX_REMEMBERED_NOTIFICATIONS - 1) :],
                change.notification_id,
            ]
        self._notifications += 1
        self._look_again = True

    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        self._retries += 1
        # Each retry states finance's choice afresh: a wrong id named once is not kept for the next try.
        self._link_to_customer = request.erp_customer_id
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
            duplicate_notifications=self._duplicates,
            retries_requested=self._retries,
            exception_owner=self._owner,
            waiting_because=self._waiting_because,
        )

    def _set_stage(self, stage: str, owner: ExceptionOwner | None = None) -> None:
        self._stage = stage
        self._owner = owner
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
        while True:
            try:
                opportunity, entity = await self._wait_until_ready(input)
                spec = project_spec(input.crm, opportunity, entity)
                customer = await self._ensure_customer(input, opportunity, entity)
                project = await self._ensure_project(input, spec)
                erp_project = (
                    await self._ensure_erp_project(input, opportunity, entity, customer, project)
                    if workflow.patched(ERP_PROJECT)
                    else None
                )
                break
            except _Parked:
                await self._wait_for_fix()

        # Registered before the steps it undoes: if they fail for good, the project goes on hold.
        compensations: list[Callable[[str], Awaitable[object]]] = [
            lambda reason: workflow.execute_activity_method(
                PsaActivities.hold_project,
                HoldProjectInput(project_id=project.id, external_ref=spec.external_ref, reason=reason),
                **VENDOR_CALL,
            )
        ]
        try:
            await self._check_project_manager(input, spec, project)
            self._set_stage("recording_contract")
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
                        service_code=spec.service_code,
                        erp_project=erp_project,
                        budget=spec.budget,
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

        await self._audit(
            input,
            "project_created",
            {
                "project_id": project.id,
                "erp": customer.erp,
                "customer_id": customer.customer_id,
                "customer_created": customer.created,
                "service_code": spec.service_code,
                "erp_project_id": erp_project.project_id if erp_project else None,
                "billing_model": spec.contract.billing_model.value,
                "billing_schedule": {c.milestone: str(c.amount) for c in spec.contract.billing_schedule},
            },
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
            billing_model=spec.contract.billing_model,
            customer_created=customer.created,
            project_manager=project.project_manager,
        )

    # --- the steps before anything exists ----------------------------------------------------------------

    async def _wait_until_ready(self, input: OpportunityToProjectInput) -> tuple[Opportunity, LegalEntity]:
        """Read the deal; while it is incomplete, park it with sales ops and wait for the fix."""
        while True:
            self._look_again = False
            opportunity = (
                await self._attempt(
                    input,
                    "validating",
                    ExceptionOwner.SALES_OPS,
                    lambda: workflow.execute_activity_method(
                        CrmActivities.fetch_opportunity,
                        FetchOpportunityInput(opportunity_id=input.opportunity_id),
                        **VENDOR_CALL,
                    ),
                )
            ).opportunity
            readiness = check_readiness(opportunity, input.entities)
            self._missing = readiness.missing
            if readiness.ready and readiness.entity is not None:
                self._legal_entity = readiness.entity.code
                workflow.upsert_search_attributes([sa.LEGAL_ENTITY.value_set(readiness.entity.code)])
                return opportunity, readiness.entity
            await self._raise(
                input,
                key="readiness",
                owner=ExceptionOwner.SALES_OPS,
                reason="opportunity is not ready to become a project; missing or invalid: "
                + "; ".join(readiness.missing),
                record={
                    "crm": input.crm,
                    "opportunity_id": opportunity.id,
                    "name": opportunity.name,
                    "missing": list(readiness.missing),
                },
            )
            await self._wait_for_fix()

    async def _ensure_customer(
        self, input: OpportunityToProjectInput, opportunity: Opportunity, entity: LegalEntity
    ) -> EnsureCustomerResult:
        customer = await self._attempt(
            input,
            "creating_customer",
            # The customer master is finance's: a refused or duplicate-looking customer is theirs to settle.
            ExceptionOwner.FINANCE,
            lambda: workflow.execute_activity_method(
                ErpActivities.ensure_customer,
                EnsureCustomerInput(
                    crm=input.crm,
                    account=opportunity.account,
                    legal_entity=entity.code,
                    link_to_customer_id=self._link_to_customer,
                ),
                **VENDOR_CALL,
            ),
        )
        self._erp, self._customer_id = customer.erp, customer.customer_id
        workflow.upsert_search_attributes([sa.CUSTOMER_ID.value_set(customer.customer_id)])
        return customer

    async def _ensure_project(self, input: OpportunityToProjectInput, spec: ProjectSpec) -> Project:
        project = (
            await self._attempt(
                input,
                "creating_project",
                # A refused project (say, the service's rate card set is missing) is the PMO's to fix.
                ExceptionOwner.PMO,
                lambda: workflow.execute_activity_method(
                    PsaActivities.ensure_project, EnsureProjectInput(spec=spec), **VENDOR_CALL
                ),
            )
        ).project
        self._project_id = project.id
        workflow.upsert_search_attributes([sa.PROJECT_ID.value_set(project.id)])
        return project

    async def _ensure_erp_project(
        self,
        input: OpportunityToProjectInput,
        opportunity: Opportunity,
        entity: LegalEntity,
        customer: EnsureCustomerResult,
        project: Project,
    ) -> ErpProject | None:
        made = await self._attempt(
            input,
            "creating_erp_project",
            # The ERP's dimensions (tracking categories, analytic roots) are finance's set-up.
            ExceptionOwner.FINANCE,
            lambda: workflow.execute_activity_method(
                ErpActivities.ensure_erp_project,
                EnsureErpProjectInput(
                    legal_entity=entity.code,
                    psa=input.psa,
                    spec=ErpProjectSpec(
                        project_code=project.id,
                        project_name=project.name,
                        customer_id=customer.customer_id,
                        customer_code=opportunity.account.id,
                        customer_name=opportunity.account.name,
                        # What the PSA holds: the service's practice the project was made with, or the
                        # one a person filed a project found again under.
                        practice=project.practice,
                    ),
                ),
                **VENDOR_CALL,
            ),
        )
        if made.erp_project is None:
            workflow.logger.warning("project %s has no ERP dimensions: %s", project.id, made.unsupported)
        return made.erp_project

    async def _attempt(
        self,
        input: OpportunityToProjectInput,
        stage: str,
        owner: ExceptionOwner,
        call: Callable[[], Awaitable[T]],
    ) -> T:
        """Run one step; a failure for good becomes an exception and parks the run (raises _Parked)."""
        self._set_stage(stage)
        try:
            return await call()
        except ActivityError as failure:
            cause = failure.cause
            kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
            # Credentials and timeouts are never the business owner's to fix.
            if kind == "AuthFailed" or not isinstance(cause, ApplicationError):
                owner = ExceptionOwner.INTEGRATION_SUPPORT
            if kind == DUPLICATE_CUSTOMER:
                owner = ExceptionOwner.FINANCE
            details = list(cause.details) if isinstance(cause, ApplicationError) else []
            await self._raise(
                input,
                key=stage,
                owner=owner,
                reason=f"{stage.replace('_', ' ')} failed ({kind}): {cause or failure}",
                record={
                    "crm": input.crm,
                    "opportunity_id": input.opportunity_id,
                    "stage": stage,
                    "error_type": kind,
                    "details": details,
                },
            )
            raise _Parked() from failure

    async def _raise(
        self,
        input: OpportunityToProjectInput,
        *,
        key: str,
        owner: ExceptionOwner,
        reason: str,
        record: dict[str, object],
    ) -> None:
        self._waiting_because = reason
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.crm}:{input.opportunity_id}:{key}",
                process=PROCESS,
                owner=owner,
                reason=reason,
                record=record,
            ),
            **LEDGER_CALL,
        )
        self._set_stage("awaiting_fix", owner)

    async def _wait_for_fix(self) -> None:
        # Not reset here: a fix announced while the failing step was still running must not be lost.
        await workflow.wait_condition(lambda: self._look_again)
        self._waiting_because = None

    # --- after the project exists ------------------------------------------------------------------------

    async def _check_project_manager(
        self, input: OpportunityToProjectInput, spec: ProjectSpec, project: Project
    ) -> None:
        """A named manager the PSA does not know leaves the project without its lead: PMO assigns one."""
        if spec.project_manager is None:
            return
        if project.project_manager is not None and name_key(project.project_manager) == name_key(
            spec.project_manager
        ):
            return
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.crm}:{input.opportunity_id}:project-manager",
                process=PROCESS,
                owner=ExceptionOwner.PMO,
                reason=(
                    f"project manager {spec.project_manager!r} named on the opportunity is not a PSA user; "
                    f"project {project.id} is led by {project.project_manager or 'nobody'} until PMO "
                    "assigns its manager"
                ),
                record={
                    "opportunity_id": input.opportunity_id,
                    "project_id": project.id,
                    "project_manager": spec.project_manager,
                },
            ),
            **LEDGER_CALL,
        )

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
        await self._raise(
            input,
            key="failed",
            owner=ExceptionOwner.INTEGRATION_SUPPORT,
            reason=reason,
            record={
                "crm": input.crm,
                "opportunity_id": input.opportunity_id,
                "project_id": self._project_id,
                "project_status": "on_hold",
            },
        )
        await self._audit(input, "project_put_on_hold", {"project_id": self._project_id, "reason": reason})
        self._set_stage("compensated", ExceptionOwner.INTEGRATION_SUPPORT)

    async def _audit(self, input: OpportunityToProjectInput, action: str, detail: dict[str, object]) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(
                action=action,
                entity="opportunity",
                key=f"{input.crm}:{input.opportunity_id}",
                detail=detail,
            ),
            **LEDGER_CALL,
        )
