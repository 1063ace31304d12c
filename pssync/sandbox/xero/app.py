"""The Xero sandbox: identity (token, connections) and the Accounting API subset ps-sync uses.

Paths, payloads and errors follow specs/xero/xero_accounting.yaml and developer.xero.com; the tests
validate every response against that spec. Control endpoints under /_sandbox/ are not part of Xero.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response

from pssync.connectors.xero.wire import loads
from pssync.sandbox.faults import FaultConfig, FaultMiddleware, FaultPlan
from pssync.sandbox.oauth import TokenIssuer, bearer
from pssync.sandbox.store import SandboxStore
from pssync.sandbox.xero import chart, query, replies
from pssync.sandbox.xero.books import DocumentNotFound, ValidationFailed, XeroBooks
from pssync.sandbox.xero.config import RateLimitConfig, WebhookConfig, XeroSandboxConfig
from pssync.sandbox.xero.idempotency import MAX_KEY_LENGTH, IdempotencyKeys, KeyInUse, Stored, fingerprint
from pssync.sandbox.xero.ratelimit import RateLimiter, RateLimitMiddleware
from pssync.sandbox.xero.render import wire
from pssync.sandbox.xero.webhook_sender import WebhookSender

API = "/api.xro/2.0"
SCOPES = {
    "accounting.transactions",
    "accounting.transactions.read",
    "accounting.contacts",
    "accounting.contacts.read",
    "accounting.settings",
    "accounting.settings.read",
    "accounting.reports.read",
    "accounting.journals.read",
    "accounting.attachments",
    "accounting.attachments.read",
}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class XeroSandbox:
    """The live state behind the app, reachable as `app.state.sandbox` for tests and the demo."""

    def __init__(self, config: XeroSandboxConfig) -> None:
        self.config = config
        self.store = SandboxStore(config.state_path)
        self.tokens = TokenIssuer({config.client_id: config.client_secret}, config.token_lifetime_seconds)
        self.plan = FaultPlan(config.faults)
        self.limiter = RateLimiter(config.rate_limits)
        self.keys = IdempotencyKeys(self.store, config.idempotency_window_seconds)
        self.webhooks = WebhookSender(
            config.webhooks, plan=self.plan, store=self.store, tenant_id=config.tenant_id
        )
        self.books = {config.tenant_id: XeroBooks(self.store, config.tenant_id, self.webhooks.publish)}
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.connected_at = datetime.now(UTC)

    def reset(self) -> None:
        self.store.reset()
        self.limiter.reset()
        self.webhooks.reset()
        self.plan.configure(self.plan.config)
        self.calls.clear()
        self.statuses.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": sum(self.calls.values()),
            "calls_by_operation": dict(self.calls),
            "responses_by_status": {str(k): v for k, v in self.statuses.items()},
            "faults": dict(self.plan.injected),
            "rate_limited": sum(self.limiter.refused.values()),
            "rate_limited_by_problem": dict(self.limiter.refused),
            "max_in_flight": dict(self.limiter.max_in_flight),
            "tokens_issued": self.tokens.issued_count,
            "idempotent_replays": self.keys.replays,
            "webhooks": self.webhooks.snapshot(),
        }


def _rate_limited_reply(scope: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return replies.rate_limited_parts("minute", 60)


def _server_error_reply(scope: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return replies.unavailable_parts()


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() == "true"


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _modified_since(request: Request) -> int | None:
    """If-Modified-Since as epoch ms; Xero takes ISO 8601 (UTC unless an offset is given) or RFC 1123."""
    value = request.headers.get("If-Modified-Since")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def create_app(config: XeroSandboxConfig | None = None) -> FastAPI:
    config = config or XeroSandboxConfig()
    sandbox = XeroSandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sandbox.webhooks.start()
        try:
            yield
        finally:
            await sandbox.webhooks.stop()
            sandbox.store.close()

    app = FastAPI(title="Xero sandbox (ps-sync)", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    # Added innermost first: the limiter wraps the faults, so injected latency holds a concurrency slot
    # just as a slow Xero would.
    app.add_middleware(
        FaultMiddleware,
        plan=sandbox.plan,
        rate_limited=_rate_limited_reply,
        server_error=_server_error_reply,
        exempt_prefixes=("/_sandbox", "/connect"),
    )
    app.add_middleware(RateLimitMiddleware, limiter=sandbox.limiter)

    # --- identity -------------------------------------------------------------------------------------------

    @app.post("/connect/token")
    async def token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed by hand: no multipart library needed for three fields.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = None, None
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return replies.token_error("invalid_client")
        if not sandbox.tokens.client_valid(client_id, client_secret):
            return replies.token_error("invalid_client")
        if form.get("grant_type") != "client_credentials":
            return replies.token_error("unsupported_grant_type")
        requested = str(form.get("scope") or "").split()
        if any(scope not in SCOPES for scope in requested):
            return replies.token_error("invalid_scope")
        assert client_id is not None
        granted = " ".join(requested) or " ".join(sorted(SCOPES))
        return replies.json_response(
            200,
            {
                "access_token": sandbox.tokens.issue(client_id),
                "expires_in": config.token_lifetime_seconds,
                "token_type": "Bearer",
                "scope": granted,
            },
        )

    def _authorised(request: Request) -> Response | None:
        if sandbox.tokens.check(bearer(request.headers.get("Authorization"))) is None:
            stamp = datetime.now(UTC).strftime("%m/%d/%Y %H:%M:%S")
            return replies.unauthorized(f"TokenExpired: token expired at {stamp}")
        return None

    @app.get("/connections")
    async def connections(request: Request) -> Response:
        if (refused := _authorised(request)) is not None:
            return refused
        stamp = sandbox.connected_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return replies.json_response(
            200,
            [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"connection:{tenant}")),
                    "authEventId": str(uuid.uuid4()),
                    "tenantId": tenant,
                    "tenantType": "ORGANISATION",
                    "tenantName": config.tenant_name,
                    "createdDateUtc": stamp,
                    "updatedDateUtc": stamp,
                }
                for tenant in sandbox.books
            ],
        )

    # --- accounting plumbing ----------------------------------------------------------------------------

    def _books(request: Request, operation: str) -> XeroBooks | Response:
        sandbox.calls[operation] += 1
        if (refused := _authorised(request)) is not None:
            return refused
        books = sandbox.books.get(request.headers.get("xero-tenant-id", ""))
        return books if books is not None else replies.forbidden()

    async def _body(request: Request) -> Any:
        raw = await request.body()
        try:
            return loads(raw) if raw else None
        except ValueError as exc:
            raise _PostDataInvalid(f"JSON for post data was invalid, {exc}") from exc

    def _items(document: Any, collection: str) -> Any:
        if isinstance(document, dict) and collection in document:
            return document[collection]
        return [document] if isinstance(document, dict) else document

    def _ok(collection: str, items: list[dict[str, Any]], **extra: Any) -> Response:
        return replies.json_response(
            200, replies.envelope(config.provider_name, collection, wire(items), **extra)
        )

    async def _write(request: Request, books: XeroBooks, work: Callable[[Any], Response]) -> Response:
        """Run a write once per Idempotency-Key; replays get the stored reply without touching the books."""
        raw = await request.body()
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > MAX_KEY_LENGTH:
            return replies.validation_exception(
                [
                    {
                        "ValidationErrors": [
                            {"Message": f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters."}
                        ]
                    }
                ]
            )
        print_ = fingerprint(request.method, request.url.path, request.url.query, raw)
        if key is not None:
            try:
                stored = sandbox.keys.begin(books.tenant_id, key, print_)
            except KeyInUse as exc:
                return replies.idempotency_conflict(exc.detail, exc.status)
            if stored is not None:
                return Response(content=stored.body, status_code=stored.status, media_type=stored.media_type)
        response: Response | None = None
        try:
            try:
                document = await _body(request)
                response = work(document)
            except _PostDataInvalid as exc:
                response = replies.post_data_invalid(str(exc))
            except ValidationFailed as exc:
                response = replies.validation_exception(wire(exc.elements))
            except DocumentNotFound:
                response = replies.not_found()
            return response
        finally:
            if key is not None:
                sandbox.keys.finish(
                    books.tenant_id,
                    key,
                    print_,
                    None
                    if response is None
                    else Stored(
                        response.status_code, bytes(response.body), response.media_type or replies.JSON
                    ),
                )

    def _listing(
        request: Request,
        docs: list[dict[str, Any]],
        collection: str,
        *,
        modified_field: str = "UpdatedDateUTC",
        paged: bool = True,
        strip_when_unpaged: tuple[str, ...] = (),
    ) -> Response:
        try:
            predicate = query.where(request.query_params.get("where"))
            since = _modified_since(request)
            selected = [
                d for d in docs if predicate(d) and (since is None or d.get(modified_field, 0) >= since)
            ]
            selected = query.order(selected, request.query_params.get("order"))
        except query.QueryError as exc:
            return replies.query_parse_error(str(exc))
        page = _int_param(request, "page") if paged else None
        if page is None:
            # Without `page` Xero returns every match but leaves the heavy parts (line items) out.
            return _ok(
                collection, [{k: v for k, v in d.items() if k not in strip_when_unpaged} for d in selected]
            )
        size = min(max(_int_param(request, "pageSize") or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
        page = max(page, 1)
        chunk = selected[(page - 1) * size : page * size]
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": -(-len(selected) // size),
            "itemCount": len(selected),
        }
        return _ok(collection, chunk, pagination=pagination)

    def _summarize(request: Request) -> bool:
        # The spec lists the parameter's default as false, but Xero summarises errors (one 400 for the
        # batch) unless the caller asks otherwise; the docs' example is summarizeErrors=false.
        return _flag(request, "summarizeErrors", True)

    # --- contacts ---------------------------------------------------------------------------------------

    @app.get(f"{API}/Contacts")
    async def get_contacts(request: Request) -> Response:
        books = _books(request, "getContacts")
        if isinstance(books, Response):
            return books
        include_archived = _flag(request, "includeArchived", False)
        docs = [c for c in books.contacts if include_archived or c["ContactStatus"] == "ACTIVE"]
        ids = {i.strip().lower() for i in request.query_params.get("IDs", "").split(",") if i.strip()}
        if ids:
            docs = [c for c in docs if c["ContactID"].lower() in ids]
        term = (request.query_params.get("searchTerm") or "").strip().lower()
        if term:
            # Xero: a case-insensitive text search across Name, FirstName, LastName, ContactNumber and
            # EmailAddress (a contact matches when any of them contains the term).
            docs = [
                c
                for c in docs
                if any(
                    term in str(c.get(field) or "").lower()
                    for field in ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
                )
            ]
        return _listing(request, docs, "Contacts")

    @app.put(f"{API}/Contacts")
    async def create_contacts(request: Request) -> Response:
        books = _books(request, "createContacts")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Contacts",
                books.save_contacts(
                    _items(doc, "Contacts"), summarize=_summarize(request), allow_update=False
                ),
            ),
        )

    @app.post(f"{API}/Contacts")
    async def save_contacts(request: Request) -> Response:
        books = _books(request, "updateOrCreateContacts")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Contacts",
                books.save_contacts(
                    _items(doc, "Contacts"), summarize=_summarize(request), allow_update=True
                ),
            ),
        )

    @app.get(API + "/Contacts/{ident}")
    async def get_contact(ident: str, request: Request) -> Response:
        books = _books(request, "getContact")
        if isinstance(books, Response):
            return books
        contact = books.find_contact(ident)
        return _ok("Contacts", [contact]) if contact else replies.not_found()

    @app.post(API + "/Contacts/{ident}")
    async def update_contact(ident: str, request: Request) -> Response:
        books = _books(request, "updateContact")
        if isinstance(books, Response):
            return books
        contact = books.find_contact(ident)
        if contact is None:
            return replies.not_found()

        def work(doc: Any) -> Response:
            elements = _items(doc, "Contacts")
            if isinstance(elements, list):
                elements = [
                    {**e, "ContactID": contact["ContactID"]} if isinstance(e, dict) else e for e in elements
                ]
            return _ok("Contacts", books.save_contacts(elements, summarize=True, allow_update=True))

        return await _write(request, books, work)

    # --- invoices ---------------------------------------------------------------------------------------

    @app.get(f"{API}/Invoices")
    async def get_invoices(request: Request) -> Response:
        books = _books(request, "getInvoices")
        if isinstance(books, Response):
            return books
        docs = list(books.invoices)
        for param, field in (
            ("IDs", "InvoiceID"),
            ("InvoiceNumbers", "InvoiceNumber"),
            ("ContactIDs", "Contact.ContactID"),
            ("Statuses", "Status"),
        ):
            wanted = {v.strip().lower() for v in request.query_params.get(param, "").split(",") if v.strip()}
            if wanted:
                docs = [d for d in docs if str(query.lookup(d, field)).lower() in wanted]
        if not _flag(request, "includeArchived", False):
            docs = [d for d in docs if d["Status"] != "ARCHIVED"]
        if _flag(request, "summaryOnly", False):
            docs = [
                {k: v for k, v in d.items() if k not in ("LineItems", "Payments", "CreditNotes")}
                for d in docs
            ]
        return _listing(request, docs, "Invoices", strip_when_unpaged=("LineItems",))

    @app.put(f"{API}/Invoices")
    async def create_invoices(request: Request) -> Response:
        books = _books(request, "createInvoices")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Invoices",
                books.create_invoices(
                    _items(doc, "Invoices"),
                    summarize=_summarize(request),
                    unitdp=_int_param(request, "unitdp"),
                ),
            ),
        )

    @app.post(f"{API}/Invoices")
    async def save_invoices(request: Request) -> Response:
        books = _books(request, "updateOrCreateInvoices")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Invoices",
                books.save_invoices(
                    _items(doc, "Invoices"),
                    summarize=_summarize(request),
                    unitdp=_int_param(request, "unitdp"),
                ),
            ),
        )

    @app.get(API + "/Invoices/{ident}")
    async def get_invoice(ident: str, request: Request) -> Response:
        books = _books(request, "getInvoice")
        if isinstance(books, Response):
            return books
        invoice = books.find_invoice(ident)
        return _ok("Invoices", [invoice]) if invoice else replies.not_found()

    @app.post(API + "/Invoices/{ident}")
    async def update_invoice(ident: str, request: Request) -> Response:
        books = _books(request, "updateInvoice")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Invoices", books.update_invoice(ident, doc, unitdp=_int_param(request, "unitdp"))
            ),
        )

    # --- payments ---------------------------------------------------------------------------------------

    @app.get(f"{API}/Payments")
    async def get_payments(request: Request) -> Response:
        books = _books(request, "getPayments")
        if isinstance(books, Response):
            return books
        return _listing(request, list(books.payments), "Payments")

    @app.put(f"{API}/Payments")
    async def create_payments(request: Request) -> Response:
        books = _books(request, "createPayments")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Payments", books.create_payments(_items(doc, "Payments"), summarize=_summarize(request))
            ),
        )

    @app.post(f"{API}/Payments")
    async def create_payment(request: Request) -> Response:
        books = _books(request, "createPayment")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok("Payments", books.create_payments(_items(doc, "Payments"), summarize=True)),
        )

    @app.get(API + "/Payments/{payment_id}")
    async def get_payment(payment_id: str, request: Request) -> Response:
        books = _books(request, "getPayment")
        if isinstance(books, Response):
            return books
        payment = books.payments.get(payment_id)
        return _ok("Payments", [payment]) if payment else replies.not_found()

    @app.post(API + "/Payments/{payment_id}")
    async def delete_payment(payment_id: str, request: Request) -> Response:
        books = _books(request, "deletePayment")
        if isinstance(books, Response):
            return books
        return await _write(
            request, books, lambda doc: _ok("Payments", books.delete_payment(payment_id, doc))
        )

    # --- credit notes -----------------------------------------------------------------------------------

    @app.get(f"{API}/CreditNotes")
    async def get_credit_notes(request: Request) -> Response:
        books = _books(request, "getCreditNotes")
        if isinstance(books, Response):
            return books
        return _listing(request, list(books.credit_notes), "CreditNotes")

    @app.put(f"{API}/CreditNotes")
    async def create_credit_notes(request: Request) -> Response:
        books = _books(request, "createCreditNotes")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "CreditNotes",
                books.create_credit_notes(
                    _items(doc, "CreditNotes"),
                    summarize=_summarize(request),
                    unitdp=_int_param(request, "unitdp"),
                ),
            ),
        )

    @app.get(API + "/CreditNotes/{ident}")
    async def get_credit_note(ident: str, request: Request) -> Response:
        books = _books(request, "getCreditNote")
        if isinstance(books, Response):
            return books
        credit = books.find_credit_note(ident)
        return _ok("CreditNotes", [credit]) if credit else replies.not_found()

    @app.put(API + "/CreditNotes/{ident}/Allocations")
    async def allocate_credit_note(ident: str, request: Request) -> Response:
        books = _books(request, "createCreditNoteAllocation")
        if isinstance(books, Response):
            return books
        return await _write(
            request,
            books,
            lambda doc: _ok(
                "Allocations",
                books.allocate_credit(ident, _items(doc, "Allocations"), summarize=_summarize(request)),
            ),
        )

    # --- reference data ---------------------------------------------------------------------------------

    for path, collection, rows, operation in (
        ("Accounts", "Accounts", chart.accounts, "getAccounts"),
        ("TaxRates", "TaxRates", chart.tax_rates, "getTaxRates"),
        ("Currencies", "Currencies", chart.currencies, "getCurrencies"),
        ("Items", "Items", chart.items, "getItems"),
        ("Organisation", "Organisations", chart.organisations, "getOrganisations"),
    ):
        app.add_api_route(
            f"{API}/{path}", _reference_route(_books, _listing, collection, rows, operation), methods=["GET"]
        )

    # --- control (not Xero) -----------------------------------------------------------------------------

    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/_sandbox/faults")
    async def set_faults(faults: FaultConfig) -> dict[str, Any]:
        sandbox.plan.configure(faults)
        return faults.model_dump()

    @app.put("/_sandbox/rate-limits")
    async def set_rate_limits(limits: RateLimitConfig) -> dict[str, Any]:
        sandbox.limiter.configure(limits)
        return limits.model_dump()

    @app.put("/_sandbox/webhooks")
    async def set_webhooks(webhooks: WebhookConfig) -> dict[str, Any]:
        sandbox.webhooks.configure(webhooks)
        return webhooks.model_dump()

    @app.post("/_sandbox/webhooks/intent-to-receive")
    async def intent_to_receive() -> dict[str, Any]:
        return await sandbox.webhooks.intent_to_receive()

    @app.get("/_sandbox/webhooks/deliveries")
    async def deliveries() -> list[dict[str, Any]]:
        return list(sandbox.webhooks.log)

    @app.post("/_sandbox/webhooks/flush")
    async def flush(timeout_seconds: float = 10.0) -> dict[str, Any]:
        """Wait until every queued event has been delivered or given up (tests and the demo)."""
        await sandbox.webhooks.wait_idle(timeout_seconds)
        return sandbox.webhooks.snapshot()

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        sandbox.reset()
        return {"status": "reset"}

    @app.post("/_sandbox/expire-tokens")
    async def expire_tokens() -> dict[str, str]:
        sandbox.tokens.expire_all()
        return {"status": "expired"}

    @app.get("/_sandbox/stats")
    async def stats() -> dict[str, Any]:
        return sandbox.stats()

    app.add_middleware(_StatusCounter, statuses=sandbox.statuses)
    return app


class _StatusCounter:
    """Counts accounting API answers by status, including the 429s and faults answered before the API."""

    def __init__(self, app: Any, *, statuses: Counter[int]) -> None:
        self.app = app
        self.statuses = statuses

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API):
            await self.app(scope, receive, send)
            return

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting)


class _PostDataInvalid(Exception):
    pass


def _reference_route(
    books_of: Callable[[Request, str], XeroBooks | Response],
    listing: Callable[..., Response],
    collection: str,
    rows: Callable[[], list[dict[str, Any]]],
    operation: str,
) -> Callable[[Request], Any]:
    async def route(request: Request) -> Response:
        books = books_of(request, operation)
        if isinstance(books, Response):
            return books
        return listing(request, rows(), collection, paged=False)

    route.__name__ = operation
    return route
