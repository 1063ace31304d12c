"""parse_outbound_message on the sandbox's envelopes and on broken ones, and the listener's replies."""

from __future__ import annotations

import re

import pytest
from defusedxml import ElementTree

from connectors.salesforce.outbound import (
    OUTBOUND_NS,
    SOAP_ENV_NS,
    OutboundMessageError,
    ack_envelope,
    org_ids_match,
    parse_outbound_message,
    soap_fault,
)
from sandboxes.salesforce.outbound import render_envelope

ORG = "00D000000000001EAA"


def _record(n: int, **fields: object) -> dict[str, object]:
    return {
        "Id": f"0068d000000000{n:01d}AAA",
        "Name": f"Deal <{n}> & co",
        "StageName": "Closed Won",
        "IsWon": True,
        "Amount": "1200.50",
        "Legal_Entity__c": None,
        **fields,
    }


def _envelope(count: int = 1) -> bytes:
    return render_envelope(
        org_id=ORG,
        action_id="04k8d0000000001AAA",
        base_url="https://acme.my.salesforce.com",
        api_version="v62.0",
        notifications=[(f"04l8d00000000{n:02d}AAA", "Opportunity", _record(n % 10)) for n in range(count)],
        fields=["Name", "StageName", "IsWon", "Amount", "Legal_Entity__c"],
    )


def _wrap(body: str, *, envelope_ns: str = SOAP_ENV_NS) -> bytes:
    return (
        f'<?xml version="1.0"?><e:Envelope xmlns:e="{envelope_ns}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<e:Body>{body}</e:Body></e:Envelope>"
    ).encode()


def _notifications(inner: str, *, namespace: str = OUTBOUND_NS, header: str | None = None) -> bytes:
    header = (
        header if header is not None else f"<OrganizationId>{ORG}</OrganizationId><ActionId>04k1</ActionId>"
    )
    return _wrap(f'<notifications xmlns="{namespace}">{header}{inner}</notifications>')


NOTIFICATION = (
    '<Notification><Id>04l1</Id><sObject xsi:type="sf:Opportunity" '
    'xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0068d0000000001AAA</sf:Id>'
    "</sObject></Notification>"
)


def test_sandbox_envelope_parses_into_message_and_notifications() -> None:
    message = parse_outbound_message(_envelope(3))

    assert message.organization_id == ORG
    assert message.action_id == "04k8d0000000001AAA"
    assert message.session_id is None
    assert message.partner_url == "https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000001"
    assert [n.notification_id for n in message.notifications] == [
        "04l8d0000000000AAA",
        "04l8d0000000001AAA",
        "04l8d0000000002AAA",
    ]
    first = message.notifications[0]
    assert first.sobject_type == "Opportunity"
    assert first.fields == {
        "Id": "0068d0000000000AAA",
        "Name": "Deal <0> & co",
        "StageName": "Closed Won",
        "IsWon": "true",
        "Amount": "1200.50",
    }


def test_one_hundred_notifications_are_accepted() -> None:
    assert len(parse_outbound_message(_envelope(100)).notifications) == 100


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"", "empty body"),
        (b'{"json": true}', "not well-formed XML"),
        (b"<a><b></a>", "not well-formed XML"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY boom "boom">]><x>&boom;</x>', "DTD or entity"),
        (b"<Envelope/>", "expected a SOAP 1.1 Envelope"),
        (_wrap("", envelope_ns="http://www.w3.org/2003/05/soap-envelope"), "expected a SOAP 1.1 Envelope"),
        (f'<e:Envelope xmlns:e="{SOAP_ENV_NS}"/>'.encode(), "has no Body"),
        (_wrap(""), "Body is empty"),
        (_wrap(f'<notificationsResponse xmlns="{OUTBOUND_NS}"/>'), "expected 'notifications'"),
        (
            _notifications(NOTIFICATION, namespace="http://soap.sforce.com/2005/09/inbound"),
            "expected 'http://soap.sforce.com/2005/09/outbound'",
        ),
        (
            _notifications(NOTIFICATION, header="<ActionId>04k1</ActionId>"),
            "notifications has no OrganizationId",
        ),
        (
            _notifications(NOTIFICATION, header=f"<OrganizationId>{ORG}</OrganizationId>"),
            "notifications has no ActionId",
        ),
        (_notifications(""), "no Notification elements"),
        (_notifications(NOTIFICATION * 101), "holds 101 Notification elements; Salesforce sends at most 100"),
        (_notifications(NOTIFICATION.replace("<Id>04l1</Id>", "")), "Notification[0] has no Id"),
        (_notifications("<Notification><Id>04l1</Id></Notification>"), "Notification[0] has no sObject"),
        (_notifications(NOTIFICATION.replace(' xsi:type="sf:Opportunity"', "")), "has no xsi:type"),
        (
            _notifications(NOTIFICATION.replace("<sf:Id>0068d0000000001AAA</sf:Id>", "")),
            "Notification[0].sObject has no Id",
        ),
    ],
)
def test_bad_envelope_is_refused_saying_what_is_wrong(body: bytes, complaint: str) -> None:
    with pytest.raises(OutboundMessageError, match=re.escape(complaint)):
        parse_outbound_message(body)


@pytest.mark.parametrize("ack", [True, False])
def test_ack_envelope_is_a_notifications_response_with_ack(ack: bool) -> None:
    root = ElementTree.fromstring(ack_envelope(ack))

    response = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{OUTBOUND_NS}}}notificationsResponse")
    assert response is not None
    assert response.findtext(f"{{{OUTBOUND_NS}}}Ack") == ("true" if ack else "false")


def test_soap_fault_carries_the_escaped_message() -> None:
    root = ElementTree.fromstring(soap_fault("bad <org> & token"))

    fault = root.find(f"{{{SOAP_ENV_NS}}}Body/{{{SOAP_ENV_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soapenv:Client"
    assert fault.findtext("faultstring") == "bad <org> & token"


def test_org_ids_match_in_15_and_18_character_forms_but_case_sensitively() -> None:
    assert org_ids_match("00D000000000001", "00D000000000001EAA")
    assert org_ids_match("00D000000000001EAA", "00D000000000001EAA")
    assert not org_ids_match("00D000000000001EAA", "00d000000000001EAA")
    assert not org_ids_match("00D000000000002EAA", "00D000000000001EAA")
    assert not org_ids_match("", "")
