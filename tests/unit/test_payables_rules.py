"""The payables rules: who an expense is owed to, the cost account its bill line books to, the bill's key."""

from __future__ import annotations

from datetime import date

from canonical import Money
from canonical.payables import PayableExpense
from domain.account_mapping import NOT_IN_ERP, UNMAPPED, AccountMap, AccountProblem, AccountRule
from domain.payables import SUPPLIER_KEY_LENGTH, CostAccount, bill_key, bill_line, cost_account, supplier_for


def _expense(**changes: object) -> PayableExpense:
    values: dict[str, object] = {
        "id": "93400001",
        "project_id": "30100001",
        "person_id": "6100004",
        "person_name": "Omar Haddad",
        "person_email": "omar@northwind.example",
        "date": date(2026, 11, 3),
        "amount": Money.of("38.60", "GBP"),
        "category": "Travel",
        "reimbursable": True,
        "receipt_ref": "Kantata expense 93400001",
    }
    return PayableExpense.model_validate({**values, **changes})


def _map(*rules: AccountRule, chart: dict[str, bool] | None = None) -> AccountMap:
    return AccountMap(legal_entity="UK", erp="xero", rules=rules, chart=chart)


def test_a_reimbursable_expense_is_owed_to_the_person_and_a_vendors_to_the_vendor() -> None:
    person = supplier_for("kantata", _expense())
    vendor = supplier_for("kantata", _expense(vendor="  Grand   Hotel Ltd "))

    assert (person.key, person.name, person.email) == (
        "person:kantata:6100004",
        "Omar Haddad",
        "omar@northwind.example",
    )
    assert (vendor.key, vendor.name, vendor.email) == ("vendor:grand-hotel-ltd", "Grand Hotel Ltd", None)


def test_a_long_vendor_name_keeps_a_distinct_key_within_the_erps_limit() -> None:
    first = supplier_for("kantata", _expense(vendor="A" * 80 + " Consulting Partners One"))
    second = supplier_for("kantata", _expense(vendor="A" * 80 + " Consulting Partners Two"))

    assert len(first.key) <= SUPPLIER_KEY_LENGTH and len(second.key) <= SUPPLIER_KEY_LENGTH
    assert first.key != second.key


def test_the_category_rule_wins_over_the_catch_all_and_the_catch_all_serves_the_rest() -> None:
    accounts = _map(
        AccountRule(kind="expense_category", key="Travel", account_code="260", cost_account_code="493"),
        AccountRule(kind="expense_category", key="*", account_code="260", cost_account_code="429"),
    )

    assert cost_account(accounts, "Travel", legal_entity="UK") == CostAccount(account_code="493")
    assert cost_account(accounts, "Meals", legal_entity="UK") == CostAccount(account_code="429")


def test_no_cost_account_is_a_problem_naming_the_command_that_fixes_it() -> None:
    recharge_only = _map(AccountRule(kind="expense_category", key="*", account_code="260"))

    for accounts in (None, recharge_only):
        problem = cost_account(accounts, "Travel", legal_entity="UK")
        assert isinstance(problem, AccountProblem) and problem.rule == UNMAPPED
        assert "pssync accounts set UK expense_category Travel" in problem.reason
        assert "--cost-account" in problem.reason


def test_a_cost_account_the_erp_holds_archived_is_a_problem() -> None:
    accounts = _map(
        AccountRule(kind="expense_category", key="*", account_code="260", cost_account_code="493"),
        chart={"493": False, "260": True},
    )

    problem = cost_account(accounts, "Travel", legal_entity="UK")

    assert isinstance(problem, AccountProblem) and problem.rule == NOT_IN_ERP
    assert "'493'" in problem.reason and "archived" in problem.reason


def test_the_same_expenses_make_the_same_key_whatever_their_order_and_other_expenses_another() -> None:
    key = bill_key(
        psa="kantata",
        supplier_key="person:kantata:1",
        period="2026-11",
        legal_entity="UK",
        expense_ids=["2", "1"],
    )
    same = bill_key(
        psa="kantata",
        supplier_key="person:kantata:1",
        period="2026-11",
        legal_entity="UK",
        expense_ids=["1", "2"],
    )
    other = bill_key(
        psa="kantata", supplier_key="person:kantata:1", period="2026-11", legal_entity="UK", expense_ids=["1"]
    )

    assert key == same and key != other


def test_a_bill_line_references_the_receipt_and_carries_what_was_paid() -> None:
    line = bill_line(_expense(notes="Taxi to client"), "493")

    assert line.amount == Money.of("38.60", "GBP") and line.account_code == "493"
    assert line.description == "2026-11-03 Travel - Taxi to client (receipt: Kantata expense 93400001)"
