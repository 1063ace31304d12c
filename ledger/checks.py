"""Argument checks shared by the repository functions: refuse bad input with a message that names it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ledger.errors import InvalidLedgerInput
from ledger.vocab import SYSTEM_NAME_LENGTH, SYSTEM_NAME_PATTERN

E = TypeVar("E", bound=StrEnum)

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_SYSTEM_NAME = re.compile(SYSTEM_NAME_PATTERN)
MAX_LIMIT = 10_000


def key(field: str, value: Any, *, max_length: int = 255) -> str:
    """An id or business key: matched exactly, so stray whitespace would make a silent second identity."""
    if not isinstance(value, str):
        raise InvalidLedgerInput(f"{field} must be a string, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidLedgerInput(f"{field} must not be empty")
    if value != value.strip():
        raise InvalidLedgerInput(f"{field} {value!r} has leading or trailing whitespace")
    if len(value) > max_length:
        raise InvalidLedgerInput(
            f"{field} is {len(value)} characters long; the ledger stores at most {max_length}"
        )
    return value


def optional_key(field: str, value: Any, *, max_length: int = 255) -> str | None:
    return None if value is None else key(field, value, max_length=max_length)


def identifier(field: str, value: Any, *, max_length: int) -> str:
    """A snake_case name from an open vocabulary, such as an entity kind or a process."""
    key(field, value, max_length=max_length)
    if not _IDENTIFIER.match(value):
        raise InvalidLedgerInput(f"{field} must be snake_case like 'time_to_billing', got {value!r}")
    return str(value)


def system_name(field: str, value: Any) -> str:
    """The name a deployment's configuration gives a CRM, PSA or ERP. Matched exactly, like a key: one
    system spelt two ways would split its crosswalk and reference data in two."""
    key(field, value, max_length=SYSTEM_NAME_LENGTH)
    if not _SYSTEM_NAME.match(value):
        raise InvalidLedgerInput(
            f"{field} must be a system name as configured: a lowercase letter, then lowercase letters, "
            f"digits, '_' or '-' (at most {SYSTEM_NAME_LENGTH} characters); got {value!r}"
        )
    return str(value)


def text(field: str, value: Any, *, max_length: int | None = None) -> str:
    """Free text a person will read; it must say something."""
    if not isinstance(value, str):
        raise InvalidLedgerInput(f"{field} must be a string, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise InvalidLedgerInput(f"{field} must not be blank")
    if max_length is not None and len(value) > max_length:
        raise InvalidLedgerInput(
            f"{field} is {len(value)} characters long; the ledger stores at most {max_length}"
        )
    return value


def optional_text(field: str, value: Any) -> str | None:
    return None if value is None else text(field, value)


def choice(field: str, value: Any, vocabulary: type[E], *, allowed: frozenset[E] | None = None) -> E:
    options = allowed if allowed is not None else frozenset(vocabulary)
    try:
        member = vocabulary(value)
    except ValueError:
        member = None
    if member is None or member not in options:
        names = ", ".join(sorted(str(option) for option in options))
        raise InvalidLedgerInput(f"{field} must be one of {names}; got {value!r}")
    return member


def optional_choice(field: str, value: Any, vocabulary: type[E]) -> E | None:
    return None if value is None else choice(field, value, vocabulary)


def json_object(field: str, value: Any) -> dict[str, Any]:
    """A JSON object as stored: Decimals become exact strings and dates ISO text, so nothing is lost."""
    if not isinstance(value, Mapping | BaseModel):
        raise InvalidLedgerInput(f"{field} must be a mapping or a pydantic model, got {type(value).__name__}")
    try:
        converted = to_jsonable_python(value)
    except PydanticSerializationError as error:
        raise InvalidLedgerInput(f"{field} cannot be stored as JSON: {error}") from error
    if not all(isinstance(name, str) for name in converted):
        raise InvalidLedgerInput(f"{field} must have string keys")
    try:
        # PostgreSQL rejects NaN and Infinity in JSON; find out here, with the field's name.
        json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidLedgerInput(f"{field} cannot be stored as JSON: {error}") from error
    return dict(converted)


def limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidLedgerInput(f"limit must be an integer from 1 to {MAX_LIMIT}, got {value!r}")
    return value
