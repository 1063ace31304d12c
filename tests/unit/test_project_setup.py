from datetime import date
from decimal import Decimal

import pytest

from canonical import (
    Account,
    Address,
    BillingModel,
    Contact,
    MilestoneCharge,
    Money,
    Opportunity,
)
from config import default_entities
from domain.project_setup import NotReady, billing_schedule, monthly_retainer, project_spec
from domain.service_catalog import CATALOG, MilestoneShare, ServiceTemplate

UK = next(e for e in default_entities() if e.code == "UK")


def _deal(service_code: str, billing_model: BillingModel, amount: str | None) -> Opportunity:
    return Opportunity(
        id="006000000000009AAA",
        name="Globex rollout",
        stage="Closed Won",
        is_won=True,
        close_date=date(2025, 3, 1),
        amount=Money.of(amount, "GBP") if amount is not None else None,
        account=Account(
            id="001000000000009AAA",
            name="Globex Ltd",
            billing_address=Address(street="1 Way", city="London", country="GB"),
        ),
        bill_to_contact=Contact(id="003000000000009AAA", last_name="Smith"),
        currency="GBP",
        tax_code="OUTPUT2",
        billing_model=billing_model,
        service_code=service_code,
        project_manager="Dana Whitfield",
    )


def test_fixed_fee_schedule_splits_the_fee_by_the_template_shares():
    schedule = billing_schedule(CATALOG["IMP-FF"], Money.of("50000.00", "GBP"))
    assert schedule == (
        MilestoneCharge(milestone="Design sign-off", amount=Money.of("20000.00", "GBP")),
        MilestoneCharge(milestone="Go-live", amount=Money.of("30000.00", "GBP")),
    )


def test_fixed_fee_schedule_puts_the_rounding_remainder_on_the_last_milestone_so_it_sums_to_the_fee():
    thirds = ServiceTemplate(
        code="T",
        name="thirds",
        billing_model=BillingModel.FIXED_FEE,
        tasks=("Work",),
        milestones=(
            MilestoneShare(milestone="A", share=Decimal("0.3333")),
            MilestoneShare(milestone="B", share=Decimal("0.3333")),
            MilestoneShare(milestone="C", share=Decimal("0.3334")),
        ),
    )
    fee = Money.of("1000.01", "GBP")
    schedule = billing_schedule(thirds, fee)
    assert [c.amount.amount for c in schedule] == [Decimal("333.30"), Decimal("333.30"), Decimal("333.41")]
    assert sum((c.amount for c in schedule), Money.zero("GBP")) == fee


def test_a_fixed_fee_template_whose_shares_do_not_add_up_to_one_is_refused():
    with pytest.raises(ValueError, match="add up to 1"):
        ServiceTemplate(
            code="BAD",
            name="bad",
            billing_model=BillingModel.FIXED_FEE,
            tasks=("Work",),
            milestones=(MilestoneShare(milestone="A", share=Decimal("0.5")),),
        )


def test_retainer_spreads_the_contract_value_over_the_term_rounded_to_the_cent():
    assert monthly_retainer(CATALOG["MS-RET"], Money.of("40000", "GBP")) == Money.of("3333.33", "GBP")


def test_fixed_fee_project_spec_takes_structure_from_the_service_code_and_money_from_the_deal():
    spec = project_spec("salesforce", _deal("IMP-FF", BillingModel.FIXED_FEE, "50000.00"), UK)
    assert spec.external_ref == "salesforce:006000000000009AAA"
    assert spec.tasks == ("Design", "Build", "Test", "Go-live")
    assert spec.milestones == ("Design sign-off", "Go-live")
    assert spec.rate_card_set == "Implementation"
    assert spec.project_manager == "Dana Whitfield"
    assert spec.budget == Money.of("50000.00", "GBP")
    assert spec.contract.billing_model == BillingModel.FIXED_FEE
    assert spec.contract.not_to_exceed == Money.of("50000.00", "GBP")
    assert [c.milestone for c in spec.contract.billing_schedule] == ["Design sign-off", "Go-live"]
    assert spec.contract.payment_terms_days == UK.payment_terms_days


def test_retainer_project_spec_carries_the_monthly_amount_and_no_milestones():
    spec = project_spec("salesforce", _deal("MS-RET", BillingModel.RETAINER, "24000"), UK)
    assert spec.contract.retainer_amount == Money.of("2000.00", "GBP")
    assert spec.contract.billing_schedule == () and spec.milestones == ()
    assert spec.rate_card_set == "Managed services"


def test_time_and_materials_project_spec_uses_the_default_rate_card_set_and_no_schedule():
    spec = project_spec("salesforce", _deal("ADV-TM", BillingModel.TIME_AND_MATERIALS, None), UK)
    assert spec.rate_card_set is None
    assert spec.contract.billing_schedule == () and spec.contract.retainer_amount is None
    assert spec.contract.expense_markup == Decimal("0.10")


def test_project_spec_refuses_a_fixed_fee_deal_without_a_fee_instead_of_guessing():
    with pytest.raises(NotReady):
        project_spec("salesforce", _deal("IMP-FF", BillingModel.FIXED_FEE, None), UK)
