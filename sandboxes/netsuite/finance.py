"""What a finance user's tool does to NetSuite, over REST web services: read an invoice and accept a payment
for it (the invoice's Accept Payment button: a transform of the invoice into a customer payment applied to
it). The demo and the tests use it to make the books move as people would.

It signs its own requests (token-based authentication, with the sandbox's reading of RFC 5849), not through
ps-sync's connector, so a connector bug cannot hide behind the tool that checks it.
"""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from sandboxes.exact_json import dumps, loads
from sandboxes.netsuite.sandbox import realm_of
from sandboxes.netsuite.tba import percent, sign, signature_base

RECORD = "/services/rest/record/v1"


class NetSuiteError(RuntimeError):
    """NetSuite refused what the finance tool asked; the message carries NetSuite's answer."""


class Secret(Protocol):
    def get_secret_value(self) -> str: ...


class NetSuiteAccountAccess(Protocol):
    """Where the account is and the TBA credentials that reach it, under the names ps-sync's settings use."""

    @property
    def netsuite_base_url(self) -> str: ...
    @property
    def netsuite_account_id(self) -> str: ...
    @property
    def netsuite_consumer_key(self) -> str: ...
    @property
    def netsuite_consumer_secret(self) -> Secret: ...
    @property
    def netsuite_token_id(self) -> str: ...
    @property
    def netsuite_token_secret(self) -> Secret: ...


class NetSuiteFinanceUser:
    def __init__(
        self,
        *,
        base_url: str,
        account_id: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._realm = realm_of(account_id)
        self._consumer = (consumer_key, consumer_secret)
        self._token = (token_id, token_secret)
        self._http = httpx.AsyncClient(timeout=30.0, headers={"User-Agent": "netsuite-finance-user"})

    @classmethod
    def from_settings(cls, settings: NetSuiteAccountAccess) -> NetSuiteFinanceUser:
        return cls(
            base_url=settings.netsuite_base_url,
            account_id=settings.netsuite_account_id,
            consumer_key=settings.netsuite_consumer_key,
            consumer_secret=settings.netsuite_consumer_secret.get_secret_value(),
            token_id=settings.netsuite_token_id,
            token_secret=settings.netsuite_token_secret.get_secret_value(),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _authorization(self, method: str, url: str) -> str:
        parts = urlsplit(url)
        oauth = {
            "oauth_consumer_key": self._consumer[0],
            "oauth_token": self._token[0],
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(int(time.time())),
            "oauth_nonce": secrets.token_urlsafe(18),
            "oauth_version": "1.0",
        }
        base = signature_base(method, parts.scheme, parts.netloc, parts.path, parts.query, oauth)
        oauth["oauth_signature"] = sign(base, self._consumer[1], self._token[1])
        fields = {"realm": self._realm, **oauth}
        return "OAuth " + ", ".join(f'{key}="{percent(value)}"' for key, value in fields.items())

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        url = f"{self._base}{path}"
        headers = {"Authorization": self._authorization(method, url)}
        content = None
        if body is not None:
            content = dumps(body)
            headers["Content-Type"] = "application/json"
        response = await self._http.request(method, url, content=content, headers=headers)
        if response.status_code >= 300:
            raise NetSuiteError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response

    async def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        record: dict[str, Any] = loads((await self.call("GET", f"{RECORD}/invoice/{invoice_id}")).content)
        return record

    async def accept_payment(self, invoice_id: str, *, amount: Decimal | None = None, memo: str = "") -> str:
        """A customer payment applied to the invoice (all that remains unless `amount`); its internal id."""
        body: dict[str, Any] = {"memo": memo}
        if amount is not None:
            body["payment"] = amount
        response = await self.call("POST", f"{RECORD}/invoice/{invoice_id}/!transform/customerPayment", body)
        return urlsplit(response.headers["Location"]).path.rsplit("/", 1)[-1]
