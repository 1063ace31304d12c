"""Pages of results with an opaque cursor, so a retried activity resumes where it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # The cursor that fetches the page after this one; None on the last page.
    next_cursor: str | None = None
    # The cursor that fetched this page, so a caller can checkpoint before processing it.
    cursor: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
