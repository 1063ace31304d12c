"""Role protocols: what a CRM, a PSA and an ERP must offer, whoever the vendor is.

A new vendor plugs in by implementing one of these and passing that role's contract suite
(tests/connectors/contract_*.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from canonical import (
    Account,
    CreditNote,
    CrmTask,
    CrmWriteBack,
    ErpCustomer,
    Expense,
    Invoice,
    InvoiceStatus,
    LegalEntity,
    Milestone,
    Money,
    Opportunity,
    Payment,
    Period,
    PostedInvoice,
    Project,
    ProjectSpec,
    ProjectStatus,
    PsaEvent,
    RateCard,
    ReceivablesSummary,
    Resource,
    TimeEntry,
)
from canonical.booked_bills import BookedBill
from canonical.contract_versions import AmendedProject, ProjectAmendment
from canonical.dimensions import Dimension, ErpProject, ErpProjectSpec
from canonical.journals import BookedJournal, Journal, PostedJournal
from canonical.payables import Bill, BillStatus, PayableExpense, PostedBill, SubcontractedTime, Supplier
from canonical.project_financials import ProjectFinancials
from canonical.reference import BookedInvoice, Employee, ErpReferenceData, OpportunityFix
from canonical.worked_time import CostedTimeEntry
from connectors.paging import Page


class FeedPoll(BaseModel):
    """What one poll of a PSA's change feed found, in the poller's terms."""

    model_config = ConfigDict(frozen=True)
    events: tuple[PsaEvent, ...]
    # Opaque to everyone but the connector that made it; carried by the poller across polls.
    cursor: dict[str, Any]
    # The poll stopped at max_events with more to read.
    more: bool
    # "since..until" (ISO instants) that the feed may no longer hold: reconcile it from the source.
    gap: str | None = None


@runtime_checkable
class CrmConnector(Protocol):
    system: str

    async def get_opportunity(self, opportunity_id: str) -> Opportunity:
        """Read the opportunity with its account and bill-to contact. NotFound if absent."""
        ...

    async def write_back(self, write_back: CrmWriteBack) -> None:
        """Upsert the PSA/ERP ids onto the opportunity and account (never a blind create)."""
        ...

    async def update_receivables(
        self, *, opportunity_id: str, account_id: str, summary: ReceivablesSummary
    ) -> None:
        """Record the invoice's money state on the opportunity and the account's receivables summary."""
        ...

    async def create_task(self, task: CrmTask) -> str:
        """Create (or find, by `task.external_key`) a task for a person; returns the CRM task id."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PsaConnector(Protocol):
    system: str

    async def find_project(self, external_ref: str) -> Project | None:
        """The project carrying our external reference, if one exists."""
        ...

    async def ensure_project(self, spec: ProjectSpec) -> Project:
        """Find the project by `spec.external_ref`, else create it with its tasks and milestones.

        The vendor has no idempotency key, so looking up first is what makes a retried create safe.
        """
        ...

    async def get_project(self, project_id: str) -> Project: ...

    async def set_project_status(self, project_id: str, status: ProjectStatus, reason: str) -> None: ...

    async def get_rate_card(self, project_id: str) -> RateCard: ...

    def time_entries(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[TimeEntry]]:
        """Approved, billable, not-yet-billed time of the project dated within the period, page by page."""
        ...

    def expenses(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[Expense]]:
        """Approved, billable, not-yet-billed expenses of the project dated within the period."""
        ...

    async def owed_among(self, project_id: str, item_keys: Sequence[str]) -> list[str]:
        """Of these items (`canonical.events.item_key`s), those still approved, billable and not billed."""
        ...

    async def mark_billed(
        self,
        *,
        time_entry_ids: Sequence[str],
        expense_ids: Sequence[str],
        invoice_number: str,
        milestone_ids: Sequence[str] = (),
    ) -> None:
        """Mark entries (and fixed-fee milestones) billed with the ERP's invoice number; idempotent."""
        ...

    async def project_resources(self, project_id: str) -> list[Resource]:
        """The people staffed on the project, each with the role they work in there (else their own)."""
        ...

    async def unbilled_milestones(self, project_id: str) -> list[Milestone]:
        """The project's milestones not yet marked billed, completed or not."""
        ...

    async def update_financials(self, project_id: str, summary: ReceivablesSummary) -> None:
        """Record an invoice's money state on the project; idempotent."""
        ...

    def events(
        self, *, created_after: datetime, event_types: Sequence[str], cursor: str | None = None
    ) -> AsyncIterator[Page[PsaEvent]]:
        """Change-feed events created after the instant, page by page, in the vendor's order."""
        ...

    async def poll_feed(
        self,
        cursor: dict[str, Any] | None,
        *,
        now: datetime,
        max_events: int,
        on_page: Callable[[str | None], None],
    ) -> FeedPoll:
        """One poll of the change feed from the poller's opaque cursor: the new events (repeats and
        reordering absorbed), the cursor to keep, and any span the feed may have lost. `on_page` is told
        each page's next cursor, so a caller can show it is alive while a long feed is read."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ErpConnector(Protocol):
    system: str

    async def find_customer(self, account: Account) -> str | None:
        """The ERP customer id carrying the CRM account id as its external reference, if any."""
        ...

    async def create_customer(self, account: Account, *, entity: LegalEntity, idempotency_key: str) -> str:
        """Create the customer with the CRM account id as its external reference; returns its id."""
        ...

    async def find_customers_by_name_and_tax_number(self, name: str, tax_number: str) -> list[ErpCustomer]:
        """Customers whose name equals `name` ignoring case and spacing, and whose tax number equals
        `tax_number` ignoring case, spaces and punctuation (`canonical.name_key`/`tax_number_key`), whatever
        external reference they carry. Used to refuse creating a second customer for one company."""
        ...

    async def find_invoice(self, reference: str) -> PostedInvoice | None:
        """The invoice we posted under this business reference, if the ERP has it."""
        ...

    async def post_invoice(
        self, invoice: Invoice, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedInvoice:
        """Create and approve (post) the invoice; a retry with the same key returns the same invoice."""
        ...

    async def get_invoice(self, invoice_id: str) -> InvoiceStatus:
        """The invoice with its payments and credit notes, as the ERP sees it now."""
        ...

    async def payments_since(self, modified_since: datetime | None) -> list[Payment]:
        """Payments created or changed since the instant (all when None)."""
        ...

    async def apply_payment(
        self, invoice_id: str, amount: Money, *, reference: str, idempotency_key: str
    ) -> Payment:
        """Record money received against an invoice (used by finance tooling, demos and tests)."""
        ...

    async def credit_invoice(
        self, invoice_id: str, amount: Money, *, reason: str, idempotency_key: str
    ) -> CreditNote:
        """Issue a credit note against the invoice and allocate it."""
        ...

    async def void_invoice(self, invoice_id: str) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ErpProjectBooks(Protocol):
    """The ERP role's project dimensions: every ERP connector offers them (the ERP contract suite checks them
    on each ERP). Kept as a protocol of its own while ERP connectors are being added, so one that does not
    offer them yet still serves the rest of the role; OpportunityToProject then records a project without
    dimensions, and its invoice lines carry none.

    What an implementation must do:
    - `ensure_erp_project` finds, else creates, the project's side of the ERP's books for `spec` and returns
      it with its dimension values in the ERP's own keys (`DimensionValue.code`): `project` and `customer`,
      and `practice` when `spec.practice` is set, less those the ERP has no room for (Xero tracks the
      entity's `tracked_dimensions` only). The same call again (same `spec.project_code`) returns the same
      project and the same codes and creates nothing; two projects of one customer share its customer
      value, two projects of one practice its practice value. A value
      the ERP cannot hold (a name too long, a dimension it has no room for) is `Rejected` with field errors
      saying what finance must change in the ERP; a customer the ERP does not know is `NotFound`.
    - `post_invoice` books each line's `InvoiceLine.dimensions` (codes as returned here) on that line, and
      refuses (`Rejected`) a line naming a value the ERP does not hold.
    - `booked_invoices` reports each line's account code and dimensions as booked (`BookedLine`).
    """

    system: str

    async def ensure_erp_project(self, spec: ErpProjectSpec, *, entity: LegalEntity) -> ErpProject: ...

    def booked_dimensions(self, entity: LegalEntity) -> tuple[Dimension, ...] | None:
        """The dimensions the ERP books on the entity's lines; None: every one the project carries."""
        ...


# --- Optional capabilities: small protocols a connector offers besides its role. ---------------------------


@runtime_checkable
class ErpReferenceSource(Protocol):
    """An ERP that publishes its set-up: currencies (and rates), tax rates, chart of accounts, items."""

    system: str

    async def reference_data(self) -> ErpReferenceData: ...


@runtime_checkable
class BookedInvoiceSource(Protocol):
    """An ERP that lists the customer invoices whose reference starts with a prefix, with their lines."""

    system: str

    async def booked_invoices(self, reference_prefix: str) -> list[BookedInvoice]: ...


@runtime_checkable
class BookedBillSource(Protocol):
    """An ERP that lists the supplier bills whose reference starts with a prefix, with their lines, voided
    ones included (reconciliation decides what a void means)."""

    system: str

    async def booked_bills(self, reference_prefix: str) -> list[BookedBill]: ...


@runtime_checkable
class PsaReferenceSource(Protocol):
    """A PSA that lists the people who book time, with their roles and cost rates."""

    system: str

    async def employees(self) -> list[Employee]: ...


@runtime_checkable
class ApprovedWorkSource(Protocol):
    """A PSA that lists a project's approved billable work in a period, billed or not (with the invoice
    number it was billed on), page by page: what reconciliation compares against the ERP."""

    system: str

    def approved_time(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[TimeEntry]]: ...

    def approved_expenses(
        self, project_id: str, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[Expense]]: ...


@runtime_checkable
class MonthEndWorkSource(Protocol):
    """A PSA month-end values a project from: its approved time to a day, billable or not, billed or not, with
    bill and cost rates as the PSA held them when logged; and every milestone with its completion day."""

    system: str

    def worked_time(
        self, project_id: str, through: date, *, cursor: str | None = None
    ) -> AsyncIterator[Page[CostedTimeEntry]]: ...

    async def project_milestones(self, project_id: str) -> list[Milestone]: ...

    async def push_month_end_financials(self, project_id: str, financials: ProjectFinancials) -> bool:
        """Show month-end's figures to date on the project; idempotent. False: the PSA account keeps no
        place for them (nothing written)."""
        ...


@runtime_checkable
class PsaProjectAmender(Protocol):
    """A PSA whose project budget and milestones ps-sync may change when the deal's contract is amended."""

    system: str

    async def amend_project(self, amendment: ProjectAmendment) -> AmendedProject: ...


@runtime_checkable
class OpportunityEditor(Protocol):
    """A CRM on which ps-sync may write a person's corrections to a deal (fix-and-retry)."""

    system: str

    async def correct_opportunity(self, opportunity_id: str, fix: OpportunityFix) -> None: ...


@runtime_checkable
class PsaPayables(Protocol):
    """A PSA whose approved expenses can be owed to someone: the person who paid them (reimbursable) or
    the vendor named on them. The PSA remembers which ERP bill each was put on, and when it was paid."""

    system: str

    def payable_expenses(
        self, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[PayableExpense]]:
        """Approved expenses dated within the period that are reimbursable or name a vendor, whether on a
        bill yet or not (`bill_number`, `reimbursed` say), page by page."""
        ...

    async def mark_on_bill(self, *, expense_ids: Sequence[str], bill_number: str) -> None:
        """Record that the expenses are on the ERP bill; the same call again changes nothing, an expense on
        another bill is a Conflict."""
        ...

    async def mark_reimbursed(self, *, expense_ids: Sequence[str], bill_number: str) -> None:
        """Record that the bill holding the expenses is paid; idempotent."""
        ...

    def subcontracted_time(
        self, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[SubcontractedTime]]:
        """Approved time dated within the period of members who work for a supplier (a subcontracting
        firm), at the cost rate the PSA held when it was logged, on a bill yet or not, page by page."""
        ...

    async def mark_time_on_bill(self, *, time_entry_ids: Sequence[str], bill_number: str) -> None:
        """Record that the time entries are on the ERP bill; as `mark_on_bill`."""
        ...

    async def mark_time_paid(self, *, time_entry_ids: Sequence[str], bill_number: str) -> None:
        """Record that the bill holding the time entries is paid; idempotent."""
        ...


@runtime_checkable
class ErpPayables(Protocol):
    """The ERP role's payables: suppliers and their bills. Kept as a protocol of its own while ERP connectors
    are being added, so one that does not offer payables yet still serves the rest of the role.

    - `ensure_supplier` finds the supplier by `Supplier.key`, else creates it; the same call again returns
      the same id and creates nothing.
    - `post_bill` creates and approves the bill; a retry with the same key (or a bill already carrying
      `Bill.reference`) returns the same bill and creates nothing more. A line's `account_code` the ERP does
      not hold is `Rejected`.
    - `get_bill` reads the bill's state and what has been paid on it.
    - `pay_bill` records money paid out against the bill (finance tooling, demos and tests).
    """

    system: str

    async def ensure_supplier(
        self, supplier: Supplier, *, entity: LegalEntity, idempotency_key: str
    ) -> str: ...

    async def post_bill(self, bill: Bill, *, entity: LegalEntity, idempotency_key: str) -> PostedBill: ...

    async def get_bill(self, bill_id: str) -> BillStatus: ...

    async def pay_bill(
        self, bill_id: str, amount: Money, *, reference: str, idempotency_key: str
    ) -> Payment: ...


@runtime_checkable
class ErpJournals(Protocol):
    """The ERP role's journals: what month-end posts to each legal entity's books (revenue recognition, WIP
    accruals and their reversals, labour cost). Kept as a protocol of its own while ERP connectors are being
    added, so one that does not offer journals yet still serves the rest of the role.

    - `post_journal` creates and posts the journal in `entity`'s books, each line on its account with its
      dimensions and a description naming its ledger source. A retry with the same key, or any later call
      for a journal whose `Journal.reference` the ERP already holds, returns that journal and creates
      nothing. A journal the ERP cannot book is `Rejected` with the ERP's own words: one dated in a closed
      or locked period (for finance to reopen it or to date the journal elsewhere), a line on an account or
      a dimension value the ERP does not hold.
    - `find_journal` is the journal carrying the reference, if the ERP holds one (a voided one only when
      nothing live carries it); several live ones is a `Conflict`.
    - `get_journal` reads a journal back with its lines as booked: account, signed amount, dimensions.
    - `booked_journals` lists the journals whose reference starts with a prefix, with their lines, voided
      ones included: what a re-run of a period compares with to post only the difference.
    """

    system: str

    async def post_journal(
        self, journal: Journal, *, entity: LegalEntity, idempotency_key: str
    ) -> PostedJournal: ...

    async def find_journal(self, reference: str) -> PostedJournal | None: ...

    async def get_journal(self, journal_id: str) -> BookedJournal: ...

    async def booked_journals(self, reference_prefix: str) -> list[BookedJournal]: ...
