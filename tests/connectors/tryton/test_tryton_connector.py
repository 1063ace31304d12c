"""Tryton specifics of the ERP role, against the real server: lost replies, Tryton's own rejections,
sessions, currencies, rounding, taxes, projects."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from canonical import Account, Invoice, InvoiceLine, InvoiceState, LegalEntity, Money
from connectors.errors import AuthFailed, Conflict, NotFound, Rejected, Timeout
from connectors.tryton.connector import TrytonConnector
from devstack.tryton import TrytonServer

pytestmark = pytest.mark.tryton


def _line(
    description: str,
    quantity: str,
    price: str,
    currency: str = "EUR",
    tax: str = "VAT21",
    account_code: str | None = None,
) -> InvoiceLine:
    return InvoiceLine(
        description=description,
        quantity=Decimal(quantity),
        unit_price=Money.of(price, currency),
        tax_code=tax,
        account_code=account_code,
    )


def _invoice(
    entity: LegalEntity,
    account: Account,
    customer_id: str,
    lines: list[InvoiceLine],
    currency: str = "EUR",
    issue_date: date | None = None,
) -> Invoice:
    issued = issue_date or date.today()
    return Invoice(
        legal_entity=entity.code,
        customer_id=customer_id,
        customer_name=account.name,
        project_id=f"PRJ-{uuid.uuid4().hex[:8]}",
        period=f"{issued.year:04d}-{issued.month:02d}",
        currency=currency,
        issue_date=issued,
        due_date=issued + timedelta(days=30),
        reference=f"PSS-{uuid.uuid4().hex[:12].upper()}",
        lines=tuple(lines),
    )


def _key() -> str:
    return f"test:{uuid.uuid4()}"


async def _invoices_with_key(erp: TrytonConnector, key: str) -> list[dict[str, object]]:
    return await erp.rpc.search_read("account.invoice", [("description", "=", key)], ["id", "state"])


@pytest.mark.parametrize(
    "lossy_erp",
    ["model.account.invoice.post", "model.account.invoice.create"],
    indirect=True,
    ids=["post-reply-lost", "create-reply-lost"],
)
async def test_post_retried_after_a_lost_reply_creates_exactly_one_posted_invoice(
    lossy_erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(entity, seed_account, customer_id, [_line("Consulting", "10", "100.00")])
    key = _key()

    with pytest.raises(Timeout):
        await lossy_erp.post_invoice(invoice, entity=entity, idempotency_key=key)
    retried = await lossy_erp.post_invoice(invoice, entity=entity, idempotency_key=key)

    stored = await _invoices_with_key(lossy_erp, key)
    assert [row["id"] for row in stored] == [int(retried.invoice_id)]
    assert stored[0]["state"] == "posted"
    assert retried.state == InvoiceState.AWAITING_PAYMENT and retried.number
    assert retried.total == invoice.total


@pytest.mark.parametrize("lossy_erp", ["wizard.account.invoice.pay.execute"], indirect=True)
async def test_payment_retried_after_a_lost_reply_records_one_payment(
    lossy_erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(entity, seed_account, customer_id, [_line("Consulting", "10", "100.00")])
    posted = await lossy_erp.post_invoice(invoice, entity=entity, idempotency_key=_key())
    key = _key()
    part = Money.of("300.00", "EUR")

    # The wizard's first execute (the start view) loses its reply; nothing is paid yet at that point.
    with pytest.raises(Timeout):
        await lossy_erp.apply_payment(posted.invoice_id, part, reference="wire 7", idempotency_key=key)
    first = await lossy_erp.apply_payment(posted.invoice_id, part, reference="wire 7", idempotency_key=key)
    again = await lossy_erp.apply_payment(posted.invoice_id, part, reference="wire 7", idempotency_key=key)

    status = await lossy_erp.get_invoice(posted.invoice_id)
    assert again.id == first.id
    assert [p.id for p in status.payments] == [first.id]
    assert status.amount_paid == part
    assert first.reference == "wire 7"


async def test_idempotency_key_reused_for_another_invoice_is_a_conflict(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    key = _key()
    await erp.post_invoice(
        _invoice(entity, seed_account, customer_id, [_line("A", "1", "10.00")]),
        entity=entity,
        idempotency_key=key,
    )

    with pytest.raises(Conflict):
        await erp.post_invoice(
            _invoice(entity, seed_account, customer_id, [_line("B", "1", "20.00")]),
            entity=entity,
            idempotency_key=key,
        )


# -- Tryton's own rejections ---------------------------------------------------------------------------------


async def test_line_booked_to_a_non_revenue_account_is_rejected_with_trytons_message(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    # 1.2.1 exists (it is the receivable account), so only Tryton's own domain rule can refuse it.
    invoice = _invoice(
        entity, seed_account, customer_id, [_line("Consulting", "1", "100.00", account_code="1.2.1")]
    )

    with pytest.raises(Rejected) as raised:
        await erp.post_invoice(invoice, entity=entity, idempotency_key=_key())

    assert 'for field "Account" in record' in raised.value.message
    assert "is not valid according to its domain" in raised.value.message
    assert [e.field for e in raised.value.field_errors] == ["Account Invoice Line.Account"]
    assert await erp.find_invoice(invoice.reference) is None


async def test_invoice_dated_outside_every_fiscal_year_is_rejected_with_trytons_message_and_left_nowhere(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    long_ago = date(date.today().year - 5, 3, 1)
    invoice = _invoice(
        entity, seed_account, customer_id, [_line("Consulting", "1", "100.00")], issue_date=long_ago
    )
    key = _key()

    with pytest.raises(Rejected) as raised:
        await erp.post_invoice(invoice, entity=entity, idempotency_key=key)

    assert "you must create a period for the date" in raised.value.message
    assert raised.value.message.startswith("model.account.invoice.post: ")
    # The rejected draft is removed, so fixing the books and retrying starts from scratch.
    assert await _invoices_with_key(erp, key) == []


async def test_tax_code_outside_the_entity_is_rejected_before_anything_is_created(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(entity, seed_account, customer_id, [_line("Consulting", "1", "100.00", tax="OUTPUT2")])
    key = _key()

    with pytest.raises(Rejected) as raised:
        await erp.post_invoice(invoice, entity=entity, idempotency_key=key)

    assert raised.value.field_errors[0].field == "lines[0].tax_code"
    assert await _invoices_with_key(erp, key) == []


async def test_invalid_eu_vat_number_is_rejected_by_tryton(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account
) -> None:
    account = seed_account.model_copy(update={"tax_number": "NL000000000B00"})

    with pytest.raises(Rejected) as raised:
        await erp.create_customer(account, entity=entity, idempotency_key=_key())

    assert "NL000000000B00" in raised.value.message
    assert await erp.find_customer(account) is None


# -- sessions ------------------------------------------------------------------------------------------------


async def test_expired_session_is_renewed_once_and_the_call_succeeds(
    erp: TrytonConnector, seed_account: Account
) -> None:
    assert await erp.find_customer(seed_account) is None
    logins = erp.rpc.logins
    # Ends the session on the server; the connector still holds the old key.
    await erp.rpc.logout()

    assert await erp.find_customer(seed_account) is None
    assert erp.rpc.logins == logins + 1


async def test_wrong_password_is_auth_failed(tryton_server: TrytonServer, seed_account: Account) -> None:
    connector = TrytonConnector(
        url=tryton_server.url,
        database=tryton_server.database,
        user=tryton_server.user,
        password="not-the-password",
    )
    try:
        with pytest.raises(AuthFailed):
            await connector.find_customer(seed_account)
    finally:
        await connector.aclose()


# -- amounts, currencies and taxes ---------------------------------------------------------------------------


async def test_eur_lines_round_per_line_and_the_posted_total_equals_ours_to_the_cent(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(
        entity,
        seed_account,
        customer_id,
        [
            _line("Senior consultant, 7.5 h", "7.5", "123.33"),  # 924.975 -> 924.98
            _line("Retainer share", "0.3333", "100.00"),  # 33.33
            _line("Analyst, 2.25 h", "2.25", "88.88"),  # 199.98
        ],
    )
    assert invoice.total == Money.of("1158.29", "EUR")

    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=_key())
    status = await erp.get_invoice(posted.invoice_id)

    assert posted.total == invoice.total
    # 21 % VAT on the unrounded line amounts, rounded once per tax on the document: 243.23985 -> 243.24.
    assert status.total == Money.of("1401.53", "EUR")


async def test_a_half_cent_line_that_tryton_rounds_half_even_is_rejected_naming_the_line(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(
        entity,
        seed_account,
        customer_id,
        [
            _line("Consulting", "1", "100.00"),
            _line("Travel, 3 x 0.335", "3", "0.335"),  # 1.005: half-up 1.01, Tryton (half-even) 1.00
        ],
    )
    key = _key()

    with pytest.raises(Rejected) as raised:
        await erp.post_invoice(invoice, entity=entity, idempotency_key=key)

    assert [e.field for e in raised.value.field_errors] == ["lines[1].amount"]
    assert "Tryton 1.00, ours 1.01" in raised.value.field_errors[0].message
    assert await _invoices_with_key(erp, key) == []


async def test_gbp_invoice_of_the_eu_entity_posts_and_is_paid_in_gbp(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(
        entity,
        seed_account,
        customer_id,
        [_line("Consulting, 7.5 h", "7.5", "123.33", "GBP")],
        currency="GBP",
    )

    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=_key())
    gross = (await erp.get_invoice(posted.invoice_id)).total
    await erp.apply_payment(
        posted.invoice_id, Money.of("100.00", "GBP"), reference="gbp 1", idempotency_key=_key()
    )
    await erp.apply_payment(
        posted.invoice_id, gross - Money.of("100.00", "GBP"), reference="gbp 2", idempotency_key=_key()
    )
    status = await erp.get_invoice(posted.invoice_id)

    assert posted.total == Money.of("924.98", "GBP")
    # Tryton taxes the unrounded line amount: 924.975 x 21 % = 194.24475 -> 194.24.
    assert gross == Money.of("1119.22", "GBP")
    assert status.state == InvoiceState.PAID
    assert status.amount_paid == gross
    assert {p.amount.currency for p in status.payments} == {"GBP"}


async def test_zero_rated_line_posts_without_tax_although_the_product_defaults_to_vat21(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(
        entity, seed_account, customer_id, [_line("Consulting (reverse charge)", "4", "150.00", tax="VAT0")]
    )

    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=_key())
    status = await erp.get_invoice(posted.invoice_id)

    assert status.total == Money.of("600.00", "EUR")
    assert status.state == InvoiceState.AWAITING_PAYMENT


async def test_quantity_that_a_float_cannot_carry_exactly_is_rejected(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    invoice = _invoice(
        entity, seed_account, customer_id, [_line("Consulting", "1.00000000000000001", "100.00")]
    )

    with pytest.raises(Rejected) as raised:
        await erp.post_invoice(invoice, entity=entity, idempotency_key=_key())

    assert raised.value.field_errors[0].field == "lines[0].quantity"


# -- payments, credits and voids -----------------------------------------------------------------------------


async def test_overpayment_is_rejected_and_records_nothing(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    posted = await erp.post_invoice(
        _invoice(entity, seed_account, customer_id, [_line("C", "1", "100.00")]),
        entity=entity,
        idempotency_key=_key(),
    )

    with pytest.raises(Rejected):
        await erp.apply_payment(
            posted.invoice_id, Money.of("500.00", "EUR"), reference="too much", idempotency_key=_key()
        )

    assert (await erp.get_invoice(posted.invoice_id)).payments == ()


async def test_payments_since_lists_money_received_but_not_credit_notes(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    posted = await erp.post_invoice(
        _invoice(entity, seed_account, customer_id, [_line("C", "10", "100.00")]),
        entity=entity,
        idempotency_key=_key(),
    )
    payment = await erp.apply_payment(
        posted.invoice_id, Money.of("200.00", "EUR"), reference="wire", idempotency_key=_key()
    )
    credit = await erp.credit_invoice(
        posted.invoice_id, Money.of("121.00", "EUR"), reason="discount", idempotency_key=_key()
    )

    listed = [p for p in await erp.payments_since(None) if p.invoice_id == posted.invoice_id]
    status = await erp.get_invoice(posted.invoice_id)

    assert [p.id for p in listed] == [payment.id]
    assert [c.id for c in status.credit_notes] == [credit.id]
    assert status.amount_due == Money.of("889.00", "EUR")


async def test_partial_credit_note_is_a_posted_tryton_credit_note_linked_to_the_invoice_lines(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    posted = await erp.post_invoice(
        _invoice(entity, seed_account, customer_id, [_line("C", "3", "33.33")]),
        entity=entity,
        idempotency_key=_key(),
    )

    credit = await erp.credit_invoice(
        posted.invoice_id, Money.of("50.00", "EUR"), reason="goodwill", idempotency_key=_key()
    )
    (note,) = await erp.rpc.read(
        "account.invoice", [int(credit.id)], ["state", "total_amount", "origin_invoices", "comment", "number"]
    )

    assert credit.amount == Money.of("50.00", "EUR")
    assert note["state"] in ("posted", "paid")
    assert note["total_amount"] == Decimal("-50.00")
    assert note["origin_invoices"] == [int(posted.invoice_id)]
    assert note["comment"] == "goodwill"
    assert credit.number == note["number"]


async def test_partial_credit_of_a_gross_no_net_reaches_at_21_percent_adds_an_untaxed_rounding_cent(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    posted = await erp.post_invoice(
        _invoice(entity, seed_account, customer_id, [_line("C", "10", "100.00")]),
        entity=entity,
        idempotency_key=_key(),
    )

    # Nets of 0.83 and 0.84 give 1.00 and 1.02 gross at 21 %: 1.01 needs one untaxed cent.
    credit = await erp.credit_invoice(
        posted.invoice_id, Money.of("1.01", "EUR"), reason="rounding", idempotency_key=_key()
    )
    (note,) = await erp.rpc.read("account.invoice", [int(credit.id)], ["total_amount", "tax_amount"])
    status = await erp.get_invoice(posted.invoice_id)

    assert note["total_amount"] == Decimal("-1.01")
    assert note["tax_amount"] in (Decimal("-0.17"), Decimal("-0.18"))
    assert status.amount_due == Money.of("1208.99", "EUR")


async def test_void_of_an_invoice_with_a_payment_is_rejected(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str
) -> None:
    posted = await erp.post_invoice(
        _invoice(entity, seed_account, customer_id, [_line("C", "1", "100.00")]),
        entity=entity,
        idempotency_key=_key(),
    )
    await erp.apply_payment(
        posted.invoice_id, Money.of("10.00", "EUR"), reference="deposit", idempotency_key=_key()
    )

    with pytest.raises(Rejected):
        await erp.void_invoice(posted.invoice_id)

    assert (await erp.get_invoice(posted.invoice_id)).state == InvoiceState.AWAITING_PAYMENT


async def test_get_invoice_with_a_non_numeric_id_is_not_found(erp: TrytonConnector) -> None:
    with pytest.raises(NotFound):
        await erp.get_invoice("INV-0001")


# -- projects ------------------------------------------------------------------------------------------------


async def test_ensure_erp_project_creates_once_for_the_customer(
    erp: TrytonConnector, seed_account: Account, customer_id: str
) -> None:
    ref = f"kantata:{uuid.uuid4().hex[:8]}"

    first = await erp.ensure_project_work(ref, "Website rebuild", seed_account.id)
    second = await erp.ensure_project_work(ref, "Website rebuild", seed_account.id)

    (work,) = await erp.rpc.read("project.work", [int(first)], ["party", "type", "name"])
    assert second == first
    assert work == {"id": int(first), "party": int(customer_id), "type": "project", "name": "Website rebuild"}


async def test_projects_created_at_once_are_all_created_each_with_its_own_number(
    erp: TrytonConnector, seed_account: Account, customer_id: str
) -> None:
    # Tryton's work sequence, drawn by concurrent creates on SQLite, can hand two of them the same number.
    refs = [f"kantata:{uuid.uuid4().hex[:8]}" for _ in range(12)]

    works = await asyncio.gather(
        *(erp.ensure_project_work(ref, f"Project {ref}", seed_account.id) for ref in refs)
    )

    read = await erp.rpc.read("project.work", [int(w) for w in works], ["number", "comment"])
    assert len({row["number"] for row in read}) == len(refs)
    assert sorted(row["comment"] for row in read) == sorted(f"ps-sync external ref: {ref}" for ref in refs)


async def test_ensure_erp_project_for_an_unknown_customer_is_not_found(erp: TrytonConnector) -> None:
    with pytest.raises(NotFound):
        await erp.ensure_project_work("kantata:x", "Orphan", f"001-NOBODY-{uuid.uuid4().hex[:6]}")
