"""ReferenceSync checks finance's account mapping against the chart it has just read from each ERP: a rule
pointing at an account the ERP lacks (or holds archived) is a finance exception naming the rule, and it is
resolved once the rule is corrected."""

from __future__ import annotations

from domain.account_mapping import AccountRule
from ledger.account_mapping import set_account_mapping
from ledger.records import ExceptionItem
from ledger.repository import get_exception_by_dedupe_key
from ledger.vocab import ExceptionStatus

from ..support.system import System
from .test_reference_sync import sync

KEY = "reference_sync:xero:UK:account_mapping:expense_category:Travel"


def set_rule(system: System, account: str, cost: str) -> None:
    with system.database.session() as session:
        set_account_mapping(
            session,
            legal_entity="UK",
            rule=AccountRule(
                kind="expense_category", key="Travel", account_code=account, cost_account_code=cost
            ),
            actor="Fiona Finance <fiona@northwind.example>",
        )


def item(system: System) -> ExceptionItem | None:
    with system.database.session() as session:
        return get_exception_by_dedupe_key(session, dedupe_key=KEY)


async def test_a_rule_naming_an_account_the_erp_lacks_is_raised_for_finance_then_resolved(
    ts_system: System,
) -> None:
    uk = ts_system.settings.entity("UK")
    set_rule(ts_system, "260", "499")

    first = await sync(ts_system, uk)

    (gap,) = [g for g in first.gaps if g.kind == "account_mapping"]
    assert gap.code == "expense_category:Travel" and gap.legal_entity == "UK"
    raised = item(ts_system)
    assert raised is not None and raised.status == ExceptionStatus.OPEN and raised.owner == "finance"
    assert "cost account '499' mapped by rule UK expense_category 'Travel' does not exist in xero" in (
        raised.reason
    )

    set_rule(ts_system, "260", "493")
    second = await sync(ts_system, uk)

    assert [g for g in second.gaps if g.kind == "account_mapping"] == []
    settled = item(ts_system)
    assert settled is not None and settled.status == ExceptionStatus.RESOLVED
