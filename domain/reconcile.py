"""Reconciliation rules: the PSA's approved work, the ERP's invoices and the ledger's postings must agree.

For one project and billing period, three sources are compared by invoice number:

- PSA: approved billable time and expenses, billed (grouped by the ERP invoice number they were billed on) or
  not yet billed, counted and valued at the PSA's own rates (expenses at cost);
- ERP: the customer invoices carrying our reference for the project and period, with their net totals;
- ledger: the postings ps-sync recorded for them.

Every rule that finds a difference yields a `Difference` with the lines (per invoice number) that differ and
the team that can fix it. Pure and deterministic: the Reconciliation workflow calls it.

Amounts are compared between the PSA and the ERP only where the PSA's valuation is what was billed: time and
materials without a not-to-exceed cap (expenses re-billed with the contract's markup). Each ERP line bills
its quantity rounded to the ERP's places and its amount rounded to the cent, so the comparison allows what
that rounding can move per ERP line (see `tolerance`). Fixed-fee and retainer work is
billed on milestones and fees, not on time, so only the ERP and the ledger are compared for those projects.

Where each line booked is checked too: every line of a live invoice must carry the project's dimensions as
made at closed-won (project, customer and practice, as far as the ERP tracks them: a Xero entity tracks two;
a line re-tagged, or left untagged, in the ERP differs), and the account the entity's
mapping gives its kind of work (read back from the line's description, as rating writes it); a line booked
elsewhere, by a person reclassifying it or by a mapping changed since, is a difference for finance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from canonical import BillingModel, ExceptionOwner, Expense, InvoiceState, TimeEntry
from canonical.money import ExactDecimal, minor_units
from domain.account_mapping import AccountChoice, AccountMap
from domain.rating import account_booked_for
from domain.text_table import render_columns

PROCESS = "reconciliation"
# Entry ids kept per tally: enough for a person to find the lines, bounded for workflow history.
SAMPLE_IDS = 50
NO_NUMBER = "(billed without an invoice number)"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class WorkTally(_Frozen):
    """Approved billable PSA work, counted and valued at the PSA's rates."""

    time_entries: int = 0
    expenses: int = 0
    hours: ExactDecimal = Decimal(0)
    time_value: ExactDecimal = Decimal(0)
    expense_value: ExactDecimal = Decimal(0)
    # Time entries the PSA holds no rate for: the tally's value is then incomplete.
    unvalued: int = 0
    sample_ids: tuple[str, ...] = ()
    # The highest rate among the valued entries: what one quantity step of rounding can be worth.
    top_rate: ExactDecimal = Decimal(0)

    @property
    def count(self) -> int:
        return self.time_entries + self.expenses

    @property
    def value(self) -> Decimal:
        return self.time_value + self.expense_value


class PsaInvoiceGroup(_Frozen):
    invoice_number: str
    work: WorkTally


class PsaWork(_Frozen):
    billed: tuple[PsaInvoiceGroup, ...] = ()
    unbilled: WorkTally = WorkTally()


class BookedLineFacts(_Frozen):
    """Where the ERP booked one line: its account, and its dimensions (dimension -> the ERP's code)."""

    description: str
    account_code: str | None = None
    dimensions: dict[str, str] = {}


class ErpInvoiceFacts(_Frozen):
    number: str
    invoice_id: str
    reference: str
    state: InvoiceState
    net: ExactDecimal
    lines: int
    booked: tuple[BookedLineFacts, ...] = ()


class PostingFacts(_Frozen):
    number: str | None
    idempotency_key: str
    amount: ExactDecimal
    state: str


class ContractTerms(_Frozen):
    billing_model: BillingModel
    expense_markup: ExactDecimal = Decimal(0)
    capped: bool = False

    @property
    def billed_by_time(self) -> bool:
        return self.billing_model == BillingModel.TIME_AND_MATERIALS

    @property
    def valued_as_billed(self) -> bool:
        return self.billed_by_time and not self.capped


class ProjectEvidence(_Frozen):
    project_id: str
    legal_entity: str
    period: str
    currency: str
    # None when the ledger holds no contract for the project (it was not made by ps-sync).
    terms: ContractTerms | None
    psa: PsaWork
    erp: tuple[ErpInvoiceFacts, ...] = ()
    ledger: tuple[PostingFacts, ...] = ()
    # The decimals the entity's ERP keeps of a quantity, which invoices are rated at (None: evidence gathered
    # before invoices were rated so, when quantities were exact).
    quantity_places: int | None = None
    # Where lines should book: the entity's account mapping (None: none, or not checked), the project's
    # service, and its dimensions as made at closed-won (None: the project has none).
    accounts: AccountMap | None = None
    service_code: str | None = None
    dimensions: dict[str, str] | None = None
    # The dimensions the ERP tracks when it has room for only some (Xero: the entity's two tracking
    # categories); None: every dimension the project has (Tryton books project, customer and practice).
    tracked_dimensions: tuple[str, ...] | None = None


class DiffLine(_Frozen):
    """One invoice number as each source sees it (None: that source has nothing for it)."""

    invoice_number: str
    psa_count: int | None = None
    psa_amount: ExactDecimal | None = None
    erp_lines: int | None = None
    erp_amount: ExactDecimal | None = None
    erp_state: InvoiceState | None = None
    ledger_amount: ExactDecimal | None = None


class Difference(_Frozen):
    project_id: str
    kind: str
    owner: ExceptionOwner
    reason: str
    invoice_number: str | None = None
    lines: tuple[DiffLine, ...] = ()
    entry_ids: tuple[str, ...] = ()

    def dedupe_key(self, legal_entity: str, period: str) -> str:
        return f"{PROCESS}:{legal_entity}:{period}:{self.project_id}:{self.kind}:{self.invoice_number or '-'}"


class ReconciliationRow(_Frozen):
    """One project's figures for the printed table."""

    legal_entity: str
    period: str
    project_id: str
    currency: str
    psa_count: int
    psa_amount: ExactDecimal
    psa_billed: int
    erp_invoices: int
    erp_amount: ExactDecimal
    ledger_postings: int
    ledger_amount: ExactDecimal
    unbilled_count: int
    unbilled_amount: ExactDecimal
    status: str  # ok | differs | pending


class ProjectReconciliation(_Frozen):
    row: ReconciliationRow
    differences: tuple[Difference, ...] = ()


# --- PSA tallies -------------------------------------------------------------------------------------------


class _Tally:
    def __init__(self) -> None:
        self.time_entries = 0
        self.expenses = 0
        self.hours = Decimal(0)
        self.time_value = Decimal(0)
        self.expense_value = Decimal(0)
        self.unvalued = 0
        self.top_rate = Decimal(0)
        self.ids: list[str] = []

    def frozen(self) -> WorkTally:
        return WorkTally(
            time_entries=self.time_entries,
            expenses=self.expenses,
            hours=self.hours,
            time_value=self.time_value,
            expense_value=self.expense_value,
            unvalued=self.unvalued,
            sample_ids=tuple(self.ids[:SAMPLE_IDS]),
            top_rate=self.top_rate,
        )


def tally_work(time: Iterable[TimeEntry], expenses: Iterable[Expense], *, currency: str) -> PsaWork:
    """Group approved billable work by the invoice number it was billed on (unbilled on its own)."""
    billed: dict[str, _Tally] = defaultdict(_Tally)
    unbilled = _Tally()

    def bucket(is_billed: bool, number: str | None) -> _Tally:
        return billed[number or NO_NUMBER] if is_billed else unbilled

    for entry in time:
        if not (entry.approved and entry.billable):
            continue
        tally = bucket(entry.billed, entry.invoice_number)
        tally.time_entries += 1
        tally.hours += entry.hours
        tally.ids.append(f"time_entry:{entry.id}")
        if entry.bill_rate is None or entry.bill_rate.currency != currency:
            tally.unvalued += 1
        else:
            tally.time_value += entry.hours * entry.bill_rate.amount
            tally.top_rate = max(tally.top_rate, entry.bill_rate.amount)
    for expense in expenses:
        if not (expense.approved and expense.billable):
            continue
        tally = bucket(expense.billed, expense.invoice_number)
        tally.expenses += 1
        tally.ids.append(f"expense:{expense.id}")
        if expense.amount.currency != currency:
            tally.unvalued += 1
        else:
            tally.expense_value += expense.amount.amount
    return PsaWork(
        billed=tuple(
            PsaInvoiceGroup(invoice_number=number, work=tally.frozen())
            for number, tally in sorted(billed.items())
        ),
        unbilled=unbilled.frozen(),
    )


def merge_work(parts: Iterable[PsaWork]) -> PsaWork:
    """PSA work tallied page by page, added up."""
    groups: dict[str, WorkTally] = {}
    unbilled = WorkTally()
    for part in parts:
        for group in part.billed:
            groups[group.invoice_number] = _add(groups.get(group.invoice_number, WorkTally()), group.work)
        unbilled = _add(unbilled, part.unbilled)
    return PsaWork(
        billed=tuple(PsaInvoiceGroup(invoice_number=n, work=w) for n, w in sorted(groups.items())),
        unbilled=unbilled,
    )


def _add(left: WorkTally, right: WorkTally) -> WorkTally:
    return WorkTally(
        time_entries=left.time_entries + right.time_entries,
        expenses=left.expenses + right.expenses,
        hours=left.hours + right.hours,
        time_value=left.time_value + right.time_value,
        expense_value=left.expense_value + right.expense_value,
        unvalued=left.unvalued + right.unvalued,
        sample_ids=(left.sample_ids + right.sample_ids)[:SAMPLE_IDS],
        top_rate=max(left.top_rate, right.top_rate),
    )


# --- the comparison ----------------------------------------------------------------------------------------


def expected_net(work: WorkTally, terms: ContractTerms) -> Decimal:
    """What an invoice for this work should total (net): time at the PSA's rates, expenses with the markup."""
    return work.time_value + work.expense_value * (Decimal(1) + terms.expense_markup)


def tolerance(
    currency: str, erp_lines: int, *, top_rate: Decimal = Decimal(0), quantity_places: int | None = None
) -> Decimal:
    """What rounding may move per ERP line, times the lines: the PSA values exact hours, the invoice bills
    each line's quantity rounded to the ERP's places (half a step, at most at the highest rate) and its
    amount rounded to the minor unit (half a unit). The same bound "How ps-sync rounds" in the README states.
    """
    half_minor = Decimal(1).scaleb(-minor_units(currency)) / 2
    half_step = Decimal(0) if quantity_places is None else Decimal(5).scaleb(-quantity_places - 1)
    return (half_minor + top_rate * half_step) * max(erp_lines, 1)


def reconcile_project(evidence: ProjectEvidence, *, unbilled_due: bool) -> ProjectReconciliation:
    """Compare the three sources for one project and period.

    `unbilled_due`: the period closed long enough ago that approved work still unbilled is a difference
    rather than work on its way to an invoice.
    """
    terms = evidence.terms
    psa = {group.invoice_number: group.work for group in evidence.psa.billed}
    live = {inv.number: inv for inv in evidence.erp if inv.state != InvoiceState.VOIDED}
    voided = {inv.number: inv for inv in evidence.erp if inv.state == InvoiceState.VOIDED}
    postings = {p.number or p.idempotency_key: p for p in evidence.ledger}
    differences: list[Difference] = []

    def line(number: str) -> DiffLine:
        work = psa.get(number)
        invoice = live.get(number) or voided.get(number)
        posting = postings.get(number)
        return DiffLine(
            invoice_number=number,
            psa_count=None if work is None else work.count,
            psa_amount=None if work is None else work.value,
            erp_lines=None if invoice is None else invoice.lines,
            erp_amount=None if invoice is None else invoice.net,
            erp_state=None if invoice is None else invoice.state,
            ledger_amount=None if posting is None else posting.amount,
        )

    def differ(
        kind: str, owner: ExceptionOwner, number: str, reason: str, entry_ids: tuple[str, ...] = ()
    ) -> None:
        differences.append(
            Difference(
                project_id=evidence.project_id,
                kind=kind,
                owner=owner,
                reason=f"project {evidence.project_id}, {evidence.period}: {reason}",
                invoice_number=number,
                lines=(line(number),),
                entry_ids=entry_ids,
            )
        )

    for number in sorted(set(postings) | set(live) | set(voided) | set(psa)):
        posting, invoice, work = postings.get(number), live.get(number), psa.get(number)
        if posting is not None and invoice is None:
            if number in voided:
                differ(
                    "posted_invoice_voided",
                    ExceptionOwner.FINANCE,
                    number,
                    f"invoice {number} was posted by ps-sync but is voided in the ERP; its PSA entries "
                    "are still marked billed on it",
                )
            else:
                differ(
                    "posting_missing_in_erp",
                    ExceptionOwner.INTEGRATION_SUPPORT,
                    number,
                    f"the ledger recorded posting {number} but the ERP holds no invoice with that number",
                )
        if invoice is not None and posting is None:
            differ(
                "erp_invoice_not_in_ledger",
                ExceptionOwner.INTEGRATION_SUPPORT,
                number,
                f"the ERP holds invoice {number} ({invoice.reference}) that the ledger has no posting for",
            )
        if invoice is not None and posting is not None and invoice.net != posting.amount:
            differ(
                "erp_ledger_amount_mismatch",
                ExceptionOwner.FINANCE,
                number,
                f"invoice {number} is {invoice.net} {evidence.currency} net in the ERP but "
                f"{posting.amount} in the ledger",
            )
        if work is not None and invoice is None and posting is None and number not in voided:
            differ(
                "billed_entries_without_invoice",
                ExceptionOwner.INTEGRATION_SUPPORT,
                number,
                f"{work.count} PSA entries are marked billed on invoice {number}, which neither the ERP "
                "nor the ledger knows",
                entry_ids=work.sample_ids,
            )
        if (
            work is None
            and (invoice is not None or posting is not None)
            and terms is not None
            and terms.billed_by_time
        ):
            differ(
                "invoice_without_billed_entries",
                ExceptionOwner.INTEGRATION_SUPPORT,
                number,
                f"invoice {number} exists but no approved PSA entry is marked billed on it",
            )
        if (
            work is not None
            and invoice is not None
            and terms is not None
            and terms.valued_as_billed
            and work.unvalued == 0
        ):
            expected = expected_net(work, terms)
            allowed = tolerance(
                evidence.currency,
                invoice.lines,
                top_rate=work.top_rate,
                quantity_places=evidence.quantity_places,
            )
            if abs(expected - invoice.net) > allowed:
                differ(
                    "psa_erp_amount_mismatch",
                    ExceptionOwner.FINANCE,
                    number,
                    f"the {work.count} PSA entries billed on invoice {number} are worth {expected} "
                    f"{evidence.currency} at the PSA's rates, the ERP invoice is {invoice.net} net",
                    entry_ids=work.sample_ids,
                )

    for number, invoice in sorted(live.items()):
        for kind, reason in _booking_differences(evidence, invoice):
            differ(kind, ExceptionOwner.FINANCE, number, reason)

    unbilled = evidence.psa.unbilled
    billed_by_time = terms is None or terms.billed_by_time
    if unbilled.count and unbilled_due and billed_by_time:
        differences.append(
            Difference(
                project_id=evidence.project_id,
                kind="approved_work_not_invoiced",
                owner=ExceptionOwner.FINANCE,
                reason=f"project {evidence.project_id}, {evidence.period}: {unbilled.count} approved "
                f"billable PSA entries worth {unbilled.value} {evidence.currency} are on no invoice",
                lines=(
                    DiffLine(
                        invoice_number="(unbilled)", psa_count=unbilled.count, psa_amount=unbilled.value
                    ),
                ),
                entry_ids=unbilled.sample_ids,
            )
        )

    pending = bool(unbilled.count) and billed_by_time and not unbilled_due
    status = "differs" if differences else "pending" if pending else "ok"
    row = ReconciliationRow(
        legal_entity=evidence.legal_entity,
        period=evidence.period,
        project_id=evidence.project_id,
        currency=evidence.currency,
        psa_count=sum(w.count for w in psa.values()) + unbilled.count,
        psa_amount=sum((w.value for w in psa.values()), Decimal(0)) + unbilled.value,
        psa_billed=sum(w.count for w in psa.values()),
        erp_invoices=len(live),
        erp_amount=sum((inv.net for inv in live.values()), Decimal(0)),
        ledger_postings=len(postings),
        ledger_amount=sum((p.amount for p in postings.values()), Decimal(0)),
        unbilled_count=unbilled.count,
        unbilled_amount=unbilled.value,
        status=status,
    )
    return ProjectReconciliation(row=row, differences=tuple(differences))


def _booking_differences(evidence: ProjectEvidence, invoice: ErpInvoiceFacts) -> list[tuple[str, str]]:
    """(kind, reason) for lines of the invoice booked without the project's dimensions or to another account
    than the mapping gives them."""
    found: list[tuple[str, str]] = []
    expected = _tracked(evidence.dimensions, evidence.tracked_dimensions)
    if expected:
        untracked = [
            line
            for line in invoice.booked
            if _tracked(line.dimensions, evidence.tracked_dimensions) != expected
        ]
        if untracked:
            first = untracked[0]
            found.append(
                (
                    "line_dimensions_differ",
                    f"{len(untracked)} of {len(invoice.booked)} lines of invoice {invoice.number} are not "
                    f"reported under the project's dimensions ({_dimensions_text(expected)}): "
                    f"{first.description!r} carries {_dimensions_text(first.dimensions) or 'none'}",
                )
            )
    accounts = evidence.accounts
    if accounts is not None and accounts.in_use:
        for line in invoice.booked:
            choice = account_booked_for(line.description, accounts, evidence.service_code)
            if isinstance(choice, AccountChoice) and line.account_code != choice.account_code:
                found.append(
                    (
                        "line_account_differs",
                        f"line {line.description!r} of invoice {invoice.number} books to account "
                        f"{line.account_code or 'none'}; rule "
                        f"{choice.rule.label(evidence.legal_entity)} maps it to {choice.account_code}",
                    )
                )
                break
    return found


def _tracked(dimensions: dict[str, str] | None, tracked: tuple[str, ...] | None) -> dict[str, str] | None:
    """The dimensions the ERP tracks: one it has no room for is neither expected on a line nor held
    against it (a Xero entity that switched from customer to practice still has projects made with both)."""
    if dimensions is None or tracked is None:
        return dimensions
    return {name: code for name, code in dimensions.items() if name in tracked}


def _dimensions_text(dimensions: dict[str, str]) -> str:
    return ", ".join(f"{name} {code!r}" for name, code in sorted(dimensions.items()))


def exception_record(difference: Difference, *, legal_entity: str, period: str) -> dict[str, object]:
    """The offending record a person sees on the exception: where, which lines, which entries."""
    return {
        "legal_entity": legal_entity,
        "period": period,
        "project_id": difference.project_id,
        "kind": difference.kind,
        "invoice_number": difference.invoice_number,
        "lines": [line.model_dump(mode="json") for line in difference.lines],
        "entry_ids": list(difference.entry_ids),
    }


def render_table(rows: Iterable[ReconciliationRow]) -> str:
    """The reconciliation as a fixed-width text table (the CLI prints it)."""
    headers = (
        "entity",
        "period",
        "project",
        "cur",
        "PSA n",
        "PSA amount",
        "billed n",
        "ERP inv",
        "ERP net",
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
            row.project_id,
            row.currency,
            str(row.psa_count),
            f"{row.psa_amount:,.2f}",
            str(row.psa_billed),
            str(row.erp_invoices),
            f"{row.erp_amount:,.2f}",
            str(row.ledger_postings),
            f"{row.ledger_amount:,.2f}",
            str(row.unbilled_count),
            f"{row.unbilled_amount:,.2f}",
            row.status,
        )
        for row in rows
    ]
    return render_columns(headers, body, numeric=range(4, 13))
