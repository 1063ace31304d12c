"""Salesforce Outbound Messages: parse the SOAP `notifications` call, and build the listener's replies.

Used by the ingress (no web framework here). A message holds 1 to 100 notifications; each has its own
notification id, which stays the same when Salesforce resends it, so listeners dedupe on it. The
listener acknowledges the whole message with <Ack>true</Ack>; anything else makes Salesforce retry.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element  # only the type: parsing goes through defusedxml
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100

_ID_SHAPE = re.compile(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?")
_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"


class OutboundMessageError(ValueError):
    """The body is not a Salesforce outbound message; the text says exactly what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class OutboundNotification:
    notification_id: str
    sobject_type: str
    sobject_id: str
    # The sObject's fields as sent (text); null fields are absent.
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    action_id: str
    enterprise_url: str | None
    partner_url: str | None
    session_id: str | None
    notifications: list[OutboundNotification]


def _checksum_suffix(id15: str) -> str:
    # Salesforce's case-safe suffix: per block of five characters, which of them are upper-case letters.
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(
            1 << position for position, char in enumerate(id15[start : start + 5]) if "A" <= char <= "Z"
        )
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def is_salesforce_id(value: str, *, checksum: bool = True) -> bool:
    """A 15-character case-sensitive id, or its 18-character form (whose suffix must match if `checksum`)."""
    if not _ID_SHAPE.fullmatch(value):
        return False
    return not checksum or len(value) == 15 or value[15:] == _checksum_suffix(value[:15])


def _salesforce_id(value: str, what: str, *, checksum: bool = True) -> str:
    if not is_salesforce_id(value, checksum=checksum):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise OutboundMessageError(
            f"{what} {shown!r} is not a Salesforce id (15 or 18 letters and digits"
            + (", the last 3 its checksum)" if checksum else ")")
        )
    return value


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _child_text(parent: Element, name: str, *, required: bool, where: str) -> str | None:
    child = parent.find(_q(OUTBOUND_NS, name))
    if child is None or child.get(_q(XSI_NS, "nil")) == "true" or not (child.text or "").strip():
        if required:
            raise OutboundMessageError(f"{where} has no {name}")
        return None
    return (child.text or "").strip()


def parse_outbound_message(body: bytes) -> OutboundMessage:
    if not body or not body.strip():
        raise OutboundMessageError("empty body: expected a SOAP envelope with a notifications call")
    try:
        root = SafeElementTree.fromstring(body)
    except DefusedXmlException as exc:
        raise OutboundMessageError(
            f"refused XML with a DTD or entity declarations: {type(exc).__name__}"
        ) from exc
    except SafeElementTree.ParseError as exc:
        raise OutboundMessageError(f"not well-formed XML: {exc}") from exc
    except (LookupError, ValueError) as exc:
        # The XML declaration names an encoding Python cannot decode, or one expat refuses to switch to.
        raise OutboundMessageError(f"undecodable XML: {exc}") from exc
    if root.tag != _q(SOAP_ENV_NS, "Envelope"):
        raise OutboundMessageError(
            f"root element is {_local(root.tag)!r} in namespace {_namespace(root.tag)!r}; "
            f"expected a SOAP 1.1 Envelope ({SOAP_ENV_NS})"
        )
    soap_body = root.find(_q(SOAP_ENV_NS, "Body"))
    if soap_body is None:
        raise OutboundMessageError("the SOAP envelope has no Body")
    call = next(iter(soap_body), None)
    if call is None:
        raise OutboundMessageError("the SOAP Body is empty; expected a notifications element")
    if _local(call.tag) != "notifications":
        raise OutboundMessageError(f"the SOAP Body holds {_local(call.tag)!r}; expected 'notifications'")
    if _namespace(call.tag) != OUTBOUND_NS:
        raise OutboundMessageError(
            f"notifications is in namespace {_namespace(call.tag)!r}; expected {OUTBOUND_NS!r}"
        )
    organization_id = _child_text(call, "OrganizationId", required=True, where="notifications")
    action_id = _child_text(call, "ActionId", required=True, where="notifications")
    elements = call.findall(_q(OUTBOUND_NS, "Notification"))
    if not elements:
        raise OutboundMessageError("notifications holds no Notification elements")
    if len(elements) > MAX_NOTIFICATIONS:
        raise OutboundMessageError(
            f"notifications holds {len(elements)} Notification elements; "
            f"Salesforce sends at most {MAX_NOTIFICATIONS}"
        )
    assert organization_id is not None and action_id is not None
    _salesforce_id(organization_id, "OrganizationId")
    notifications = [_notification(element, index) for index, element in enumerate(elements)]
    return OutboundMessage(
        organization_id=organization_id,
        action_id=action_id,
        enterprise_url=_child_text(call, "EnterpriseUrl", required=False, where="notifications"),
        partner_url=_child_text(call, "PartnerUrl", required=False, where="notifications"),
        session_id=_child_text(call, "SessionId", required=False, where="notifications"),
        notifications=notifications,
    )


def _notification(element: Element, index: int) -> OutboundNotification:
    where = f"Notification[{index}]"
    notification_id = _child_text(element, "Id", required=True, where=where)
    sobject = element.find(_q(OUTBOUND_NS, "sObject"))
    if sobject is None:
        raise OutboundMessageError(f"{where} has no sObject")
    declared = sobject.get(_q(XSI_NS, "type"))
    if not declared:
        raise OutboundMessageError(f"{where}.sObject has no xsi:type naming its sObject type")
    fields: dict[str, str] = {}
    for child in sobject:
        if child.get(_q(XSI_NS, "nil")) == "true":
            continue
        fields[_local(child.tag)] = (child.text or "").strip()
    sobject_id = fields.get("Id")
    if not sobject_id:
        raise OutboundMessageError(f"{where}.sObject has no Id")
    assert notification_id is not None
    # The id names the run and goes into Salesforce API paths: nothing shaped otherwise may get that far. Its
    # checksum is not held against it (that catches typos, not forgeries; the org id's is checked).
    _salesforce_id(sobject_id, f"{where}.sObject.Id", checksum=False)
    return OutboundNotification(
        notification_id=notification_id,
        sobject_type=declared.rsplit(":", 1)[-1],
        sobject_id=sobject_id,
        fields=fields,
    )


def org_ids_match(expected: str, actual: str) -> bool:
    """Organization ids compare on their case-sensitive 15-character form (18-character ids add a suffix)."""
    return len(expected) in (15, 18) and len(actual) in (15, 18) and expected[:15] == actual[:15]


def ack_envelope(ack: bool) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}">\n'
        " <soapenv:Body>\n"
        f'  <notificationsResponse xmlns="{OUTBOUND_NS}">\n'
        f"   <Ack>{'true' if ack else 'false'}</Ack>\n"
        "  </notificationsResponse>\n"
        " </soapenv:Body>\n"
        "</soapenv:Envelope>"
    ).encode()


def soap_fault(message: str, *, code: str = "soapenv:Client") -> bytes:
    """A SOAP 1.1 Fault; Salesforce treats it as a failed delivery and retries later."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}">\n'
        " <soapenv:Body>\n"
        "  <soapenv:Fault>\n"
        f"   <faultcode>{escape(code)}</faultcode>\n"
        f"   <faultstring>{escape(message)}</faultstring>\n"
        "  </soapenv:Fault>\n"
        " </soapenv:Body>\n"
        "</soapenv:Envelope>"
    ).encode()
