"""The Accounting API subset ps-sync uses: contacts, invoices, payments, credit notes and reference data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from sandboxes.xero import chart, query, replies
from sandboxes.xero.accounting_api import API, AccountingApi, batch_of, flag, int_param, summarize
from sandboxes.xero.books import XeroBooks


def add_accounting_routes(app: FastAPI, api: AccountingApi) -> None:
    # --- contacts ---------------------------------------------------------------------------------------

    @app.get(f"{API}/Contacts")
    async def get_contacts(request: Request) -> Response:
        books = api.books(request, "getContacts")
        if isinstance(books, Response):
            return books
        include_archived = flag(request, "includeArchived", False)
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
        return api.listing(request, docs, "Contacts")

    @app.put(f"{API}/Contacts")
    async def create_contacts(request: Request) -> Response:
        books = api.books(request, "createContacts")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Contacts",
                books.save_contacts(
                    batch_of(doc, "Contacts"), summarize=summarize(request), allow_update=False
                ),
            ),
        )

    @app.post(f"{API}/Contacts")
    async def save_contacts(request: Request) -> Response:
        books = api.books(request, "updateOrCreateContacts")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Contacts",
                books.save_contacts(
                    batch_of(doc, "Contacts"), summarize=summarize(request), allow_update=True
                ),
            ),
        )

    @app.get(API + "/Contacts/{ident}")
    async def get_contact(ident: str, request: Request) -> Response:
        books = api.books(request, "getContact")
        if isinstance(books, Response):
            return books
        contact = books.find_contact(ident)
        return api.ok("Contacts", [contact]) if contact else replies.not_found()

    @app.post(API + "/Contacts/{ident}")
    async def update_contact(ident: str, request: Request) -> Response:
        books = api.books(request, "updateContact")
        if isinstance(books, Response):
            return books
        contact = books.find_contact(ident)
        if contact is None:
            return replies.not_found()

        def work(doc: Any) -> Response:
            elements = batch_of(doc, "Contacts")
            if isinstance(elements, list):
                elements = [
                    {**e, "ContactID": contact["ContactID"]} if isinstance(e, dict) else e for e in elements
                ]
            return api.ok("Contacts", books.save_contacts(elements, summarize=True, allow_update=True))

        return await api.write(request, books, work)

    # --- invoices ---------------------------------------------------------------------------------------

    @app.get(f"{API}/Invoices")
    async def get_invoices(request: Request) -> Response:
        books = api.books(request, "getInvoices")
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
        if not flag(request, "includeArchived", False):
            docs = [d for d in docs if d["Status"] != "ARCHIVED"]
        if flag(request, "summaryOnly", False):
            docs = [
                {k: v for k, v in d.items() if k not in ("LineItems", "Payments", "CreditNotes")}
                for d in docs
            ]
        return api.listing(request, docs, "Invoices", strip_when_unpaged=("LineItems",))

    @app.put(f"{API}/Invoices")
    async def create_invoices(request: Request) -> Response:
        books = api.books(request, "createInvoices")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Invoices",
                books.create_invoices(
                    batch_of(doc, "Invoices"),
                    summarize=summarize(request),
                    unitdp=int_param(request, "unitdp"),
                ),
            ),
        )

    @app.post(f"{API}/Invoices")
    async def save_invoices(request: Request) -> Response:
        books = api.books(request, "updateOrCreateInvoices")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Invoices",
                books.save_invoices(
                    batch_of(doc, "Invoices"),
                    summarize=summarize(request),
                    unitdp=int_param(request, "unitdp"),
                ),
            ),
        )

    @app.get(API + "/Invoices/{ident}")
    async def get_invoice(ident: str, request: Request) -> Response:
        books = api.books(request, "getInvoice")
        if isinstance(books, Response):
            return books
        invoice = books.find_invoice(ident)
        return api.ok("Invoices", [invoice]) if invoice else replies.not_found()

    @app.post(API + "/Invoices/{ident}")
    async def update_invoice(ident: str, request: Request) -> Response:
        books = api.books(request, "updateInvoice")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Invoices", books.update_invoice(ident, doc, unitdp=int_param(request, "unitdp"))
            ),
        )

    # --- payments ---------------------------------------------------------------------------------------

    @app.get(f"{API}/Payments")
    async def get_payments(request: Request) -> Response:
        books = api.books(request, "getPayments")
        if isinstance(books, Response):
            return books
        return api.listing(request, list(books.payments), "Payments")

    @app.put(f"{API}/Payments")
    async def create_payments(request: Request) -> Response:
        books = api.books(request, "createPayments")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Payments", books.create_payments(batch_of(doc, "Payments"), summarize=summarize(request))
            ),
        )

    @app.post(f"{API}/Payments")
    async def create_payment(request: Request) -> Response:
        books = api.books(request, "createPayment")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok("Payments", books.create_payments(batch_of(doc, "Payments"), summarize=True)),
        )

    @app.get(API + "/Payments/{payment_id}")
    async def get_payment(payment_id: str, request: Request) -> Response:
        books = api.books(request, "getPayment")
        if isinstance(books, Response):
            return books
        payment = books.payments.get(payment_id)
        return api.ok("Payments", [payment]) if payment else replies.not_found()

    @app.post(API + "/Payments/{payment_id}")
    async def delete_payment(payment_id: str, request: Request) -> Response:
        books = api.books(request, "deletePayment")
        if isinstance(books, Response):
            return books
        return await api.write(
            request, books, lambda doc: api.ok("Payments", books.delete_payment(payment_id, doc))
        )

    # --- credit notes -----------------------------------------------------------------------------------

    @app.get(f"{API}/CreditNotes")
    async def get_credit_notes(request: Request) -> Response:
        books = api.books(request, "getCreditNotes")
        if isinstance(books, Response):
            return books
        return api.listing(request, list(books.credit_notes), "CreditNotes")

    @app.put(f"{API}/CreditNotes")
    async def create_credit_notes(request: Request) -> Response:
        books = api.books(request, "createCreditNotes")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "CreditNotes",
                books.create_credit_notes(
                    batch_of(doc, "CreditNotes"),
                    summarize=summarize(request),
                    unitdp=int_param(request, "unitdp"),
                ),
            ),
        )

    @app.get(API + "/CreditNotes/{ident}")
    async def get_credit_note(ident: str, request: Request) -> Response:
        books = api.books(request, "getCreditNote")
        if isinstance(books, Response):
            return books
        credit = books.find_credit_note(ident)
        return api.ok("CreditNotes", [credit]) if credit else replies.not_found()

    @app.put(API + "/CreditNotes/{ident}/Allocations")
    async def allocate_credit_note(ident: str, request: Request) -> Response:
        books = api.books(request, "createCreditNoteAllocation")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Allocations",
                books.allocate_credit(ident, batch_of(doc, "Allocations"), summarize=summarize(request)),
            ),
        )

    # --- tracking categories ----------------------------------------------------------------------------

    @app.get(f"{API}/TrackingCategories")
    async def get_tracking_categories(request: Request) -> Response:
        books = api.books(request, "getTrackingCategories")
        if isinstance(books, Response):
            return books
        docs = books.tracking.categories(include_archived=flag(request, "includeArchived", False))
        return api.listing(request, docs, "TrackingCategories", paged=False)

    @app.put(f"{API}/TrackingCategories")
    async def create_tracking_category(request: Request) -> Response:
        books = api.books(request, "createTrackingCategory")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "TrackingCategories",
                [books.tracking.create_category(_single(doc, "TrackingCategories"))],
            ),
        )

    @app.get(API + "/TrackingCategories/{ident}")
    async def get_tracking_category(ident: str, request: Request) -> Response:
        books = api.books(request, "getTrackingCategory")
        if isinstance(books, Response):
            return books
        category = books.tracking.find(ident)
        if category is None:
            return replies.not_found()
        return api.ok("TrackingCategories", [books.tracking.view(category, include_archived=True)])

    @app.post(API + "/TrackingCategories/{ident}")
    async def update_tracking_category(ident: str, request: Request) -> Response:
        books = api.books(request, "updateTrackingCategory")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "TrackingCategories",
                [books.tracking.update_category(ident, _single(doc, "TrackingCategories"))],
            ),
        )

    @app.put(API + "/TrackingCategories/{ident}/Options")
    async def create_tracking_options(ident: str, request: Request) -> Response:
        books = api.books(request, "createTrackingOptions")
        if isinstance(books, Response):
            return books
        return await api.write(
            request, books, lambda doc: api.ok("Options", books.tracking.add_options(ident, doc))
        )

    @app.post(API + "/TrackingCategories/{ident}/Options/{option_id}")
    async def update_tracking_option(ident: str, option_id: str, request: Request) -> Response:
        books = api.books(request, "updateTrackingOptions")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "Options", books.tracking.update_option(ident, option_id, _single(doc, "Options"))
            ),
        )

    # --- reference data ---------------------------------------------------------------------------------

    _add_organisation_route(app, api)
    for path, collection, rows, operation in (
        ("Accounts", "Accounts", chart.accounts, "getAccounts"),
        ("TaxRates", "TaxRates", chart.tax_rates, "getTaxRates"),
        ("Currencies", "Currencies", chart.currencies, "getCurrencies"),
        ("Items", "Items", chart.items, "getItems"),
    ):
        app.add_api_route(
            f"{API}/{path}",
            _reference_route(api.books, api.listing, collection, rows, operation),
            methods=["GET"],
        )


def _add_organisation_route(app: FastAPI, api: AccountingApi) -> None:
    @app.get(f"{API}/Organisation")
    async def get_organisations(request: Request) -> Response:
        books = api.books(request, "getOrganisations")
        if isinstance(books, Response):
            return books
        # Xero shows a lock date only once one is set.
        rows = [{**row, **books.lock_dates.organisation_fields()} for row in chart.organisations()]
        return api.listing(request, rows, "Organisations", paged=False)


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


def _single(document: Any, collection: str) -> Any:
    """One element: bare, or the first under the collection's name (as the SDKs wrap it)."""
    if isinstance(document, dict) and isinstance(document.get(collection), list) and document[collection]:
        return document[collection][0]
    return document
