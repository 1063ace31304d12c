"""An amendment effective mid-period: each item is billed under the terms in force on its own date."""

from __future__ import annotations

from datetime import date

from canonical import BillingModel, Milestone, MilestoneCharge, Money, ProjectContract
from canonical.contract_versions import ContractVersion, CrmChange, version_in_force
from domain.rating import RatedWork, invoice_lines, rate_milestones, rate_time

from .billing_fixtures import CONTRACT, context, entry

FIXED = CONTRACT.model_copy(
    update={
        "billing_model": BillingModel.FIXED_FEE,
        "billing_schedule": (
            MilestoneCharge(milestone="Design sign-off", amount=Money.of("4000.00", "GBP")),
            MilestoneCharge(milestone="Go-live", amount=Money.of("6000.00", "GBP")),
        ),
    }
)
RAISED = FIXED.model_copy(
    update={
        "billing_schedule": (
            MilestoneCharge(milestone="Design sign-off", amount=Money.of("4800.00", "GBP")),
            MilestoneCharge(milestone="Go-live", amount=Money.of("7200.00", "GBP")),
        )
    }
)


def _versions() -> tuple[ContractVersion, ...]:
    won = ProjectContract(
        project_id="p1",
        psa="kantata",
        crm="salesforce",
        opportunity_id="006A",
        account_id="001A",
        customer_name="Globex Ltd",
        erp="xero",
        erp_customer_id="C-1",
        contract=FIXED,
    )
    return (
        ContractVersion(version=1, effective_from=date(1, 1, 1), contract=won),
        ContractVersion(
            version=2,
            effective_from=date(2026, 10, 15),
            contract=won.model_copy(update={"contract": RAISED}),
            cause=CrmChange(crm="salesforce", opportunity_id="006A", notification_id="n1"),
        ),
    )


def test_milestones_before_the_amendment_bill_the_old_schedule_and_after_it_the_new() -> None:
    versions = _versions()
    period_terms = version_in_force(versions, date(2026, 10, 31))
    assert period_terms is not None and period_terms.version == 2
    ctx = context().model_copy(
        update={"contract": period_terms.contract.contract, "contract_versions": versions}
    )
    milestones = [
        Milestone(id="m1", project_id="p1", name="Design sign-off", completed_on=date(2026, 10, 14)),
        Milestone(id="m2", project_id="p1", name="Go-live", completed_on=date(2026, 10, 15)),
    ]
    work = rate_milestones(RatedWork(), milestones, context=ctx, period_end=date(2026, 10, 31))
    lines = invoice_lines(work, context=ctx, period="2026-10")
    assert [(line.source_ids, line.amount) for line in lines] == [
        (("m1",), Money.of("4000.00", "GBP")),
        (("m2",), Money.of("7200.00", "GBP")),
    ]


def test_without_versions_the_contract_alone_prices_every_milestone() -> None:
    ctx = context().model_copy(update={"contract": RAISED})
    milestone = Milestone(id="m1", project_id="p1", name="Design sign-off", completed_on=date(2026, 10, 1))
    work = rate_milestones(RatedWork(), [milestone], context=ctx, period_end=date(2026, 10, 31))
    assert [line.amount for line in invoice_lines(work, context=ctx, period="2026-10")] == [
        Money.of("4800.00", "GBP")
    ]


def test_time_is_rated_on_each_entrys_date_by_the_psas_dated_rate_card() -> None:
    # The fixture's rate card raises the Consultant from 100 to 110 on 2026-10-15, as an amendment of the
    # rates in the PSA does: entries either side of the date keep their own rate.
    ctx = context()
    work = rate_time(
        RatedWork(),
        [entry("before", day=date(2026, 10, 14)), entry("after", day=date(2026, 10, 15))],
        context=ctx,
    )
    assert sorted((b.rate, b.hours) for b in work.buckets) == [
        (Money.of("100", "GBP"), 8),
        (Money.of("110", "GBP"), 8),
    ]
