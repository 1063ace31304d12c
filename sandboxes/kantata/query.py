"""Query-string parsing the way Kantata reads it: comma lists, `true`/`false`, `from:to` date ranges."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from starlette.datastructures import QueryParams

from sandboxes.kantata.errors import bad_request

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True)
class Window:
    offset: int
    size: int
    page_number: int


class Query:
    def __init__(self, params: QueryParams) -> None:
        self._params = params

    def has(self, name: str) -> bool:
        return name in self._params

    def text(self, name: str) -> str | None:
        value = self._params.get(name)
        return value if value not in (None, "") else None

    def flag(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise bad_request(f"{name} must be true or false, got {value!r}")

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"{name} must be an integer, got {value!r}") from None

    def ids(self, name: str) -> list[str] | None:
        value = self.text(name)
        if value is None:
            return None
        return [part.strip() for part in value.split(",") if part.strip()]

    def timestamp(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise bad_request(f"{name} must be an ISO 8601 datetime, got {value!r}") from None
        if parsed.tzinfo is None:
            raise bad_request(f"{name} must carry a UTC offset, got {value!r}")
        return parsed

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        return parse_day(name, value)

    def date_range(self, name: str) -> tuple[date | None, date | None] | None:
        """`YYYY-MM-DD:YYYY-MM-DD`; either side may be empty, meaning open-ended."""
        value = self.text(name)
        if value is None:
            return None
        start, sep, end = value.partition(":")
        if not sep:
            raise bad_request(f"{name} must look like 2013-06-01:2013-08-01, got {value!r}")
        return (parse_day(name, start) if start else None, parse_day(name, end) if end else None)

    def many(self, name: str) -> list[str]:
        """A list given either comma-separated (`a,b`) or Rails-style (`name[]=a&name[]=b`)."""
        values: list[str] = []
        for raw in [*self._params.getlist(name), *self._params.getlist(f"{name}[]")]:
            values.extend(part.strip() for part in raw.split(",") if part.strip())
        return values

    def includes(self, allowed: Iterable[str]) -> list[str]:
        names = self.many("include")
        unknown = sorted(set(names) - set(allowed))
        if unknown:
            raise bad_request(
                f"Unknown include(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        return names

    def order(self, allowed: Iterable[str], default: str) -> tuple[str, bool]:
        value = self.text("order") or default
        allowed = set(allowed)
        if value not in allowed:
            raise bad_request(f"order must be one of {', '.join(sorted(allowed))}, got {value!r}")
        field, _, direction = value.partition(":")
        return field, direction == "desc"

    def window(self) -> Window:
        # Kantata documents page/per_page (default 20, maximum 200) and limit/offset, which wins when both
        # of its parameters are given. Above the maximum the page is clamped: the docs give no error for it.
        limit, offset = self.integer("limit"), self.integer("offset")
        if limit is not None and offset is not None:
            if limit < 1 or offset < 0:
                raise bad_request("limit must be at least 1 and offset at least 0")
            size = min(limit, MAX_PER_PAGE)
            return Window(offset=offset, size=size, page_number=offset // size + 1)
        page = self.integer("page") or 1
        per_page = self.integer("per_page") or DEFAULT_PER_PAGE
        if page < 1 or per_page < 1:
            raise bad_request("page and per_page must be positive integers")
        size = min(per_page, MAX_PER_PAGE)
        return Window(offset=(page - 1) * size, size=size, page_number=page)


def parse_day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 date (YYYY-MM-DD), got {value!r}") from None
