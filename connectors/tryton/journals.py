"""Journals in Tryton: account moves (`account.move`) in the general journal, posted.

A journal becomes one move of the company's "Miscellaneous" journal (code MISC, type general, which the
account module creates), in the period holding its date, with a line per journal line: our signed amount
split into Tryton's debit and credit columns, the account found by code, the line's description naming its
ledger source, and one analytic line per dimension (module `analytic_account`: `analytic_lines` on the move
line, against the value's analytic account under its dimension's root, see analytic.py). Tryton expects
analytic lines on income and expense accounts only and marks those on a balance-sheet account (a WIP or
accrual line) "draft" in its analytic state; they are booked all the same, since finance reports WIP by
project too. An account that needs a party (receivable, payable) books against the customer the line's
`customer` dimension names: its code is the party's code.

Tryton has no idempotency key, and a move has no reference field and no free origin: our reference starts
the move's `description` (`Journal.erp_narration`), and a post looks it up before it creates, so a retry or
a re-run finds the move. A move Tryton refuses to post is deleted again; one left in draft by a lost reply
is posted by the next attempt.

A date in a closed period (or a closed fiscal year, whose periods are all closed) is refused by Tryton when
the move's lines are written there; that refusal comes back as `Rejected` in Tryton's own words.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from canonical import LegalEntity, Money
from canonical.dimensions import Dimension, DimensionValue
from canonical.journals import (
    BookedJournal,
    BookedJournalLine,
    Journal,
    JournalLine,
    JournalState,
    PostedJournal,
    reference_of,
    revalidated,
)
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.tryton import analytic, mapping
from connectors.tryton.analytic import TrytonAnalytics
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"
GENERAL_JOURNAL = "MISC"
MOVE_FIELDS = ("id", "number", "date", "state", "description", "lines", "company")
LINE_FIELDS = ("id", "account", "debit", "credit", "description", "analytic_lines")
_STATES: dict[str, JournalState] = {"draft": "draft", "posted": "posted"}


def _rejected(errors: list[FieldError]) -> Rejected:
    return Rejected("; ".join(e.message for e in errors), system=SYSTEM, field_errors=errors)


def _refuse(message: str, field: str) -> Rejected:
    return _rejected([FieldError(field=field, message=message)])


class TrytonJournals:
    """Account moves of the session user's company; the general journal's id is looked up once."""

    def __init__(self, rpc: TrytonRpc, books: TrytonBooks, analytics: TrytonAnalytics) -> None:
        self._rpc = rpc
        self._books = books
        self._analytics = analytics
        self._journal: int | None = None
        self._currency: str | None = None

    async def _general_journal(self) -> int:
        if self._journal is None:
            found = await self._rpc.search(
                "account.journal", [("code", "=", GENERAL_JOURNAL), ("type", "=", "general")], limit=2
            )
            if len(found) != 1:
                raise Rejected(
                    f"Tryton has {'several' if found else 'no'} general journal with code "
                    f"{GENERAL_JOURNAL!r} for journals: finance keeps exactly one (Financial, Configuration, "
                    "Journals)",
                    system=SYSTEM,
                )
            self._journal = int(found[0])
        return self._journal

    async def _company_currency(self) -> str:
        if self._currency is None:
            company = await self._books.company()
            (record,) = await self._rpc.read("company.company", [company], ["currency"])
            self._currency = await self._books.currency_code(int(record["currency"]))
        return self._currency

    async def _moves(self, prefix: str) -> list[dict[str, Any]]:
        """The company's moves whose description starts with `prefix`, read."""
        company = await self._books.company()
        # The reference pattern has no LIKE wildcards; the match is re-checked exactly by the callers.
        ids = await self._rpc.search(
            "account.move", [("description", "like", f"{prefix}%"), ("company", "=", company)]
        )
        return await self._rpc.read("account.move", ids, list(MOVE_FIELDS))

    @staticmethod
    def _posted(move: dict[str, Any], lines: list[dict[str, Any]], currency: str) -> PostedJournal:
        return PostedJournal(
            erp=SYSTEM,
            journal_id=str(move["id"]),
            reference=reference_of(str(move.get("description") or "")),
            date=move["date"],
            state=_STATES.get(str(move["state"]), "draft"),
            total_debits=Money(amount=sum((line["debit"] for line in lines), Decimal(0)), currency=currency),
        )

    async def _lines(self, line_ids: list[int]) -> list[dict[str, Any]]:
        return await self._rpc.read("account.move.line", line_ids, list(LINE_FIELDS))

    async def _find_move(self, reference: str) -> dict[str, Any] | None:
        found = [
            move
            for move in await self._moves(f"{reference} ")
            if reference_of(str(move.get("description") or "")) == reference
        ]
        if len(found) > 1:
            raise Conflict(
                f"{len(found)} Tryton moves carry reference {reference!r}: "
                f"{', '.join(str(m['number'] or m['id']) for m in found)}",
                system=SYSTEM,
            )
        return found[0] if found else None

    async def find_journal(self, reference: str) -> PostedJournal | None:
        move = await self._find_move(reference)
        if move is None:
            return None
        return self._posted(move, await self._lines(move["lines"]), await self._company_currency())

    async def _period(self, journal: Journal) -> int:
        company = await self._books.company()
        found = await self._rpc.search(
            "account.period",
            [
                ("fiscalyear.company", "=", company),
                ("start_date", "<=", journal.date),
                ("end_date", ">=", journal.date),
                ("type", "=", "standard"),
            ],
            limit=1,
        )
        if not found:
            raise _refuse(
                f"Tryton has no period holding {journal.date.isoformat()} for journal {journal.reference}: "
                "finance creates the fiscal year and its periods first",
                "date",
            )
        # A closed period is passed on as it is: Tryton refuses it in its own words.
        return int(found[0])

    async def _party(self, line: JournalLine, index: int) -> tuple[int | None, FieldError | None]:
        customer = next((value for value in line.dimensions if value.dimension == "customer"), None)
        if customer is None:
            return None, FieldError(
                field=f"lines[{index}].account_code",
                code="party_required",
                message=f"Tryton account {line.account_code!r} books against a party, and line {index} names "
                "no customer to book it against",
            )
        found = await self._rpc.search("party.party", [("code", "=", customer.code)], limit=2)
        if len(found) != 1:
            return None, FieldError(
                field=f"lines[{index}].dimensions",
                code="unknown_party",
                message=f"Tryton has {'several parties' if found else 'no party'} with code "
                f"{customer.code!r} for account {line.account_code!r} of line {index}",
            )
        return int(found[0]), None

    async def _line_values(self, journal: Journal) -> list[dict[str, Any]]:
        """Every line as Tryton's move line values, or one Rejected naming every line Tryton cannot book."""
        errors: list[FieldError] = []
        values: list[dict[str, Any]] = []
        for index, line in enumerate(journal.lines):
            account = await self._books.account(line.account_code)
            if account is None:
                errors.append(
                    FieldError(
                        field=f"lines[{index}].account_code",
                        code="unknown_account",
                        message=f"Tryton has no open account {line.account_code!r}",
                    )
                )
                continue
            row: dict[str, Any] = {
                "account": account,
                "debit": line.debit.amount,
                "credit": line.credit.amount,
                "description": line.booked_description,
            }
            (record,) = await self._rpc.read("account.account", [account], ["party_required"])
            if record["party_required"]:
                party, error = await self._party(line, index)
                if error is not None:
                    errors.append(error)
                row["party"] = party
            analytic_lines = []
            for value in line.dimensions:
                analytic_account = await self._analytics.account(value.dimension, value.code)
                if analytic_account is None:
                    errors.append(
                        FieldError(
                            field=f"lines[{index}].dimensions",
                            code="unknown_analytic_account",
                            message=f"Tryton has no {value.dimension} analytic account {value.code!r} under "
                            f"root {analytic.ROOTS[value.dimension][0]}",
                        )
                    )
                    continue
                analytic_lines.append(
                    {
                        "account": analytic_account,
                        "debit": line.debit.amount,
                        "credit": line.credit.amount,
                        "date": journal.date,
                    }
                )
            if analytic_lines:
                row["analytic_lines"] = [["create", analytic_lines]]
            values.append(row)
        if errors:
            raise _rejected(errors)
        return values

    async def post_journal(
        self, journal: Journal, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedJournal:
        """Find the move by the journal's reference, else create it; then post it. `idempotency_key` is not
        sent (Tryton has no such header): the reference is the key a retry finds the move by."""
        try:
            journal = revalidated(journal)
        except ValueError as exc:
            raise _refuse(f"journal {journal.reference} cannot be booked: {exc}", "lines") from None
        if journal.legal_entity != entity.code:
            raise _refuse(
                f"journal {journal.reference} belongs to entity {journal.legal_entity}, this Tryton company "
                f"books {entity.code}",
                "legal_entity",
            )
        currency = await self._company_currency()
        if journal.currency != currency:
            raise _refuse(
                f"journal {journal.reference} is in {journal.currency}; the Tryton company keeps its books "
                f"in {currency}",
                "currency",
            )
        move = await self._find_move(journal.reference)
        created = move is None
        if move is None:
            (move_id,) = await self._rpc.create(
                "account.move",
                [
                    {
                        "company": await self._books.company(),
                        "journal": await self._general_journal(),
                        "period": await self._period(journal),
                        "date": journal.date,
                        "description": journal.erp_narration,
                        "lines": [["create", await self._line_values(journal)]],
                    }
                ],
            )
            (move,) = await self._rpc.read("account.move", [move_id], list(MOVE_FIELDS))
        if move["state"] == "draft":
            try:
                await self._rpc.button("account.move", "post", [move["id"]])
            except Rejected:
                # Tryton refused to post what it let us create: the draft goes, so nothing half-made stays in
                # the books (a draft would also keep finance from closing the period).
                if created:
                    await self._rpc.delete("account.move", [move["id"]])
                raise
            (move,) = await self._rpc.read("account.move", [move["id"]], list(MOVE_FIELDS))
        return self._posted(move, await self._lines(move["lines"]), currency)

    async def _booked(self, moves: list[dict[str, Any]]) -> list[BookedJournal]:
        currency = await self._company_currency()
        lines = await self._lines([line for move in moves for line in move["lines"]])
        codes = {
            a["id"]: a["code"]
            for a in await self._rpc.read(
                "account.account", sorted({ln["account"] for ln in lines}), ["code"]
            )
        }
        dimensions = await self._dimensions([entry for ln in lines for entry in ln["analytic_lines"]])
        line_of = {line["id"]: line for line in lines}
        booked = []
        for move in moves:
            move_lines = [line_of[i] for i in sorted(move["lines"])]
            booked.append(
                BookedJournal(
                    journal=self._posted(move, move_lines, currency),
                    narration=str(move.get("description") or ""),
                    lines=tuple(
                        BookedJournalLine(
                            account_code=codes.get(line["account"], ""),
                            description=str(line.get("description") or ""),
                            amount=Money(amount=line["debit"] - line["credit"], currency=currency),
                            dimensions=tuple(
                                dimensions[a] for a in line["analytic_lines"] if a in dimensions
                            ),
                        )
                        for line in move_lines
                    ),
                )
            )
        return booked

    async def _dimensions(self, analytic_line_ids: list[int]) -> dict[int, DimensionValue]:
        """Analytic line id -> the dimension value it books, for lines under ps-sync's roots."""
        entries = await self._rpc.read("analytic_account.line", analytic_line_ids, ["account"])
        accounts = {
            a["id"]: a
            for a in await self._rpc.read(
                analytic.MODEL, sorted({e["account"] for e in entries}), ["code", "name", "root"]
            )
        }
        roots = {
            r["id"]: r["code"]
            for r in await self._rpc.read(
                analytic.MODEL, sorted({a["root"] for a in accounts.values()}), ["code"]
            )
        }
        dimension_of: dict[str, Dimension] = {
            code: dimension for dimension, (code, _) in analytic.ROOTS.items()
        }
        found: dict[int, DimensionValue] = {}
        for entry in entries:
            account = accounts.get(entry["account"])
            dimension = dimension_of.get(roots.get(account["root"], "")) if account else None
            if account is not None and dimension is not None and account["code"]:
                found[entry["id"]] = DimensionValue(
                    dimension=dimension, code=account["code"], name=account["name"]
                )
        return found

    async def get_journal(self, journal_id: str) -> BookedJournal:
        try:
            number = mapping.tryton_id(journal_id, what="journal")
        except ValueError as exc:
            raise NotFound(str(exc), system=SYSTEM, status_code=None) from None
        company = await self._books.company()
        if not await self._rpc.search("account.move", [("id", "=", number), ("company", "=", company)]):
            raise NotFound(f"Tryton has no move {journal_id}", system=SYSTEM, status_code=None)
        moves = await self._rpc.read("account.move", [number], list(MOVE_FIELDS))
        return (await self._booked(moves))[0]

    async def booked_journals(self, reference_prefix: str) -> list[BookedJournal]:
        if not reference_prefix:
            raise ValueError("a reference prefix is required: listing every journal is not a reconciliation")
        moves = [
            move
            for move in await self._moves(reference_prefix)
            if reference_of(str(move.get("description") or "")).startswith(reference_prefix)
        ]
        return await self._booked(sorted(moves, key=lambda move: move["id"]))
