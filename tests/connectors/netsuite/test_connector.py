"""What the NetSuite connector does beyond the shared contract: projects as jobs, SuiteQL paging, payments
made by people in NetSuite, reference data and booked invoices, and the refusals that keep money exact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from canonical import Account, InvoiceState, LegalEntity, Money
from connectors.errors import NotFound, Rejected
from connectors.netsuite.connector import NetSuiteConnector, external_id_for
from connectors.netsuite.mapping import credit_nets
from sandboxes.netsuite.finance import NetSuiteFinanceUser

from ..contract.erp_contract import _line, build_invoice, net_thousand_lines, project_spec
from .conftest import NetSuiteSandboxHandle, connector_for, tba_auth


@pytest.fixture
async def netsuite(netsuite_sandbox: NetSuiteSandboxHandle) -> AsyncIterator[NetSuiteConnector]:
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    yield connector
    await connector.aclose()


@pytest.fixture
async def finance(netsuite_sandbox: NetSuiteSandboxHandle) -> AsyncIterator[NetSuiteFinanceUser]:
    config = netsuite_sandbox.config
    user = NetSuiteFinanceUser(
        base_url=netsuite_sandbox.url,
        account_id=config.account_id,
        consumer_key=config.consumer_key,
        consumer_secret=config.consumer_secret,
        token_id=config.token_id,
        token_secret=config.token_secret,
    )
    yield user
    await user.aclose()


async def _posted(netsuite: NetSuiteConnector, entity: LegalEntity, account: Account) -> tuple[str, str]:
    customer_id = await netsuite.create_customer(account, entity=entity, idempotency_key="unused")
    invoice = build_invoice(entity, account, customer_id, net_thousand_lines(entity))
    posted = await netsuite.post_invoice(invoice, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    return customer_id, posted.invoice_id


async def test_an_invoice_is_booked_on_the_projects_job_under_the_customer(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    customer_id = await netsuite.create_customer(seed_account, entity=entity, idempotency_key="unused")
    first = build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity))
    second = first.model_copy(update={"reference": f"PSS-{uuid.uuid4().hex[:12].upper()}"})
    one = await netsuite.post_invoice(first, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    two = await netsuite.post_invoice(second, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")

    records = [await netsuite.client.get_record("invoice", posted.invoice_id) for posted in (one, two)]
    job_ids = {record["entity"]["id"] for record in records}
    assert len(job_ids) == 1, "both invoices of the project name its one job"
    job = await netsuite.client.get_record("job", job_ids.pop())
    assert job["parent"]["id"] == customer_id
    assert job["externalId"] == f"psa-project:{first.project_id}"
    assert records[0]["otherRefNum"] == first.reference


async def test_lines_go_out_exactly_as_rated_and_netsuite_keeps_the_amounts_we_computed(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    customer_id = await netsuite.create_customer(seed_account, entity=entity, idempotency_key="unused")
    # 8.4167 h x 165.75 = 1,395.068025: booked at 1,395.07 (half-up to the cent), as ps-sync rates it.
    invoice = build_invoice(
        entity, seed_account, customer_id, [_line(entity, "Senior consultant", "8.4167", "165.75")]
    )
    posted = await netsuite.post_invoice(invoice, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    record = await netsuite.client.get_record("invoice", posted.invoice_id, expand=True)

    [line] = record["item"]["items"]
    assert (line["quantity"], line["rate"], line["amount"]) == (
        Decimal("8.4167"),
        Decimal("165.75"),
        Decimal("1395.07"),
    )
    assert posted.total == Money.of("1395.07", "USD")
    # US-SALES-6 on the line: 83.7042 rounds to 83.70.
    assert (record["taxTotal"], record["total"]) == (Decimal("83.70"), Decimal("1478.77"))


async def test_a_line_with_more_decimals_than_netsuite_is_sent_is_refused_before_anything_is_booked(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    customer_id = await netsuite.create_customer(seed_account, entity=entity, idempotency_key="unused")
    invoice = build_invoice(entity, seed_account, customer_id, [_line(entity, "x", "8.41666", "165.75")])
    with pytest.raises(Rejected) as refused:
        await netsuite.post_invoice(invoice, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    assert refused.value.field_errors[0].field == "item.items[0].quantity"
    assert await netsuite.find_invoice(invoice.reference) is None


async def test_suiteql_pages_follow_has_more_with_offsets_as_cursors(netsuite: NetSuiteConnector) -> None:
    pages = [
        page
        async for page in netsuite.client.suiteql_pages(
            "SELECT id, symbol FROM currency ORDER BY id", limit=3
        )
    ]
    assert [(page.cursor, page.next_cursor) for page in pages] == [("0", "3"), ("3", None)]
    assert [row["symbol"] for page in pages for row in page.items] == ["USD", "GBP", "CAD", "EUR"]


async def test_a_payment_a_person_accepts_in_netsuite_is_found_by_the_poll(
    netsuite: NetSuiteConnector, finance: NetSuiteFinanceUser, entity: LegalEntity, seed_account: Account
) -> None:
    _, invoice_id = await _posted(netsuite, entity, seed_account)
    before = datetime.now(UTC) - timedelta(seconds=2)
    payment_id = await finance.accept_payment(invoice_id, memo="ACH 0042")

    found = {p.id: p for p in await netsuite.payments_since(before)}
    status = await netsuite.get_invoice(invoice_id)
    assert found[payment_id].invoice_id == invoice_id
    assert found[payment_id].amount == status.total == Money.of("1060.00", "USD")
    assert found[payment_id].reference == "ACH 0042"
    assert status.state == InvoiceState.PAID and [p.id for p in status.payments] == [payment_id]


async def test_an_invoice_with_a_payment_cannot_be_voided(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    _, invoice_id = await _posted(netsuite, entity, seed_account)
    await netsuite.apply_payment(
        invoice_id, Money.of("10.00", "USD"), reference="x", idempotency_key=f"p:{uuid.uuid4()}"
    )
    with pytest.raises(Rejected, match="payments or credits are applied"):
        await netsuite.void_invoice(invoice_id)
    assert (await netsuite.get_invoice(invoice_id)).state == InvoiceState.AWAITING_PAYMENT


async def test_a_payment_in_another_currency_or_beyond_the_amount_due_is_refused(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    _, invoice_id = await _posted(netsuite, entity, seed_account)
    with pytest.raises(Rejected, match="cannot settle"):
        await netsuite.apply_payment(
            invoice_id, Money.of("10.00", "EUR"), reference="x", idempotency_key="eur"
        )
    with pytest.raises(Rejected) as beyond:
        await netsuite.apply_payment(
            invoice_id, Money.of("5000.00", "USD"), reference="x", idempotency_key=f"p:{uuid.uuid4()}"
        )
    assert beyond.value.field_errors[0].field == "apply.items[0].amount"
    assert (await netsuite.get_invoice(invoice_id)).amount_paid.is_zero()


async def test_reference_data_is_the_subsidiarys_currency_the_tax_items_the_chart_and_the_items(
    netsuite: NetSuiteConnector,
) -> None:
    data = await netsuite.reference_data()
    assert data.erp == "netsuite" and data.base_currency == "USD"
    assert {(t.code, t.percent) for t in data.tax_rates} >= {
        ("US-SALES-6", Decimal("6.00")),
        ("US-EXEMPT", 0),
    }
    assert {c.code for c in data.currencies} >= {"USD", "EUR", "GBP"}
    assert next(c for c in data.currencies if c.code == "USD").rate == Decimal(1)
    assert {a.code for a in data.accounts} >= {"1100", "4000"}
    assert {i.code for i in data.items} >= {"Consulting"}


async def test_booked_invoices_are_those_whose_reference_starts_with_the_prefix_with_their_lines(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    customer_id = await netsuite.create_customer(seed_account, entity=entity, idempotency_key="unused")
    prefix = f"PSS-{uuid.uuid4().hex[:6].upper()}"
    invoice = build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity)).model_copy(
        update={"reference": f"{prefix}-1"}
    )
    posted = await netsuite.post_invoice(invoice, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    booked = await netsuite.booked_invoices(prefix)
    assert [(b.invoice_id, b.reference, b.net_total) for b in booked] == [
        (posted.invoice_id, invoice.reference, Money.of("1000.00", "USD"))
    ]
    assert [(line.quantity, line.amount) for line in booked[0].lines] == [
        (Decimal("10"), Money.of("1000.00", "USD"))
    ]


def test_a_long_idempotency_key_becomes_its_digest_and_a_short_one_stays() -> None:
    assert external_id_for("post:abc") == "post:abc"
    long_key = "time-to-billing:" + "x" * 200
    digest = external_id_for(long_key)
    assert digest.startswith("sha256:") and len(digest) == 71 and digest == external_id_for(long_key)


@pytest.mark.parametrize(
    ("gross", "percent", "lines"),
    [
        ("530.00", "6", 1),
        ("60.00", "6", 1),
        ("100.01", "6", 1),
        ("1082.50", "8.25", 1),
        ("17.00", "0", 1),
        # No single net at 6 % books 0.26 (0.24 -> 0.25, 0.25 -> 0.27): a one-cent second line makes it up.
        ("0.26", "6", 2),
        ("0.98", "8.25", 2),
    ],
)
def test_credit_lines_add_up_to_the_gross_to_the_cent_with_tax_rounded_per_line(
    gross: str, percent: str, lines: int
) -> None:
    nets = credit_nets(Decimal(gross), Decimal(percent), "USD")
    rate = Decimal(percent) / 100
    booked = sum(net + (net * rate).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") for net in nets)
    assert booked == Decimal(gross)
    assert len(nets) == lines


async def test_an_invoice_billing_two_projects_is_refused_as_netsuite_books_one_project_per_invoice(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    customer_id = await netsuite.create_customer(seed_account, entity=entity, idempotency_key="unused")
    one = await netsuite.ensure_erp_project(project_spec(seed_account, customer_id, "Audit"), entity=entity)
    two = await netsuite.ensure_erp_project(project_spec(seed_account, customer_id, "Roadmap"), entity=entity)
    lines = [
        _line(entity, "Audit work", "1", "100.00").model_copy(update={"dimensions": one.dimensions}),
        _line(entity, "Roadmap work", "1", "100.00").model_copy(update={"dimensions": two.dimensions}),
    ]
    invoice = build_invoice(entity, seed_account, customer_id, lines)

    with pytest.raises(Rejected, match="one project"):
        await netsuite.post_invoice(invoice, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    assert await netsuite.find_invoice(invoice.reference) is None


async def test_a_line_mapped_to_an_account_no_item_books_to_is_refused_naming_the_line(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    customer_id = await netsuite.create_customer(seed_account, entity=entity, idempotency_key="unused")
    line = _line(entity, "Consulting", "1", "100.00").model_copy(update={"account_code": "1100"})
    invoice = build_invoice(entity, seed_account, customer_id, [line])

    with pytest.raises(Rejected) as refused:
        await netsuite.post_invoice(invoice, entity=entity, idempotency_key=f"post:{uuid.uuid4()}")
    assert refused.value.field_errors[0].field == "item.items[0].account"
    assert "1100" in refused.value.message


async def test_a_project_for_a_customer_netsuite_does_not_have_is_not_found(
    netsuite: NetSuiteConnector, entity: LegalEntity, seed_account: Account
) -> None:
    with pytest.raises(NotFound):
        await netsuite.ensure_erp_project(project_spec(seed_account, "987654321"), entity=entity)
