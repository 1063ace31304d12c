from canonical import Account, ErpCustomer, name_key, tax_number_key
from domain.customer_master import describe, duplicates

ACCOUNT = Account(id="001A", name="Globex  Ltd", tax_number="GB 123 456 789")


def test_same_name_and_tax_number_under_another_crm_id_is_a_duplicate():
    found = [ErpCustomer(id="C1", name="GLOBEX LTD", tax_number="gb123456789", external_ref="001OTHER")]
    assert duplicates(ACCOUNT, found) == tuple(found)


def test_same_name_and_tax_number_without_any_crm_id_is_a_duplicate():
    found = [ErpCustomer(id="C2", name="Globex Ltd", tax_number="GB123-456-789")]
    assert duplicates(ACCOUNT, found) == tuple(found)


def test_the_customer_already_linked_to_this_account_is_not_a_duplicate():
    found = [ErpCustomer(id="C3", name="Globex Ltd", tax_number="GB123456789", external_ref="001A")]
    assert duplicates(ACCOUNT, found) == ()


def test_another_tax_number_or_another_name_is_not_a_duplicate():
    found = [
        ErpCustomer(id="C4", name="Globex Ltd", tax_number="GB999999999", external_ref="001B"),
        ErpCustomer(id="C5", name="Globex Holdings Ltd", tax_number="GB123456789", external_ref="001C"),
    ]
    assert duplicates(ACCOUNT, found) == ()


def test_without_a_tax_number_on_the_account_the_rule_does_not_apply():
    account = ACCOUNT.model_copy(update={"tax_number": None})
    found = [ErpCustomer(id="C6", name="Globex Ltd", tax_number=None, external_ref="001B")]
    assert duplicates(account, found) == ()


def test_keys_ignore_case_spacing_and_punctuation():
    assert name_key("  Globex \t Ltd ") == name_key("globex ltd")
    assert tax_number_key("nl 0044.95445-b01") == "NL004495445B01"
    assert tax_number_key(" - ") is None


def test_the_exception_text_names_both_records_and_the_way_out():
    text = describe(ACCOUNT, [ErpCustomer(id="C1", name="Globex Ltd", tax_number="GB123456789")])
    assert "001A" in text and "C1" in text and "no CRM account" in text
    assert "retry naming the ERP customer id" in text
