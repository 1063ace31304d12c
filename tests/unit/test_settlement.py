from canonical import InvoiceState, Money, ReceivablesSummary
from domain.settlement import settlement


def _summary(state: InvoiceState, *, due: str, paid: str, credited: str, total: str = "1210.00"):  # type: ignore[no-untyped-def]
    return ReceivablesSummary(
        invoice_id="1",
        invoice_number="INV-1",
        state=state,
        total=Money.of(total, "EUR"),
        amount_due=Money.of(due, "EUR"),
        amount_paid=Money.of(paid, "EUR"),
        amount_credited=Money.of(credited, "EUR"),
    )


def test_partly_paid_invoice_is_open():
    result = settlement(_summary(InvoiceState.AWAITING_PAYMENT, due="710.00", paid="500.00", credited="0"))
    assert result.outcome == "open" and not result.final and result.overpaid is None


def test_invoice_settled_by_cash_and_a_partial_credit_is_paid():
    result = settlement(_summary(InvoiceState.PAID, due="0", paid="1000.00", credited="210.00"))
    assert result.outcome == "paid" and result.overpaid is None


def test_invoice_settled_by_credit_notes_alone_is_credited_not_paid():
    result = settlement(_summary(InvoiceState.PAID, due="0", paid="0", credited="1210.00"))
    assert result.outcome == "credited"


def test_voided_invoice_is_voided_whatever_its_amounts():
    assert settlement(_summary(InvoiceState.VOIDED, due="0", paid="0", credited="0")).outcome == "voided"


def test_payments_beyond_the_gross_total_are_an_overpayment_of_the_excess():
    result = settlement(_summary(InvoiceState.PAID, due="0", paid="1300.00", credited="0"))
    assert result.outcome == "paid" and result.overpaid == Money.of("90.00", "EUR")


def test_nothing_due_on_an_awaiting_invoice_counts_as_settled():
    result = settlement(_summary(InvoiceState.AWAITING_PAYMENT, due="0", paid="1210.00", credited="0"))
    assert result.outcome == "paid"


def test_an_overpayment_the_erp_reports_counts_even_when_the_invoice_figures_balance():
    summary = _summary(InvoiceState.PAID, due="0", paid="1210.00", credited="0").model_copy(
        update={"amount_overpaid": Money.of("90.00", "EUR")}
    )
    assert settlement(summary).overpaid == Money.of("90.00", "EUR")
