"""Record ContractAmendment histories: `python -m tests.replay.record_contract_amendment`.

Writes only these histories, beside the others (nothing is wiped): a fixed-fee deal is won and a change
order raising its fee is made in the Salesforce sandbox, whose outbound message reaches the ingress; it is
amended (version 2, the PSA re-priced) and the next invoice is billed at the new schedule. A second deal is
invoiced and then cut below what was invoiced, which goes to finance.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from canonical import Period
from ledger.contract_versions import contract_versions
from ledger.repository import list_exceptions
from runs.contract_amendment import ContractAmendmentResult
from runs.contract_amendment import workflow_id as amendment_id
from runs.time_to_billing import workflow_id as ttb_id

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import target_of
from ..workflows.billing_steps import deal_for, kantata
from ..workflows.helpers import eventually
from ..workflows.test_contract_amendment import _amendment, _bill_now, _edit_deal
from .recording import on_a_dev_server, write_history

SUFFIX = "_recorded_2026-12-07.json"


async def play(env: WorkflowEnvironment, directory: Path) -> list[Path]:
    written = []
    with serving_sandboxes() as sandboxes:
        async with running_system(env.client, directory, sandboxes, temporal_target=target_of(env)) as system:
            today = datetime.now(UTC).date()
            raised = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
            # The sandbox's outbound message reaches the ingress, which starts the amendment run.
            await _edit_deal(
                system,
                raised.opportunity_id,
                Amount=Decimal("12000"),
                Amendment_Effective_Date__c=today.isoformat(),
            )

            async def amended_by() -> str | None:
                with system.database.session() as session:
                    versions = contract_versions(session, psa="kantata", project_id=raised.project_id)
                cause = versions[-1].cause
                return cause.notification_id if cause is not None else None

            notification = await eventually(amended_by, what="contract version 2")
            amended_id = amendment_id("salesforce", raised.opportunity_id, notification)
            amended: ContractAmendmentResult = await _amendment(system, amended_id)
            assert amended.outcome == "amended" and amended.version == 2
            async with kantata(system) as seeder:
                await seeder.complete_milestone(raised.project_id, "Design sign-off")
            billed = await _bill_now(system, raised.project_id, Period.of(today), first=True)
            assert billed.invoice is not None and billed.invoice.total.amount == Decimal("4800.00")

            cut = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
            async with kantata(system) as seeder:
                await seeder.complete_milestone(cut.project_id, "Design sign-off")
            await _bill_now(system, cut.project_id, Period.of(today), first=True)
            await _edit_deal(system, cut.opportunity_id, Amount=Decimal("3000"))

            async def refused_by() -> str | None:
                with system.database.session() as session:
                    items = list_exceptions(session, process="contract_amendment")
                return str(items[0].record["notification_id"]) if items else None

            refused_id = amendment_id("salesforce", cut.opportunity_id, await eventually(refused_by))
            refused = await _amendment(system, refused_id)
            assert refused.outcome == "refused"

            for name, workflow_id in (
                ("ContractAmendment-amended", amended_id),
                ("ContractAmendment-refused", refused_id),
                ("TimeToBilling-amended-contract", ttb_id(raised.project_id, Period.of(today).value)),
            ):
                history = await system.client.get_workflow_handle(workflow_id).fetch_history()
                written.append(write_history(history, f"{name}{SUFFIX}"))
    return written


async def main() -> list[Path]:
    return await on_a_dev_server(play)


if __name__ == "__main__":
    for path in asyncio.run(main()):
        print(path)
