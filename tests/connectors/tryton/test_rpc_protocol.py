"""Tryton's JSON-RPC wire format and fault shapes, mapped onto our types and error taxonomy.

The shapes are those trytond 8.2 sends (trytond/protocols/jsonrpc.py); the live server tests cover the same
paths end to end, these pin every branch cheaply.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from connectors.errors import AuthFailed, Conflict, RateLimited, Rejected, Timeout, Unavailable
from connectors.tryton.mapping import line_quantity, split_payment_description
from connectors.tryton.rpc import TrytonUserWarning, dumps, fault_to_error, loads, status_to_error


def test_tagged_values_survive_the_round_trip_exactly() -> None:
    values = {
        "price": Decimal("123.3300"),
        "day": dt.date(2026, 11, 22),
        "at": dt.datetime(2026, 11, 22, 9, 30, 15, 250, tzinfo=dt.UTC),
        "took": dt.timedelta(hours=2, minutes=30),
        "blob": b"\x00\x01tryton",
    }

    assert loads(dumps(values)) == values


def test_decimal_is_sent_as_tryton_tagged_text_never_as_a_float() -> None:
    assert json.loads(dumps([Decimal("0.1")])) == [{"__class__": "Decimal", "decimal": "0.1"}]


def test_aware_datetime_is_sent_as_naive_utc_as_tryton_stores_it() -> None:
    sent = json.loads(dumps(dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))))

    assert (sent["day"], sent["hour"]) == (1, 0)


def test_float_fields_are_read_back_as_exact_decimals() -> None:
    assert loads('{"quantity": 7.5}') == {"quantity": Decimal("7.5")}


def test_user_error_is_rejected_with_trytons_message_and_the_field_it_names() -> None:
    error = fault_to_error(
        "model.account.invoice.create",
        [
            "UserError",
            ['A value is required for field "Invoice Address" in "Invoice".', "", None],
        ],
    )

    assert isinstance(error, Rejected)
    assert 'A value is required for field "Invoice Address"' in error.message
    assert [f.field for f in error.field_errors] == ["Invoice.Invoice Address"]


def test_user_warning_is_rejected_and_keeps_the_warning_name_for_an_explicit_answer() -> None:
    error = fault_to_error(
        "model.account.invoice.post",
        [
            "UserWarning",
            ["abc.invoice_date_future", "The invoices have an invoice date in the future.", ""],
        ],
    )

    assert isinstance(error, TrytonUserWarning) and isinstance(error, Rejected)
    assert error.name == "abc.invoice_date_future"


def test_concurrency_exception_is_a_conflict() -> None:
    error = fault_to_error(
        "model.party.party.write", ["ConcurrencyException", "Records were modified in the meanwhile"]
    )

    assert isinstance(error, Conflict)


def test_any_other_server_exception_is_unavailable() -> None:
    error = fault_to_error("model.res.user.get_preferences", ["'res.user'", "Traceback ..."])

    assert isinstance(error, Unavailable) and error.retryable


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("POST", "http://tryton/db/rpc/"))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthFailed),
        (403, AuthFailed),
        (504, Timeout),
        (503, Unavailable),
        (422, Rejected),
    ],
)
def test_http_statuses_map_onto_the_taxonomy(status: int, kind: type[Exception]) -> None:
    assert isinstance(status_to_error("model.x.y", _response(status)), kind)


def test_too_many_requests_carries_retry_after() -> None:
    error = status_to_error("common.db.login", _response(429, {"Retry-After": "7"}))

    assert isinstance(error, RateLimited) and error.retry_after == 7.0


def test_a_quantity_goes_exactly_or_not_at_all_through_trytons_float_field() -> None:
    assert line_quantity(Decimal("0.3333"), digits=4, field="q") == Decimal("0.3333")
    with pytest.raises(Rejected):
        line_quantity(Decimal("1.00000000000000001"), digits=17, field="q")


def test_payment_description_splits_into_reference_and_key() -> None:
    assert split_payment_description("wire 7 [erp:pay:1]") == ("wire 7", "erp:pay:1")
    assert split_payment_description("bank statement line 12") == ("bank statement line 12", None)
