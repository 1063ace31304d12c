"""The sandboxes' JSON writer against the standard library's reader: whatever document a sandbox answers
with reads back, digit for digit, as the document it wrote, and a float is refused wherever it hides."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandboxes import exact_json

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
leaves = st.none() | st.booleans() | st.integers() | st.text() | decimals
documents = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def _read(text: str) -> Any:
    # The oracle reads numbers the way the connectors do: a fraction as Decimal from its own digits.
    return json.loads(text, parse_float=Decimal)


def _reference(value: Any) -> str:
    """A plain value-by-value writer: slow, but too simple to get a digit wrong."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{_reference(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_reference(item) for item in value) + "]"
    return json.dumps(value)


@given(documents)
def test_every_document_is_written_as_the_plain_writer_writes_it(document: Any) -> None:
    text = exact_json.dumps(document)
    assert text == _reference(document)
    assert _read(text) == document


@given(st.text())
def test_no_string_a_client_sends_is_taken_for_a_number(text: str) -> None:
    assert _read(exact_json.dumps({"Name": text})) == {"Name": text}


def test_amounts_keep_every_digit_and_their_sign() -> None:
    body = exact_json.dumps(
        {"UnitAmount": Decimal("924.975"), "Tax": Decimal("-0.0010"), "Big": Decimal("1E+3")}
    )
    assert body == '{"UnitAmount":924.975,"Tax":-0.0010,"Big":1000}'


@pytest.mark.parametrize("hidden", [1.5, [1.5], {"a": {"b": [0.1]}}])
def test_a_float_anywhere_is_refused(hidden: Any) -> None:
    with pytest.raises(TypeError, match="refusing float"):
        exact_json.dumps(hidden)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_a_number_json_cannot_hold_is_refused(value: Decimal) -> None:
    with pytest.raises(ValueError, match="no JSON number form"):
        exact_json.dumps({"Amount": value})
