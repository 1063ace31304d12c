"""The ERP role contract: what every `ErpConnector` must do, whoever the vendor is.

Use it by subclassing in a vendor's test module and providing three fixtures:

    from ..contract.erp_contract import ErpContract

    class TestTrytonErpContract(ErpContract):
        pass   # fixtures `erp`, `entity`, `seed_account` come from the module or a conftest

- `erp`: a connected `ErpConnector` (the real connector talking HTTP to a sandbox or a real server).
- `entity`: the `LegalEntity` that ERP books (its currency and `default_tax_code` are used for every invoice).
- `seed_account`: a canonical `Account` unique to the test (unique id *and* name: some ERPs refuse
  duplicate names).

Optional override: `unknown_invoice_id`, an id in the ERP's own format that names no invoice.
Required for the books checks: `other_revenue_account`, the code of an active revenue account of the entity's
chart other than the one lines book to by default.
Optional for the books checks: `tracks_practice`, True when the ERP books the practice dimension for the
`entity` (Tryton has room for it; Xero only where the entity tracks it; NetSuite does not), default False.

Semantics the suite pins down, because the role protocol leaves them to words:
- `PostedInvoice.total` is the net total (before tax), comparable with `Invoice.total` to the cent.
- `InvoiceStatus.total` is the gross total; on a fresh invoice `amount_due` equals it.
- `credit_invoice(amount)` takes `amount` (gross) off the amount due; a fully credited invoice counts as paid.
- Every write is safe to retry with the same idempotency key: it returns the first result and creates
  nothing more.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from canonical import (
    Account,
    Invoice,
    InvoiceLine,
    InvoiceState,
    LegalEntity,
    Money,
    name_key,
    tax_number_key,
)
from canonical.dimensions import ErpProject, ErpProjectSpec, practice_code
from connectors.errors import NotFound, Rejected
from connectors.roles import BookedInvoiceSource, ErpConnector, ErpProjectBooks

# Valid EU VAT numbers (ERPs such as Tryton check the digits).
SAMPLE_VAT_NUMBER = "NL004495445B01"
OTHER_VAT_NUMBER = "NL123456782B90"


def _key(purpose: str) -> str:
    return f"contract:{purpose}:{uuid.uuid4()}"


def _line(
    entity: LegalEntity, description: str, quantity: str, unit_price: str, tax_code: str | None = None
) -> InvoiceLine:
    return InvoiceLine(
        description=description,
        quantity=Decimal(quantity),
        unit_price=Money.of(unit_price, entity.currency),
        tax_code=tax_code or entity.default_tax_code,
        source_ids=(f"entry-{uuid.uuid4().hex[:8]}",),
        rounding=entity.line_rounding,
    )


def build_invoice(
    entity: LegalEntity, account: Account, customer_id: str, lines: list[InvoiceLine]
) -> Invoice:
    today = date.today()
    return Invoice(
        legal_entity=entity.code,
        customer_id=customer_id,
        customer_name=account.name,
        project_id=f"PRJ-{uuid.uuid4().hex[:8]}",
        period=f"{today.year:04d}-{today.month:02d}",
        currency=entity.currency,
        issue_date=today,
        due_date=today + timedelta(days=entity.payment_terms_days),
        reference=f"PSS-{uuid.uuid4().hex[:12].upper()}",
        lines=tuple(lines),
    )


def net_thousand_lines(entity: LegalEntity) -> list[InvoiceLine]:
    # Net 1,000.00: half of the gross is a whole number of cents at any tax rate in whole percent,
    # so a half credit is exact whatever the ERP's tax rate is.
    return [_line(entity, "Consulting, 10 days", "10", "100.00")]


class ErpContract:
    """Behaviour every ERP connector must show. Subclass as `Test<Vendor>ErpContract`."""

    @pytest.fixture
    def unknown_invoice_id(self) -> str:
        return "00000000-0000-0000-0000-000000000000"

    async def _customer(self, erp: ErpConnector, entity: LegalEntity, account: Account) -> str:
        return await erp.create_customer(account, entity=entity, idempotency_key=_key("customer"))

    async def _posted(
        self, erp: ErpConnector, entity: LegalEntity, account: Account, lines: list[InvoiceLine] | None = None
    ) -> tuple[Invoice, str]:
        customer_id = await self._customer(erp, entity, account)
        invoice = build_invoice(entity, account, customer_id, lines or net_thousand_lines(entity))
        posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=_key("invoice"))
        return invoice, posted.invoice_id

    def test_connector_implements_the_erp_role(self, erp: ErpConnector) -> None:
        assert isinstance(erp, ErpConnector)
        assert erp.system

    # --- customers --------------------------------------------------------------------------------------

    async def test_find_customer_is_none_before_the_customer_exists(
        self, erp: ErpConnector, seed_account: Account
    ) -> None:
        assert await erp.find_customer(seed_account) is None

    async def test_created_customer_is_found_by_crm_account_id(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        customer_id = await self._customer(erp, entity, seed_account)

        assert customer_id
        assert await erp.find_customer(seed_account) == customer_id

    async def test_create_customer_retried_with_same_key_returns_the_same_customer(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        key = _key("customer")
        first = await erp.create_customer(seed_account, entity=entity, idempotency_key=key)
        second = await erp.create_customer(seed_account, entity=entity, idempotency_key=key)

        assert second == first
        assert await erp.find_customer(seed_account) == first

    async def test_customer_with_same_name_and_tax_number_is_found_however_they_are_typed(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        account = seed_account.model_copy(update={"tax_number": SAMPLE_VAT_NUMBER})
        customer_id = await self._customer(erp, entity, account)

        found = await erp.find_customers_by_name_and_tax_number(
            f"  {account.name.upper()} ", "nl 0044.95445-b01"
        )

        assert [c.id for c in found] == [customer_id]
        assert found[0].external_ref == account.id
        assert tax_number_key(found[0].tax_number) == tax_number_key(SAMPLE_VAT_NUMBER)
        assert name_key(found[0].name) == name_key(account.name)

    async def test_customer_search_needs_both_the_name_and_the_tax_number_to_match(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        account = seed_account.model_copy(update={"tax_number": SAMPLE_VAT_NUMBER})
        await self._customer(erp, entity, account)

        assert await erp.find_customers_by_name_and_tax_number(account.name, OTHER_VAT_NUMBER) == []
        assert await erp.find_customers_by_name_and_tax_number(f"{account.name} Two", SAMPLE_VAT_NUMBER) == []

    # --- posting invoices -------------------------------------------------------------------------------

    async def test_posted_invoice_net_total_equals_our_computed_total_to_the_cent(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        customer_id = await self._customer(erp, entity, seed_account)
        # Each line rounds on its own, the way the entity's ERP rounds: 924.975 -> 924.98 either way,
        # 1.005 -> 1.01 half-up (Xero) but 1.00 half-even (Tryton), 33.333... -> 33.33.
        invoice = build_invoice(
            entity,
            seed_account,
            customer_id,
            [
                _line(entity, "Senior consultant, 7.5 h", "7.5", "123.33"),
                _line(entity, "Travel, 3 x 0.335", "3", "0.335"),
                _line(entity, "Retainer share", "0.3333", "100.00"),
            ],
        )
        expected = {"half_up": "959.32", "half_even": "959.31"}[entity.line_rounding]
        assert invoice.total == Money.of(expected, entity.currency)

        posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=_key("invoice"))

        assert posted.total == invoice.total
        assert posted.state == InvoiceState.AWAITING_PAYMENT
        assert posted.number

    async def test_post_invoice_retried_with_same_key_returns_the_same_invoice_and_creates_no_second(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        customer_id = await self._customer(erp, entity, seed_account)
        invoice = build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity))
        key = _key("invoice")

        first = await erp.post_invoice(invoice, entity=entity, idempotency_key=key)
        second = await erp.post_invoice(invoice, entity=entity, idempotency_key=key)

        assert second.invoice_id == first.invoice_id
        assert second.number == first.number
        # find_invoice raises Conflict when several invoices carry one reference, so this proves there is one.
        found = await erp.find_invoice(invoice.reference)
        assert found is not None and found.invoice_id == first.invoice_id

    async def test_find_invoice_by_reference_returns_the_posted_invoice(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        invoice, invoice_id = await self._posted(erp, entity, seed_account)

        found = await erp.find_invoice(invoice.reference)

        assert found is not None
        assert found.invoice_id == invoice_id
        assert found.total == invoice.total
        assert found.state == InvoiceState.AWAITING_PAYMENT

    async def test_find_invoice_is_none_for_an_unknown_reference(self, erp: ErpConnector) -> None:
        assert await erp.find_invoice(f"PSS-NEVER-POSTED-{uuid.uuid4().hex[:8]}") is None

    async def test_post_invoice_with_unknown_tax_code_is_rejected_with_field_errors(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        customer_id = await self._customer(erp, entity, seed_account)
        invoice = build_invoice(
            entity,
            seed_account,
            customer_id,
            [
                _line(entity, "Consulting", "1", "100.00", tax_code="NO-SUCH-TAX"),
            ],
        )

        with pytest.raises(Rejected) as raised:
            await erp.post_invoice(invoice, entity=entity, idempotency_key=_key("invoice"))

        assert raised.value.field_errors, "a rejection must say which field was wrong"
        assert await erp.find_invoice(invoice.reference) is None

    # --- reading invoices -------------------------------------------------------------------------------

    async def test_get_invoice_of_a_fresh_invoice_shows_the_gross_total_due(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        invoice, invoice_id = await self._posted(erp, entity, seed_account)

        status = await erp.get_invoice(invoice_id)

        assert status.invoice_id == invoice_id
        assert status.state == InvoiceState.AWAITING_PAYMENT
        assert status.total >= invoice.total, "gross total includes tax"
        assert status.amount_due == status.total
        assert status.amount_paid.is_zero() and status.amount_credited.is_zero()
        assert status.payments == () and status.credit_notes == ()
        assert status.due_date == invoice.due_date

    async def test_get_invoice_with_unknown_id_raises_not_found(
        self, erp: ErpConnector, unknown_invoice_id: str
    ) -> None:
        with pytest.raises(NotFound):
            await erp.get_invoice(unknown_invoice_id)

    # --- payments ---------------------------------------------------------------------------------------

    async def test_partial_then_full_payment_marks_the_invoice_paid(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)
        gross = (await erp.get_invoice(invoice_id)).total
        part = Money.of("250.00", entity.currency)

        first = await erp.apply_payment(invoice_id, part, reference="part 1", idempotency_key=_key("payment"))
        after_part = await erp.get_invoice(invoice_id)

        assert first.amount == part and first.invoice_id == invoice_id
        assert after_part.state == InvoiceState.AWAITING_PAYMENT
        assert after_part.amount_paid == part
        assert after_part.amount_due == gross - part

        await erp.apply_payment(invoice_id, gross - part, reference="part 2", idempotency_key=_key("payment"))
        paid = await erp.get_invoice(invoice_id)

        assert paid.state == InvoiceState.PAID
        assert paid.amount_due.is_zero()
        assert paid.amount_paid == gross
        assert sorted(p.amount.amount for p in paid.payments) == sorted([part.amount, (gross - part).amount])

    async def test_apply_payment_retried_with_same_key_records_one_payment(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)
        part = Money.of("100.00", entity.currency)
        key = _key("payment")

        first = await erp.apply_payment(invoice_id, part, reference="once", idempotency_key=key)
        second = await erp.apply_payment(invoice_id, part, reference="once", idempotency_key=key)

        assert second.id == first.id
        assert (await erp.get_invoice(invoice_id)).amount_paid == part

    async def test_payments_since_lists_payments_made_after_the_instant_only(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)
        # ERPs keep modification times to the second: step back so the boundary cannot hide the payment.
        before = datetime.now(UTC) - timedelta(seconds=2)
        payment = await erp.apply_payment(
            invoice_id,
            Money.of("120.00", entity.currency),
            reference="poll me",
            idempotency_key=_key("payment"),
        )

        since_before = await erp.payments_since(before)
        since_later = await erp.payments_since(datetime.now(UTC) + timedelta(hours=1))
        everything = await erp.payments_since(None)

        listed = {p.id: p for p in since_before}
        assert payment.id in listed
        assert listed[payment.id].invoice_id == invoice_id
        assert listed[payment.id].amount == Money.of("120.00", entity.currency)
        assert payment.id not in {p.id for p in since_later}
        assert payment.id in {p.id for p in everything}

    # --- credit notes and voids -------------------------------------------------------------------------

    async def test_partial_credit_reduces_the_amount_due_by_the_credited_amount(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)
        gross = (await erp.get_invoice(invoice_id)).total
        half = Money(amount=gross.amount / 2, currency=gross.currency)

        credit = await erp.credit_invoice(
            invoice_id, half, reason="half the work was redone", idempotency_key=_key("credit")
        )
        status = await erp.get_invoice(invoice_id)

        assert credit.amount == half and credit.invoice_id == invoice_id
        assert status.state == InvoiceState.AWAITING_PAYMENT
        assert status.amount_credited == half
        assert status.amount_due == gross - half
        assert [c.id for c in status.credit_notes] == [credit.id]

    async def test_full_credit_settles_the_invoice(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)
        gross = (await erp.get_invoice(invoice_id)).total

        await erp.credit_invoice(
            invoice_id, gross, reason="cancelled engagement", idempotency_key=_key("credit")
        )
        status = await erp.get_invoice(invoice_id)

        assert status.amount_credited == gross
        assert status.amount_due.is_zero()
        assert status.state == InvoiceState.PAID

    async def test_credit_invoice_retried_with_same_key_issues_one_credit_note(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)
        amount = Money.of("60.00", entity.currency)
        key = _key("credit")

        first = await erp.credit_invoice(invoice_id, amount, reason="goodwill", idempotency_key=key)
        second = await erp.credit_invoice(invoice_id, amount, reason="goodwill", idempotency_key=key)

        assert second.id == first.id
        status = await erp.get_invoice(invoice_id)
        assert status.amount_credited == amount
        assert len(status.credit_notes) == 1

    async def test_void_invoice_marks_it_voided_and_is_safe_to_repeat(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        _, invoice_id = await self._posted(erp, entity, seed_account)

        await erp.void_invoice(invoice_id)
        await erp.void_invoice(invoice_id)  # an activity retried after a lost reply must not fail
        status = await erp.get_invoice(invoice_id)

        assert status.state == InvoiceState.VOIDED


def project_spec(account: Account, customer_id: str, name: str = "Website rebuild") -> ErpProjectSpec:
    return ErpProjectSpec(
        project_code=f"P{uuid.uuid4().hex[:10].upper()}",
        project_name=name,
        customer_id=customer_id,
        customer_code=account.id,
        customer_name=account.name,
    )


class ErpBooksContract(ErpContract):
    """Where lines book: the account finance mapped, and the project and customer dimensions made at
    closed-won (`ErpProjectBooks`), as the ERP reports them back (`BookedInvoiceSource`)."""

    @pytest.fixture
    def tracks_practice(self) -> bool:
        return False

    async def _project(
        self, erp: ErpConnector, entity: LegalEntity, account: Account
    ) -> tuple[str, ErpProject]:
        assert isinstance(erp, ErpProjectBooks)
        customer_id = await self._customer(erp, entity, account)
        return customer_id, await erp.ensure_erp_project(project_spec(account, customer_id), entity=entity)

    def test_connector_keeps_project_dimensions_and_reports_booked_lines(self, erp: ErpConnector) -> None:
        assert isinstance(erp, ErpProjectBooks)
        assert isinstance(erp, BookedInvoiceSource)

    async def test_ensure_erp_project_gives_project_and_customer_values_and_is_safe_to_repeat(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        assert isinstance(erp, ErpProjectBooks)
        customer_id = await self._customer(erp, entity, seed_account)
        spec = project_spec(seed_account, customer_id)

        first = await erp.ensure_erp_project(spec, entity=entity)
        again = await erp.ensure_erp_project(spec, entity=entity)

        assert first.erp == erp.system and first.project_id
        assert again == first
        assert sorted(value.dimension for value in first.dimensions) == ["customer", "project"]

    async def test_two_projects_of_one_customer_share_its_customer_value(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        assert isinstance(erp, ErpProjectBooks)
        customer_id = await self._customer(erp, entity, seed_account)

        one = await erp.ensure_erp_project(project_spec(seed_account, customer_id, "Audit"), entity=entity)
        two = await erp.ensure_erp_project(project_spec(seed_account, customer_id, "Roadmap"), entity=entity)

        def value(project: ErpProject, dimension: str) -> str:
            return next(v.code for v in project.dimensions if v.dimension == dimension)

        assert value(one, "customer") == value(two, "customer")
        assert value(one, "project") != value(two, "project")
        assert one.project_id != two.project_id

    async def test_posted_lines_book_to_their_account_with_the_projects_dimensions(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account, other_revenue_account: str
    ) -> None:
        assert isinstance(erp, BookedInvoiceSource)
        customer_id, project = await self._project(erp, entity, seed_account)
        lines = [
            _line(entity, "Consulting", "2", "100.00").model_copy(
                update={"account_code": other_revenue_account, "dimensions": project.dimensions}
            ),
            _line(entity, "Travel re-billed", "1", "50.00").model_copy(
                update={"dimensions": project.dimensions}
            ),
        ]
        invoice = build_invoice(entity, seed_account, customer_id, lines)

        posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=_key("invoice"))
        (booked,) = await erp.booked_invoices(invoice.reference)

        assert posted.total == invoice.total == Money.of("250.00", entity.currency)
        assert booked.lines[0].account_code == other_revenue_account
        assert booked.lines[1].account_code not in (None, other_revenue_account)
        for line in booked.lines:
            assert {(v.dimension, v.code) for v in line.dimensions} == {
                (v.dimension, v.code) for v in project.dimensions
            }

    async def test_a_projects_practice_is_booked_on_its_lines_where_the_erp_tracks_practice(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account, tracks_practice: bool
    ) -> None:
        assert isinstance(erp, ErpProjectBooks) and isinstance(erp, BookedInvoiceSource)
        customer_id = await self._customer(erp, entity, seed_account)
        practice = f"Digital {uuid.uuid4().hex[:6]}"
        spec = project_spec(seed_account, customer_id).model_copy(update={"practice": practice})
        sibling = project_spec(seed_account, customer_id, "Roadmap").model_copy(update={"practice": practice})

        project = await erp.ensure_erp_project(spec, entity=entity)
        again = await erp.ensure_erp_project(spec, entity=entity)
        other = await erp.ensure_erp_project(sibling, entity=entity)

        assert again == project
        values = {v.dimension: v for v in project.dimensions}
        expected = ["customer", "practice", "project"] if tracks_practice else ["customer", "project"]
        assert sorted(values) == expected
        if tracks_practice:
            assert values["practice"].name == practice
            assert practice_code(practice) in values["practice"].code
            # Two projects of one practice share its value, as two of one customer share theirs.
            assert values["practice"] in other.dimensions
        line = _line(entity, "Consulting", "1", "100.00")
        tagged = line.model_copy(update={"dimensions": project.dimensions})
        invoice = build_invoice(entity, seed_account, customer_id, [tagged])
        await erp.post_invoice(invoice, entity=entity, idempotency_key=_key("invoice"))
        (booked,) = await erp.booked_invoices(invoice.reference)
        assert {(v.dimension, v.code) for v in booked.lines[0].dimensions} == {
            (v.dimension, v.code) for v in project.dimensions
        }

    async def test_a_line_naming_a_dimension_value_the_erp_lacks_is_rejected_and_nothing_posts(
        self, erp: ErpConnector, entity: LegalEntity, seed_account: Account
    ) -> None:
        customer_id, project = await self._project(erp, entity, seed_account)
        unknown = tuple(
            v.model_copy(update={"code": f"NOPE{uuid.uuid4().hex[:8]}"}) if v.dimension == "project" else v
            for v in project.dimensions
        )
        line = _line(entity, "Consulting", "1", "100.00").model_copy(update={"dimensions": unknown})
        invoice = build_invoice(entity, seed_account, customer_id, [line])

        with pytest.raises(Rejected) as raised:
            await erp.post_invoice(invoice, entity=entity, idempotency_key=_key("invoice"))

        assert raised.value.field_errors
        assert await erp.find_invoice(invoice.reference) is None
