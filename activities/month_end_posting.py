"""Posting one kind of an entity's month-end journal: every project's lines of the kind in one ERP journal
per currency, each account role on the account finance mapped it to, each line with its project's dimensions
and naming its ledger sources; then the ledger records what was posted.

The period's first journal of a kind carries the kind's reference (`REVREC-UK-2026-11`, `WIP-UK-2026-11`,
`WIP-UK-2026-11-REV`, `LABOUR-UK-2026-11`; another currency than the entity's adds `-EUR`), each later
adjustment `-ADJ1`, `-ADJ2`...; the reference is also the idempotency key, so a retried post finds the
journal. A role finance has not mapped, or an ERP that refuses the journal (a closed or locked period),
posts nothing of the kind and comes back as an outcome with the reason in the ERP's own words; the other
kinds go on.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from canonical import LegalEntity, Money
from canonical.dimensions import DimensionValue
from canonical.journals import Journal as ErpJournal
from canonical.journals import JournalLine as ErpJournalLine
from canonical.journals import PostedJournal
from connectors.errors import Rejected
from connectors.roles import ErpJournals
from domain.account_mapping import AccountMap, AccountProblem
from domain.month_end import AccountRole, Journal, JournalKind
from ledger.account_mapping import account_rules
from ledger.database import Database
from ledger.month_end import month_end_journals, record_month_end_journal
from ledger.reference import list_accounts
from ledger.repository import get_contract

_KIND_NAMES = {
    JournalKind.RECOGNITION: ("REVREC", "", "Revenue recognition"),
    JournalKind.WIP_ACCRUAL: ("WIP", "", "Unbilled WIP accrual"),
    JournalKind.WIP_REVERSAL: ("WIP", "-REV", "Reversal of the unbilled WIP accrual"),
    JournalKind.LABOUR_COST: ("LABOUR", "", "Labour cost"),
}

Outcome = Literal["posted", "unmapped", "rejected", "unsupported"]


def journal_reference(
    kind: JournalKind, legal_entity: str, period: str, *, currency: str | None, number: int
) -> str:
    """`REVREC-UK-2026-11`, its adjustments `-ADJ1`...; `currency` when not the entity's own."""
    prefix, suffix, _ = _KIND_NAMES[kind]
    reference = f"{prefix}-{legal_entity}-{period}{suffix}"
    if currency is not None:
        reference += f"-{currency}"
    return reference + (f"-ADJ{number}" if number else "")


class PostMonthEndInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    period: str
    psa: str
    kind: JournalKind
    # Each project's journal of the kind to post now (a first run's, or a re-run's difference).
    journals: tuple[Journal, ...]


class MonthEndPosting(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: JournalKind
    reference: str
    outcome: Outcome
    currency: str
    project_ids: tuple[str, ...]
    lines: int = 0
    journal_id: str | None = None
    total_debits: Money | None = None
    # Unmapped or rejected: why, in words finance acts on (the ERP's own, for a rejection).
    reason: str | None = None


class PostMonthEndResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    postings: list[MonthEndPosting]


def _narration(kind: JournalKind, legal_entity: str, period: str, projects: int, adjustment: int) -> str:
    what = _KIND_NAMES[kind][2]
    text = f"{what} {legal_entity} {period}, {projects} project{'s' if projects != 1 else ''}"
    return text + (f" (adjustment {adjustment})" if adjustment else "")


class MonthEndPostingActivities:
    def __init__(self, erps: ErpRouter, database: Database) -> None:
        self._erps = erps
        self._db = database

    @activity.defn
    async def post_month_end_journal(self, input: PostMonthEndInput) -> PostMonthEndResult:
        erp, entity = self._erps.for_entity(input.legal_entity)
        by_currency: dict[str, list[Journal]] = {}
        for journal in input.journals:
            if journal.kind != input.kind or journal.legal_entity != input.legal_entity:
                raise ApplicationError(
                    f"a {journal.kind} journal of {journal.legal_entity} was given to post as {input.kind} "
                    f"of {input.legal_entity}",
                    type="InvalidInput",
                    non_retryable=True,
                )
            if journal.lines:
                by_currency.setdefault(journal.currency, []).append(journal)
        postings = []
        for currency, journals in sorted(by_currency.items()):
            if not isinstance(erp, ErpJournals):
                # An entity on an ERP whose connector posts no journals yet: finance books them by hand.
                postings.append(
                    MonthEndPosting(
                        kind=input.kind,
                        reference=journal_reference(
                            input.kind, input.legal_entity, input.period, currency=None, number=0
                        ),
                        outcome="unsupported",
                        currency=currency,
                        project_ids=tuple(sorted({j.project_id for j in journals})),
                        reason=f"ps-sync cannot post journals to {erp.system} yet: finance books the "
                        f"{input.kind} journal of {input.legal_entity} {input.period} by hand",
                    )
                )
                continue
            postings.append(await self._post(input, erp, entity, currency, journals))
        return PostMonthEndResult(postings=postings)

    async def _post(
        self,
        input: PostMonthEndInput,
        erp: ErpJournals,
        entity: LegalEntity,
        currency: str,
        journals: list[Journal],
    ) -> MonthEndPosting:
        roles = sorted({line.role for journal in journals for line in journal.lines})
        projects = tuple(sorted({journal.project_id for journal in journals}))

        def ledger_side() -> tuple[AccountMap, dict[str, tuple[DimensionValue, ...]], int]:
            with self._db.session(read_only=True) as session:
                rules = account_rules(session, legal_entity=input.legal_entity)
                synced = list_accounts(session, system=erp.system)
                dimensions: dict[str, tuple[DimensionValue, ...]] = {}
                for project_id in projects:
                    contract = get_contract(session, psa=input.psa, project_id=project_id)
                    erp_project = None if contract is None else contract.erp_project
                    dimensions[project_id] = () if erp_project is None else erp_project.dimensions
                posted = [
                    record
                    for record in month_end_journals(
                        session, legal_entity=input.legal_entity, period=input.period, kind=input.kind
                    )
                    if record.total_debits.currency == currency
                ]
            chart = {a.code: a.active for a in synced} if synced else None
            accounts = AccountMap(legal_entity=input.legal_entity, erp=erp.system, rules=rules, chart=chart)
            return accounts, dimensions, len(posted)

        accounts, dimensions, number = await asyncio.to_thread(ledger_side)
        reference = journal_reference(
            input.kind,
            input.legal_entity,
            input.period,
            currency=None if currency == entity.currency else currency,
            number=number,
        )
        codes: dict[AccountRole, str] = {}
        problems: list[str] = []
        for role in roles:
            choice = accounts.for_journal(role)
            if isinstance(choice, AccountProblem):
                problems.append(choice.reason)
            else:
                codes[role] = choice.account_code
        if problems:
            return MonthEndPosting(
                kind=input.kind,
                reference=reference,
                outcome="unmapped",
                currency=currency,
                project_ids=projects,
                reason="; ".join(problems),
            )
        lines = tuple(
            ErpJournalLine(
                account_code=codes[line.role],
                description=f"{line.description} (project {line.project_id})"[:500],
                amount=line.amount,
                dimensions=dimensions.get(line.project_id, ()),
                source=line.sources.text(1000),
            )
            for journal in journals
            for line in journal.lines
        )
        journal = ErpJournal(
            reference=reference,
            legal_entity=input.legal_entity,
            date=journals[0].date,
            narration=_narration(input.kind, input.legal_entity, input.period, len(projects), number),
            currency=currency,
            lines=lines,
        )
        async with connector_errors():
            try:
                posted = await erp.post_journal(
                    journal, entity=entity, idempotency_key=f"month-end:{reference}"
                )
            except Rejected as refused:
                said = [
                    refused.message,
                    *(e.message for e in refused.field_errors if e.message != refused.message),
                ]
                return MonthEndPosting(
                    kind=input.kind,
                    reference=reference,
                    outcome="rejected",
                    currency=currency,
                    project_ids=projects,
                    lines=len(lines),
                    reason=f"{erp.system} refused {reference}: {'; '.join(said)}",
                )
        _check_booked_as_built(posted, journal)

        def record() -> None:
            with self._db.session() as session:
                record_month_end_journal(
                    session,
                    reference=reference,
                    legal_entity=input.legal_entity,
                    period=input.period,
                    kind=input.kind,
                    adjustment=number,
                    erp=erp.system,
                    journal_id=posted.journal_id,
                    total_debits=posted.total_debits,
                    journals=journals,
                )

        await asyncio.to_thread(record)
        return MonthEndPosting(
            kind=input.kind,
            reference=reference,
            outcome="posted",
            currency=currency,
            project_ids=projects,
            lines=len(lines),
            journal_id=posted.journal_id,
            total_debits=posted.total_debits,
        )


def _check_booked_as_built(posted: PostedJournal, journal: ErpJournal) -> None:
    """The ERP holds a journal with this reference: it must be the one built now. Another (a post that
    reached the ERP but never the ledger, then a re-run with changed figures) is for a person to look at."""
    if posted.state == "voided" or posted.total_debits != journal.total_debits:
        raise ApplicationError(
            f"the ERP holds journal {journal.reference} as {posted.journal_id} ({posted.state}, debits "
            f"{posted.total_debits.amount} {posted.total_debits.currency}), not the "
            f"{journal.total_debits.amount} {journal.currency} month-end built now: finance checks it in the "
            "ERP before the period is re-run",
            {"journal_id": posted.journal_id, "reference": journal.reference},
            type="JournalBookedDifferently",
            non_retryable=True,
        )
