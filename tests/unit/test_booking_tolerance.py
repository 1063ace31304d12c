"""The rules behind accepting or voiding what an ERP booked: the tolerance, the repost keys, who is told."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ActivityError, ApplicationError

from activities.erp import (
    BOOKED_DIFFERENTLY,
    INVOICE_VOIDED,
    VOID_REFUSED,
    PostInvoiceInput,
    amount_text,
    erp_idempotency_key,
    within_tolerance,
)
from canonical import ExceptionOwner, Money
from config import default_entities
from workflows.billing.posting import _posting_problem

from .billing_fixtures import UK


def gbp(amount: str) -> Money:
    return Money.of(amount, "GBP")


def test_the_first_post_keeps_the_postings_key_and_every_repost_gets_a_new_one() -> None:
    keys = [erp_idempotency_key("inv-abc", repost) for repost in range(3)]

    assert keys == ["inv-abc", "inv-abc:repost-1", "inv-abc:repost-2"]
    # Inputs recorded before reposts existed carry no counter: they post under the posting's own key.
    assert PostInvoiceInput.model_fields["repost"].default == 0


@pytest.mark.parametrize(
    ("difference", "tolerance", "accepted"),
    [
        (gbp("0.01"), None, False),
        (gbp("0.01"), gbp("0"), False),
        (gbp("0.05"), gbp("0.05"), True),
        (gbp("-0.05"), gbp("0.05"), True),
        (gbp("0.06"), gbp("0.05"), False),
        (gbp("-0.06"), gbp("0.05"), False),
        (Money.of("0.01", "EUR"), gbp("0.05"), False),
    ],
)
def test_a_difference_is_accepted_only_up_to_the_tolerance_in_its_own_currency(
    difference: Money, tolerance: Money | None, accepted: bool
) -> None:
    assert within_tolerance(difference, tolerance) is accepted


def test_entities_accept_only_an_exact_total_unless_finance_configures_a_tolerance() -> None:
    assert all(entity.booking_tolerance is None for entity in default_entities())
    assert UK.model_validate({**UK.model_dump(), "booking_tolerance": gbp("0.05")}).booking_tolerance == gbp(
        "0.05"
    )


@pytest.mark.parametrize("tolerance", [Money.of("0.05", "EUR"), gbp("-0.01")])
def test_a_tolerance_in_another_currency_or_below_zero_is_refused(tolerance: Money) -> None:
    with pytest.raises(ValidationError, match="booking_tolerance of entity UK"):
        UK.model_validate({**UK.model_dump(), "booking_tolerance": tolerance})


def failed_post(cause: ApplicationError) -> ActivityError:
    failure = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="worker",
        activity_type="post_invoice",
        activity_id="1",
        retry_state=None,
    )
    failure.__cause__ = cause
    return failure


@pytest.mark.parametrize("kind", [BOOKED_DIFFERENTLY, INVOICE_VOIDED, VOID_REFUSED])
def test_what_the_erp_booked_goes_to_finance_in_the_activitys_own_words(kind: str) -> None:
    said = "xero booked INV-1 at GBP 6,742.46, we computed GBP 6,742.45 (...); INV-1 was voided"
    cause = ApplicationError(said, {"erp_total": "6742.46 GBP", "computed_total": "6742.45 GBP"}, type=kind)

    assert _posting_problem(failed_post(cause)) == (ExceptionOwner.FINANCE, said)


def test_amounts_in_messages_are_grouped_like_finance_reads_them() -> None:
    assert amount_text(Money(amount=Decimal("6742.46"), currency="GBP")) == "GBP 6,742.46"
