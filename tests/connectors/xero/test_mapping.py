"""Canonical <-> Xero mapping and the wire format, without a network: money stays exact."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from canonical import Account, Invoice, InvoiceLine, InvoiceState, Money
from config import default_entities
from connectors.xero import mapping
from connectors.xero.wire import (
    dumps,
    loads,
    ms_date,
    ms_timestamp,
    parse_ms_timestamp,
    parse_xero_date,
)

UK = default_entities()[0]


def test_decimals_are_written_as_exact_json_numbers() -> None:
    assert dumps({"a": Decimal("924.975"), "b": Decimal("1E+2"), "c": [Decimal("0.1000")]}) == (
        b'{"a":924.975,"b":100,"c":[0.1000]}'
    )


def test_floats_are_refused_on_the_wire() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        dumps({"Amount": 0.1})


def test_numbers_are_read_back_as_decimal() -> None:
    assert loads(b'{"Total": 1111.19, "Count": 3}') == {"Total": Decimal("1111.19"), "Count": 3}


def test_ms_dates_round_trip_in_utc() -> None:
    assert ms_date(date(2026, 3, 1)) == "/Date(1772323200000+0000)/"
    assert parse_xero_date("/Date(1772323200000+0000)/") == date(2026, 3, 1)
    assert parse_xero_date("2026-03-01T00:00:00") == date(2026, 3, 1)
    moment = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    assert parse_ms_timestamp(ms_timestamp(moment)) == moment
    with pytest.raises(ValueError, match="not a Xero"):
        parse_ms_timestamp("2026-03-01")


def test_invoice_payload_sends_exclusive_lines_with_exact_amounts_and_our_reference() -> None:
    invoice = Invoice(
        legal_entity="UK",
        customer_id="b5c2a1f0-0000-4000-8000-000000000001",
        customer_name="Fabrikam",
        project_id="PRJ-1",
        period="2026-03",
        currency="GBP",
        issue_date=date(2026, 3, 31),
        due_date=date(2026, 4, 30),
        reference="PSS-PRJ-1-2026-03",
        lines=(
            InvoiceLine(
                description="Senior consultant",
                quantity=Decimal("7.5"),
                unit_price=Money.of("123.33", "GBP"),
                tax_code="OUTPUT2",
            ),
            InvoiceLine(
                description="Travel",
                quantity=Decimal("1"),
                unit_price=Money.of("40.00", "GBP"),
                tax_code="ZERORATEDOUTPUT",
                account_code="260",
            ),
        ),
    )

    payload = mapping.invoice_payload(invoice, default_account_code="200")

    assert (payload["Type"], payload["Status"], payload["LineAmountTypes"]) == (
        "ACCREC",
        "AUTHORISED",
        "Exclusive",
    )
    assert payload["Contact"] == {"ContactID": invoice.customer_id}
    assert payload["Reference"] == "PSS-PRJ-1-2026-03"
    assert [
        (li["Quantity"], li["UnitAmount"], li["AccountCode"], li["TaxType"]) for li in payload["LineItems"]
    ] == [
        (Decimal("7.5"), Decimal("123.33"), "200", "OUTPUT2"),
        (Decimal("1"), Decimal("40.00"), "260", "ZERORATEDOUTPUT"),
    ]
    assert b'"Quantity":7.5,"UnitAmount":123.33' in dumps(payload)


def test_states_map_xero_statuses() -> None:
    assert [
        mapping.invoice_state(s) for s in ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
    ] == [
        InvoiceState.DRAFT,
        InvoiceState.DRAFT,
        InvoiceState.AWAITING_PAYMENT,
        InvoiceState.PAID,
        InvoiceState.VOIDED,
        InvoiceState.VOIDED,
    ]
    with pytest.raises(ValueError, match="unknown Xero invoice status"):
        mapping.invoice_state("ARCHIVED")


def test_contact_number_longer_than_xero_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="ContactNumber"):
        mapping.contact_payload(Account(id="X" * 51, name="Too long"), UK)


def test_validation_errors_point_at_the_field_they_name() -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {
                "ValidationErrors": [
                    {
                        "Message": "The TaxType code 'X' does not exist or cannot be used for this type of "
                        "transaction."
                    },
                    {"Message": "Something general went wrong."},
                ]
            }
        ],
    }

    errors = mapping.field_errors(body)

    assert [(e.field, e.code) for e in errors] == [
        ("TaxType", "ValidationException"),
        (None, "ValidationException"),
    ]


def test_money_from_xero_keeps_the_currency_and_digits() -> None:
    assert mapping.money(Decimal("0.10"), "GBP") == Money.of("0.10", "GBP")
    with pytest.raises(ValueError, match="expected a number"):
        mapping.money(0.1, "GBP")
