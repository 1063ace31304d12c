"""Low-level Salesforce REST API client: sObject rows, upsert by external id, SOQL paging, composite.

Every call is sent once; failures surface as the connector error taxonomy, never retried here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from connectors.errors import ConnectorError, Rejected, Timeout, Unavailable
from connectors.http import OAuth2ClientCredentials, build_client
from connectors.paging import Page
from connectors.salesforce import jsonio
from connectors.salesforce.auth import JwtBearerAuth, client_credentials_auth
from connectors.salesforce.errors import SYSTEM, map_error

_VERSION = re.compile(r"^v(\d+)\.(\d)$")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
Record = dict[str, Any]


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API request usage as of the last response (Sforce-Limit-Info)."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class UpsertResult:
    # None only on API versions before 46.0, whose update answer (204) carries no body.
    id: str | None
    created: bool


@dataclass(frozen=True)
class CompositeSubrequest:
    method: str
    # Relative to the version root ('sobjects/Account') or absolute ('/services/data/v62.0/...').
    url: str
    reference_id: str
    body: Any = None


@dataclass(frozen=True)
class CompositeResult:
    reference_id: str
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 300

    def error(self, context: str) -> ConnectorError:
        return map_error(
            self.status,
            self.body,
            {k.lower(): v for k, v in self.headers.items()},
            context=f"{context} [{self.reference_id}]",
        )


def parse_api_version(api_version: str) -> float:
    match = _VERSION.match(api_version)
    if not match:
        raise ValueError(f"api_version must look like 'v62.0', got {api_version!r}")
    return float(f"{match.group(1)}.{match.group(2)}")


def soql_literal(value: str) -> str:
    """A SOQL string literal: backslashes and quotes escaped, so a value can never change the query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceClient:
    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        api_version: str = "v62.0",
        jwt_private_key: str | bytes | None = None,
        jwt_username: str | None = None,
        jwt_audience: str = "https://login.salesforce.com",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.version = parse_api_version(api_version)
        if (jwt_private_key is None) != (jwt_username is None):
            raise ValueError("the JWT bearer flow needs both jwt_private_key and jwt_username")
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.data_path = f"/services/data/{api_version}"
        self.auth: OAuth2ClientCredentials
        if jwt_private_key is not None and jwt_username is not None:
            self.auth = JwtBearerAuth(
                base_url=self.base_url,
                client_id=client_id,
                private_key=jwt_private_key,
                username=jwt_username,
                audience=jwt_audience,
            )
        else:
            self.auth = client_credentials_auth(
                base_url=self.base_url, client_id=client_id, client_secret=client_secret
            )
        self._owns_http = http is None
        self._http = http or build_client(base_url=self.base_url)
        self.api_usage: ApiUsage | None = None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ----- transport ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        if path.startswith("/services/"):
            return self.base_url + path
        return f"{self.base_url}{self.data_path}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        context: str,
        accept: Sequence[int] = (200,),
    ) -> httpx.Response:
        send_headers = {"Accept": "application/json", **(headers or {})}
        content = None
        if body is not None:
            content = jsonio.dumps(body).encode()
            send_headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method, self.url(path), params=params, content=content, headers=send_headers
        )
        try:
            response = await self._http.send(request, auth=self.auth)
        except httpx.TimeoutException as exc:
            raise Timeout(
                f"{context}: Salesforce did not answer in time ({type(exc).__name__})", system=SYSTEM
            ) from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise Unavailable(
                f"{context}: connection to Salesforce failed ({type(exc).__name__}: {exc})", system=SYSTEM
            ) from exc
        self._note_usage(response)
        if response.status_code not in accept:
            raise map_error(response.status_code, _body(response), response.headers, context=context)
        return response

    def _note_usage(self, response: httpx.Response) -> None:
        match = _LIMIT_INFO.search(response.headers.get("sforce-limit-info", ""))
        if match:
            self.api_usage = ApiUsage(used=int(match.group(1)), limit=int(match.group(2)))

    # ----- sObject rows ---------------------------------------------------------------------------

    async def create(self, sobject: str, fields: Mapping[str, Any]) -> str:
        response = await self.request(
            "POST", f"sobjects/{sobject}", body=dict(fields), context=f"create {sobject}", accept=(201,)
        )
        return str(_json(response, f"create {sobject}")["id"])

    async def get(self, sobject: str, record_id: str, fields: Sequence[str] | None = None) -> Record:
        params = {"fields": ",".join(fields)} if fields else None
        response = await self.request(
            "GET",
            f"sobjects/{sobject}/{quote(record_id, safe='')}",
            params=params,
            context=f"get {sobject} {record_id}",
        )
        return dict(_json(response, f"get {sobject} {record_id}"))

    async def get_by_external_id(self, sobject: str, field_name: str, value: str) -> Record:
        response = await self.request(
            "GET",
            f"sobjects/{sobject}/{field_name}/{quote(value, safe='')}",
            context=f"get {sobject} by {field_name}={value}",
        )
        return dict(_json(response, f"get {sobject} by {field_name}"))

    async def update(self, sobject: str, record_id: str, fields: Mapping[str, Any]) -> None:
        await self.request(
            "PATCH",
            f"sobjects/{sobject}/{quote(record_id, safe='')}",
            body=dict(fields),
            context=f"update {sobject} {record_id}",
            accept=(204,),
        )

    async def delete(self, sobject: str, record_id: str) -> None:
        await self.request(
            "DELETE",
            f"sobjects/{sobject}/{quote(record_id, safe='')}",
            context=f"delete {sobject} {record_id}",
            accept=(204,),
        )

    async def upsert(
        self,
        sobject: str,
        field_name: str,
        value: str,
        fields: Mapping[str, Any],
        *,
        update_only: bool = False,
    ) -> UpsertResult:
        """PATCH /sobjects/{type}/{field}/{value}: 201 created, 200 (v46+) or 204 updated, 300 ambiguous.

        With `update_only` (API v61.0+) a missing record is NotFound instead of being created.
        """
        if update_only and self.version < 61.0:
            raise ValueError(f"updateOnly needs API v61.0 or later; this client speaks {self.api_version}")
        params = {"updateOnly": "true"} if update_only else None
        response = await self.request(
            "PATCH",
            f"sobjects/{sobject}/{field_name}/{quote(value, safe='')}",
            params=params,
            body=dict(fields),
            context=f"upsert {sobject} by {field_name}={value}",
            accept=(200, 201, 204),
        )
        if response.status_code == 204:
            return UpsertResult(id=None, created=False)
        body = _json(response, f"upsert {sobject}")
        return UpsertResult(id=str(body["id"]), created=response.status_code == 201)

    # ----- SOQL -----------------------------------------------------------------------------------

    async def query(
        self, soql: str, *, cursor: str | None = None, batch_size: int | None = None
    ) -> AsyncGenerator[Page[Record], None]:
        """Pages of records; each page's `next_cursor` (the nextRecordsUrl) resumes after it.

        Salesforce closes an idle query locator after about 15 minutes; resuming with an expired one
        is Rejected (INVALID_QUERY_LOCATOR) and the query must be started again.
        """
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        current = cursor
        while True:
            if current is None:
                response = await self.request(
                    "GET", "query", params={"q": soql}, headers=headers, context="query"
                )
            else:
                if not current.startswith("/services/data/"):
                    raise Rejected(f"not a Salesforce nextRecordsUrl: {current!r}", system=SYSTEM)
                response = await self.request("GET", current, headers=headers, context="query more")
            body = _json(response, "query")
            next_url = body.get("nextRecordsUrl") if not body.get("done", True) else None
            yield Page(
                items=list(body.get("records", [])),
                next_cursor=next_url,
                cursor=current,
                extra={"total_size": body.get("totalSize")},
            )
            if next_url is None:
                return
            current = next_url

    async def query_all(self, soql: str) -> list[Record]:
        records: list[Record] = []
        async for page in self.query(soql):
            records.extend(page.items)
        return records

    async def count(self, soql: str) -> int:
        response = await self.request("GET", "query", params={"q": soql}, context="count")
        return int(_json(response, "count")["totalSize"])

    # ----- composite and limits -------------------------------------------------------------------

    async def composite(
        self, subrequests: Sequence[CompositeSubrequest], *, all_or_none: bool, context: str = "composite"
    ) -> list[CompositeResult]:
        """Up to 25 subrequests in one API call; later ones may use '@{referenceId.field}'."""
        payload = {
            "allOrNone": all_or_none,
            "compositeRequest": [
                {
                    "method": sub.method,
                    "url": self.url(sub.url)[len(self.base_url) :],
                    "referenceId": sub.reference_id,
                    **({"body": sub.body} if sub.body is not None else {}),
                }
                for sub in subrequests
            ],
        }
        response = await self.request("POST", "composite", body=payload, context=context)
        return [
            CompositeResult(
                reference_id=str(item.get("referenceId")),
                status=int(item["httpStatusCode"]),
                body=item.get("body"),
                headers=item.get("httpHeaders") or {},
            )
            for item in _json(response, context)["compositeResponse"]
        ]

    async def limits(self) -> Record:
        return dict(_json(await self.request("GET", "limits", context="limits"), "limits"))


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return jsonio.loads(response.content)
    except ValueError:
        return response.text


def _json(response: httpx.Response, context: str) -> Any:
    """A success body that must be JSON; anything else means a proxy or outage page answered."""
    body = _body(response)
    if not isinstance(body, dict | list):
        raise Unavailable(
            f"{context}: Salesforce answered {response.status_code} without a JSON body: {str(body)[:200]}",
            system=SYSTEM,
            status_code=response.status_code,
        )
    return body
