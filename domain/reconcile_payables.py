"""Payables reconciliation rules: the supplier bills in the ledger, in the ERP and in the PSA must agree.

For one legal entity and period, three sources are compared by bill number (the number `post_bill` returned,
which the PSA marks each item with):

- ledger: the bills ps-sync recorded posting, with their totals, line counts and the PSA items of each line;
- ERP: the bills carrying ps-sync's reference prefix for the period (`EXP-{period}-`), with their state,
  totals, what has been paid, and where each line is booked;
- PSA: the payable items (reimbursable or vendor expenses, subcontracted time), tallied per bill number they
  are marked on (count, amount, how many are marked reimbursed or paid) and those on no bill yet
  (`domain.payable_items`).

A bill's total is compared with the sum of the PSA items marked on it exactly where its lines are the items'
own amounts (expenses); lines of time are rated as the ERP rounds (hours kept to its places, the amount to
the minor unit), so a bill holding time allows what that rounding can move (`domain.reconcile.tolerance`).

Every rule that finds a difference yields a `domain.reconcile.Difference` naming the bill, the team that can
fix it and what to do; its `project_id` is `PAYABLES` (a bill is a supplier's, not a project's), so its
exception's dedupe key never meets a project's. Pure and deterministic: the Reconciliation workflow calls it.

Where each bill line books is checked as invoice lines are: to the cost account the entity's mapping gives
its item (an expense's category, a time entry's role), and under the dimensions of the item's project. A
line is tied to its items by its position among the lines the ledger recorded; a line that cannot be tied
(the ERP's line count differs, or its items span projects) is checked for a mapped cost account only, and
its dimensions not at all rather than guessed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from canonical import ExactDecimal, ExceptionOwner, InvoiceState, Period
from domain.account_mapping import ANY, AccountMap
from domain.payable_items import BillItems, ItemTally, PayableItem, PayablesTally, plus
from domain.reconcile import Difference, DiffLine, exception_record, tolerance
from domain.text_table import render_columns

# What a payables difference names in place of a project.
PAYABLES = "payables"
BILL_REFERENCE_PREFIX = "EXP-"
_REFERENCE_PERIOD = re.compile(r"^EXP-(\d{4}-\d{2})-")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


def bill_reference_prefix(period: str) -> str:
    """How the Payables run's bill references for a period start (`domain.payables.bill_reference`)."""
    return f"{BILL_REFERENCE_PREFIX}{Period(value=period).value}-"


def bill_period(*, reference: str, idempotency_key: str, issued: date) -> str:
    """The period a bill was posted for: from its reference, else its key's period, else its issue date."""
    match = _REFERENCE_PERIOD.match(reference)
    if match is not None:
        return match.group(1)
    parts = idempotency_key.split(":")
    if len(parts) >= 6 and re.fullmatch(r"\d{4}-\d{2}", parts[-3]):
        return parts[-3]
    return Period.of(issued).value


def supplier_in_key(idempotency_key: str) -> str | None:
    """The supplier key inside a bill's idempotency key (`payables:{psa}:{supplier}:{period}:{entity}:…`)."""
    parts = idempotency_key.split(":")
    if len(parts) < 6 or parts[0] != "payables":
        return None
    return ":".join(parts[2:-3]) or None


# --- evidence ----------------------------------------------------------------------------------------------


class BillPostingFacts(_Frozen):
    number: str
    reference: str
    bill_id: str
    supplier_key: str
    total: ExactDecimal
    currency: str
    lines: int
    idempotency_key: str


class BillLineFacts(_Frozen):
    """Where the ERP booked one bill line, and what it is tied to (None: it could not be tied)."""

    description: str
    amount: ExactDecimal
    account_code: str | None = None
    dimensions: dict[str, str] = {}
    project_id: str | None = None
    cost_rule: tuple[str, str] | None = None


class ErpBillFacts(_Frozen):
    number: str
    bill_id: str
    reference: str
    state: InvoiceState
    total: ExactDecimal
    amount_paid: ExactDecimal
    currency: str
    supplier_name: str | None = None
    lines: tuple[BillLineFacts, ...] = ()


class PayablesEvidence(_Frozen):
    legal_entity: str
    period: str
    psa: PayablesTally
    erp: tuple[ErpBillFacts, ...] = ()
    ledger: tuple[BillPostingFacts, ...] = ()
    # The entity's account mapping (None: none, or not checked) and, for each project a line is tied to, the
    # dimensions it was made with at closed-won (a project without any is absent).
    accounts: AccountMap | None = None
    dimensions: dict[str, dict[str, str]] = {}
    # The decimals the entity's ERP keeps of a quantity (time lines); None: quantities are exact.
    quantity_places: int | None = None
    # The dimensions the ERP tracks when it has room for only some (Xero: the entity's two tracking
    # categories); None: every dimension the project has.
    tracked_dimensions: tuple[str, ...] | None = None


def tie_line(
    position: int, erp_lines: int, recorded: Sequence[Sequence[str]], items: dict[str, PayableItem]
) -> tuple[str | None, tuple[str, str] | None]:
    """(project, cost rule) of the ERP bill line at `position`, from the PSA items the ledger recorded at
    that position; (None, None) when the ERP's lines no longer match the ledger's one for one."""
    if erp_lines != len(recorded) or position >= len(recorded):
        return None, None
    tied = [items[source] for source in recorded[position] if source in items]
    if not tied or len(tied) != len(recorded[position]):
        return None, None
    projects = {item.project_id for item in tied}
    rules = {item.cost_rule for item in tied}
    return (
        projects.pop() if len(projects) == 1 else None,
        rules.pop() if len(rules) == 1 else None,
    )


# --- the comparison ----------------------------------------------------------------------------------------


class PayablesRow(_Frozen):
    """One entity's bills of the period in one currency, for the printed table."""

    legal_entity: str
    period: str
    currency: str
    psa_items: int
    psa_amount: ExactDecimal
    psa_on_bills: int
    erp_bills: int
    erp_amount: ExactDecimal
    erp_paid: int
    ledger_bills: int
    ledger_amount: ExactDecimal
    unbilled_count: int
    unbilled_amount: ExactDecimal
    status: str  # ok | differs | pending


class PayablesReconciliation(_Frozen):
    rows: tuple[PayablesRow, ...] = ()
    differences: tuple[Difference, ...] = ()


def reconcile_payables(evidence: PayablesEvidence, *, unbilled_due: bool) -> PayablesReconciliation:
    """Compare the three sources for one entity's bills of one period.

    `unbilled_due`: the period closed long enough ago that payable items on no bill are a difference rather
    than items on their way to a bill (the same grace customer invoices get).
    """
    ledger = {bill.number: bill for bill in evidence.ledger}
    live = {bill.number: bill for bill in evidence.erp if bill.state != InvoiceState.VOIDED}
    voided = {bill.number: bill for bill in evidence.erp if bill.state == InvoiceState.VOIDED}
    psa: dict[str, list[BillItems]] = defaultdict(list)
    for group in evidence.psa.billed:
        psa[group.bill_number].append(group)
    differences: list[Difference] = []
    where = f"payables {evidence.legal_entity}, {evidence.period}"

    def items_on(number: str) -> ItemTally | None:
        groups = psa.get(number)
        if not groups:
            return None
        total = ItemTally()
        for group in groups:
            total = plus(total, group.items)
        return total

    def line(number: str) -> DiffLine:
        items = items_on(number)
        bill = live.get(number) or voided.get(number)
        posted = ledger.get(number)
        return DiffLine(
            invoice_number=number,
            psa_count=None if items is None else items.count,
            psa_amount=None if items is None else items.amount,
            erp_lines=None if bill is None else len(bill.lines),
            erp_amount=None if bill is None else bill.total,
            erp_state=None if bill is None else bill.state,
            ledger_amount=None if posted is None else posted.total,
        )

    def differ(
        kind: str, owner: ExceptionOwner, number: str, reason: str, entry_ids: tuple[str, ...] = ()
    ) -> None:
        differences.append(
            Difference(
                project_id=PAYABLES,
                kind=kind,
                owner=owner,
                reason=f"{where}: {reason}",
                invoice_number=number,
                lines=(line(number),),
                entry_ids=entry_ids,
            )
        )

    for number in sorted(set(ledger) | set(live) | set(voided) | set(psa)):
        posted, bill, items = ledger.get(number), live.get(number), items_on(number)
        supplier = f" (supplier {posted.supplier_key})" if posted is not None else ""
        if posted is not None and bill is None:
            if number in voided:
                differ(
                    "bill_voided_in_erp",
                    ExceptionOwner.FINANCE,
                    number,
                    f"bill {number}{supplier}, {posted.total} {posted.currency}, was posted by ps-sync but "
                    "is voided in the ERP, and its PSA items are still marked as on it, so nobody will pay "
                    "them; finance bills them again (clear their bill mark in the PSA and retry the "
                    "supplier's Payables run) or skips this if the void was meant",
                    entry_ids=() if items is None else items.sample_ids,
                )
            else:
                differ(
                    "bill_missing_in_erp",
                    ExceptionOwner.FINANCE,
                    number,
                    f"the ledger recorded posting bill {number}{supplier} (ERP id {posted.bill_id}, "
                    f"{posted.total} {posted.currency}) but the ERP holds no bill with that reference: it "
                    "was deleted there or renumbered; finance restores it or bills its items again",
                    entry_ids=() if items is None else items.sample_ids,
                )
        if bill is not None and posted is None:
            differ(
                "erp_bill_not_in_ledger",
                ExceptionOwner.INTEGRATION_SUPPORT,
                number,
                f"the ERP holds bill {number} ({bill.supplier_name or 'unknown supplier'}, {bill.total} "
                f"{bill.currency}) with ps-sync's reference, which the ledger has no posting of; "
                "integration support finds the run that posted it (the audit trail's bill_posted entries) "
                "and whether it is a duplicate to void",
            )
        if bill is not None and posted is not None:
            if bill.total != posted.total or bill.currency != posted.currency:
                differ(
                    "bill_total_differs",
                    ExceptionOwner.FINANCE,
                    number,
                    f"bill {number}{supplier} totals {bill.total} {bill.currency} in the ERP but "
                    f"{posted.total} {posted.currency} as ps-sync posted it: it was edited in the ERP; "
                    "finance restores the posted lines or voids it and bills its items again",
                )
            if len(bill.lines) != posted.lines:
                differ(
                    "bill_line_count_differs",
                    ExceptionOwner.FINANCE,
                    number,
                    f"bill {number}{supplier} has {len(bill.lines)} lines in the ERP but was posted with "
                    f"{posted.lines}: lines were added or removed in the ERP; finance restores them",
                )
        if items is not None and bill is None and posted is None and number not in voided:
            differ(
                "bill_items_without_bill",
                ExceptionOwner.INTEGRATION_SUPPORT,
                number,
                f"{items.count} PSA items are marked as on bill {number}, which neither the ERP nor the "
                "ledger knows; integration support checks who marked them and clears the marks so the "
                "Payables run bills them",
                entry_ids=items.sample_ids,
            )
        if items is not None and bill is not None:
            in_currency = [g for g in psa[number] if g.currency == bill.currency]
            other = [g for g in psa[number] if g.currency != bill.currency]
            amount = sum((g.items.amount for g in in_currency), Decimal(0))
            top_rate = max((g.items.top_rate for g in in_currency), default=Decimal(0))
            allowed = (
                tolerance(
                    bill.currency,
                    len(bill.lines),
                    top_rate=top_rate,
                    quantity_places=evidence.quantity_places,
                )
                if top_rate
                else Decimal(0)
            )
            if other or abs(amount - bill.total) > allowed:
                foreign = "".join(
                    f", and {g.items.count} in {g.currency} worth {g.items.amount}" for g in other
                )
                differ(
                    "bill_items_amount_differs",
                    ExceptionOwner.FINANCE,
                    number,
                    f"the PSA items marked as on bill {number} are worth {amount} {bill.currency}{foreign}; "
                    f"the ERP bill totals {bill.total} {bill.currency}: an item was changed in the PSA "
                    "after it was billed, or the bill in the ERP; finance corrects whichever is wrong",
                    entry_ids=items.sample_ids,
                )
            if bill.state == InvoiceState.PAID and items.settled < items.count:
                differ(
                    "paid_bill_not_settled_in_psa",
                    ExceptionOwner.INTEGRATION_SUPPORT,
                    number,
                    f"bill {number} is paid in the ERP but {items.count - items.settled} of its "
                    f"{items.count} PSA items are not marked reimbursed: the supplier's Payables run marks "
                    "them when it reads the bill paid; integration support checks that run (signal "
                    "`bill_changed`, or retry it) so the people are told they were paid",
                    entry_ids=items.sample_ids,
                )

    for number, bill in sorted(live.items()):
        for kind, reason in _booking_differences(evidence, bill):
            differ(kind, ExceptionOwner.FINANCE, number, reason)

    for rest in evidence.psa.unbilled:
        if rest.items.count and unbilled_due:
            differences.append(
                Difference(
                    project_id=PAYABLES,
                    kind="payable_items_not_billed",
                    owner=ExceptionOwner.FINANCE,
                    reason=f"{where}: {rest.items.count} approved payable PSA items worth "
                    f"{rest.items.amount} {rest.currency} are on no bill although the period has closed; "
                    "finance checks the payables exceptions that held them back (a missing cost account) "
                    "and runs the payables scan for the period",
                    invoice_number=f"(unbilled {rest.currency})",
                    lines=(
                        DiffLine(
                            invoice_number=f"(unbilled {rest.currency})",
                            psa_count=rest.items.count,
                            psa_amount=rest.items.amount,
                        ),
                    ),
                    entry_ids=rest.items.sample_ids,
                )
            )

    return PayablesReconciliation(
        rows=_rows(evidence, ledger, live, unbilled_due=unbilled_due, differs=bool(differences)),
        differences=tuple(differences),
    )


def _rows(
    evidence: PayablesEvidence,
    ledger: dict[str, BillPostingFacts],
    live: dict[str, ErpBillFacts],
    *,
    unbilled_due: bool,
    differs: bool,
) -> tuple[PayablesRow, ...]:
    currencies = sorted(
        {g.currency for g in evidence.psa.billed}
        | {u.currency for u in evidence.psa.unbilled if u.items.count}
        | {b.currency for b in live.values()}
        | {p.currency for p in ledger.values()}
    )
    rows = []
    for currency in currencies:
        billed = [g.items for g in evidence.psa.billed if g.currency == currency]
        unbilled = next((u.items for u in evidence.psa.unbilled if u.currency == currency), ItemTally())
        bills = [b for b in live.values() if b.currency == currency]
        posted = [p for p in ledger.values() if p.currency == currency]
        pending = bool(unbilled.count) and not unbilled_due
        rows.append(
            PayablesRow(
                legal_entity=evidence.legal_entity,
                period=evidence.period,
                currency=currency,
                psa_items=sum(t.count for t in billed) + unbilled.count,
                psa_amount=sum((t.amount for t in billed), Decimal(0)) + unbilled.amount,
                psa_on_bills=sum(t.count for t in billed),
                erp_bills=len(bills),
                erp_amount=sum((b.total for b in bills), Decimal(0)),
                erp_paid=sum(b.state == InvoiceState.PAID for b in bills),
                ledger_bills=len(posted),
                ledger_amount=sum((p.total for p in posted), Decimal(0)),
                unbilled_count=unbilled.count,
                unbilled_amount=unbilled.amount,
                status="differs" if differs else "pending" if pending else "ok",
            )
        )
    return tuple(rows)


def _expected_account(accounts: AccountMap, rule: tuple[str, str]) -> str | None:
    """The cost account the entity's rule for (kind, key) maps, else its (kind, *) rule's, as billing
    chooses it (`domain.payables.cost_account`)."""
    kind, key = rule
    for wanted in (key, ANY):
        found = next(
            (r for r in accounts.rules if r.kind == kind and r.key == wanted and r.cost_account_code), None
        )
        if found is not None:
            return found.cost_account_code
    return None


def _booking_differences(evidence: PayablesEvidence, bill: ErpBillFacts) -> list[tuple[str, str]]:
    """(kind, reason) for lines of the bill booked to another account than the mapping gives their item, or
    without their project's dimensions."""
    found: list[tuple[str, str]] = []
    tracked = evidence.tracked_dimensions

    def expected_of(line: BillLineFacts) -> dict[str, str]:
        made = evidence.dimensions.get(line.project_id or "", {})
        return made if tracked is None else {k: v for k, v in made.items() if k in tracked}

    def booked_on(line: BillLineFacts) -> dict[str, str]:
        return (
            line.dimensions if tracked is None else {k: v for k, v in line.dimensions.items() if k in tracked}
        )

    untracked = [
        line
        for line in bill.lines
        if line.project_id is not None and expected_of(line) and booked_on(line) != expected_of(line)
    ]
    if untracked:
        first = untracked[0]
        expected = expected_of(first)
        found.append(
            (
                "bill_line_dimensions_differ",
                f"{len(untracked)} of {len(bill.lines)} lines of bill {bill.number} are not reported under "
                f"their project's dimensions: {first.description!r} (project {first.project_id}, "
                f"{_dimensions_text(expected)}) carries {_dimensions_text(first.dimensions) or 'none'}; "
                "finance re-tags the lines in the ERP",
            )
        )
    accounts = evidence.accounts
    if accounts is None or not accounts.in_use:
        return found
    mapped = {r.cost_account_code for r in accounts.rules if r.cost_account_code}
    for line in bill.lines:
        account = _expected_account(accounts, line.cost_rule) if line.cost_rule is not None else None
        if account is not None and line.account_code != account:
            kind, key = line.cost_rule or ("", "")
            found.append(
                (
                    "bill_line_account_differs",
                    f"line {line.description!r} of bill {bill.number} books to account "
                    f"{line.account_code or 'none'}; the entity's {kind} {key!r} rule maps its cost to "
                    f"{account}; finance moves the line or changes the rule",
                )
            )
            break
        if line.cost_rule is None and mapped and line.account_code not in mapped:
            found.append(
                (
                    "bill_line_account_differs",
                    f"line {line.description!r} of bill {bill.number} books to account "
                    f"{line.account_code or 'none'}, which no cost-account rule of entity "
                    f"{evidence.legal_entity} maps; finance moves the line or maps the account",
                )
            )
            break
    return found


def _dimensions_text(dimensions: dict[str, str]) -> str:
    return ", ".join(f"{name} {code!r}" for name, code in sorted(dimensions.items()))


def payables_exception_record(difference: Difference, evidence: PayablesEvidence) -> dict[str, object]:
    """The offending record a person sees: the bill as `exception_record` shows an invoice, with its
    supplier and ERP id."""
    number = difference.invoice_number
    posted = next((p for p in evidence.ledger if p.number == number), None)
    booked = next((b for b in evidence.erp if b.number == number), None)
    return {
        **exception_record(difference, legal_entity=evidence.legal_entity, period=evidence.period),
        "bill_number": number,
        "supplier_key": None if posted is None else posted.supplier_key,
        "bill_id": posted.bill_id if posted is not None else booked.bill_id if booked is not None else None,
    }


def render_payables_table(rows: Iterable[PayablesRow]) -> str:
    """The payables reconciliation as a fixed-width text table (the CLI prints it under the projects')."""
    headers = (
        "entity",
        "period",
        "cur",
        "PSA n",
        "PSA amount",
        "on bills n",
        "ERP bills",
        "ERP total",
        "paid",
        "ledger n",
        "ledger amt",
        "unbilled n",
        "unbilled amt",
        "status",
    )
    body = [
        (
            row.legal_entity,
            row.period,
            row.currency,
            str(row.psa_items),
            f"{row.psa_amount:,.2f}",
            str(row.psa_on_bills),
            str(row.erp_bills),
            f"{row.erp_amount:,.2f}",
            str(row.erp_paid),
            str(row.ledger_bills),
            f"{row.ledger_amount:,.2f}",
            str(row.unbilled_count),
            f"{row.unbilled_amount:,.2f}",
            row.status,
        )
        for row in rows
    ]
    return render_columns(headers, body, numeric=range(3, 13))
