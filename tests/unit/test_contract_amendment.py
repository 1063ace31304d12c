"""A change to a won deal: unchanged, a new version, or finance's call (domain.contract_amendment)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import example, given
from hypothesis import strategies as st

from canonical import (
    Account,
    Address,
    Contact,
    Milestone,
    MilestoneCharge,
    Money,
    Opportunity,
    ProjectContract,
)
from canonical.contract_versions import ContractVersion, CrmChange, FieldChange
from canonical.money import minor_units
from config import default_entities
from domain.billing_policy import BillingHistory, PriorPosting
from domain.contract_amendment import (
    billed_so_far,
    decide_amendment,
    rebalanced_schedule,
    settled_milestones,
)
from domain.project_setup import project_spec

UK = next(e for e in default_entities() if e.code == "UK")
CAUSE = CrmChange(
    crm="salesforce",
    opportunity_id="006000000000009AAA",
    notification_id="04l000000000001",
    modified_at=datetime(2026, 12, 15, 10, 0, tzinfo=UTC),
)


def _deal(service_code: str = "ADV-TM", amount: str = "100000.00", **changes: object) -> Opportunity:
    deal = Opportunity(
        id="006000000000009AAA",
        name="Globex rollout",
        stage="Closed Won",
        is_won=True,
        close_date=date(2026, 11, 1),
        amount=Money.of(amount, "GBP"),
        account=Account(
            id="001000000000009AAA",
            name="Globex Ltd",
            billing_address=Address(street="1 Way", city="London", country="GB"),
        ),
        bill_to_contact=Contact(id="003000000000009AAA", last_name="Smith"),
        currency="GBP",
        tax_code="OUTPUT2",
        service_code=service_code,
        project_manager="Dana Whitfield",
    )
    return deal.model_copy(update=changes)


def _won(deal: Opportunity) -> ContractVersion:
    spec = project_spec("salesforce", deal, UK)
    contract = ProjectContract(
        project_id="981",
        psa="kantata",
        crm="salesforce",
        opportunity_id=deal.id,
        account_id=deal.account.id,
        customer_name=deal.account.name,
        erp="xero",
        erp_customer_id="C-1",
        contract=spec.contract,
        service_code=spec.service_code,
        budget=spec.budget,
    )
    return ContractVersion(version=1, effective_from=date(1, 1, 1), contract=contract)


def _history(*amounts: tuple[str, str, str]) -> BillingHistory:
    return BillingHistory(
        postings=tuple(
            PriorPosting(
                period=period, number=f"INV-{i}", amount=Money.of(amount, currency), idempotency_key=f"k{i}"
            )
            for i, (period, amount, currency) in enumerate(amounts)
        )
    )


def _decide(
    current: ContractVersion, deal: Opportunity, history: BillingHistory, on: date = date(2026, 12, 15)
):
    return decide_amendment(
        current=current,
        spec=project_spec("salesforce", deal, UK),
        history=history,
        cause=CAUSE,
        effective_from=on,
    )


def test_a_deal_read_again_unchanged_changes_nothing():
    current = _won(_deal(not_to_exceed=Money.of("120000.00", "GBP")))
    decision = _decide(current, _deal(not_to_exceed=Money.of("120000.00", "GBP")), _history())
    assert decision.outcome == "unchanged" and decision.version is None


def test_a_raised_cap_is_version_two_from_the_effective_date_with_the_change_audited():
    current = _won(_deal(not_to_exceed=Money.of("120000.00", "GBP")))
    decision = _decide(
        current,
        _deal(not_to_exceed=Money.of("150000.00", "GBP")),
        _history(("2026-11", "40000.00", "GBP")),
    )
    assert decision.outcome == "amend"
    assert decision.version is not None
    assert decision.version.version == 2
    assert decision.version.effective_from == date(2026, 12, 15)
    assert decision.version.contract.contract.not_to_exceed == Money.of("150000.00", "GBP")
    assert decision.version.cause is not None
    assert decision.version.cause.changes == (
        FieldChange(field="not_to_exceed", old="120000.00 GBP", new="150000.00 GBP"),
    )
    # Parties and ERP records made at closed-won stay as they were.
    assert decision.version.contract.erp_customer_id == "C-1"


def test_a_raised_fixed_fee_reschedules_the_milestones_and_the_budget():
    current = _won(_deal("IMP-FF", "50000.00"))
    decision = _decide(current, _deal("IMP-FF", "60000.00"), _history())
    assert decision.outcome == "amend"
    fields = {change.field: change for change in decision.changes}
    assert set(fields) == {"budget", "not_to_exceed", "billing_schedule"}
    assert fields["billing_schedule"].new == "Design sign-off: 24000.00 GBP; Go-live: 36000.00 GBP"


def test_a_cap_cut_below_what_is_invoiced_goes_to_finance_with_the_figures():
    current = _won(_deal(not_to_exceed=Money.of("120000.00", "GBP")))
    decision = _decide(
        current,
        _deal(not_to_exceed=Money.of("50000.00", "GBP")),
        _history(("2026-10", "30000.00", "GBP"), ("2026-11", "30000.00", "GBP")),
    )
    assert decision.outcome == "refuse" and decision.version is None
    assert decision.billed.total == Money.of("60000.00", "GBP")
    assert decision.new_ceiling == Money.of("50000.00", "GBP")
    assert any("10000.00 GBP above it" in reason for reason in decision.reasons)


def test_a_billing_model_change_on_an_invoiced_project_goes_to_finance():
    current = _won(_deal("ADV-TM"))
    decision = _decide(current, _deal("IMP-FF", "500000.00"), _history(("2026-11", "100.00", "GBP")))
    assert decision.outcome == "refuse"
    assert any("billing model" in reason for reason in decision.reasons)


def test_a_service_change_that_switches_the_rate_card_set_goes_to_finance_even_before_invoicing():
    current = _won(_deal("ADV-TM"))
    decision = _decide(current, _deal("DIG-TM"), _history())
    assert decision.outcome == "refuse"
    assert decision.reasons == (
        "service ADV-TM -> DIG-TM changes the rate card set the project is staffed at, which ps-sync does "
        "not switch on a running project",
    )


def test_an_amendment_back_dated_into_an_invoiced_period_goes_to_finance():
    current = _won(_deal(not_to_exceed=Money.of("120000.00", "GBP")))
    decision = _decide(
        current,
        _deal(not_to_exceed=Money.of("150000.00", "GBP")),
        _history(("2026-11", "100.00", "GBP"), ("2026-12", "100.00", "GBP")),
        on=date(2026, 11, 20),
    )
    assert decision.outcome == "refuse"
    assert decision.reasons == (
        "effective 2026-11-20, before 2026-12 already invoiced at the old terms: re-billing an issued "
        "invoice is a credit note",
    )
    # The month it takes effect in may hold an invoice: what that billed stays as billed.
    same_month = _decide(
        current,
        _deal(not_to_exceed=Money.of("150000.00", "GBP")),
        _history(("2026-11", "100.00", "GBP")),
        on=date(2026, 11, 20),
    )
    assert same_month.outcome == "amend"


def test_a_move_to_another_entity_or_currency_is_not_an_amendment():
    current = _won(_deal())
    moved = _deal(currency="EUR", amount="100000.00").model_copy(
        update={"amount": Money.of("100000.00", "EUR")}
    )
    decision = _decide(current, moved, _history())
    assert decision.outcome == "refuse"
    assert "new contract" in decision.reasons[0]


def test_a_contract_recorded_without_a_budget_does_not_see_the_budget_as_changed():
    old = _won(_deal())
    current = old.model_copy(update={"contract": old.contract.model_copy(update={"budget": None})})
    assert _decide(current, _deal(), _history()).outcome == "unchanged"


# --- the money comparisons, against an oracle in fractions -------------------------------------------------

CURRENCIES = ("GBP", "EUR", "JPY", "USD")
cents = st.integers(min_value=-5_000_000, max_value=20_000_000)


def _amount(cents_: int) -> str:
    return str(Decimal(cents_).scaleb(-2))


@given(
    currency=st.sampled_from(CURRENCIES),
    cap_cents=st.integers(min_value=1, max_value=30_000_000),
    postings=st.lists(
        st.tuples(st.integers(min_value=1, max_value=12), cents, st.sampled_from(CURRENCIES)), max_size=12
    ),
)
def test_a_cap_change_is_refused_exactly_when_the_contract_currency_invoiced_exceeds_it(
    currency: str, cap_cents: int, postings: list[tuple[int, int, str]]
) -> None:
    deal = _deal(currency=currency, amount="1.00").model_copy(update={"amount": Money.of("1.00", currency)})
    current = _won(deal.model_copy(update={"not_to_exceed": Money.of("99999999.99", currency)}))
    history = _history(*((f"2025-{m:02d}", _amount(c), cur) for m, c, cur in postings))
    decision = _decide(
        current, deal.model_copy(update={"not_to_exceed": Money.of(_amount(cap_cents), currency)}), history
    )

    billed = sum((Fraction(c, 100) for _, c, cur in postings if cur == currency), Fraction(0))
    assert Fraction(decision.billed.total.amount) == billed
    assert decision.outcome == ("refuse" if billed > Fraction(cap_cents, 100) else "amend")
    per_period: dict[str, Fraction] = {}
    for m, c, cur in postings:
        if cur == currency:
            per_period[f"2025-{m:02d}"] = per_period.get(f"2025-{m:02d}", Fraction(0)) + Fraction(c, 100)
    assert {p: Fraction(v.amount) for p, v in decision.billed.by_period} == per_period


@given(
    fee_cents=st.integers(min_value=100, max_value=50_000_000),
    invoiced=st.lists(st.integers(min_value=1, max_value=5_000_000), max_size=6),
)
def test_a_fixed_fee_cut_is_refused_exactly_when_invoiced_exceeds_the_new_fee(
    fee_cents: int, invoiced: list[int]
):
    current = _won(_deal("IMP-FF", "99999999.99"))
    history = _history(*((f"2025-{i + 1:02d}", _amount(c), "GBP") for i, c in enumerate(invoiced)))
    decision = _decide(current, _deal("IMP-FF", _amount(fee_cents)), history)
    refused = Fraction(sum(invoiced), 100) > Fraction(fee_cents, 100)
    assert decision.outcome == ("refuse" if refused else "amend")
    if decision.outcome == "amend":
        assert decision.version is not None
        schedule = decision.version.contract.contract.billing_schedule
        assert sum(Fraction(c.amount.amount) for c in schedule) == Fraction(fee_cents, 100)


def test_billed_so_far_nets_credits_per_period():
    history = _history(
        ("2026-11", "500.00", "GBP"), ("2026-11", "-120.50", "GBP"), ("2026-10", "9.99", "EUR")
    )
    billed = billed_so_far(history, "GBP")
    assert billed.total == Money.of("379.50", "GBP")
    assert billed.by_period == (("2026-11", Money.of("379.50", "GBP")),)


# --- a fee changed after some milestones are billed ------------------------------------------------------


def test_a_raised_fee_after_a_billed_milestone_keeps_its_charge_and_puts_the_rest_on_the_others():
    current = _won(_deal("IMP-FF", "10000.00"))
    decision = decide_amendment(
        current=current,
        spec=project_spec("salesforce", _deal("IMP-FF", "12000.00"), UK),
        history=_history(("2026-11", "4000.00", "GBP")),
        cause=CAUSE,
        effective_from=date(2026, 12, 15),
        settled=settled_milestones(current.contract.contract.billing_schedule, [], date(2026, 12, 15))
        - {"Go-live"},
    )
    assert decision.outcome == "amend" and decision.version is not None
    assert decision.version.contract.contract.billing_schedule == (
        MilestoneCharge(milestone="Design sign-off", amount=Money.of("4000.00", "GBP")),
        MilestoneCharge(milestone="Go-live", amount=Money.of("8000.00", "GBP")),
    )


def test_settled_milestones_are_the_billed_and_those_completed_before_the_amendment():
    schedule = (
        MilestoneCharge(milestone="A", amount=Money.of("1.00", "GBP")),
        MilestoneCharge(milestone="B", amount=Money.of("1.00", "GBP")),
        MilestoneCharge(milestone="C", amount=Money.of("1.00", "GBP")),
        MilestoneCharge(milestone="D", amount=Money.of("1.00", "GBP")),
    )
    unbilled = [
        Milestone(id="b", project_id="p", name="B", completed_on=date(2026, 12, 14)),
        Milestone(id="c", project_id="p", name="C", completed_on=date(2026, 12, 15)),
        Milestone(id="d", project_id="p", name="D"),
    ]
    assert settled_milestones(schedule, unbilled, date(2026, 12, 15)) == {"A", "B"}


def test_a_fee_cut_below_the_settled_charges_goes_to_finance():
    current = _won(_deal("IMP-FF", "10000.00"))
    unbilled = [Milestone(id="d", project_id="p", name="Design sign-off", completed_on=date(2026, 12, 1))]
    decision = decide_amendment(
        current=current,
        spec=project_spec("salesforce", _deal("IMP-FF", "3000.00"), UK),
        history=_history(),
        cause=CAUSE,
        effective_from=date(2026, 12, 15),
        settled=settled_milestones(current.contract.contract.billing_schedule, unbilled, date(2026, 12, 15)),
    )
    assert decision.outcome == "refuse"
    assert any("nothing (or less than nothing)" in reason for reason in decision.reasons)


@given(
    currency=st.sampled_from(CURRENCIES),
    old_cents=st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=2, max_size=6),
    new_cents=st.lists(
        st.one_of(st.integers(min_value=1, max_value=9), st.integers(min_value=1, max_value=5_000_000)),
        min_size=2,
        max_size=6,
    ),
    settled_mask=st.lists(st.booleans(), min_size=6, max_size=6),
    fee_cents=st.one_of(
        st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40_000_000)
    ),
)
# Four equal shares of what is left, each rounded half up, would give away more than is left.
@example(
    currency="GBP",
    old_cents=[1, 1, 1, 1, 1],
    new_cents=[1, 1, 1, 1, 1],
    settled_mask=[True, False, False, False, False, False],
    fee_cents=3,
)
def test_a_rebalanced_schedule_keeps_settled_charges_and_adds_up_to_the_fee(
    currency: str, old_cents: list[int], new_cents: list[int], settled_mask: list[bool], fee_cents: int
) -> None:
    # In the currency's smallest unit (a cent, or a yen), so every amount is one the currency holds.
    unit = Fraction(1, 10 ** minor_units(currency))

    def money(subunits: int) -> Money:
        return Money.of(str(Decimal(subunits).scaleb(-minor_units(currency))), currency)

    def charges(units: list[int]) -> tuple[MilestoneCharge, ...]:
        return tuple(MilestoneCharge(milestone=f"M{i}", amount=money(u)) for i, u in enumerate(units))

    old, new = charges(old_cents), charges(new_cents)
    settled = frozenset(f"M{i}" for i, flag in enumerate(settled_mask) if flag)
    result = rebalanced_schedule(new, old, settled, money(fee_cents))

    fixed = {f"M{i}": u * unit for i, u in enumerate(old_cents) if f"M{i}" in settled and i < len(new_cents)}
    left = fee_cents * unit - sum(fixed.values(), Fraction(0))
    open_names = [c.milestone for c in new if c.milestone not in fixed]
    if not fixed:
        assert result == new
    elif left < 0 or (not open_names and left != 0):
        assert result is None
    else:
        assert result is not None
        assert [c.milestone for c in result] == [c.milestone for c in new]
        got = {c.milestone: Fraction(c.amount.amount) for c in result}
        assert all(got[name] == amount for name, amount in fixed.items())
        assert sum(got.values(), Fraction(0)) == fee_cents * unit
        assert all(got[name] >= 0 and (got[name] / unit).denominator == 1 for name in open_names)
