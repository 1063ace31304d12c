"""REST web services as the sandbox serves them: the OAuth 2.0 token endpoint, the record API
(/services/rest/record/v1) and SuiteQL (/services/rest/query/v1/suiteql), every call authenticated by a TBA
signature or a bearer token."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response

from sandboxes.exact_json import loads
from sandboxes.netsuite import render, replies, suiteql, tba
from sandboxes.netsuite.books import RECORD_TYPES
from sandboxes.netsuite.oauth2 import ASSERTION_TYPE, AssertionRefused, verify_assertion
from sandboxes.netsuite.replies import NetSuiteError
from sandboxes.netsuite.sandbox import NetSuiteSandbox
from sandboxes.netsuite.tables import TABLES
from sandboxes.oauth import bearer

RECORD = "/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
MAX_PAGE = 1000
INVALID_LOGIN = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def authenticate(sandbox: NetSuiteSandbox, request: Request) -> None:
    authorization = request.headers.get("authorization", "")
    scheme = authorization.partition(" ")[0].lower()
    why: str | None
    if scheme == "bearer":
        why = None if sandbox.tokens.check(bearer(authorization)) is not None else "unknown or expired token"
    elif scheme == "oauth":
        why = tba.verify(
            method=request.method,
            scheme=request.url.scheme,
            host=request.headers.get("host", ""),
            raw_path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            query=request.scope.get("query_string", b"").decode("latin-1"),
            authorization=authorization,
            credentials=sandbox.tba,
            nonces=sandbox.nonces,
            tolerance_seconds=sandbox.config.timestamp_tolerance_seconds,
            now=time.time(),
        )
    else:
        why = "no Authorization header NetSuite accepts"
    if why is not None:
        sandbox.auth_refused[why] += 1
        raise NetSuiteError(401, "INVALID_LOGIN", INVALID_LOGIN)
    sandbox.authenticated[scheme] += 1


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = loads(raw)
    except ValueError:
        raise NetSuiteError(400, "INVALID_CONTENT", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise NetSuiteError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
    return body


def _record_type(record_type: str) -> str:
    if record_type not in RECORD_TYPES:
        raise NetSuiteError(
            404,
            "INVALID_RCRD_TYPE",
            f"Record type '{record_type}' does not exist.",
            error_url_path=record_type,
        )
    return record_type


def add_routes(app: FastAPI, sandbox: NetSuiteSandbox) -> None:
    books = sandbox.books

    def location(request: Request, record_type: str, record_id: str) -> str:
        return f"{base_url(request)}{RECORD}/{record_type}/{record_id}"

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return replies.json_response(400, {"error": "unsupported_grant_type"})
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return replies.json_response(400, {"error": "invalid_request"})
        try:
            verify_assertion(
                form["client_assertion"],
                client_id=sandbox.config.client_id,
                token_url=f"{base_url(request)}{TOKEN_PATH}",
                mappings=sandbox.certificates,
                now=time.time(),
            )
        except AssertionRefused as refused:
            sandbox.auth_refused[refused.description] += 1
            status = 401 if refused.error == "invalid_client" else 400
            return replies.json_response(
                status, {"error": refused.error, "error_description": refused.description}
            )
        return replies.json_response(
            200,
            {
                "access_token": sandbox.tokens.issue(sandbox.config.client_id),
                "expires_in": str(sandbox.config.token_lifetime_seconds),
                "token_type": "bearer",
            },
        )

    @app.get(RECORD + "/{record_type}/{ref}")
    async def read(
        request: Request, record_type: str, ref: str, expandSubResources: bool = False
    ) -> Response:
        authenticate(sandbox, request)
        sandbox.calls[f"GET {record_type}"] += 1
        doc = books.get(_record_type(record_type), ref)
        if record_type == "invoice":
            doc = books.invoice_view(doc)
        body = render.record(books, record_type, doc, expand=expandSubResources, base=base_url(request))
        return replies.json_response(200, body)

    @app.post(RECORD + "/{record_type}")
    async def create(request: Request, record_type: str) -> Response:
        authenticate(sandbox, request)
        sandbox.calls[f"POST {record_type}"] += 1
        doc = books.create(_record_type(record_type), await json_body(request))
        return replies.created(location(request, record_type, str(doc["id"])))

    @app.put(RECORD + "/{record_type}/{ref}")
    async def upsert(request: Request, record_type: str, ref: str) -> Response:
        authenticate(sandbox, request)
        sandbox.calls[f"PUT {record_type}"] += 1
        if not ref.startswith("eid:") or len(ref) == 4:
            raise NetSuiteError(
                400,
                "INVALID_REQUEST",
                "The upsert operation needs an external ID in the URL (eid:<externalId>).",
                error_url_path=ref,
            )
        doc = books.upsert(_record_type(record_type), ref[4:], await json_body(request))
        return replies.created(location(request, record_type, str(doc["id"])))

    @app.patch(RECORD + "/{record_type}/{ref}")
    async def update(request: Request, record_type: str, ref: str) -> Response:
        authenticate(sandbox, request)
        sandbox.calls[f"PATCH {record_type}"] += 1
        books.update(_record_type(record_type), ref, await json_body(request))
        return Response(status_code=204)

    @app.delete(RECORD + "/{record_type}/{ref}")
    async def delete(request: Request, record_type: str, ref: str) -> Response:
        authenticate(sandbox, request)
        sandbox.calls[f"DELETE {record_type}"] += 1
        books.delete(_record_type(record_type), ref)
        return Response(status_code=204)

    @app.post(RECORD + "/{record_type}/{ref}/!transform/{target}")
    async def transform(request: Request, record_type: str, ref: str, target: str) -> Response:
        authenticate(sandbox, request)
        sandbox.calls[f"TRANSFORM {record_type}->{target}"] += 1
        doc = books.transform(_record_type(record_type), ref, target, await json_body(request))
        return replies.created(location(request, target, str(doc["id"])))

    @app.post(RECORD + "/{record_type}/{ref}/{action}")
    async def act(request: Request, record_type: str, ref: str, action: str) -> Response:
        authenticate(sandbox, request)
        if not action.startswith("@"):
            raise NetSuiteError(404, "INVALID_URL", f"No resource {action!r} on a {record_type}.")
        sandbox.calls[f"ACTION {record_type} {action}"] += 1
        if action != "@void":
            raise NetSuiteError(400, "INVALID_OPERATION", f"The action '{action[1:]}' is not supported.")
        doc = books.void(_record_type(record_type), ref)
        self_url = f"{location(request, record_type, str(doc['id']))}/{action}"
        return replies.json_response(
            200, {"links": [{"rel": "self", "href": self_url}], "result": str(doc["id"])}
        )

    @app.post(SUITEQL_PATH)
    async def query(request: Request, limit: int = MAX_PAGE, offset: int = 0) -> Response:
        authenticate(sandbox, request)
        sandbox.calls["SUITEQL"] += 1
        if "transient" not in request.headers.get("prefer", "").lower():
            raise NetSuiteError(
                400,
                "INVALID_HEADER",
                "SuiteQL requests need the header Prefer: transient.",
                error_header="Prefer",
            )
        if not 1 <= limit <= MAX_PAGE:
            raise NetSuiteError(
                400,
                "INVALID_PARAMETER",
                f"limit must be between 1 and {MAX_PAGE}.",
                error_query_param="limit",
            )
        if offset < 0:
            raise NetSuiteError(
                400, "INVALID_PARAMETER", "offset must not be negative.", error_query_param="offset"
            )
        text = (await json_body(request)).get("q")
        if not isinstance(text, str) or not text.strip():
            raise NetSuiteError(400, "INVALID_PARAMETER", "Enter a query in the q field.", error_path="q")
        try:
            parsed = suiteql.parse(text)
            table = TABLES.get(parsed.table)
            if table is None:
                raise suiteql.QueryError(f"Invalid search query: unknown table {parsed.table!r}")
            with sandbox.store.lock:
                rows = suiteql.run(parsed, table(books))
        except suiteql.QueryError as err:
            raise NetSuiteError(400, "INVALID_PARAMETER", str(err), error_path="q") from None
        page = rows[offset : offset + limit]
        has_more = offset + len(page) < len(rows)
        url = f"{base_url(request)}{SUITEQL_PATH}"
        links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
        if has_more:
            links.insert(0, {"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
        return replies.json_response(
            200,
            {
                "links": links,
                "count": len(page),
                "hasMore": has_more,
                "items": [
                    {"links": [], **{k: suiteql.rendered(v) for k, v in row.items() if v is not None}}
                    for row in page
                ],
                "offset": offset,
                "totalResults": len(rows),
            },
        )
