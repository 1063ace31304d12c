"""Every invoice line books to the account finance mapped for it; a line whose account is missing, unknown
or archived is a finance exception naming the rule to fix, and the rest of the invoice goes on."""

from __future__ import annotations

from datetime import date

from canonical import BillingModel, ExceptionOwner, Milestone, MilestoneCharge, Money
from domain.account_mapping import NOT_IN_ERP, UNMAPPED, AccountMap, AccountProblem, AccountRule
from domain.rating import (
    RatedWork,
    invoice_lines,
    rate_expenses,
    rate_milestones,
    rate_time,
    retainer_account_problem,
)

from .billing_fixtures import context, entry, expense

RULES = (
    AccountRule(kind="role", key="Senior Consultant", account_code="201"),
    AccountRule(kind="service", key="ADVISORY", account_code="200"),
    AccountRule(kind="expense_category", key="Travel", account_code="260", cost_account_code="493"),
    AccountRule(kind="milestone", key="*", account_code="202"),
)
CHART = {"200": True, "201": True, "202": True, "260": True, "493": True, "299": False}


def mapping(rules: tuple[AccountRule, ...] = RULES, chart: dict[str, bool] | None = CHART) -> AccountMap:
    return AccountMap(legal_entity="UK", erp="xero", rules=rules, chart=chart)


def test_time_books_to_its_roles_account_else_the_services() -> None:
    ctx = context(accounts=mapping(), service_code="ADVISORY")
    work = rate_time(
        RatedWork(), [entry("e1"), entry("e2", role="Senior Consultant", resource="u2")], context=ctx
    )

    lines = invoice_lines(work, context=ctx, period="2026-10")

    assert {line.description: line.account_code for line in lines} == {
        "Professional services: Consultant": "200",
        "Professional services: Senior Consultant": "201",
    }


def test_an_unmapped_role_is_a_finance_exception_naming_the_rule_and_the_rest_is_billed() -> None:
    # No service rule and no `service *`: the Consultant's time has nowhere to book.
    ctx = context(accounts=mapping(rules=RULES[:1] + RULES[2:]), service_code="ADVISORY")
    work = rate_time(
        RatedWork(), [entry("e1"), entry("e2", role="Senior Consultant", resource="u2")], context=ctx
    )

    assert work.time_entry_ids == ("e2",)
    (rejected,) = work.rejected
    assert rejected.item_id == "e1"
    assert rejected.owner == ExceptionOwner.FINANCE
    assert rejected.rule == UNMAPPED
    assert "pssync accounts set UK role Consultant --account CODE" in rejected.reason
    assert [line.account_code for line in invoice_lines(work, context=ctx, period="2026-10")] == ["201"]


def test_an_archived_or_unknown_account_stops_its_lines_and_names_the_mapping() -> None:
    rules = (
        AccountRule(kind="role", key="Senior Consultant", account_code="299"),
        AccountRule(kind="service", key="*", account_code="200"),
        AccountRule(kind="expense_category", key="*", account_code="777"),
    )
    ctx = context(accounts=mapping(rules=rules))
    work = rate_time(
        RatedWork(), [entry("e1"), entry("e2", role="Senior Consultant", resource="u2")], context=ctx
    )
    work = rate_expenses(work, [expense("x1")], context=ctx)

    assert work.time_entry_ids == ("e1",) and work.expense_ids == ()
    reasons = {item.item_id: item for item in work.rejected}
    assert reasons["e2"].rule == NOT_IN_ERP and reasons["x1"].rule == NOT_IN_ERP
    assert "'299' mapped by rule UK role 'Senior Consultant' is archived in xero" in reasons["e2"].reason
    assert "'777' mapped by rule UK expense_category '*' does not exist in xero" in reasons["x1"].reason


def test_expenses_book_to_their_categorys_recharge_account() -> None:
    ctx = context(accounts=mapping(), service_code="ADVISORY")
    work = rate_expenses(RatedWork(), [expense("x1"), expense("x2", "50")], context=ctx)

    (line,) = invoice_lines(work, context=ctx, period="2026-10")

    assert line.account_code == "260"
    assert line.amount == Money.of("275.00", "GBP")  # amounts are unchanged: only where the line books


def test_an_entity_without_rules_posts_to_the_erps_default_account() -> None:
    ctx = context(accounts=mapping(rules=()))
    work = rate_expenses(rate_time(RatedWork(), [entry("e1")], context=ctx), [expense("x1")], context=ctx)

    assert [line.account_code for line in invoice_lines(work, context=ctx, period="2026-10")] == [None, None]
    assert work.rejected == ()


def test_before_any_reference_sync_mapped_accounts_are_taken_on_trust() -> None:
    ctx = context(accounts=mapping(chart=None), service_code="ADVISORY")
    work = rate_time(RatedWork(), [entry("e1")], context=ctx)

    assert [line.account_code for line in invoice_lines(work, context=ctx, period="2026-10")] == ["200"]


def test_milestones_book_to_the_milestone_account_or_are_rejected_for_finance() -> None:
    fixed = {
        "billing_model": BillingModel.FIXED_FEE,
        "billing_schedule": (MilestoneCharge(milestone="Design", amount=Money.of("1000", "GBP")),),
    }
    done = Milestone(id="m1", project_id="p1", name="Design", completed_on=date(2026, 10, 3))
    mapped = context(accounts=mapping(), contract=fixed)
    unmapped = context(accounts=mapping(rules=RULES[:3]), contract=fixed)

    billed = rate_milestones(RatedWork(), [done], context=mapped, period_end=date(2026, 10, 31))
    refused = rate_milestones(RatedWork(), [done], context=unmapped, period_end=date(2026, 10, 31))

    assert [line.account_code for line in invoice_lines(billed, context=mapped, period="2026-10")] == ["202"]
    assert refused.milestones == ()
    assert [(r.item_id, r.rule, r.owner) for r in refused.rejected] == [
        ("m1", UNMAPPED, ExceptionOwner.FINANCE)
    ]


def test_a_retainer_whose_fee_is_unmapped_is_named_before_anything_is_rated() -> None:
    retainer = {"billing_model": BillingModel.RETAINER, "retainer_amount": Money.of("3000", "GBP")}
    without = context(accounts=mapping(), contract=retainer, service_code="ADVISORY")
    with_fee = context(
        accounts=mapping(rules=(*RULES, AccountRule(kind="retainer", key="ADVISORY", account_code="202"))),
        contract=retainer,
        service_code="ADVISORY",
    )

    problem = retainer_account_problem(without)
    lines = invoice_lines(
        RatedWork(), context=with_fee, period="2026-10", retainer_fee=Money.of("3000", "GBP")
    )

    assert isinstance(problem, AccountProblem) and problem.rule == UNMAPPED
    assert "retainer ADVISORY --account CODE" in problem.reason
    assert retainer_account_problem(with_fee) is None
    assert [line.account_code for line in lines] == ["202"]


def test_rules_whose_accounts_the_chart_lacks_are_listed_with_the_account_at_fault() -> None:
    rules = (
        AccountRule(kind="expense_category", key="Travel", account_code="260", cost_account_code="999"),
        AccountRule(kind="service", key="*", account_code="200"),
    )

    problems = mapping(rules=rules).problems()

    assert [(rule.key, "cost account '999'" in reason) for rule, reason in problems] == [("Travel", True)]
