"""The project's dimensions as Xero tracking: a tracking category per dimension, an option per value.

Xero allows two active tracking categories per organisation (developer.xero.com/documentation/api/
accounting/trackingcategories), and there are three dimensions: each entity says which one or two it tracks
(`LegalEntity.tracked_dimensions`, by default project and customer; a firm reporting by practice tracks
project and practice). The categories are named `Project`, `Customer` and `Practice`, created when the
organisation has none by those names, and refused, with what finance must change, when other categories
already hold the slots. An option's name is the value's code followed by its name ("4711 Website rebuild",
"DIGITAL Digital"), at most 100 characters: the code makes it unique and findable again, the name makes it
readable in Xero's reports. Line items name them by category and option name (`Tracking: [{Name, Option}]`).
"""

from __future__ import annotations

from typing import Any

from canonical.dimensions import Dimension, DimensionValue, ErpProject, ErpProjectSpec, practice_code
from canonical.parties import DEFAULT_TRACKED_DIMENSIONS
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
            f"Tracking) so {name.lower()} can be tracked on invoices",
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
    while True:
        created = await client.put("/TrackingCategories", {"Name": name}, idempotency_key=key)
        category: dict[str, Any] = created["TrackingCategories"][0]
        try:
            await client.get(f"/TrackingCategories/{category['TrackingCategoryID']}")
            break
        except NotFound:
            # Xero replayed its reply for the key, naming a category deleted since: make it anew under a
            # key naming the deleted one, which a later run follows in turn if that one is gone too.
            key = f"tracking-category:{name.lower()}:after:{category['TrackingCategoryID']}"
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


def _values(spec: ErpProjectSpec) -> dict[Dimension, tuple[str, str]]:
    """(code, name) of each dimension the project has: practice only when the PSA files it under one."""
    values: dict[Dimension, tuple[str, str]] = {
        "project": (spec.project_code, spec.project_name),
        "customer": (spec.customer_code, spec.customer_name),
    }
    if spec.practice:
        code = practice_code(spec.practice)
        if not code:
            raise _rejected(
                f"practice {spec.practice!r} has no letter or digit to name its tracking option by: the PMO "
                "renames it in the PSA",
                "practice",
            )
        values["practice"] = (code, spec.practice)
    return values


async def ensure_project(
    client: XeroClient, spec: ErpProjectSpec, *, tracked: tuple[Dimension, ...] = DEFAULT_TRACKED_DIMENSIONS
) -> ErpProject:
    """The options of the tracked dimensions the project has. A project without a practice in an entity
    tracking practice is tracked by the rest; its Practice category is not needed, so not made."""
    values = _values(spec)
    wanted = [dimension for dimension in tracked if dimension in values]
    categories = await _categories(client)
    # Every category first: a category Xero has no room for is refused before any option is made.
    held = [await _category(client, CATEGORIES[dimension], categories) for dimension in wanted]
    dimensions: list[DimensionValue] = []
    for dimension, category in zip(wanted, held, strict=True):
        code, name = values[dimension]
        option = await _option(client, category, code, name)
        dimensions.append(DimensionValue(dimension=dimension, code=option, name=name))
    project = next((d.code for d in dimensions if d.dimension == "project"), None)
    return ErpProject(
        erp=SYSTEM,
        # An entity not tracking projects keeps nothing per project in Xero: our own key stands for it.
        project_id=project or spec.project_code,
        dimensions=tuple(dimensions),
    )
