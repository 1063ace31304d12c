"""ContractAmendment: a won deal changed in the CRM after it became a project.

The deal is read again and mapped by the closed-won rules; against the contract version in force and what
has been invoiced (domain.contract_amendment) the change is nothing, a new contract version, or finance's
decision. A new version is saved in the ledger first (billing's truth, dated from the amendment's effective
day), then the PSA project's budget and milestones follow it; a PSA that refuses leaves the version in
place and gives the PMO the figures to set by hand. Every outcome is audited with the CRM change behind it.
"""

from __future__ import annotations

from datetime import date

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contract_amendment import (
        AmendmentActivities,
        AmendPsaProjectInput,
        LoadContractVersionsInput,
        SaveContractVersionInput,
    )
    from activities.crm import CrmActivities, FetchOpportunityInput
    from activities.ledger import (
        AuditInput,
        BillingHistoryInput,
        LedgerActivities,
        RaiseExceptionInput,
    )
    from activities.psa import FetchUnbilledMilestonesInput, PsaActivities
    from canonical import ExceptionOwner
    from canonical.contract_versions import ContractVersion, CrmChange, ProjectAmendment
    from domain.contract_amendment import (
        AmendmentDecision,
        decide_amendment,
        money_text,
        settled_milestones,
    )
    from domain.project_setup import NotReady, project_spec
    from domain.readiness import check_readiness
    from runs import search_attributes as sa
    from runs.contract_amendment import ContractAmendmentInput, ContractAmendmentResult
    from workflows.options import LEDGER_CALL, VENDOR_CALL

PROCESS = "contract_amendment"
# Two notifications about one deal can race; each lost race decides again against the winner's version.
DECISIONS = 3


class _Reconsider(Exception):
    """The version this run decided against is no longer the latest."""


@workflow.defn
class ContractAmendment:
    def __init__(self) -> None:
        self._stage = "starting"

    @workflow.query
    def stage(self) -> str:
        return self._stage

    @workflow.run
    async def run(self, input: ContractAmendmentInput) -> ContractAmendmentResult:
        workflow.upsert_search_attributes([sa.OPPORTUNITY_ID.value_set(input.opportunity_id)])
        for _ in range(DECISIONS - 1):
            try:
                return await self._decide_and_apply(input)
            except _Reconsider:
                # Another notification's run amended the contract first: decide again against its version.
                continue
        return await self._decide_and_apply(input)

    async def _decide_and_apply(self, input: ContractAmendmentInput) -> ContractAmendmentResult:
        self._stage = "reading"
        loaded = await workflow.execute_local_activity_method(
            AmendmentActivities.load_contract_versions,
            LoadContractVersionsInput(crm=input.crm, psa=input.psa, opportunity_id=input.opportunity_id),
            **LEDGER_CALL,
        )
        if loaded.project_id is None or not loaded.versions:
            # Started only after closed-won completed, which records the contract: this is ours to look at.
            exception_id = await self._raise(
                input,
                ExceptionOwner.INTEGRATION_SUPPORT,
                "the deal changed after closed-won but no contract is recorded for it, so the change "
                "cannot be applied",
                key="no-contract",
                record={},
            )
            return self._result(input, "", "refused", 0, reasons=("no contract",), exception_id=exception_id)
        project_id = loaded.project_id
        workflow.upsert_search_attributes([sa.PROJECT_ID.value_set(project_id)])
        current = loaded.versions[-1]
        opportunity = (
            await workflow.execute_activity_method(
                CrmActivities.fetch_opportunity,
                FetchOpportunityInput(opportunity_id=input.opportunity_id),
                **VENDOR_CALL,
            )
        ).opportunity
        readiness = check_readiness(opportunity, input.entities)
        try:
            if readiness.entity is None or not readiness.ready:
                raise NotReady("; ".join(readiness.missing))
            spec = project_spec(input.crm, opportunity, readiness.entity)
        except NotReady as gap:
            exception_id = await self._raise(
                input,
                ExceptionOwner.SALES_OPS,
                f"the won deal was changed into one that cannot be billed ({gap}); the contract stays at "
                f"version {current.version} until the deal is corrected",
                key=f"incomplete:{input.notification_id}",
                record={"project_id": project_id, "missing": list(readiness.missing) or [str(gap)]},
            )
            return self._result(
                input, project_id, "refused", current.version, reasons=(str(gap),), exception_id=exception_id
            )

        booked = await workflow.execute_local_activity_method(
            LedgerActivities.billing_history, BillingHistoryInput(project_id=project_id), **LEDGER_CALL
        )
        cause = CrmChange(
            crm=input.crm,
            opportunity_id=input.opportunity_id,
            notification_id=input.notification_id,
            modified_at=opportunity.modified_at,
        )
        # A change order names the day it takes effect; without one it applies from the day it arrived.
        effective_from = opportunity.amendment_effective_date or workflow.now().date()
        settled: frozenset[str] = frozenset()
        old_schedule = current.contract.contract.billing_schedule
        if old_schedule and spec.contract.billing_schedule:
            # Billed milestones are no longer among the PSA's unbilled ones: their charges cannot move.
            unbilled = await workflow.execute_activity_method(
                PsaActivities.fetch_unbilled_milestones,
                FetchUnbilledMilestonesInput(project_id=project_id),
                **VENDOR_CALL,
            )
            settled = settled_milestones(old_schedule, unbilled.milestones, effective_from)
        decision = decide_amendment(
            current=current,
            spec=spec,
            history=booked.history,
            cause=cause,
            effective_from=effective_from,
            settled=settled,
        )
        if decision.outcome == "unchanged":
            self._stage = "unchanged"
            return self._result(input, project_id, "unchanged", current.version)
        if decision.outcome == "refuse" or decision.version is None:
            return await self._refuse(input, project_id, current, decision, cause, effective_from)
        return await self._amend(input, project_id, decision.version, decision)

    async def _amend(
        self,
        input: ContractAmendmentInput,
        project_id: str,
        version: ContractVersion,
        decision: AmendmentDecision,
    ) -> ContractAmendmentResult:
        self._stage = "saving_version"
        try:
            await workflow.execute_local_activity_method(
                AmendmentActivities.save_contract_version,
                SaveContractVersionInput(version=version),
                **LEDGER_CALL,
            )
        except ActivityError as failure:
            if isinstance(failure.cause, ApplicationError) and failure.cause.type == "VersionConflict":
                raise _Reconsider from failure
            raise
        self._stage = "amending_psa_project"
        terms = version.contract
        amendment = ProjectAmendment(
            project_id=project_id,
            budget=terms.budget,
            milestones=tuple(c.milestone for c in terms.contract.billing_schedule),
            billing_schedule=terms.contract.billing_schedule,
        )
        psa_result: dict[str, object]
        exception_id = None
        try:
            amended = (
                await workflow.execute_activity_method(
                    AmendmentActivities.amend_psa_project,
                    AmendPsaProjectInput(amendment=amendment),
                    **VENDOR_CALL,
                )
            ).amended
            psa_result = amended.model_dump(mode="json")
        except ActivityError as failure:
            psa_result = {"failed": str(failure.cause or failure)}
            exception_id = await self._raise(
                input,
                ExceptionOwner.PMO,
                f"contract version {version.version} is in force from {version.effective_from}, but the PSA "
                f"refused the project's new budget and milestones ({failure.cause or failure}): set them by "
                "hand as recorded here",
                key=f"psa:{version.version}",
                record={"project_id": project_id, "amendment": amendment.model_dump(mode="json")},
            )
        await self._audit(
            input,
            "contract_amended",
            {
                "project_id": project_id,
                "version": version.version,
                "effective_from": version.effective_from.isoformat(),
                "cause": version.cause.model_dump(mode="json") if version.cause else None,
                "billed_to_date": money_text(decision.billed.total),
                "psa": psa_result,
            },
        )
        self._stage = "amended"
        return self._result(
            input,
            project_id,
            "amended",
            version.version,
            changed=tuple(c.field for c in decision.changes),
            exception_id=exception_id,
            psa_updated=exception_id is None,
        )

    async def _refuse(
        self,
        input: ContractAmendmentInput,
        project_id: str,
        current: ContractVersion,
        decision: AmendmentDecision,
        cause: CrmChange,
        effective_from: date,
    ) -> ContractAmendmentResult:
        self._stage = "refused"
        stamp = cause.modified_at.isoformat() if cause.modified_at else input.notification_id
        exception_id = await self._raise(
            input,
            ExceptionOwner.FINANCE,
            "the won deal was changed but the change is not applied: "
            + "; ".join(decision.reasons)
            + f". The project is still billed under contract version {current.version}. Agree the change "
            "with sales and correct the deal in the CRM, or credit what must be credited and save the deal "
            "again: either makes ps-sync look at it afresh",
            key=f"refused:{stamp}",
            record={
                "project_id": project_id,
                "version_in_force": current.version,
                "effective_from": effective_from.isoformat(),
                "changes": [c.model_dump(mode="json") for c in decision.changes],
                "billed_to_date": money_text(decision.billed.total),
                "billed_by_period": {p: money_text(m) for p, m in decision.billed.by_period},
                "new_ceiling": money_text(decision.new_ceiling),
                "modified_at": cause.modified_at.isoformat() if cause.modified_at else None,
                "notification_id": input.notification_id,
            },
        )
        await self._audit(
            input,
            "contract_amendment_refused",
            {
                "project_id": project_id,
                "version_in_force": current.version,
                "reasons": list(decision.reasons),
                "changes": [c.model_dump(mode="json") for c in decision.changes],
                "notification_id": input.notification_id,
            },
        )
        return self._result(
            input,
            project_id,
            "refused",
            current.version,
            changed=tuple(c.field for c in decision.changes),
            reasons=decision.reasons,
            exception_id=exception_id,
        )

    def _result(
        self,
        input: ContractAmendmentInput,
        project_id: str,
        outcome: str,
        version: int,
        **extra: object,
    ) -> ContractAmendmentResult:
        return ContractAmendmentResult.model_validate(
            {
                "opportunity_id": input.opportunity_id,
                "project_id": project_id,
                "outcome": outcome,
                "version": version,
                **extra,
            }
        )

    async def _raise(
        self,
        input: ContractAmendmentInput,
        owner: ExceptionOwner,
        reason: str,
        *,
        key: str,
        record: dict[str, object],
    ) -> int:
        result = await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.crm}:{input.opportunity_id}:{key}",
                process=PROCESS,
                owner=owner,
                reason=reason,
                record={"crm": input.crm, "opportunity_id": input.opportunity_id, **record},
            ),
            **LEDGER_CALL,
        )
        return result.exception_id

    async def _audit(self, input: ContractAmendmentInput, action: str, detail: dict[str, object]) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(
                action=action, entity="opportunity", key=f"{input.crm}:{input.opportunity_id}", detail=detail
            ),
            **LEDGER_CALL,
        )
