"""The org's records: validation as Salesforce does it, atomic transactions, and the closed-won trigger."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sandboxes.salesforce import ids
from sandboxes.salesforce.errors import SfError, json_parser_error, not_found
from sandboxes.salesforce.schema import (
    CLOSED_STAGES,
    CLOSED_WON,
    STAGE_DEFAULTS,
    Field,
    SObjectType,
    build_schema,
)
from sandboxes.store import Collection, Doc, SandboxStore

# The fields the outbound message rule watches on a won deal (the org's ISCHANGED criteria).
CHANGE_ORDER_FIELDS = (
    "Amount",
    "Not_To_Exceed__c",
    "CurrencyIsoCode",
    "Legal_Entity__c",
    "Billing_Model__c",
    "Service_Code__c",
    "Tax_Code__c",
    "Amendment_Effective_Date__c",
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_FLS_HINT = (
    "Please check the security settings of this field and verify that it is read/write for your "
    "profile or permission set."
)


def sf_datetime(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


@dataclass
class Transaction:
    undo: list[Callable[[], None]] = field(default_factory=list)
    closed_won: list[str] = field(default_factory=list)
    failed: bool = False


class Org:
    """One Salesforce org held in a SandboxStore: a collection per sObject type."""

    def __init__(
        self,
        store: SandboxStore,
        *,
        org_id: str,
        default_currency: str = "GBP",
        on_closed_won: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.org_id = org_id
        self.schema = build_schema(default_currency)
        self._by_lower = {name.lower(): sobject for name, sobject in self.schema.items()}
        self._on_closed_won = on_closed_won or (lambda record_ids: None)
        self._tx: Transaction | None = None
        self.running_user_id = ids.make_id("User", 1)
        self._seed_users()

    def reseed(self) -> None:
        """Put back the users every org starts with (after a reset emptied the store)."""
        self._seed_users()

    def _seed_users(self) -> None:
        users = self.store.collection("User")
        if users.get(self.running_user_id) is not None:
            return
        now = sf_datetime()
        for sequence, (first, last, username) in enumerate(
            (
                ("Integration", "User", "integration@northwind.example"),
                ("Sam", "Seller", "sam.seller@northwind.example"),
            ),
            start=1,
        ):
            user_id = ids.make_id("User", sequence)
            self.store.next_number("seq:User")
            users.put(
                user_id,
                {
                    "Id": user_id,
                    "Username": username,
                    "FirstName": first,
                    "LastName": last,
                    "Name": f"{first} {last}",
                    "Email": username,
                    "IsActive": True,
                    "CreatedDate": now,
                    "CreatedById": self.running_user_id,
                    "LastModifiedDate": now,
                    "LastModifiedById": self.running_user_id,
                    "SystemModstamp": now,
                },
            )

    # ----- metadata -------------------------------------------------------------------------------

    def sobject(self, name: str) -> SObjectType:
        sobject = self._by_lower.get(name.lower())
        if sobject is None:
            raise not_found()
        return sobject

    def parse_id(self, sobject: SObjectType, raw: str) -> str:
        record_id = ids.to_18(raw)
        if record_id is None or ids.sobject_of(record_id) != sobject.name:
            raise SfError(
                400, "MALFORMED_ID", f"{sobject.label} ID: id value of incorrect type: {raw}", ["Id"]
            )
        return record_id

    # ----- reads ----------------------------------------------------------------------------------

    def get(self, sobject: str, record_id: str) -> Doc | None:
        return self.store.collection(sobject).get(record_id)

    def records(self, sobject: str) -> list[Doc]:
        return list(self.store.collection(sobject))

    def find_by_external_id(self, sobject: SObjectType, field_name: str, value: str) -> list[Doc]:
        external = sobject.field(field_name)
        if external is None or not (external.external_id or external.name == "Id"):
            raise not_found(f"Provided external ID field does not exist or is not accessible: {field_name}")
        if external.name == "Id":
            record_id = ids.to_18(value)
            doc = self.get(sobject.name, record_id) if record_id else None
            return [doc] if doc else []
        # External ids match case-insensitively unless the field is marked case-sensitive.
        wanted = value.casefold()
        return self.store.collection(sobject.name).find(
            lambda doc: isinstance(doc.get(external.name), str) and doc[external.name].casefold() == wanted
        )

    def render(self, sobject: SObjectType, doc: Doc, version: str, fields: list[str] | None = None) -> Doc:
        out: Doc = {"attributes": {"type": sobject.name, "url": record_url(version, sobject.name, doc["Id"])}}
        names = fields if fields is not None else list(sobject.fields)
        for name in names:
            definition = sobject.field(name)
            if definition is None:
                continue
            out[definition.name] = typed_value(definition, doc.get(definition.name))
        return out

    # ----- writes ---------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if self._tx is not None:
            yield self._tx
            return
        tx = Transaction()
        self._tx = tx
        try:
            yield tx
        except BaseException:
            tx.failed = True
            raise
        finally:
            self._tx = None
            if tx.failed:
                for undo in reversed(tx.undo):
                    undo()
            elif tx.closed_won:
                # Workflow actions run after the transaction commits, as in Salesforce.
                self._on_closed_won(tx.closed_won)

    def create(self, sobject: SObjectType, body: Any) -> str:
        values = self._coerce_body(sobject, body, creating=True)
        for definition in sobject.fields.values():
            if definition.name not in values and definition.default is not None and definition.createable:
                values[definition.name] = definition.default
        if "OwnerId" in sobject.fields and values.get("OwnerId") is None:
            values["OwnerId"] = self.running_user_id
        missing = [d.name for d in sobject.fields.values() if d.required and values.get(d.name) in (None, "")]
        if missing:
            raise SfError(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        self._check_references(sobject, values)
        self._check_unique(sobject, values, record_id=None)
        record_id = ids.make_id(sobject.name, self.store.next_number(f"seq:{sobject.name}"))
        now = sf_datetime()
        doc: Doc = {name: None for name in sobject.fields}
        doc.update(values)
        doc.update(
            Id=record_id,
            CreatedDate=now,
            CreatedById=self.running_user_id,
            LastModifiedDate=now,
            LastModifiedById=self.running_user_id,
            SystemModstamp=now,
        )
        self._derive(sobject, doc, previous=None, written=values)
        self._write(sobject, record_id, doc, previous=None)
        return record_id

    def update(self, sobject: SObjectType, record_id: str, body: Any) -> None:
        previous = self.get(sobject.name, record_id)
        if previous is None:
            raise not_found()
        values = self._coerce_body(sobject, body, creating=False)
        cleared = [
            name for name, value in values.items() if value in (None, "") and sobject.fields[name].required
        ]
        if cleared:
            raise SfError(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(cleared)}]", cleared
            )
        self._check_references(sobject, values)
        self._check_unique(sobject, values, record_id=record_id)
        now = sf_datetime()
        doc = dict(previous)
        doc.update(values)
        doc.update(LastModifiedDate=now, LastModifiedById=self.running_user_id, SystemModstamp=now)
        self._derive(sobject, doc, previous=previous, written=values)
        self._write(sobject, record_id, doc, previous=previous)

    def delete(self, sobject: SObjectType, record_id: str) -> None:
        previous = self.get(sobject.name, record_id)
        if previous is None:
            raise not_found()
        collection = self.store.collection(sobject.name)
        collection.delete(record_id)
        self._journal(lambda: _restore(collection, record_id, previous))
        if sobject.name == "Task":
            self._roll_up_activity(previous.get("WhatId"))

    def _write(self, sobject: SObjectType, record_id: str, doc: Doc, *, previous: Doc | None) -> None:
        collection = self.store.collection(sobject.name)
        collection.put(record_id, doc)
        if previous is None:
            self._journal(lambda: collection.delete(record_id))
        else:
            self._journal(lambda: _restore(collection, record_id, previous))
        if sobject.name == "Opportunity" and doc.get("StageName") == CLOSED_WON and (
            previous is None
            or previous.get("StageName") != CLOSED_WON
            # The org's outbound message rule also fires when a won deal's commercial terms are edited
            # (criteria: ISCHANGED on any of them): a change order after the sale.
            or any(doc.get(name) != previous.get(name) for name in CHANGE_ORDER_FIELDS)
        ):
            if self._tx is not None:
                self._tx.closed_won.append(record_id)
            else:
                self._on_closed_won([record_id])
        if sobject.name == "Task":
            for related in {doc.get("WhatId"), previous.get("WhatId") if previous else None}:
                self._roll_up_activity(related)

    def _journal(self, undo: Callable[[], None]) -> None:
        if self._tx is not None:
            self._tx.undo.append(undo)

    def _roll_up_activity(self, record_id: str | None) -> None:
        """An opportunity's activity fields follow its tasks: the latest due date of a completed one, and
        whether any is still open."""
        if record_id is None or ids.sobject_of(record_id) != "Opportunity":
            return
        collection = self.store.collection("Opportunity")
        previous = collection.get(record_id)
        if previous is None:
            return
        tasks = self.store.collection("Task").find(lambda task: task.get("WhatId") == record_id)
        done = [task["ActivityDate"] for task in tasks if _task_closed(task) and task.get("ActivityDate")]
        doc = dict(previous)
        doc["LastActivityDate"] = max(done, default=None)
        doc["HasOpenActivity"] = any(not _task_closed(task) for task in tasks)
        if doc != previous:
            # A roll-up is not an edit of the opportunity: its last-modified stamps stay.
            collection.put(record_id, doc)
            self._journal(lambda: _restore(collection, record_id, previous))

    @staticmethod
    def _derive(sobject: SObjectType, doc: Doc, *, previous: Doc | None, written: Doc) -> None:
        if sobject.name == "Opportunity":
            _derive_opportunity(doc, previous=previous, written=written)
        if sobject.name == "Contact":
            doc["Name"] = " ".join(part for part in (doc.get("FirstName"), doc.get("LastName")) if part)

    # ----- validation -----------------------------------------------------------------------------

    def _coerce_body(self, sobject: SObjectType, body: Any, *, creating: bool) -> Doc:
        if not isinstance(body, dict):
            raise json_parser_error(
                f"Cannot deserialize instance of {sobject.name} from {_json_kind(body)} value or request may "
                "be missing a required field at [line:1, column:1]"
            )
        values: Doc = {}
        read_only: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue
            definition = sobject.field(key)
            if definition is None:
                raise SfError(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject.name}"
                )
            if not (definition.createable if creating else definition.updateable):
                read_only.append(definition.name)
                continue
            values[definition.name] = coerce(definition, raw)
        if read_only:
            raise SfError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. {_FLS_HINT}",
                read_only,
            )
        return values

    def _check_references(self, sobject: SObjectType, values: Doc) -> None:
        for name, value in values.items():
            definition = sobject.fields[name]
            if definition.type != "reference" or value is None:
                continue
            target = ids.sobject_of(value)
            if target not in definition.reference_to:
                raise SfError(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{definition.label}: id value of incorrect type: {value}",
                    [name],
                )
            if self.get(target, value) is None:
                raise SfError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])

    def _check_unique(self, sobject: SObjectType, values: Doc, *, record_id: str | None) -> None:
        for name, value in values.items():
            if not sobject.fields[name].unique or value is None:
                continue
            clash = next(
                (
                    doc
                    for doc in self.store.collection(sobject.name)
                    if doc["Id"] != record_id and _same_text(doc.get(name), value)
                ),
                None,
            )
            if clash is not None:
                raise SfError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {clash['Id']}",
                    [],
                )


def _derive_opportunity(doc: Doc, *, previous: Doc | None, written: Doc) -> None:
    stage = doc.get("StageName")
    doc["IsWon"] = stage == CLOSED_WON
    doc["IsClosed"] = stage in CLOSED_STAGES
    doc["IsDeleted"] = False
    doc["HasOpportunityLineItem"] = False
    if doc.get("HasOpenActivity") is None:
        doc["HasOpenActivity"] = False
    if previous is None or previous.get("StageName") != stage:
        # Entering a stage sets its default probability and forecast category, unless the same write
        # sets them; later they may be overridden on their own.
        probability, category = STAGE_DEFAULTS.get(str(stage), (None, None))
        if "Probability" not in written and probability is not None:
            doc["Probability"] = str(probability)
        if "ForecastCategoryName" not in written and category is not None:
            doc["ForecastCategoryName"] = category
    amount, probability = doc.get("Amount"), doc.get("Probability")
    doc["ExpectedRevenue"] = (
        None
        if amount is None or probability is None
        else str((Decimal(amount) * Decimal(probability) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP))
    )
    close_date = doc.get("CloseDate")
    if close_date:
        closing = date.fromisoformat(close_date)
        quarter = (closing.month - 1) // 3 + 1
        doc.update(FiscalYear=closing.year, FiscalQuarter=quarter, Fiscal=f"{closing.year} {quarter}")
    else:
        doc.update(FiscalYear=None, FiscalQuarter=None, Fiscal=None)


def _task_closed(task: Doc) -> bool:
    return task.get("Status") == "Completed"


def _restore(collection: Collection, record_id: str, doc: Doc) -> None:
    collection.put(record_id, doc)


def _same_text(left: Any, right: Any) -> bool:
    # Unique text fields compare case-insensitively unless marked case-sensitive.
    return isinstance(left, str) and isinstance(right, str) and left.casefold() == right.casefold()


def record_url(version: str, sobject: str, record_id: str) -> str:
    return f"/services/data/{version}/sobjects/{sobject}/{record_id}"


def typed_value(definition: Field, value: Any) -> Any:
    if value is None:
        return None
    if definition.type == "currency":
        return Decimal(str(value))
    if definition.type == "percent":
        # Salesforce sends a percent as a JSON double (10.0), whatever the field's scale.
        return Decimal(str(value)).quantize(Decimal("0.1"))
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    return "VALUE_NUMBER" if isinstance(value, int | Decimal) else "VALUE_TOKEN"


def _cannot_deserialize(kind: str, raw: Any) -> SfError:
    return json_parser_error(
        f"Cannot deserialize instance of {kind} from {_json_kind(raw)} value {raw} or request may be "
        "missing a required field at [line:1, column:1]"
    )


def coerce(definition: Field, raw: Any) -> Any:
    """The stored form of a value written to a field, or Salesforce's error for it."""
    if raw is None:
        return None
    kind = definition.type
    if kind in ("string", "textarea", "email", "picklist"):
        if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
            raise _cannot_deserialize("string", raw)
        text = str(raw)
        if text == "":
            # Salesforce stores an empty string in a text field as null.
            return None
        if definition.length and len(text) > definition.length:
            raise SfError(
                400,
                "STRING_TOO_LONG",
                f"{definition.label}: data value too large: {text[:80]} (max length={definition.length})",
                [definition.name],
            )
        if kind == "email" and not _EMAIL.match(text):
            raise SfError(
                400,
                "INVALID_EMAIL_ADDRESS",
                f"{definition.label}: invalid email address: {text}",
                [definition.name],
            )
        if kind == "picklist" and definition.restricted:
            allowed = (
                _COUNTRY_CODE.match(text)
                if definition.name.endswith("CountryCode")
                else (text in definition.values)
            )
            if not allowed:
                raise SfError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{definition.label}: bad value for restricted picklist field: {text}",
                    [definition.name],
                )
        return text
    if kind == "reference":
        if not isinstance(raw, str):
            raise _cannot_deserialize("id", raw)
        if raw == "":
            return None
        record_id = ids.to_18(raw)
        if record_id is None:
            raise SfError(
                400,
                "MALFORMED_ID",
                f"{definition.label}: id value of incorrect type: {raw}",
                [definition.name],
            )
        return record_id
    if kind == "date":
        if not isinstance(raw, str) or not _DATE.match(raw):
            raise _cannot_deserialize("date", raw)
        try:
            date.fromisoformat(raw)
        except ValueError as exc:
            raise _cannot_deserialize("date", raw) from exc
        return raw
    if kind in ("currency", "percent"):
        if isinstance(raw, bool):
            raise _cannot_deserialize("double", raw)
        try:
            amount = Decimal(str(raw)) if isinstance(raw, int | Decimal | str | float) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            raise _cannot_deserialize("double", raw)
        quantum = Decimal(1).scaleb(-definition.scale)
        amount = amount.quantize(quantum, rounding=ROUND_HALF_UP)
        if abs(amount) >= Decimal(10) ** (definition.precision - definition.scale) or (
            kind == "percent" and not 0 <= amount <= 100
        ):
            raise SfError(
                400,
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{definition.label}: value outside of valid range on numeric field: {raw}",
                [definition.name],
            )
        return str(amount)
    if kind == "boolean":
        if not isinstance(raw, bool):
            raise _cannot_deserialize("boolean", raw)
        return raw
    raise _cannot_deserialize(kind, raw)
