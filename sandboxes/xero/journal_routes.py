"""The Accounting API's manual journal endpoints: list (Xero's where, order, paging), create, read one."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from sandboxes.xero import replies
from sandboxes.xero.accounting_api import API, AccountingApi, batch_of, summarize


def add_journal_routes(app: FastAPI, api: AccountingApi) -> None:
    @app.get(f"{API}/ManualJournals")
    async def get_manual_journals(request: Request) -> Response:
        books = api.books(request, "getManualJournals")
        if isinstance(books, Response):
            return books
        # With `page` Xero shows each journal's lines; without it the journals alone.
        return api.listing(
            request, books.journals.listing(), "ManualJournals", strip_when_unpaged=("JournalLines",)
        )

    @app.put(f"{API}/ManualJournals")
    async def create_manual_journals(request: Request) -> Response:
        books = api.books(request, "createManualJournals")
        if isinstance(books, Response):
            return books
        return await api.write(
            request,
            books,
            lambda doc: api.ok(
                "ManualJournals",
                books.journals.create(batch_of(doc, "ManualJournals"), summarize=summarize(request)),
            ),
        )

    @app.get(API + "/ManualJournals/{ident}")
    async def get_manual_journal(ident: str, request: Request) -> Response:
        books = api.books(request, "getManualJournal")
        if isinstance(books, Response):
            return books
        journal = books.journals.find(ident)
        return api.ok("ManualJournals", [journal]) if journal else replies.not_found()
