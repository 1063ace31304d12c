"""Contacts: Xero's validation of them, update-or-create by name, and finding the contact a document names."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sandboxes.xero.batches import Doc, Prepared, run_batch, validation_errors
from sandboxes.xero.documents import now_ms
from sandboxes.xero.organisation import Organisation

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTACT_LIMITS = {
    "Name": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "EmailAddress": 255,
    "TaxNumber": 50,
    "FirstName": 255,
    "LastName": 255,
}
# The ContactStatus enum of xero_accounting.yaml.
_CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
# Xero's own words when a document names an archived contact.
_ARCHIVED_CONTACT = (
    "The contact with the specified contact details has been archived. The contact must be un-archived "
    "before creating new invoices or credit notes."
)


class Contacts:
    def __init__(self, org: Organisation) -> None:
        self._org = org

    def find_contact(self, ident: str) -> Doc | None:
        return self._org.contacts.get(ident) or self._org.contacts.first(
            lambda c: c.get("ContactNumber") == ident
        )

    def _active_name_taken(self, name: str, except_id: str | None = None) -> bool:
        lowered = name.strip().lower()
        return (
            self._org.contacts.first(
                lambda c: (
                    c["ContactStatus"] == "ACTIVE"
                    and c["Name"].strip().lower() == lowered
                    and c["ContactID"] != except_id
                )
            )
            is not None
        )

    def _contact_errors(self, element: Doc, *, existing_id: str | None) -> list[str]:
        errors: list[str] = []
        name = element.get("Name")
        if existing_id is None and not (isinstance(name, str) and name.strip()):
            errors.append("The contact name must be specified.")
        if isinstance(name, str) and name.strip() and self._active_name_taken(name, existing_id):
            errors.append(
                f"The contact name {name} is already assigned to another contact. "
                "The contact name must be unique across all active contacts."
            )
        for field, limit in _CONTACT_LIMITS.items():
            value = element.get(field)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                errors.append(f"The {field} field must be text of at most {limit} characters.")
        email = element.get("EmailAddress")
        if isinstance(email, str) and email and not _EMAIL.match(email):
            errors.append("Email address must be valid.")
        currency = element.get("DefaultCurrency")
        if currency is not None and currency not in self._org.currencies:
            errors.append(f"The organisation is not subscribed to currency {currency}.")
        status = element.get("ContactStatus")
        if status is not None and status not in _CONTACT_STATUSES:
            errors.append(f"ContactStatus must be one of {', '.join(_CONTACT_STATUSES)}.")
        return errors

    def _contact_fields(self, element: Doc) -> Doc:
        fields: Doc = {
            key: element[key]
            for key in (
                "Name",
                "ContactNumber",
                "AccountNumber",
                "FirstName",
                "LastName",
                "EmailAddress",
                "TaxNumber",
                "DefaultCurrency",
                "IsSupplier",
                "IsCustomer",
                # Archiving (and restoring) a contact is an update of its status.
                "ContactStatus",
            )
            if key in element
        }
        if isinstance(element.get("Addresses"), list):
            fields["Addresses"] = [a for a in element["Addresses"] if isinstance(a, dict)]
        if isinstance(element.get("Phones"), list):
            fields["Phones"] = [p for p in element["Phones"] if isinstance(p, dict)]
        return fields

    def _prepare_contact(self, element: Doc) -> Prepared:
        existing = self._org.contacts.get(str(element["ContactID"])) if element.get("ContactID") else None
        if element.get("ContactID") and existing is None:
            return Prepared([f"Contact with ContactID {element['ContactID']} could not be found."])
        errors = self._contact_errors(element, existing_id=existing["ContactID"] if existing else None)
        if errors:
            return Prepared(errors)
        if existing is not None:
            return Prepared([], lambda: self.update_contact(existing, element))
        return Prepared([], lambda: self.create_contact(element))

    def create_contact(self, element: Doc) -> Doc:
        contact: Doc = {
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "Addresses": [],
            "Phones": [],
            "IsSupplier": False,
            "IsCustomer": False,
            "ContactGroups": [],
            "ContactPersons": [],
            "HasAttachments": False,
            "HasValidationErrors": False,
            **self._contact_fields(element),
            "UpdatedDateUTC": now_ms(),
        }
        self._org.contacts.put(contact["ContactID"], contact)
        self._org.publish("CONTACT", "CREATE", contact["ContactID"])
        return contact

    def update_contact(self, contact: Doc, element: Doc) -> Doc:
        updated = self._org.contacts.update(
            contact["ContactID"], {**self._contact_fields(element), "UpdatedDateUTC": now_ms()}
        )
        self._org.publish("CONTACT", "UPDATE", contact["ContactID"])
        return updated

    def save_contacts(self, elements: Any, *, summarize: bool, allow_update: bool) -> list[Doc]:
        def prepare(element: Doc) -> Prepared:
            if not allow_update and element.get("ContactID"):
                return Prepared(["ContactID cannot be given when creating contacts; use POST to update."])
            if allow_update and not element.get("ContactID") and isinstance(element.get("Name"), str):
                # POST matches an existing contact by name, as Xero's update-or-create does.
                match = self._org.contacts.first(
                    lambda c: c["Name"].strip().lower() == element["Name"].strip().lower()
                )
                if match is not None:
                    element = {**element, "ContactID": match["ContactID"]}
            return self._prepare_contact(element)

        return run_batch(elements, prepare, self._echo_contact, summarize=summarize)

    @staticmethod
    def _echo_contact(element: Doc, errors: list[str]) -> Doc:
        echo = {
            key: element[key]
            for key in ("ContactID", "Name", "ContactNumber", "AccountNumber", "EmailAddress")
            if isinstance(element.get(key), str)
        }
        return {
            **echo,
            "HasValidationErrors": bool(errors),
            "StatusAttributeString": "ERROR" if errors else "OK",
            "ValidationErrors": validation_errors(errors),
        }

    def resolve_contact(self, raw: Any) -> tuple[Doc | None, str | None, Callable[[], Doc] | None]:
        """The invoice's contact: by ContactID, ContactNumber or Name (created on the fly, as Xero does)."""
        if not isinstance(raw, dict):
            return None, "A contact must be specified.", None
        if raw.get("ContactID"):
            found = self._org.contacts.get(str(raw["ContactID"]))
            if found is not None and found.get("ContactStatus") == "ARCHIVED":
                return None, _ARCHIVED_CONTACT, None
            return (
                (found, None, None)
                if found
                else (None, f"Contact with ContactID {raw['ContactID']} could not be found.", None)
            )
        if raw.get("ContactNumber"):
            found = self._org.contacts.first(lambda c: c.get("ContactNumber") == raw["ContactNumber"])
            return (
                (found, None, None)
                if found
                else (None, f"Contact with ContactNumber {raw['ContactNumber']} could not be found.", None)
            )
        name = raw.get("Name")
        if isinstance(name, str) and name.strip():
            found = self._org.contacts.first(lambda c: c["Name"].strip().lower() == name.strip().lower())
            if found is not None:
                return found, None, None
            return None, None, lambda: self.create_contact({"Name": name})
        return None, "A contact must be specified.", None
