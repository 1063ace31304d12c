from canonical import ExceptionOwner, Money
from domain.billing_validation import RatedTime, RejectedItem, check_expense, check_time_entry

from .billing_fixtures import context, entry, expense


def _rule(result: object) -> tuple[ExceptionOwner, str]:
    assert isinstance(result, RejectedItem), result
    return result.owner, result.rule


def test_a_valid_entry_is_rated_at_its_role() -> None:
    rated = check_time_entry(entry("a"), context())
    assert isinstance(rated, RatedTime)
    assert rated.value == Money.of("800", "GBP")


def test_time_on_a_task_the_project_does_not_have_is_owned_by_pmo() -> None:
    assert _rule(check_time_entry(entry("a", task="t-gone"), context())) == (
        ExceptionOwner.PMO,
        "unknown_task",
    )


def test_billable_time_on_a_non_billable_task_is_owned_by_pmo() -> None:
    assert _rule(check_time_entry(entry("a", task="t2"), context())) == (
        ExceptionOwner.PMO,
        "task_not_billable",
    )


def test_time_from_someone_not_staffed_on_the_project_is_owned_by_hr_ops() -> None:
    assert _rule(check_time_entry(entry("a", resource="u9"), context())) == (
        ExceptionOwner.HR_OPS,
        "unknown_resource",
    )


def test_a_resource_without_any_role_is_owned_by_hr_ops() -> None:
    assert _rule(check_time_entry(entry("a", role=None, resource="u3"), context())) == (
        ExceptionOwner.HR_OPS,
        "no_role",
    )


def test_a_rate_card_in_another_currency_is_owned_by_finance() -> None:
    ctx = context(contract={"currency": "EUR"})
    assert _rule(check_time_entry(entry("a"), ctx)) == (ExceptionOwner.FINANCE, "currency_mismatch")


def test_a_tax_code_the_entity_does_not_have_is_owned_by_finance() -> None:
    ctx = context(contract={"tax_code": "VAT21"})
    result = check_time_entry(entry("a"), ctx)
    assert _rule(result) == (ExceptionOwner.FINANCE, "invalid_tax_code")
    assert isinstance(result, RejectedItem) and "VAT21" in result.reason and "UK" in result.reason


def test_a_tax_code_archived_in_the_erp_is_owned_by_finance_and_named_as_archived() -> None:
    ctx = context(erp_tax_codes={"OUTPUT2": False, "ZERORATEDOUTPUT": True})
    result = check_time_entry(entry("a"), ctx)
    assert _rule(result) == (ExceptionOwner.FINANCE, "tax_code_not_in_erp")
    assert isinstance(result, RejectedItem) and "'OUTPUT2' is archived in xero" in result.reason


def test_a_tax_code_the_erp_does_not_list_is_owned_by_finance() -> None:
    result = check_expense(expense("x"), context(erp_tax_codes={"ZERORATEDOUTPUT": True}))
    assert _rule(result) == (ExceptionOwner.FINANCE, "tax_code_not_in_erp")
    assert isinstance(result, RejectedItem) and "'OUTPUT2' does not exist in xero" in result.reason


def test_an_active_erp_tax_code_or_no_sync_yet_lets_the_line_through() -> None:
    assert isinstance(check_time_entry(entry("a"), context(erp_tax_codes={"OUTPUT2": True})), RatedTime)
    assert isinstance(check_time_entry(entry("a"), context(erp_tax_codes=None)), RatedTime)


def test_an_expense_in_another_currency_is_owned_by_finance() -> None:
    assert _rule(check_expense(expense("x", currency="EUR"), context())) == (
        ExceptionOwner.FINANCE,
        "currency_mismatch",
    )


def test_an_expense_tax_code_the_entity_does_not_have_is_owned_by_finance() -> None:
    ctx = context(contract={"expense_tax_code": "EXEMPT-EU"})
    assert _rule(check_expense(expense("x"), ctx)) == (ExceptionOwner.FINANCE, "invalid_tax_code")
