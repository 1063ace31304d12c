"""Archived contacts in the Xero sandbox: Xero refuses new invoices for them, with its own message, until
finance restores the contact (an update of `ContactStatus`); the connector reports the refusal as Rejected."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from canonical import Account, Invoice, InvoiceLine, LegalEntity, Money
from connectors.errors import Rejected
from connectors.xero import XeroConnector
from sandboxes.xero.seed import XeroFinanceUser

ARCHIVED = "The contact with the specified contact details has been archived."


def _invoice(customer_id: str) -> Invoice:
    return Invoice(
        legal_entity="UK",
        customer_id=customer_id,
        customer_name="Fabrikam Ltd",
        project_id="30100001",
        period="2026-03",
        currency="GBP",
        issue_date=date(2026, 4, 1),
        due_date=date(2026, 5, 1),
        reference=f"PS-TEST-{uuid.uuid4().hex[:8]}",
        lines=(
            InvoiceLine(
                description="Professional services: Consultant",
                quantity=Decimal(8),
                unit_price=Money.of("100", "GBP"),
                tax_code="OUTPUT2",
            ),
        ),
    )


async def _set_status(finance: XeroFinanceUser, contact_id: str, status: str) -> None:
    await finance.call(
        "POST", f"/Contacts/{contact_id}", {"Contacts": [{"ContactID": contact_id, "ContactStatus": status}]}
    )


async def test_an_invoice_for_an_archived_contact_is_refused_until_the_contact_is_restored(
    erp: XeroConnector, finance: XeroFinanceUser, entity: LegalEntity, seed_account: Account
) -> None:
    customer = await erp.create_customer(seed_account, entity=entity, idempotency_key=str(uuid.uuid4()))
    await _set_status(finance, customer, "ARCHIVED")
    invoice = _invoice(customer)

    with pytest.raises(Rejected, match=ARCHIVED) as refused:
        await erp.post_invoice(invoice, entity=entity, idempotency_key="archived-1")
    assert "must be un-archived before creating new invoices" in refused.value.message

    await _set_status(finance, customer, "ACTIVE")
    # Xero stores only successful replies under a key, so the same key now goes through.
    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key="archived-1")
    assert posted.total == Money.of("800.00", "GBP")


async def test_a_contact_status_outside_xeros_enumeration_is_refused(
    erp: XeroConnector, finance: XeroFinanceUser, entity: LegalEntity, seed_account: Account
) -> None:
    customer = await erp.create_customer(seed_account, entity=entity, idempotency_key=str(uuid.uuid4()))
    with pytest.raises(Exception, match="ContactStatus must be one of ACTIVE, ARCHIVED, GDPRREQUEST"):
        await _set_status(finance, customer, "DORMANT")
