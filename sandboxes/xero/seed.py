"""What a finance user's tool does to Xero, over the real API: record payments, issue and allocate credit
notes, void invoices, create customers. The demo, the tests and the benchmark use it to make the books
move the way people would, so ps-sync sees the same traffic it would see in production.

It talks plain HTTP with its own token (client credentials, Basic auth), not through ps-sync's connector,
so a connector bug cannot hide behind the tool that checks it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import httpx

from sandboxes.exact_json import dumps, loads

API = "/api.xro/2.0"


class XeroSeedError(RuntimeError):
    """Xero refused what the finance tool asked; the message carries Xero's answer."""


class Secret(Protocol):
    """A secret held so that printing it shows nothing, as ps-sync's settings hold theirs."""

    def get_secret_value(self) -> str: ...


class XeroOrganisationAccess(Protocol):
    """Where the organisation is and the app credentials that reach it, under the names ps-sync's settings
    use, so a caller holding those settings can pass them as they are."""

    @property
    def xero_base_url(self) -> str: ...
    @property
    def xero_identity_url(self) -> str: ...
    @property
    def xero_client_id(self) -> str: ...
    @property
    def xero_client_secret(self) -> Secret: ...
    @property
    def xero_tenant_id(self) -> str: ...


class XeroFinanceUser:
    def __init__(
        self,
        *,
        base_url: str,
        identity_url: str,
        client_id: str,
        client_secret: str,
        tenant_id: str,
        bank_account_code: str = "090",
        sales_account_code: str = "200",
    ) -> None:
        self._base = base_url.rstrip("/")
        self._identity = identity_url.rstrip("/")
        self._credentials = (client_id, client_secret)
        self._tenant_id = tenant_id
        self._token: str | None = None
        self._http = httpx.AsyncClient(timeout=30.0)
        self.bank_account_code = bank_account_code
        self.sales_account_code = sales_account_code

    @classmethod
    def from_settings(cls, settings: XeroOrganisationAccess) -> XeroFinanceUser:
        return cls(
            base_url=settings.xero_base_url,
            identity_url=settings.xero_identity_url,
            client_id=settings.xero_client_id,
            client_secret=settings.xero_client_secret.get_secret_value(),
            tenant_id=settings.xero_tenant_id,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _token_value(self, *, fresh: bool = False) -> str:
        if self._token is None or fresh:
            response = await self._http.post(
                f"{self._identity}/connect/token",
                auth=self._credentials,
                data={"grant_type": "client_credentials"},
            )
            if response.status_code != 200:
                raise XeroSeedError(f"token request refused: {response.status_code} {response.text}")
            self._token = str(response.json()["access_token"])
        return self._token

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        for fresh in (False, True):
            headers = {
                "Authorization": f"Bearer {await self._token_value(fresh=fresh)}",
                "xero-tenant-id": self._tenant_id,
                "Accept": "application/json",
            }
            if body is not None:
                headers["Content-Type"] = "application/json"
            if idempotency_key is not None:
                headers["Idempotency-Key"] = idempotency_key
            response = await self._http.request(
                method,
                f"{self._base}{API}{path}",
                headers=headers,
                params=params,
                content=dumps(body) if body is not None else None,
            )
            if response.status_code != 401:
                break
        if response.status_code >= 300:
            raise XeroSeedError(f"{method} {path} answered {response.status_code}: {response.text[:1000]}")
        return loads(response.content)

    # --- what finance does ------------------------------------------------------------------------------

    async def create_customer(
        self, name: str, *, contact_number: str | None = None, currency: str = "GBP"
    ) -> dict[str, Any]:
        contact: dict[str, Any] = {"Name": name, "DefaultCurrency": currency}
        if contact_number:
            contact["ContactNumber"] = contact_number
        body = await self.call("PUT", "/Contacts", {"Contacts": [contact]}, idempotency_key=str(uuid.uuid4()))
        result: dict[str, Any] = body["Contacts"][0]
        return result

    async def create_invoice(
        self,
        contact_id: str,
        lines: list[tuple[str, Decimal, Decimal, str]],
        *,
        reference: str = "",
        currency: str = "GBP",
        status: str = "AUTHORISED",
        issued: date | None = None,
        due: date | None = None,
    ) -> dict[str, Any]:
        """A sales invoice typed in by hand: lines are (description, quantity, unit amount, tax type)."""
        issued = issued or datetime.now(UTC).date()
        invoice: dict[str, Any] = {
            "Type": "ACCREC",
            "Contact": {"ContactID": contact_id},
            "Date": issued.isoformat(),
            "LineAmountTypes": "Exclusive",
            "Reference": reference,
            "CurrencyCode": currency,
            "Status": status,
            "LineItems": [
                {
                    "Description": d,
                    "Quantity": q,
                    "UnitAmount": u,
                    "AccountCode": self.sales_account_code,
                    "TaxType": t,
                }
                for d, q, u, t in lines
            ],
        }
        if due is not None:
            invoice["DueDate"] = due.isoformat()
        body = await self.call(
            "PUT",
            "/Invoices",
            {"Invoices": [invoice]},
            params={"unitdp": 4},
            idempotency_key=str(uuid.uuid4()),
        )
        result: dict[str, Any] = body["Invoices"][0]
        return result

    async def apply_payment(
        self, invoice_id: str, amount: Decimal, *, reference: str = "", paid_on: date | None = None
    ) -> dict[str, Any]:
        """Record money received into the bank account against the invoice (PUT /Payments)."""
        payment = {
            "Invoice": {"InvoiceID": invoice_id},
            "Account": {"Code": self.bank_account_code},
            "Date": (paid_on or datetime.now(UTC).date()).isoformat(),
            "Amount": amount,
            "Reference": reference,
        }
        body = await self.call("PUT", "/Payments", {"Payments": [payment]}, idempotency_key=str(uuid.uuid4()))
        result: dict[str, Any] = body["Payments"][0]
        return result

    async def delete_payment(self, payment_id: str) -> dict[str, Any]:
        body = await self.call(
            "POST",
            f"/Payments/{payment_id}",
            {"Payments": [{"Status": "DELETED"}]},
            idempotency_key=str(uuid.uuid4()),
        )
        result: dict[str, Any] = body["Payments"][0]
        return result

    async def create_credit_note(
        self,
        contact_id: str,
        amount: Decimal,
        *,
        description: str,
        tax_type: str = "OUTPUT2",
        currency: str = "GBP",
    ) -> dict[str, Any]:
        """An authorised customer credit note for `amount` including tax."""
        note = {
            "Type": "ACCRECCREDIT",
            "Contact": {"ContactID": contact_id},
            "Status": "AUTHORISED",
            "LineAmountTypes": "Inclusive",
            "CurrencyCode": currency,
            "LineItems": [
                {
                    "Description": description,
                    "Quantity": Decimal(1),
                    "UnitAmount": amount,
                    "AccountCode": self.sales_account_code,
                    "TaxType": tax_type,
                }
            ],
        }
        body = await self.call(
            "PUT", "/CreditNotes", {"CreditNotes": [note]}, idempotency_key=str(uuid.uuid4())
        )
        result: dict[str, Any] = body["CreditNotes"][0]
        return result

    async def allocate_credit_note(
        self, credit_note_id: str, invoice_id: str, amount: Decimal
    ) -> dict[str, Any]:
        allocation = {
            "Invoice": {"InvoiceID": invoice_id},
            "Amount": amount,
            "Date": datetime.now(UTC).date().isoformat(),
        }
        body = await self.call(
            "PUT",
            f"/CreditNotes/{credit_note_id}/Allocations",
            {"Allocations": [allocation]},
            idempotency_key=str(uuid.uuid4()),
        )
        result: dict[str, Any] = body["Allocations"][0]
        return result

    async def void_invoice(self, invoice_id: str) -> dict[str, Any]:
        body = await self.call(
            "POST",
            f"/Invoices/{invoice_id}",
            {"Invoices": [{"InvoiceID": invoice_id, "Status": "VOIDED"}]},
            idempotency_key=str(uuid.uuid4()),
        )
        result: dict[str, Any] = body["Invoices"][0]
        return result

    async def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        body = await self.call("GET", f"/Invoices/{invoice_id}", params={"unitdp": 4})
        result: dict[str, Any] = body["Invoices"][0]
        return result
