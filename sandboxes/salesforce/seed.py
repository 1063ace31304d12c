"""Put deals into a Salesforce org the way a user's script would: OAuth token, then the REST API.

Used by the demo, the tests and the benchmark. It talks plain HTTP (not the ps-sync connector), so
what it creates is what a salesperson's org would hold, and it works against the sandbox or a real org.

    ids = await create_customer_deal(url, account_name="Acme Ltd", country="GB")
    await close_won(url, ids.opportunity_id)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from sandboxes import exact_json

DEFAULT_CLIENT_ID = "dev-salesforce-client"
DEFAULT_CLIENT_SECRET = "dev-salesforce-secret"
DEFAULT_API_VERSION = "v62.0"
UK_COUNTRIES = ("GB", "IE")


class SeedError(RuntimeError):
    """The org refused what the seed script asked for; carries Salesforce's reply."""

    def __init__(self, action: str, status: int, body: Any) -> None:
        super().__init__(f"{action} failed: HTTP {status} {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class DealIds:
    account_id: str
    contact_id: str | None
    opportunity_id: str


class SalesforceSeeder:
    """One authenticated session against an org; use as `async with SalesforceSeeder(url) as seeder:`."""

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.data = f"/services/data/{api_version}"
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    async def __aenter__(self) -> SalesforceSeeder:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _authorization(self) -> dict[str, str]:
        if self._token is None:
            response = await self._http.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
            )
            if response.status_code != 200:
                raise SeedError("token request", response.status_code, response.text)
            self._token = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self._token}"}

    async def call(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        """One REST call under /services/data/vXX.X; a 401 gets a fresh token once, like any client."""
        for attempt in range(2):
            headers = {**(await self._authorization()), "Accept": "application/json"}
            content = None
            if body is not None:
                content = exact_json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            response = await self._http.request(
                method, f"{self.data}/{path.lstrip('/')}", content=content, headers=headers, params=params
            )
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            if response.status_code >= 300:
                raise SeedError(f"{method} {path}", response.status_code, response.text)
            return exact_json.loads(response.content) if response.content else None
        raise AssertionError("unreachable")

    async def create_customer_deal(
        self,
        *,
        account_name: str,
        country: str,
        street: str = "1 Market Street",
        city: str = "London",
        postal_code: str | None = "EC1A 1AA",
        state: str | None = None,
        tax_number: str | None = None,
        account_id: str | None = None,
        contact_first_name: str | None = "Alex",
        contact_last_name: str | None = "Morgan",
        contact_email: str | None = "alex.morgan@example.com",
        opportunity_name: str | None = None,
        amount: Decimal | None = Decimal("25000.00"),
        currency: str | None = None,
        close_date: date | None = None,
        legal_entity: str | None = None,
        billing_model: str | None = "Time and Materials",
        service_code: str | None = "IMPL-STD",
        tax_code: str | None = None,
        project_manager: str | None = "Priya Shah",
        stage: str = "Prospecting",
        extra_fields: Mapping[str, Any] | None = None,
        omit: Sequence[str] = (),
    ) -> DealIds:
        """An account (or `account_id`), a bill-to contact and an opportunity, in one composite call.

        Currency, legal entity and tax code follow the country (GB/IE: GBP, UK, OUTPUT2; else EUR, EU,
        VAT21) unless given. `omit` names opportunity fields to leave empty, to seed an incomplete deal.
        """
        uk = country in UK_COUNTRIES
        opportunity: dict[str, Any] = {
            "Name": opportunity_name or f"{account_name} implementation",
            "StageName": stage,
            "CloseDate": (close_date or datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
            "Amount": amount,
            "CurrencyIsoCode": currency or ("GBP" if uk else "EUR"),
            "Legal_Entity__c": legal_entity or ("UK" if uk else "EU"),
            "Billing_Model__c": billing_model,
            "Service_Code__c": service_code,
            "Tax_Code__c": tax_code or ("OUTPUT2" if uk else "VAT21"),
            "Project_Manager__c": project_manager,
            **(extra_fields or {}),
        }
        for name in omit:
            opportunity.pop(name, None)
        subrequests: list[dict[str, Any]] = []
        account_ref = account_id
        if account_id is None:
            account = {
                "Name": account_name,
                "BillingStreet": street,
                "BillingCity": city,
                "BillingPostalCode": postal_code,
                "BillingState": state,
                "BillingCountryCode": country,
                "Tax_Number__c": tax_number,
            }
            subrequests.append(_post("Account", "account", account, self.data))
            account_ref = "@{account.id}"
        opportunity["AccountId"] = account_ref
        if contact_last_name is not None:
            contact = {
                "FirstName": contact_first_name,
                "LastName": contact_last_name,
                "Email": contact_email,
                "AccountId": account_ref,
            }
            subrequests.append(_post("Contact", "contact", contact, self.data))
            opportunity["Bill_To_Contact__c"] = "@{contact.id}"
        subrequests.append(_post("Opportunity", "opportunity", opportunity, self.data))
        reply = await self.call(
            "POST", "composite", body={"allOrNone": True, "compositeRequest": subrequests}
        )
        results = {item["referenceId"]: item for item in reply["compositeResponse"]}
        failed = [item for item in results.values() if item["httpStatusCode"] >= 300]
        if failed:
            cause = next((item for item in failed if "PROCESSING_HALTED" not in str(item["body"])), failed[0])
            raise SeedError(f"create deal for {account_name}", cause["httpStatusCode"], cause["body"])
        return DealIds(
            account_id=account_id or results["account"]["body"]["id"],
            contact_id=results["contact"]["body"]["id"] if "contact" in results else None,
            opportunity_id=results["opportunity"]["body"]["id"],
        )

    async def close_won(self, opportunity_id: str) -> None:
        await self.set_stage(opportunity_id, "Closed Won")

    async def set_stage(self, opportunity_id: str, stage: str) -> None:
        await self.update("Opportunity", opportunity_id, {"StageName": stage})

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        await self.call("PATCH", f"sobjects/{sobject}/{quote(record_id, safe='')}", body=dict(fields))

    async def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        return dict(await self.call("GET", f"sobjects/{sobject}/{quote(record_id, safe='')}"))

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a query, following nextRecordsUrl."""
        page = await self.call("GET", "query", params={"q": soql})
        records = list(page["records"])
        while not page["done"]:
            page = await self.call("GET", page["nextRecordsUrl"][len(self.data) :])
            records.extend(page["records"])
        return records

    async def count(self, soql_from_where: str) -> int:
        """SELECT COUNT() FROM ...: `soql_from_where` is the part from FROM on."""
        reply = await self.call("GET", "query", params={"q": f"SELECT COUNT() {soql_from_where}"})
        return int(reply["totalSize"])

    async def create_records(self, sobject: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Many records through sObject Collections (200 a call, all or none per call)."""
        created: list[str] = []
        for start in range(0, len(records), 200):
            chunk = [{"attributes": {"type": sobject}, **record} for record in records[start : start + 200]]
            results = await self.call(
                "POST", "composite/sobjects", body={"allOrNone": True, "records": chunk}
            )
            failures = [result for result in results if not result["success"]]
            if failures:
                raise SeedError(f"create {len(chunk)} {sobject} records", 200, failures)
            created.extend(result["id"] for result in results)
        return created


def _post(sobject: str, reference_id: str, fields: dict[str, Any], data_path: str) -> dict[str, Any]:
    body = {name: value for name, value in fields.items() if value is not None}
    return {
        "method": "POST",
        "url": f"{data_path}/sobjects/{sobject}",
        "referenceId": reference_id,
        "body": body,
    }


async def create_customer_deal(base_url: str, **deal: Any) -> DealIds:
    """One deal in a fresh session; see SalesforceSeeder.create_customer_deal for the fields."""
    credentials = {key: deal.pop(key) for key in ("client_id", "client_secret", "api_version") if key in deal}
    async with SalesforceSeeder(base_url, **credentials) as seeder:
        return await seeder.create_customer_deal(**deal)


async def close_won(
    base_url: str,
    opportunity_id: str,
    *,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    api_version: str = DEFAULT_API_VERSION,
) -> None:
    async with SalesforceSeeder(
        base_url, client_id=client_id, client_secret=client_secret, api_version=api_version
    ) as seeder:
        await seeder.close_won(opportunity_id)
