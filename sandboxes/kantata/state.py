"""The sandbox account: every Kantata record, the indexes that keep 100,000-entry listings fast, and the
event log each change feeds.

Records are stored in Kantata's response shape. Keys starting with `_` are the sandbox's own bookkeeping
(association ids Kantata only shows when the association is included, timestamps for ordering); they never
leave the sandbox except through an include.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sandboxes.kantata.clock import SandboxClock, iso
from sandboxes.kantata.errors import not_found, validation
from sandboxes.kantata.events import EventLog
from sandboxes.store import Collection, SandboxStore

Doc = dict[str, Any]

# What the sandbox account's administrator has set up, as a ps-sync customer's would before connecting: the
# Workspace custom fields the integration reads and writes, as (name, Kantata `value_type`), and the
# account's expense categories (Kantata has no fixed list: an admin creates them, POST /expense_categories).
WORKSPACE_CUSTOM_FIELDS: tuple[tuple[str, str], ...] = (
    ("Client", "string"),
    ("Legal Entity", "string"),
    ("Billing Model", "string"),
    ("Service Code", "string"),
    ("ERP Invoices", "string"),
    ("ERP Amount Due", "currency"),
    ("ERP Amount Paid", "currency"),
    # The firm files projects by practice (service line); Kantata has no built-in field for it.
    ("Practice", "string"),
    # Month-end's figures to date per project, written by the integration.
    ("Recognised Revenue", "currency"),
    ("Labour Cost", "currency"),
    ("WIP", "currency"),
    ("Margin", "currency"),
)
# The User custom field naming the firm a subcontractor works for (an account with subcontractors has one).
USER_CUSTOM_FIELDS: tuple[tuple[str, str], ...] = (("Supplier", "string"),)
EXPENSE_CATEGORIES: tuple[str, ...] = ("Travel", "Lodging", "Meals", "Software", "Other")

# Distinct id ranges per record type, as a real account shows: an id never names two kinds of record.
FIRST_IDS = {
    "workspaces": 30_100_001,
    "stories": 41_200_001,
    "participations": 52_300_001,
    "users": 6_100_001,
    "roles": 710_001,
    "time_entries": 210_000_001,
    "timesheet_submissions": 88_100_001,
    "expenses": 93_400_001,
    "expense_categories": 7_101,
    "invoices": 5_100_001,
    "external_references": 3_300_001,
    "custom_fields": 9_101,
    "custom_field_values": 12_500_001,
    "rate_card_sets": 1_101,
    "rate_card_set_versions": 2_101,
    "rate_cards": 3_101,
    "rate_card_versions": 4_101,
    "rate_card_roles": 6_101,
    "subscribed_events": 800_000_001,
    "account_invitations": 11_001,
}

# Record type as Kantata names it in `subject_type` (external references, events, custom field values).
SUBJECT_TYPES = {
    "workspaces": "Workspace",
    "stories": "Story",
    "participations": "Participation",
    "users": "User",
    "roles": "Role",
    "time_entries": "TimeEntry",
    "timesheet_submissions": "TimesheetSubmission",
    "expenses": "Expense",
    "invoices": "Invoice",
    "rate_cards": "RateCard",
    "custom_field_values": "CustomFieldValue",
}
COLLECTION_OF_SUBJECT = {subject: key for key, subject in SUBJECT_TYPES.items()}

# Collections listed per project; their index keeps a 100,000-entry account quick to page through.
_BY_WORKSPACE = ("time_entries", "expenses", "stories", "participations", "timesheet_submissions")


def public(doc: Doc) -> Doc:
    return {key: value for key, value in doc.items() if not key.startswith("_")}


class KantataState:
    def __init__(
        self,
        *,
        store: SandboxStore,
        clock: SandboxClock,
        account_id: str,
        retention_days: float,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.account_id = account_id
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.version = 0
        self.by_workspace: dict[str, dict[str, list[str]]] = {key: defaultdict(list) for key in _BY_WORKSPACE}
        self.refs_by_subject: dict[tuple[str, str], list[str]] = defaultdict(list)
        # (subject type, subject id) -> custom field id -> value id: a subject's values without a scan.
        self.values_by_subject: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        self.events = EventLog(
            store.collection("subscribed_events"),
            clock,
            account_id=account_id,
            new_id=lambda: self.new_id("subscribed_events"),
            draw=self._rng.random,
            retention=timedelta(days=retention_days),
        )
        self._rebuild_indexes()
        self.api_user_id = self._ensure_account_setup()

    # --- storage ------------------------------------------------------------------------------------------

    def col(self, key: str) -> Collection:
        return self.store.collection(key)

    def get(self, key: str, record_id: str | int | None) -> Doc | None:
        if record_id is None:
            return None
        return self.col(key).get(str(record_id))

    def require(self, key: str, record_id: str | int) -> Doc:
        doc = self.get(key, record_id)
        if doc is None:
            raise not_found()
        return doc

    def require_ref(self, key: str, record_id: Any, field: str) -> Doc:
        """A record named in a request body: missing is the request's fault (422), not a missing page."""
        if record_id in (None, ""):
            raise validation(field, f"{field} is required")
        doc = self.get(key, str(record_id))
        if doc is None:
            raise validation(field, f"{field} {record_id} does not exist")
        return doc

    def new_id(self, key: str) -> str:
        return str(self.store.next_number(key, start=FIRST_IDS[key]))

    def now_iso(self) -> str:
        return iso(self.clock.now())

    def today(self) -> str:
        return self.clock.now().date().isoformat()

    def insert(self, key: str, docs: Iterable[Doc]) -> None:
        rows = [(doc["id"], doc) for doc in docs]
        self.col(key).put_many(rows)
        for _, doc in rows:
            self._index(key, doc)
        self.version += 1

    def save(self, key: str, docs: Iterable[Doc]) -> None:
        self.col(key).put_many([(doc["id"], doc) for doc in docs])
        self.version += 1

    def _index(self, key: str, doc: Doc) -> None:
        if key in self.by_workspace and doc.get("workspace_id") is not None:
            self.by_workspace[key][str(doc["workspace_id"])].append(doc["id"])
        elif key == "external_references":
            self.refs_by_subject[(doc["subject_type"], str(doc["subject_id"]))].append(doc["id"])
        elif key == "custom_field_values":
            subject = (doc["subject_type"], str(doc["subject_id"]))
            self.values_by_subject[subject][str(doc["custom_field_id"])] = doc["id"]

    def _rebuild_indexes(self) -> None:
        for key in (*_BY_WORKSPACE, "external_references", "custom_field_values"):
            for doc in self.col(key):
                self._index(key, doc)

    def in_workspace(self, key: str, workspace_id: str) -> list[str]:
        return self.by_workspace[key].get(str(workspace_id), [])

    # --- events -------------------------------------------------------------------------------------------

    def emit(self, event_type: str, key: str, *, before: Doc | None, after: Doc) -> None:
        self.events.record(
            event_type,
            SUBJECT_TYPES[key],
            after["id"],
            user_id=self.api_user_id,
            previous=None if before is None else public(before),
            current=public(after),
        )

    def emit_many(self, event_type: str, key: str, pairs: Iterable[tuple[Doc | None, Doc]]) -> None:
        self.events.record_many(
            [
                (
                    event_type,
                    SUBJECT_TYPES[key],
                    after["id"],
                    None if before is None else public(before),
                    public(after),
                )
                for before, after in pairs
            ],
            user_id=self.api_user_id,
        )

    # --- external references and custom field values ------------------------------------------------------

    def put_external_reference(self, key: str, subject_id: str, attrs: Any, field: str) -> Doc:
        if not isinstance(attrs, dict):
            raise validation(field, f"{field} must be an object")
        missing = [
            name for name in ("service_name", "service_model", "service_model_ref") if not attrs.get(name)
        ]
        if missing:
            raise validation(f"{field}.{missing[0]}", f"{field}.{missing[0]} is required")
        status = attrs.get("status", "successful")
        if status not in ("successful", "pending", "failed"):
            raise validation(f"{field}.status", "status must be successful, pending or failed")
        subject_type = SUBJECT_TYPES[key]
        # The service name is unique per object, so writing the same service again updates that reference.
        existing = next(
            (
                ref
                for ref in self.references_of(subject_type, subject_id)
                if ref["service_name"] == attrs["service_name"]
            ),
            None,
        )
        now = self.now_iso()
        values = {
            "service_name": str(attrs["service_name"]),
            "service_model": str(attrs["service_model"]),
            "service_model_ref": str(attrs["service_model_ref"]),
            "status": status,
            "external_message": attrs.get("external_message"),
            "external_link": attrs.get("external_link"),
            "external_status": attrs.get("external_status"),
            "locked": bool(attrs.get("locked", False)),
            "last_synced_at": now,
            "updated_at": now,
        }
        if existing is not None:
            existing.update(values)
            self.save("external_references", [existing])
            return existing
        doc = {
            "id": self.new_id("external_references"),
            "subject_type": subject_type,
            "subject_id": int(subject_id),
            "created_at": now,
            **values,
        }
        self.insert("external_references", [doc])
        return doc

    def references_of(self, subject_type: str, subject_id: str) -> list[Doc]:
        docs = (
            self.get("external_references", ref_id)
            for ref_id in self.refs_by_subject.get((subject_type, str(subject_id)), [])
        )
        return [doc for doc in docs if doc is not None]

    def custom_field_value(self, subject_type: str, subject_id: str, field_id: str) -> Doc | None:
        value_id = self.values_by_subject.get((subject_type, str(subject_id)), {}).get(str(field_id))
        return self.get("custom_field_values", value_id)

    def values_of(self, subject_type: str, subject_id: str) -> list[Doc]:
        value_ids = self.values_by_subject.get((subject_type, str(subject_id)), {}).values()
        return [
            doc for value_id in value_ids if (doc := self.get("custom_field_values", value_id)) is not None
        ]

    # --- account setup ------------------------------------------------------------------------------------

    def _ensure_account_setup(self) -> str:
        """What an account administrator sets up once: the API user, ps-sync's custom fields, expense
        categories and the account default rate card set. Idempotent: a persisted sandbox restarts clean."""
        now = self.now_iso()
        api_user = next((user for user in self.col("users") if user.get("_api_user")), None)
        if api_user is None:
            api_user = {
                "id": self.new_id("users"),
                "full_name": "ps-sync Integration",
                "email_address": "ps-sync@northwind.example",
                "headline": "Integration service account",
                "photo_path": None,
                "account_id": int(self.account_id),
                "_api_user": True,
                "_role_id": None,
                "created_at": now,
                "updated_at": now,
            }
            self.insert("users", [api_user])
        fields_by_name = {(field["subject_type"], field["name"]) for field in self.col("custom_fields")}
        new_fields = [
            {
                "id": self.new_id("custom_fields"),
                "name": name,
                "value_type": value_type,
                "subject_type": subject_type,
                "read_access": "financial",
                "write_access": "project_admin",
                "can_edit": True,
                "created_at": now,
                "updated_at": now,
            }
            for subject_type, fields in (("Workspace", WORKSPACE_CUSTOM_FIELDS), ("User", USER_CUSTOM_FIELDS))
            for name, value_type in fields
            if (subject_type, name) not in fields_by_name
        ]
        if new_fields:
            self.insert("custom_fields", new_fields)
        known_categories = {category["name"] for category in self.col("expense_categories")}
        categories = [
            {
                "id": self.new_id("expense_categories"),
                "name": name,
                "deleted_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for name in EXPENSE_CATEGORIES
            if name not in known_categories
        ]
        if categories:
            self.insert("expense_categories", categories)
        if not any(rate_set.get("default") for rate_set in self.col("rate_card_sets")):
            rate_set = {
                "id": self.new_id("rate_card_sets"),
                "title": "Account Default",
                "default": True,
                "created_at": now,
                "updated_at": now,
            }
            self.insert("rate_card_sets", [rate_set])
            # Kantata generates the default set with a first version; it has no rate cards yet.
            self.insert(
                "rate_card_set_versions",
                [
                    {
                        "id": self.new_id("rate_card_set_versions"),
                        "rate_card_set_id": rate_set["id"],
                        "effective_date": "2000-01-01",
                        "published_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                ],
            )
        return str(api_user["id"])
