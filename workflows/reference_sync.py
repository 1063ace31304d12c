"""ReferenceSync: each ERP's currencies and rates, tax rates, chart of accounts and items, and the PSA's
employees and cost rates, copied into the ledger's reference tables (run by a Temporal Schedule).

What the entity settings rely on is then checked against what each ERP publishes
(`domain.reference_checks`): a gap is an exception for finance, and a gap that has closed since the
last run is resolved. An ERP that cannot be read for good (refused credentials, say) becomes an exception
for integration support; the other systems are still synced.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.exceptions import ExceptionActivities, RecordFindingsInput
    from activities.ledger import RaiseExceptionInput
    from activities.reference import (
        ReferenceActivities,
        SyncErpReferenceInput,
        SyncErpReferenceResult,
        SyncPsaResourcesInput,
        SyncPsaResourcesResult,
    )
    from canonical import ExceptionOwner
    from domain.reference_checks import PROCESS, ReferenceGap, reference_gaps
    from runs.reference_sync import ReferenceSyncInput
    from workflows.options import LEDGER_CALL, VENDOR_CALL


class SystemFailure(BaseModel):
    model_config = ConfigDict(frozen=True)
    system: str
    reason: str


class ReferenceSyncResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    erps: tuple[SyncErpReferenceResult, ...]
    psa: SyncPsaResourcesResult | None
    gaps: tuple[ReferenceGap, ...]
    failures: tuple[SystemFailure, ...]
    resolved_exceptions: tuple[int, ...]


@workflow.defn
class ReferenceSync:
    def __init__(self) -> None:
        self._stage = "starting"

    @workflow.query
    def stage(self) -> str:
        return self._stage

    @workflow.run
    async def run(self, input: ReferenceSyncInput) -> ReferenceSyncResult:
        failures: list[SystemFailure] = []
        synced: list[SyncErpReferenceResult] = []
        gaps: list[ReferenceGap] = []
        for erp in sorted({entity.erp for entity in input.entities}):
            self._stage = f"syncing {erp}"
            try:
                result = await workflow.execute_activity_method(
                    ReferenceActivities.sync_erp_reference,
                    SyncErpReferenceInput(
                        erp=erp, legal_entities=tuple(e.code for e in input.entities if e.erp == erp)
                    ),
                    **VENDOR_CALL,
                )
            except ActivityError as failure:
                failures.append(SystemFailure(system=erp, reason=str(failure.cause or failure)))
                continue
            synced.append(result)
            for entity in input.entities:
                if entity.erp == erp:
                    gaps += reference_gaps(
                        entity,
                        erp=erp,
                        base_currency=result.base_currency,
                        currencies=result.currencies,
                        tax_rates=result.tax_rates,
                    )
            gaps += [
                ReferenceGap(
                    erp=erp,
                    legal_entity=gap.legal_entity,
                    kind="account_mapping",
                    code=f"{gap.kind}:{gap.key}",
                    owner=ExceptionOwner.FINANCE,
                    reason=f"{gap.reason}: lines it maps will be held back from invoices until then",
                )
                for gap in result.mapping_gaps
            ]

        self._stage = f"syncing {input.psa}"
        psa: SyncPsaResourcesResult | None = None
        cost_currency = input.cost_currency or (input.entities[0].currency if input.entities else "GBP")
        try:
            psa = await workflow.execute_activity_method(
                ReferenceActivities.sync_psa_resources,
                SyncPsaResourcesInput(cost_currency=cost_currency),
                **VENDOR_CALL,
            )
        except ActivityError as failure:
            failures.append(SystemFailure(system=input.psa, reason=str(failure.cause or failure)))

        self._stage = "raising_exceptions"
        items = [
            RaiseExceptionInput(
                dedupe_key=gap.dedupe_key,
                process=PROCESS,
                owner=gap.owner,
                reason=gap.reason,
                record=gap.model_dump(mode="json", exclude={"owner", "reason"}),
            )
            for gap in gaps
        ] + [
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{failure.system}:unreadable",
                process=PROCESS,
                owner=ExceptionOwner.INTEGRATION_SUPPORT,
                reason=f"reference data of {failure.system} could not be read: {failure.reason}",
                record={"system": failure.system, "kind": "unreadable"},
            )
            for failure in failures
        ]
        # Each system's findings are recorded in its own scope. Only a system read this time can be declared
        # in order again; one that could not be read keeps its earlier gaps (its scope is its failure alone).
        scopes = [f"{PROCESS}:{result.erp}:" for result in synced] + (
            [f"{PROCESS}:{psa.psa}:"] if psa else []
        )
        scopes += [f"{PROCESS}:{failure.system}:unreadable" for failure in failures]
        resolved: list[int] = []
        for scope in scopes:
            recorded = await workflow.execute_local_activity_method(
                ExceptionActivities.record_findings,
                RecordFindingsInput(
                    process=PROCESS,
                    key_prefix=scope,
                    findings=[item for item in items if item.dedupe_key.startswith(scope)],
                    note="ReferenceSync finds this in order now",
                ),
                **LEDGER_CALL,
            )
            resolved += recorded.resolved
        self._stage = "done"
        return ReferenceSyncResult(
            erps=tuple(synced),
            psa=psa,
            gaps=tuple(gaps),
            failures=tuple(failures),
            resolved_exceptions=tuple(resolved),
        )
