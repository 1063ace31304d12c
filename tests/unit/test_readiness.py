from decimal import Decimal

from canonical import Account, Address, BillingModel, Contact, Money, Opportunity
from config import default_entities
from domain.readiness import check_readiness

ENTITIES = default_entities()


def _opportunity(**changes: object) -> Opportunity:
    base = Opportunity(
        id="006000000000001AAA",
        name="Acme advisory",
        stage="Closed Won",
        is_won=True,
        amount=Money(amount=Decimal("12000"), currency="GBP"),
        account=Account(
            id="001000000000001AAA",
            name="Acme Ltd",
            billing_address=Address(street="1 Way", city="London", country="GB"),
        ),
        bill_to_contact=Contact(id="003000000000001AAA", last_name="Smith"),
        currency="GBP",
        tax_code="OUTPUT2",
        billing_model=BillingModel.TIME_AND_MATERIALS,
        service_code="ADV-TM",
    )
    return base.model_copy(update=changes)


def test_complete_uk_opportunity_is_ready_and_routed_to_the_uk_entity_by_billing_country():
    readiness = check_readiness(_opportunity(), ENTITIES)
    assert readiness.ready
    assert readiness.entity is not None and readiness.entity.code == "UK" and readiness.entity.erp == "xero"


def test_explicit_entity_on_the_opportunity_wins_over_billing_country():
    readiness = check_readiness(_opportunity(legal_entity="EU", currency="EUR", tax_code="VAT21"), ENTITIES)
    assert readiness.ready and readiness.entity is not None and readiness.entity.code == "EU"


def test_incomplete_opportunity_names_every_missing_field():
    readiness = check_readiness(
        _opportunity(tax_code=None, billing_model=None, bill_to_contact=None, service_code=None), ENTITIES
    )
    assert not readiness.ready
    assert set(readiness.missing) == {"tax_code", "billing_model", "bill_to_contact", "service_code"}


def test_tax_code_of_another_entity_is_not_valid():
    readiness = check_readiness(_opportunity(tax_code="VAT21"), ENTITIES)
    assert readiness.missing == ("tax_code (VAT21 is not valid for entity UK)",)


def test_currency_must_be_the_entity_billing_currency():
    readiness = check_readiness(_opportunity(currency="EUR"), ENTITIES)
    assert readiness.missing == ("currency (EUR is not UK's billing currency GBP)",)


def test_unknown_service_code_is_named():
    readiness = check_readiness(_opportunity(service_code="FREE-TEXT"), ENTITIES)
    assert readiness.missing == ("service_code ('FREE-TEXT' is not in the service catalogue)",)


def test_billing_country_outside_every_entity_cannot_be_routed():
    account = _opportunity().account.model_copy(
        update={"billing_address": Address(street="1 Chome", city="Tokyo", country="JP")}
    )
    readiness = check_readiness(_opportunity(account=account), ENTITIES)
    assert readiness.entity is None
    assert readiness.missing[0].startswith("legal_entity")


def test_fixed_fee_deal_needs_its_fee_because_the_milestone_schedule_is_computed_from_it():
    readiness = check_readiness(
        _opportunity(service_code="IMP-FF", billing_model=BillingModel.FIXED_FEE, amount=None), ENTITIES
    )
    assert readiness.missing == ("amount (a fixed_fee deal is billed from its amount)",)


def test_retainer_deal_with_a_zero_amount_is_not_ready():
    readiness = check_readiness(
        _opportunity(service_code="MS-RET", billing_model=BillingModel.RETAINER, amount=Money.of("0", "GBP")),
        ENTITIES,
    )
    assert readiness.missing == ("amount (0 GBP is not a fee that can be billed)",)


def test_time_and_materials_deal_is_ready_without_an_amount():
    assert check_readiness(_opportunity(amount=None), ENTITIES).ready


def test_billing_model_that_contradicts_the_service_code_is_named():
    readiness = check_readiness(_opportunity(billing_model=BillingModel.FIXED_FEE), ENTITIES)
    assert readiness.missing == (
        "billing_model (fixed_fee does not match service ADV-TM, which is time_and_materials)",
    )


def test_missing_billing_address_and_currency_are_both_named_in_one_pass():
    account = _opportunity().account.model_copy(update={"billing_address": None})
    readiness = check_readiness(_opportunity(account=account, currency=None, legal_entity="UK"), ENTITIES)
    assert set(readiness.missing) == {"currency", "account.billing_address"}
