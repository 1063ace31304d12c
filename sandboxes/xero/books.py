"""One Xero organisation's books: contacts, invoices, payments and credit notes, with Xero's rules.

Every write takes a batch of elements, as the API does (see batches for how one bad element fails them).
The rules live with what they govern: contacts, invoices (and credit notes), settlements (payments and
credit allocations); this is the one object the app talks to for a tenant.
"""

from __future__ import annotations

from typing import Any

from sandboxes.store import SandboxStore
from sandboxes.xero.batches import Doc, DocumentNotFound, Publish, ValidationFailed
from sandboxes.xero.contacts import Contacts
from sandboxes.xero.invoices import Invoices
from sandboxes.xero.lock_dates import LockDates
from sandboxes.xero.manual_journals import ManualJournals
from sandboxes.xero.organisation import Organisation
from sandboxes.xero.settlements import Settlements
from sandboxes.xero.tracking import Tracking

# The app catches these from here.
__all__ = ["DocumentNotFound", "ValidationFailed", "XeroBooks"]


class XeroBooks(Organisation):
    def __init__(self, store: SandboxStore, tenant_id: str, publish: Publish) -> None:
        super().__init__(store, tenant_id, publish)
        self._contacts = Contacts(self)
        self._invoices = Invoices(self, self._contacts)
        # Looked up on each use, like the collections: a store reset leaves no stale categories behind.
        self._settlements = Settlements(self, self._invoices)

    # --- contacts ---------------------------------------------------------------------------------------

    def find_contact(self, ident: str) -> Doc | None:
        return self._contacts.find_contact(ident)

    def save_contacts(self, elements: Any, *, summarize: bool, allow_update: bool) -> list[Doc]:
        return self._contacts.save_contacts(elements, summarize=summarize, allow_update=allow_update)

    # --- invoices and credit notes ----------------------------------------------------------------------

    def find_invoice(self, ident: str) -> Doc | None:
        return self._invoices.find_invoice(ident)

    def create_invoices(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        return self._invoices.create_invoices(elements, summarize=summarize, unitdp=unitdp)

    def save_invoices(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        """POST /Invoices: update the elements that name an invoice, create the others."""
        return self._invoices.save_invoices(elements, summarize=summarize, unitdp=unitdp)

    def update_invoice(self, ident: str, element: Any, *, unitdp: int | None) -> list[Doc]:
        return self._invoices.update_invoice(ident, element, unitdp=unitdp)

    def create_credit_notes(self, elements: Any, *, summarize: bool, unitdp: int | None) -> list[Doc]:
        return self._invoices.create_credit_notes(elements, summarize=summarize, unitdp=unitdp)

    def find_credit_note(self, ident: str) -> Doc | None:
        return self._invoices.find_credit_note(ident)

    # --- tracking categories and options -----------------------------------------------------------------

    @property
    def tracking(self) -> Tracking:
        return Tracking(self.tracking_categories)

    # --- manual journals and lock dates -----------------------------------------------------------------

    @property
    def lock_dates(self) -> LockDates:
        return LockDates(self.settings)

    @property
    def journals(self) -> ManualJournals:
        return ManualJournals(self, self.lock_dates)

    # --- payments and credit allocations ----------------------------------------------------------------

    def allocate_credit(self, credit_note_id: str, elements: Any, *, summarize: bool) -> list[Doc]:
        return self._settlements.allocate_credit(credit_note_id, elements, summarize=summarize)

    def create_payments(self, elements: Any, *, summarize: bool) -> list[Doc]:
        return self._settlements.create_payments(elements, summarize=summarize)

    def delete_payment(self, payment_id: str, element: Any) -> list[Doc]:
        return self._settlements.delete_payment(payment_id, element)
