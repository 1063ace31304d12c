"""Which recognition terms a contract gets, the month-end account rules finance sets, how a posted journal
is named, and how PSA time becomes month-end's worked time with the cost rate stamped on it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from activities.month_end import worked_and_rates
from activities.month_end_posting import journal_reference
from canonical import BillingModel, Money
from canonical.projects import Contract, MilestoneCharge
from canonical.worked_time import CostedTimeEntry
from domain.account_mapping import AccountChoice, AccountMap, AccountProblem, AccountRule
from domain.month_end import (
    AccountRole,
    Finding,
    JournalKind,
    MilestoneAcceptance,
    PercentageOfCompletion,
    StraightLineRetainer,
    TimeAndMaterials,
)
from domain.month_end_terms import recognition_terms

CAPTURED = date(2026, 9, 17)


def _contract(model: BillingModel, **terms: object) -> Contract:
    return Contract(legal_entity="UK", currency="GBP", billing_model=model, tax_code="OUTPUT2", **terms)  # type: ignore[arg-type]


def test_time_and_materials_is_recognised_as_invoiced_plus_wip() -> None:
    terms = recognition_terms(
        "p", _contract(BillingModel.TIME_AND_MATERIALS), budget_hours=None, captured_on=CAPTURED
    )
    assert terms == TimeAndMaterials()


def test_a_fixed_fee_is_by_milestone_unless_finance_sets_budget_hours() -> None:
    schedule = (
        MilestoneCharge(milestone="Design", amount=Money.of("4000.00", "GBP")),
        MilestoneCharge(milestone="Go-live", amount=Money.of("6000.01", "GBP")),
    )
    contract = _contract(BillingModel.FIXED_FEE, billing_schedule=schedule)
    fee = Money.of("10000.01", "GBP")
    assert recognition_terms("p", contract, budget_hours=None, captured_on=CAPTURED) == MilestoneAcceptance(
        fee=fee
    )
    assert recognition_terms("p", contract, budget_hours=Decimal("37.5"), captured_on=CAPTURED) == (
        PercentageOfCompletion(fee=fee, budget_hours=Decimal("37.5"))
    )


def test_a_retainer_is_straight_line_from_the_month_its_contract_was_captured() -> None:
    contract = _contract(BillingModel.RETAINER, retainer_amount=Money.of("3000.00", "GBP"))
    assert recognition_terms("p", contract, budget_hours=None, captured_on=CAPTURED) == StraightLineRetainer(
        amount_per_period=Money.of("3000.00", "GBP"), start=date(2026, 9, 1)
    )


@pytest.mark.parametrize(
    ("model", "rule"),
    [
        (BillingModel.FIXED_FEE, "fixed_fee_without_schedule"),
        (BillingModel.RETAINER, "retainer_without_amount"),
    ],
)
def test_a_contract_the_rules_cannot_read_is_a_finding_not_a_guess(model: BillingModel, rule: str) -> None:
    terms = recognition_terms("p7", _contract(model), budget_hours=None, captured_on=CAPTURED)
    assert isinstance(terms, Finding) and terms.rule == rule and terms.project_id == "p7"


def test_journal_rules_map_roles_and_alone_do_not_put_invoices_under_the_mapping() -> None:
    rules = (AccountRule(kind="journal", key="wip", account_code="630"),)
    accounts = AccountMap(legal_entity="UK", erp="xero", rules=rules, chart={"630": True})
    assert not accounts.in_use
    chosen = accounts.for_journal(AccountRole.WIP)
    assert isinstance(chosen, AccountChoice) and chosen.account_code == "630"
    missing = accounts.for_journal(AccountRole.COST_CLEARING)
    assert isinstance(missing, AccountProblem)
    assert "pssync accounts set UK journal cost_clearing --account CODE" in missing.reason
    archived = AccountMap(legal_entity="UK", erp="xero", rules=rules, chart={"630": False})
    assert isinstance(archived.for_journal(AccountRole.WIP), AccountProblem)


def test_a_journal_rule_keys_a_month_end_role() -> None:
    with pytest.raises(ValidationError, match="month-end account role"):
        AccountRule(kind="journal", key="Consultant", account_code="630")


def test_references_name_kind_entity_period_currency_and_adjustment() -> None:
    assert (
        journal_reference(JournalKind.RECOGNITION, "UK", "2026-11", currency=None, number=0)
        == "REVREC-UK-2026-11"
    )
    assert journal_reference(JournalKind.WIP_REVERSAL, "UK", "2026-11", currency=None, number=2) == (
        "WIP-UK-2026-11-REV-ADJ2"
    )
    assert journal_reference(JournalKind.LABOUR_COST, "EU", "2026-11", currency="USD", number=1) == (
        "LABOUR-EU-2026-11-USD-ADJ1"
    )


def _entry(id: str, person: str, cost: str | None) -> CostedTimeEntry:
    return CostedTimeEntry(
        id=id,
        project_id="p",
        person_id=person,
        date=date(2026, 11, 3),
        minutes=445,
        billable=True,
        cost_rate=None if cost is None else Money.of(cost, "GBP"),
    )


def test_each_entry_is_costed_at_its_stamped_rate_else_the_reference_rate_else_none() -> None:
    entries = [
        _entry("1", "ann", "61.37"),
        _entry("2", "ann", "70.00"),
        _entry("3", "bo", None),
        _entry("4", "cy", None),
    ]
    worked, histories = worked_and_rates(entries, {"bo": Money.of("55.55", "GBP")})

    rates = {h.person: h.rate_on(date(2026, 11, 3)) for h in histories}
    costed = {w.id: rates.get(w.person) for w in worked}
    assert costed == {
        "1": Money.of("61.37", "GBP"),
        "2": Money.of("70.00", "GBP"),
        "3": Money.of("55.55", "GBP"),
        "4": None,
    }
