"""SalesforceConnector: the CRM role (connectors.roles.CrmConnector) over the Salesforce REST API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from canonical import CrmTask, CrmWriteBack, Opportunity, ReceivablesSummary
from canonical.reference import OpportunityFix
from config import Settings
from connectors.errors import FieldError, NotFound, Rejected
from connectors.salesforce import mapping
from connectors.salesforce.client import CompositeSubrequest, SalesforceClient, soql_literal
from connectors.salesforce.errors import SYSTEM

# Write-back upserts with updateOnly=true, which Salesforce added in API v61.0 (Summer '24).
MIN_API_VERSION = 61.0


class SalesforceConnector:
    system = SYSTEM

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        api_version: str = "v62.0",
        jwt_private_key: str | bytes | None = None,
        jwt_username: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.client = SalesforceClient(
            base_url=base_url,
            client_id=client_id,
            client_secret=client_secret,
            api_version=api_version,
            jwt_private_key=jwt_private_key,
            jwt_username=jwt_username,
            http=http,
        )
        if self.client.version < MIN_API_VERSION:
            raise ValueError(
                f"SalesforceConnector needs API v{MIN_API_VERSION} or later (upsert updateOnly); "
                f"got {api_version}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> SalesforceConnector:
        key_path = settings.salesforce_jwt_private_key_path
        return cls(
            base_url=settings.salesforce_base_url,
            client_id=settings.salesforce_client_id,
            client_secret=settings.salesforce_client_secret.get_secret_value(),
            api_version=settings.salesforce_api_version,
            jwt_private_key=Path(key_path).read_bytes() if key_path else None,
            jwt_username=settings.salesforce_jwt_username,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    # ----- reads ----------------------------------------------------------------------------------

    async def get_opportunity(self, opportunity_id: str) -> Opportunity:
        rows = await self.client.query_all(
            f"SELECT {mapping.OPPORTUNITY_SELECT} FROM Opportunity WHERE Id = {soql_literal(opportunity_id)}"
        )
        if not rows:
            raise NotFound(f"Salesforce has no opportunity {opportunity_id}", system=SYSTEM, status_code=404)
        try:
            return mapping.opportunity(rows[0])
        except mapping.MappingError as exc:
            raise Rejected(
                f"opportunity {opportunity_id}: {exc}",
                system=SYSTEM,
                field_errors=[FieldError(field=exc.field, message=str(exc))],
            ) from exc

    # ----- writes ---------------------------------------------------------------------------------

    async def write_back(self, write_back: CrmWriteBack) -> None:
        opportunity_fields, account_fields = mapping.write_back_fields(write_back)
        targets = [("Opportunity", "PSSync_Key__c", write_back.opportunity_id, opportunity_fields)]
        if account_fields:
            targets.append(("Account", "PSSync_Account_Key__c", write_back.account_id, account_fields))
        await self._upsert_by_own_key([t for t in targets if t[3]], context="write-back")

    async def update_receivables(
        self, *, opportunity_id: str, account_id: str, summary: ReceivablesSummary
    ) -> None:
        currency = summary.total.currency
        rows = await self.client.query_all(
            "SELECT Id, CurrencyIsoCode, Amount_Due__c, Invoice_Due_Date__c, Invoice_Status__c "
            f"FROM Opportunity WHERE AccountId = {soql_literal(account_id)}"
        )
        target = next((row for row in rows if _same_id(row["Id"], opportunity_id)), None)
        if target is None:
            raise NotFound(
                f"Salesforce has no opportunity {opportunity_id} under account {account_id}",
                system=SYSTEM,
                status_code=404,
            )
        if target.get("CurrencyIsoCode") not in (None, currency):
            raise Rejected(
                f"invoice {summary.invoice_number} is in {currency} but opportunity {opportunity_id} is in "
                f"{target['CurrencyIsoCode']}",
                system=SYSTEM,
                field_errors=[FieldError(field="CurrencyIsoCode", message=f"expected {currency}")],
            )
        invoice = mapping.invoice_fields(summary)
        # The account summary includes this invoice's new state, which the query above predates.
        rows = [row if row is not target else {**row, **invoice, "CurrencyIsoCode": currency} for row in rows]
        totals = mapping.receivables_totals(rows, currency, datetime.now(UTC).date())
        await self._upsert_by_own_key(
            [
                ("Opportunity", "PSSync_Key__c", opportunity_id, invoice),
                ("Account", "PSSync_Account_Key__c", account_id, totals),
            ],
            context="update receivables",
        )

    async def create_task(self, task: CrmTask) -> str:
        result = await self.client.upsert(
            "Task", "PSSync_Task_Key__c", task.external_key, mapping.task_fields(task)
        )
        if result.id is not None:
            return result.id
        record = await self.client.get_by_external_id("Task", "PSSync_Task_Key__c", task.external_key)
        return str(record["Id"])

    async def _upsert_by_own_key(
        self, targets: Sequence[tuple[str, str, str, dict[str, Any]]], *, context: str
    ) -> None:
        """Update records through their ps-sync key field, whose value is the record's own id.

        First by upsert with updateOnly=true, which can never create; a record whose key was never
        stamped answers 404, and is then updated by id with the key set, so the next write is an upsert.
        Both rounds are one composite call each.
        """
        if not targets:
            return
        first = [
            CompositeSubrequest(
                "PATCH",
                f"sobjects/{sobject}/{key}/{quote(record_id, safe='')}?updateOnly=true",
                f"upsert{index}",
                fields,
            )
            for index, (sobject, key, record_id, fields) in enumerate(targets)
        ]
        unstamped = []
        for target, result in zip(
            targets, await self.client.composite(first, all_or_none=False, context=context), strict=True
        ):
            if result.status == 404:
                unstamped.append(target)
            elif not result.ok:
                raise result.error(f"{context} {target[0]} {target[2]}")
        if not unstamped:
            return
        second = [
            CompositeSubrequest(
                "PATCH",
                f"sobjects/{sobject}/{quote(record_id, safe='')}",
                f"stamp{index}",
                {**fields, key: record_id},
            )
            for index, (sobject, key, record_id, fields) in enumerate(unstamped)
        ]
        for target, result in zip(
            unstamped, await self.client.composite(second, all_or_none=True, context=context), strict=True
        ):
            if not result.ok and not _halted(result.body):
                raise result.error(f"{context} {target[0]} {target[2]}")

    async def correct_opportunity(self, opportunity_id: str, fix: OpportunityFix) -> None:
        """Write a person's corrected values onto the opportunity (PATCH by id); only the given fields."""
        fields = mapping.opportunity_fix_fields(fix)
        if not fields:
            raise Rejected(
                f"no corrected fields for opportunity {opportunity_id}",
                system=SYSTEM,
                field_errors=[FieldError(field="corrected_fields", message="empty")],
            )
        await self.client.update("Opportunity", opportunity_id, fields)


def _same_id(left: str, right: str) -> bool:
    # 15- and 18-character forms name the same record; the first 15 characters are case-sensitive.
    return left[:15] == right[:15]


def _halted(body: Any) -> bool:
    return isinstance(body, list) and any(
        isinstance(item, dict) and item.get("errorCode") == "PROCESSING_HALTED" for item in body
    )
