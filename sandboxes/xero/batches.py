"""Xero's batch writes: every write takes a list of elements, and one bad element can fail them all.

With `summarize=True` (Xero's default) one bad element fails the whole batch and nothing is saved; with
`summarize=False` the good elements are saved and the bad ones come back marked with their validation errors
(developer.xero.com/documentation/api/accounting/requests-and-responses, "summarizeErrors").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
Publish = Callable[[str, str, str], None]  # (eventCategory, eventType, resourceId)


class ValidationFailed(Exception):
    """The batch was refused; `elements` are echoed back with their ValidationErrors."""

    def __init__(self, elements: list[Doc]) -> None:
        super().__init__("validation failed")
        self.elements = elements


class DocumentNotFound(Exception):
    pass


@dataclass
class Prepared:
    """An element checked and ready: its validation errors, or how to save it."""

    errors: list[str]
    commit: Callable[[], Doc] | None = None


def validation_errors(messages: list[str]) -> list[Doc]:
    return [{"Message": message} for message in messages]


def run_batch(
    elements: Any,
    prepare: Callable[[Doc], Prepared],
    echo: Callable[[Doc, list[str]], Doc],
    *,
    summarize: bool,
) -> list[Doc]:
    if not isinstance(elements, list) or not elements:
        raise ValidationFailed(
            [{"ValidationErrors": validation_errors(["The request contains no elements to save."])}]
        )
    prepared = [
        prepare(e) if isinstance(e, dict) else Prepared(["Each element must be an object."]) for e in elements
    ]
    failed = any(p.errors for p in prepared)
    if failed and summarize:
        raise ValidationFailed(
            [
                echo(e if isinstance(e, dict) else {}, p.errors)
                for e, p in zip(elements, prepared, strict=True)
            ]
        )
    results: list[Doc] = []
    for element, item in zip(elements, prepared, strict=True):
        if item.errors or item.commit is None:
            results.append(echo(element if isinstance(element, dict) else {}, item.errors))
        else:
            saved = item.commit()
            results.append({**saved, "StatusAttributeString": "OK"} if not summarize else saved)
    return results
