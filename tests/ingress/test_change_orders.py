"""A change order end to end: edited in the Salesforce sandbox, delivered by its outbound message to the
ingress, amended into contract version 2, followed by the PSA project, and billed on the next invoice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from canonical import Period
from canonical.contract_versions import ContractVersion
from ledger.contract_versions import contract_versions
from runs.contract_amendment import ContractAmendmentResult
from runs.contract_amendment import workflow_id as amendment_id

from ..support.system import System
from ..workflows.billing_steps import deal_for, gbp, kantata
from ..workflows.helpers import eventually
from ..workflows.test_contract_amendment import _bill_now, _edit_deal, _milestones


async def test_a_change_order_made_in_salesforce_flows_to_the_psa_and_the_next_invoice(
    system: System,
) -> None:
    deal = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
    today = datetime.now(UTC).date()

    await _edit_deal(system, deal.opportunity_id, Amount=Decimal("15000"))

    async def version_two() -> ContractVersion | None:
        with system.database.session() as session:
            versions = contract_versions(session, psa="kantata", project_id=deal.project_id)
        return versions[1] if len(versions) > 1 else None

    version: ContractVersion = await eventually(version_two, what="the ingress to start the amendment")
    assert version.cause is not None and version.cause.notification_id is not None
    # No effective date on the deal: the change applies from the day it arrived.
    assert version.effective_from == today
    handle = system.client.get_workflow_handle(
        amendment_id("salesforce", deal.opportunity_id, version.cause.notification_id),
        result_type=ContractAmendmentResult,
    )
    result = await handle.result()
    assert result.outcome == "amended" and result.psa_updated
    assert await _milestones(system, deal.project_id) == {
        "price_in_cents": 1_500_000,
        "Design sign-off": 600_000,
        "Go-live": 900_000,
    }

    async with kantata(system) as seeder:
        await seeder.complete_milestone(deal.project_id, "Design sign-off")
    billed = await _bill_now(system, deal.project_id, Period.of(today), first=True)
    assert billed.invoice is not None and billed.invoice.total == gbp("6000.00")
