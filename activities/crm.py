"""CRM activities: read opportunities, write ids and money state back, create tasks for people."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.errors import connector_errors
from canonical import CrmTask, CrmWriteBack, Opportunity, ReceivablesSummary
from connectors.roles import CrmConnector


class FetchOpportunityInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    opportunity_id: str


class FetchOpportunityResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    opportunity: Opportunity


class WriteBackInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    write_back: CrmWriteBack


class WriteBackResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    opportunity_id: str


class PushReceivablesToCrmInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    opportunity_id: str
    account_id: str
    summary: ReceivablesSummary


class PushReceivablesToCrmResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    opportunity_id: str


class CreateCrmTaskInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    task: CrmTask


class CreateCrmTaskResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    task_id: str


class CrmActivities:
    def __init__(self, crm: CrmConnector) -> None:
        self._crm = crm

    @activity.defn
    async def fetch_opportunity(self, input: FetchOpportunityInput) -> FetchOpportunityResult:
        async with connector_errors():
            opportunity = await self._crm.get_opportunity(input.opportunity_id)
        return FetchOpportunityResult(opportunity=opportunity)

    @activity.defn
    async def write_back_ids(self, input: WriteBackInput) -> WriteBackResult:
        async with connector_errors():
            await self._crm.write_back(input.write_back)
        return WriteBackResult(opportunity_id=input.write_back.opportunity_id)

    @activity.defn
    async def push_receivables_to_crm(self, input: PushReceivablesToCrmInput) -> PushReceivablesToCrmResult:
        async with connector_errors():
            await self._crm.update_receivables(
                opportunity_id=input.opportunity_id, account_id=input.account_id, summary=input.summary
            )
        return PushReceivablesToCrmResult(opportunity_id=input.opportunity_id)

    @activity.defn
    async def create_crm_task(self, input: CreateCrmTaskInput) -> CreateCrmTaskResult:
        async with connector_errors():
            task_id = await self._crm.create_task(input.task)
        return CreateCrmTaskResult(task_id=task_id)
