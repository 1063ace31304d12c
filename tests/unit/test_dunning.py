from datetime import UTC, date, datetime

from canonical import InvoiceState, Money, ReceivablesSummary
from domain import dunning

DUE = date(2025, 3, 31)


def _summary(**changes: object) -> ReceivablesSummary:
    base = ReceivablesSummary(
        invoice_id="inv-1",
        invoice_number="INV-0001",
        state=InvoiceState.AWAITING_PAYMENT,
        total=Money.of("1200.00", "GBP"),
        amount_due=Money.of("700.00", "GBP"),
        amount_paid=Money.of("500.00", "GBP"),
        amount_credited=Money.zero("GBP"),
        due_date=DUE,
    )
    return base.model_copy(update=changes)


def _at(day: date, hour: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_no_stage_is_reached_before_seven_days_past_the_due_date():
    assert dunning.reached(_summary(), _at(date(2025, 4, 6), 23), done=0) is None


def test_stages_start_at_midnight_utc_seven_fourteen_and_thirty_days_after_the_due_date():
    assert [dunning.starts_at(DUE, s) for s in dunning.STAGES] == [
        _at(date(2025, 4, 7)),
        _at(date(2025, 4, 14)),
        _at(date(2025, 4, 30)),
    ]
    reached = dunning.reached(_summary(), _at(date(2025, 4, 7)), done=0)
    assert reached is not None and reached.number == 1


def test_a_stage_already_acted_on_is_not_reached_again():
    assert dunning.reached(_summary(), _at(date(2025, 4, 10)), done=1) is None
    assert dunning.next_start(_summary(), done=1) == _at(date(2025, 4, 14))


def test_a_late_check_acts_on_the_most_advanced_stage_only():
    reached = dunning.reached(_summary(), _at(date(2025, 5, 20)), done=0)
    assert reached is not None and reached.number == 3


def test_paid_credited_or_voided_invoices_are_never_dunned():
    late = _at(date(2025, 6, 1))
    zero = Money.zero("GBP")
    for summary in (
        _summary(state=InvoiceState.PAID, amount_due=zero),
        _summary(state=InvoiceState.VOIDED),
        _summary(amount_due=zero),
        _summary(due_date=None),
    ):
        assert dunning.reached(summary, late, done=0) is None
        assert dunning.next_start(summary, done=0) is None


def test_nothing_follows_the_final_stage():
    assert dunning.next_start(_summary(), done=dunning.FINAL_STAGE) is None


def test_the_task_is_keyed_by_invoice_and_stage_for_the_account_owner():
    stage = dunning.STAGES[1]
    task = dunning.dunning_task(
        stage, _summary(), erp="xero", account_id="001A", owner_id="005OWNER", today=date(2025, 4, 14)
    )
    assert task.external_key == "dunning:xero:inv-1:stage-2"
    assert task.related_to_id == "001A" and task.owner_id == "005OWNER"
    assert task.due_date == date(2025, 4, 14)
    assert "INV-0001" in task.subject and "700.00 GBP" in task.subject and "2 of 3" in task.subject
    assert "14 days overdue" in task.description
