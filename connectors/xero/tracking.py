"""Project and customer as Xero tracking: two tracking categories, an option per project and per customer.

Xero allows two active tracking categories per organisation (developer.xero.com/documentation/api/
accounting/trackingcategories); ps-sync uses both, named `Project` and `Customer`, creating them when the
organisation has none by those names and refusing, with what finance must change, when two other categories
already hold the slots. An option's name is the value's code followed by its name ("4711 Website rebuild"),
at most 100 characters: the code makes it unique and findable again, the name makes it readable in Xero's
reports. Line items name them by category and option name (`Tracking: [{Name, Option}]`).
"""

from __future__ import annotations

from typing import Any

from canonical.dimensions import DimensionValue, ErpProject, ErpProjectSpec
from connectors.errors import FieldError, NotFound, Rejected
from connectors.xero.client import SYSTEM, XeroClient
from connectors.xero.mapping import TRACKING_CATEGORIES as CATEGORIES

MAX_ACTIVE_CATEGORIES = 2
MAX_NAME = 100


def option_name(code: str, name: str) -> str:
    text = f"{code} {' '.join(name.split())}"
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1] + "…"


def _rejected(message: str, field: str) -> Rejected:
    return Rejected(message, system=SYSTEM, field_errors=[FieldError(field=field, message=message)])


async def _categories(client: XeroClient) -> list[dict[str, Any]]:
    body = await client.get("/TrackingCategories", params={"includeArchived": "true"})
    categories: list[dict[str, Any]] = body.get("TrackingCategories", [])
    return categories


async def _category(client: XeroClient, name: str, categories: list[dict[str, Any]]) -> dict[str, Any]:
    """The active category named `name`, created when there is none and Xero has room for it."""
    same = [c for c in categories if str(c.get("Name", "")).lower() == name.lower()]
    active = [c for c in same if c.get("Status") == "ACTIVE"]
    if active:
        return active[0]
    if same:
        raise _rejected(
            f"Xero's tracking category {name!r} is archived: finance restores it in Xero (Settings, "
            "Tracking) so project and customer can be tracked on invoices",
            "TrackingCategories",
        )
    active = [c for c in categories if c.get("Status") == "ACTIVE"]
    if len(active) >= MAX_ACTIVE_CATEGORIES:
        held = ", ".join(repr(str(c.get("Name"))) for c in active)
        raise _rejected(
            f"Xero allows {MAX_ACTIVE_CATEGORIES} active tracking categories and this organisation's {held} "
            f"hold them, leaving no room for {name!r}: finance archives one of them, or renames it to "
            f"{name!r}, in Xero (Settings, Tracking) and retries",
            "TrackingCategories",
        )
    key = f"tracking-category:{name.lower()}"
    created = await client.put("/TrackingCategories", {"Name": name}, idempotency_key=key)
    category: dict[str, Any] = created["TrackingCategories"][0]
    try:
        await client.get(f"/TrackingCategories/{category['TrackingCategoryID']}")
    except NotFound:
        # Xero replayed its reply for the key, naming a category deleted since: make it anew.
        created = await client.put(
            "/TrackingCategories",
            {"Name": name},
            idempotency_key=f"{key}:after:{category['TrackingCategoryID']}",
        )
        category = created["TrackingCategories"][0]
    categories.append(category)
    return category


async def _option(client: XeroClient, category: dict[str, Any], code: str, name: str) -> str:
    """The option for the value `code` (found by its code, whatever name follows), created if missing."""
    options = category.get("Options") or []
    found = [o for o in options if str(o.get("Name", "")).split(" ", 1)[0] == code]
    live = [o for o in found if o.get("Status") == "ACTIVE"]
    if live:
        return str(live[0]["Name"])
    if found:
        raise _rejected(
            f"Xero's tracking option {found[0]['Name']!r} of category {category['Name']!r} is archived: "
            "finance restores it in Xero so its invoices can be tracked",
            "Options",
        )
    wanted = option_name(code, name)
    created = await client.put(
        f"/TrackingCategories/{category['TrackingCategoryID']}/Options",
        {"Name": wanted},
        idempotency_key=f"tracking-option:{category['TrackingCategoryID']}:{code}",
    )
    option: dict[str, Any] = created["Options"][0]
    category["Options"] = [*options, option]
    return str(option["Name"])


async def ensure_project(client: XeroClient, spec: ErpProjectSpec) -> ErpProject:
    categories = await _categories(client)
    project_category = await _category(client, CATEGORIES["project"], categories)
    customer_category = await _category(client, CATEGORIES["customer"], categories)
    project = await _option(client, project_category, spec.project_code, spec.project_name)
    customer = await _option(client, customer_category, spec.customer_code, spec.customer_name)
    return ErpProject(
        erp=SYSTEM,
        project_id=project,
        dimensions=(
            DimensionValue(dimension="project", code=project, name=spec.project_name),
            DimensionValue(dimension="customer", code=customer, name=spec.customer_name),
        ),
    )
