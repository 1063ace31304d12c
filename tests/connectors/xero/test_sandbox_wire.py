"""The Xero sandbox's own wire formats against values worked out outside Python's and ps-sync's code: the
date is the example in Xero's API docs, the signature comes from `openssl dgst -sha256 -hmac`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from sandboxes import exact_json
from sandboxes.xero.dates import milliseconds, net_json, net_json_day, parse_request_date
from sandboxes.xero.webhook_sender import SIGNATURE_HEADER, sign

DOCS_EXAMPLE = "/Date(1439434356790+0000)/"  # 2015-08-13T02:52:36.790Z


def test_timestamps_are_whole_milliseconds_since_the_epoch() -> None:
    moment = datetime(2015, 8, 13, 2, 52, 36, 790_000, tzinfo=UTC)
    assert net_json(milliseconds(moment)) == DOCS_EXAMPLE


def test_a_date_field_is_midnight_utc_of_the_day() -> None:
    assert net_json_day(date(2015, 8, 13)) == "/Date(1439424000000+0000)/"
    assert net_json_day(date(1969, 12, 31)) == "/Date(-86400000+0000)/"


@pytest.mark.parametrize(
    ("sent", "day"),
    [
        (DOCS_EXAMPLE, date(2015, 8, 13)),
        ("/Date(1439434356790)/", date(2015, 8, 13)),
        ("/Date(1439434356790-0700)/", date(2015, 8, 13)),  # the offset is display only
        ("2015-08-13", date(2015, 8, 13)),
        ("2015-08-13T00:00:00", date(2015, 8, 13)),
    ],
)
def test_requests_may_send_either_date_form(sent: str, day: date) -> None:
    assert parse_request_date(sent) == day


@pytest.mark.parametrize("sent", ["13/08/2015", "/Date(abc)/", "Date(1439434356790)", ""])
def test_anything_else_is_not_a_date(sent: str) -> None:
    with pytest.raises(ValueError):
        parse_request_date(sent)


def test_webhook_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"YSXCMKAQBJOEMGUZEEFV"}'
    assert SIGNATURE_HEADER == "x-xero-signature"
    assert sign(body, "dev-xero-webhook-key") == "BlcGOFaQRgLAr7TG5u7RGPyIBQXNMfzUMpmKc1kJATw="


def test_amounts_cross_the_wire_digit_for_digit() -> None:
    body = exact_json.dumps({"UnitAmount": Decimal("924.975"), "Quantity": Decimal("1.0000"), "Lines": [1]})
    assert body == '{"UnitAmount":924.975,"Quantity":1.0000,"Lines":[1]}'
    assert exact_json.loads(body)["UnitAmount"] == Decimal("924.975")
    with pytest.raises(TypeError):
        exact_json.dumps({"Amount": 924.975})
