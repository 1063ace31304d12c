"""A not-to-exceed sold in the CRM caps what a time-and-materials project bills: from the opportunity,
through the contract project setup writes, to the allowance billing rates against."""

from datetime import date
from decimal import Decimal

import pytest

from canonical import Account, Address, BillingModel, Money, Opportunity
from config import default_entities
from domain.billing_policy import BillingHistory, PriorPosting, allowance_for
from domain.billing_validation import BillingContext
from domain.project_setup import NotReady, project_spec
from domain.rating import RatedWork, invoice_lines, rate_time

from .billing_fixtures import CARD, PROJECT, RESOURCES, entry

UK = next(e for e in default_entities() if e.code == "UK")


def _deal(
    *,
    service_code: str = "ADV-TM",
    amount: str | None = "2000.00",
    not_to_exceed: Money | None = None,
    currency: str = "GBP",
) -> Opportunity:
    return Opportunity(
        id="006000000000021AAA",
        name="Initech advisory",
        stage="Closed Won",
        is_won=True,
        close_date=date(2026, 10, 1),
        amount=Money.of(amount, currency) if amount is not None else None,
        not_to_exceed=not_to_exceed,
        account=Account(
            id="001000000000021AAA",
            name="Initech Ltd",
            billing_address=Address(street="1 Way", city="London", country="GB"),
        ),
        currency=currency,
        tax_code="OUTPUT2",
        billing_model=BillingModel.TIME_AND_MATERIALS,
        service_code=service_code,
    )


def _work_of_4339_50() -> list:
    # 31.5 h at the Consultant's 100 and 7.93 h at the Senior Consultant's 150: 3,150.00 + 1,189.50.
    return [
        entry("a", hours="8"),
        entry("b", hours="8"),
        entry("c", hours="8"),
        entry("d", hours="7.5"),
        entry("e", hours="7.93", resource="u2", role="Senior Consultant"),
    ]


def test_a_time_and_materials_deal_sold_with_a_not_to_exceed_gets_it_as_the_contracts_cap() -> None:
    spec = project_spec("salesforce", _deal(not_to_exceed=Money.of("2000.00", "GBP")), UK)

    assert spec.contract.billing_model == BillingModel.TIME_AND_MATERIALS
    assert spec.contract.not_to_exceed == Money.of("2000.00", "GBP")


def test_a_time_and_materials_deal_without_a_not_to_exceed_is_uncapped() -> None:
    assert project_spec("salesforce", _deal(), UK).contract.not_to_exceed is None


def test_a_fixed_fee_keeps_its_fee_as_the_cap_whatever_the_not_to_exceed_says() -> None:
    deal = _deal(service_code="IMP-FF", amount="50000.00", not_to_exceed=Money.of("60000.00", "GBP"))

    assert project_spec("salesforce", deal, UK).contract.not_to_exceed == Money.of("50000.00", "GBP")


def test_a_retainer_is_bounded_by_its_fee_not_by_a_not_to_exceed() -> None:
    deal = _deal(service_code="MS-RET", amount="12000.00", not_to_exceed=Money.of("9000.00", "GBP"))

    assert project_spec("salesforce", deal, UK).contract.not_to_exceed is None


@pytest.mark.parametrize(
    "cap", [Money.of("2000.00", "EUR"), Money.of("0.00", "GBP"), Money.of("-1.00", "GBP")], ids=str
)
def test_a_cap_billing_could_not_honour_stops_project_setup_instead_of_being_guessed(cap: Money) -> None:
    with pytest.raises(NotReady, match="not-to-exceed"):
        project_spec("salesforce", _deal(not_to_exceed=cap), UK)


def test_work_beyond_a_2000_gbp_cap_is_held_back_and_the_invoice_stays_within_it() -> None:
    spec = project_spec("salesforce", _deal(not_to_exceed=Money.of("2000.00", "GBP")), UK)
    allowance = allowance_for(spec.contract, BillingHistory())
    context = BillingContext(
        project=PROJECT, resources=RESOURCES, rate_card=CARD, contract=spec.contract, entity=UK
    )
    assert allowance is not None and (allowance.kind, allowance.limit) == ("cap", Money.of("2000.00", "GBP"))

    work = rate_time(RatedWork(), _work_of_4339_50(), context=context, allowance=allowance)
    lines = invoice_lines(work, context=context, period="2026-10")
    billed = sum((line.amount for line in lines), Money.zero("GBP"))

    # Billing stops at the first entry that would cross the cap; everything after it waits.
    assert billed == Money.of("1600.00", "GBP") <= spec.contract.not_to_exceed
    assert work.time_entry_ids == ("a", "b")
    assert work.held_back_ids == ("c", "d", "e") and work.held_back_count == 3
    assert work.held_back_value == Decimal("2739.50")
    assert billed.amount + work.held_back_value == Decimal("4339.50")


def test_what_earlier_invoices_billed_counts_against_the_cap() -> None:
    spec = project_spec("salesforce", _deal(not_to_exceed=Money.of("2000.00", "GBP")), UK)
    history = BillingHistory(
        postings=(
            PriorPosting(
                period="2026-09", number="INV-1", amount=Money.of("1500.00", "GBP"), idempotency_key="k1"
            ),
        )
    )
    allowance = allowance_for(spec.contract, history)
    context = BillingContext(
        project=PROJECT, resources=RESOURCES, rate_card=CARD, contract=spec.contract, entity=UK
    )
    assert allowance is not None and allowance.limit == Money.of("500.00", "GBP")

    work = rate_time(RatedWork(), _work_of_4339_50(), context=context, allowance=allowance)

    assert work.time_entry_ids == () and work.held_back_value == Decimal("4339.50")
