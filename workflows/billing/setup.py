"""What billing needs to know about the project before it rates anything: the project, its rate card, its
team.

The three are read by separate activities, side by side: a PSA that fails one call in five repeats only
the read that failed, where one activity chaining them all repeated every call and succeeded less often
with each call added.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.psa import (
        GetProjectBillingSetupInput,
        GetProjectBillingSetupResult,
        PsaActivities,
        ReadProjectInput,
        ReadProjectResourcesInput,
        ReadRateCardInput,
    )
    from workflows.options import VENDOR_CALL

SETUP_READS_APART = "billing-setup-reads-apart"


async def read_billing_setup(project_id: str) -> GetProjectBillingSetupResult:
    if not workflow.patched(SETUP_READS_APART):
        return await workflow.execute_activity_method(
            PsaActivities.get_project_billing_setup,
            GetProjectBillingSetupInput(project_id=project_id),
            **VENDOR_CALL,
        )
    project, rate_card, resources = await asyncio.gather(
        workflow.execute_activity_method(
            PsaActivities.read_project, ReadProjectInput(project_id=project_id), **VENDOR_CALL
        ),
        workflow.execute_activity_method(
            PsaActivities.read_rate_card, ReadRateCardInput(project_id=project_id), **VENDOR_CALL
        ),
        workflow.execute_activity_method(
            PsaActivities.read_project_resources,
            ReadProjectResourcesInput(project_id=project_id),
            **VENDOR_CALL,
        ),
    )
    return GetProjectBillingSetupResult(
        project=project.project, rate_card=rate_card.rate_card, resources=resources.resources
    )
