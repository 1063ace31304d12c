"""Tracking categories and their options, as Xero keeps them (developer.xero.com/documentation/api/accounting/
trackingcategories): at most two ACTIVE categories, and four counting ARCHIVED ones; names up to 100
characters, unique among a category's siblings; a category or option is archived, never removed, once a
transaction has used it (a deleted one is gone). A line item names at most two categories, each with one of
its active options, by name (`Name`, `Option`) or by id (`TrackingCategoryID`, `TrackingOptionID`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sandboxes.store import Collection
from sandboxes.xero.batches import Doc, DocumentNotFound, ValidationFailed, validation_errors

MAX_ACTIVE = 2
MAX_KEPT = 4
MAX_NAME = 100
MAX_PER_LINE = 2
STATUSES = ("ACTIVE", "ARCHIVED", "DELETED")


def _refuse(element: Any, messages: list[str]) -> ValidationFailed:
    echo = {k: v for k, v in element.items() if k in ("Name", "Status")} if isinstance(element, dict) else {}
    return ValidationFailed([{**echo, "ValidationErrors": validation_errors(messages)}])


def _name_errors(name: Any, what: str) -> list[str]:
    if not isinstance(name, str) or not name.strip():
        return [f"{what} name is required."]
    if len(name) > MAX_NAME:
        return [f"{what} name must be at most {MAX_NAME} characters long."]
    return []


def _option_view(option: Doc) -> Doc:
    return {
        "TrackingOptionID": option["TrackingOptionID"],
        "Name": option["Name"],
        "Status": option["Status"],
        "HasValidationErrors": False,
        "IsDeleted": option["Status"] == "DELETED",
        "IsArchived": option["Status"] == "ARCHIVED",
        "IsActive": option["Status"] == "ACTIVE",
    }


class Tracking:
    def __init__(self, categories: Collection) -> None:
        self._categories = categories

    def _all(self) -> list[Doc]:
        return [c for c in self._categories if c["Status"] != "DELETED"]

    def view(self, category: Doc, *, include_archived: bool) -> Doc:
        return {
            "TrackingCategoryID": category["TrackingCategoryID"],
            "Name": category["Name"],
            "Status": category["Status"],
            "Options": [
                _option_view(o)
                for o in category["Options"]
                if o["Status"] == "ACTIVE" or (include_archived and o["Status"] == "ARCHIVED")
            ],
        }

    def categories(self, *, include_archived: bool) -> list[Doc]:
        return [
            self.view(c, include_archived=include_archived)
            for c in self._all()
            if c["Status"] == "ACTIVE" or include_archived
        ]

    def find(self, ident: str) -> Doc | None:
        category = self._categories.get(ident.lower())
        return category if category is not None and category["Status"] != "DELETED" else None

    def create_category(self, element: Any) -> Doc:
        if not isinstance(element, dict):
            raise _refuse(element, ["The request contains no tracking category."])
        name = element.get("Name")
        errors = _name_errors(name, "Tracking category")
        kept = self._all()
        if not errors and any(c["Name"].lower() == str(name).strip().lower() for c in kept):
            errors.append(f"A tracking category with the name '{name}' already exists.")
        if sum(c["Status"] == "ACTIVE" for c in kept) >= MAX_ACTIVE:
            errors.append(f"You can only have {MAX_ACTIVE} active tracking categories.")
        elif len(kept) >= MAX_KEPT:
            errors.append(f"You can only have {MAX_KEPT} tracking categories, active and archived.")
        if errors:
            raise _refuse(element, errors)
        category: Doc = {
            "TrackingCategoryID": str(uuid.uuid4()),
            "Name": str(name).strip(),
            "Status": "ACTIVE",
            "Options": [],
        }
        self._categories.put(category["TrackingCategoryID"], category)
        return self.view(category, include_archived=False)

    def update_category(self, ident: str, element: Any) -> Doc:
        category = self.find(ident)
        if category is None:
            raise DocumentNotFound(ident)
        if not isinstance(element, dict):
            raise _refuse(element, ["The request contains no tracking category."])
        changes: Doc = {}
        errors: list[str] = []
        if "Name" in element:
            errors += _name_errors(element["Name"], "Tracking category")
            name = str(element["Name"]).strip()
            if any(c["Name"].lower() == name.lower() and c is not category for c in self._all()):
                errors.append(f"A tracking category with the name '{name}' already exists.")
            changes["Name"] = name
        if "Status" in element:
            status = element["Status"]
            if status not in STATUSES:
                errors.append(f"Status must be one of {', '.join(STATUSES)}.")
            elif status == "ACTIVE" and category["Status"] != "ACTIVE":
                if sum(c["Status"] == "ACTIVE" for c in self._all()) >= MAX_ACTIVE:
                    errors.append(f"You can only have {MAX_ACTIVE} active tracking categories.")
            changes["Status"] = status
        if errors:
            raise _refuse(element, errors)
        updated = self._categories.update(category["TrackingCategoryID"], changes)
        return self.view(updated, include_archived=True)

    def add_options(self, ident: str, element: Any) -> list[Doc]:
        category = self.find(ident)
        if category is None:
            raise DocumentNotFound(ident)
        if isinstance(element, dict) and isinstance(element.get("Options"), list):
            wanted = element["Options"]
        else:
            wanted = [element]
        errors: list[str] = []
        names = {o["Name"].lower() for o in category["Options"] if o["Status"] != "DELETED"}
        new: list[Doc] = []
        for item in wanted:
            name = item.get("Name") if isinstance(item, dict) else None
            found = _name_errors(name, "Tracking option")
            if not found and str(name).strip().lower() in names:
                found.append(f"For each specified tracking option the name must be unique: '{name}'.")
            errors += found
            if not found:
                names.add(str(name).strip().lower())
                new.append(
                    {"TrackingOptionID": str(uuid.uuid4()), "Name": str(name).strip(), "Status": "ACTIVE"}
                )
        if errors:
            raise _refuse(element, errors)
        self._categories.update(category["TrackingCategoryID"], {"Options": [*category["Options"], *new]})
        return [_option_view(o) for o in new]

    def update_option(self, ident: str, option_id: str, element: Any) -> list[Doc]:
        category = self.find(ident)
        option = next(
            (o for o in (category or {}).get("Options", []) if o["TrackingOptionID"] == option_id.lower()),
            None,
        )
        if category is None or option is None:
            raise DocumentNotFound(option_id)
        if not isinstance(element, dict):
            raise _refuse(element, ["The request contains no tracking option."])
        errors: list[str] = []
        if "Name" in element:
            errors += _name_errors(element["Name"], "Tracking option")
        if "Status" in element and element["Status"] not in STATUSES:
            errors.append(f"Status must be one of {', '.join(STATUSES)}.")
        if errors:
            raise _refuse(element, errors)
        option.update({k: element[k] for k in ("Name", "Status") if k in element})
        self._categories.update(category["TrackingCategoryID"], {"Options": category["Options"]})
        return [_option_view(option)]

    def for_line(self, raw: Any) -> tuple[list[Doc], list[str]]:
        """A line item's Tracking as Xero stores it (ids and names), or why it cannot be booked."""
        if raw is None:
            return [], []
        if not isinstance(raw, list):
            return [], ["Tracking must be a list of tracking categories."]
        if len(raw) > MAX_PER_LINE:
            return [], [f"A line item can have at most {MAX_PER_LINE} tracking categories."]
        stored: list[Doc] = []
        errors: list[str] = []
        for element in raw:
            if not isinstance(element, dict):
                errors.append("Each tracking category on a line item must be an object.")
                continue
            category = self._category_for(element)
            if category is None:
                errors.append(
                    f"Tracking category '{element.get('Name') or element.get('TrackingCategoryID')}' "
                    "does not exist or is not active."
                )
                continue
            option = self._option_for(category, element)
            if option is None:
                errors.append(
                    f"Tracking option '{element.get('Option') or element.get('TrackingOptionID')}' does not "
                    f"exist or is not active in tracking category '{category['Name']}'."
                )
                continue
            if any(s["TrackingCategoryID"] == category["TrackingCategoryID"] for s in stored):
                errors.append(f"Tracking category '{category['Name']}' is given twice on one line item.")
                continue
            stored.append(
                {
                    "TrackingCategoryID": category["TrackingCategoryID"],
                    "TrackingOptionID": option["TrackingOptionID"],
                    "Name": category["Name"],
                    "Option": option["Name"],
                }
            )
        return stored, errors

    def _category_for(self, element: Doc) -> Doc | None:
        ident, name = element.get("TrackingCategoryID"), element.get("Name")
        for category in self._all():
            if category["Status"] != "ACTIVE":
                continue
            if isinstance(ident, str) and ident and category["TrackingCategoryID"] == ident.lower():
                return category
            if not ident and isinstance(name, str) and category["Name"].lower() == name.strip().lower():
                return category
        return None

    @staticmethod
    def _option_for(category: Doc, element: Doc) -> Doc | None:
        ident, name = element.get("TrackingOptionID"), element.get("Option")
        for option in category["Options"]:
            if option["Status"] != "ACTIVE":
                continue
            if isinstance(ident, str) and ident and option["TrackingOptionID"] == ident.lower():
                return option
            if not ident and isinstance(name, str) and option["Name"].lower() == name.strip().lower():
                return option
        return None
