"""Reconciliation checks where each posted line booked (real Temporal, sandboxes and ledger): a period billed
on finance's mapped accounts with the project's dimensions agrees; a line a person reclassified in Xero
afterwards (another account, its tracking removed) is a difference for finance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from devstack.story import ACCOUNT_MAPPING, previous_period
from domain.account_mapping import AccountRule
from ledger.account_mapping import set_account_mapping
from sandboxes.xero.seed import XeroFinanceUser

from ..support.system import System
from .conftest import prepared_story
from .test_reconciliation import billed_project, reconcile


def map_demo_accounts(system: System) -> None:
    with system.database.session() as session:
        for entity, kind, key, account, cost in ACCOUNT_MAPPING:
            set_account_mapping(
                session,
                legal_entity=entity,
                rule=AccountRule(kind=kind, key=key, account_code=account, cost_account_code=cost),  # type: ignore[arg-type]
                actor="Fiona Finance <fiona@northwind.example>",
            )


async def test_lines_reclassified_in_the_erp_after_posting_are_differences_for_finance(
    ts_system: System,
) -> None:
    map_demo_accounts(ts_system)
    story = await prepared_story(ts_system)
    period = previous_period(datetime.now(UTC).date())
    project_id, billed = await billed_project(ts_system, story, period)
    assert billed.invoice is not None

    agreed = await reconcile(ts_system, period)

    assert [d for d in agreed.differences if d.project_id == project_id] == []
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        invoice = await finance.get_invoice(billed.invoice.invoice_id)
        assert {line["AccountCode"] for line in invoice["LineItems"]} == {"200"}
        assert all(len(line["Tracking"]) == 2 for line in invoice["LineItems"])
        first, *rest = invoice["LineItems"]
        # Finance moves the first line to Other Revenue by hand and drops its tracking.
        lines = [
            {
                "Description": line["Description"],
                "Quantity": Decimal(line["Quantity"]),
                "UnitAmount": Decimal(line["UnitAmount"]),
                "AccountCode": "260" if line is first else line["AccountCode"],
                "TaxType": line["TaxType"],
                "Tracking": [] if line is first else line["Tracking"],
            }
            for line in [first, *rest]
        ]
        await finance.call(
            "POST",
            f"/Invoices/{billed.invoice.invoice_id}",
            {"Invoices": [{"InvoiceID": billed.invoice.invoice_id, "LineItems": lines}]},
            params={"unitdp": 4},
            idempotency_key=str(uuid.uuid4()),
        )
    finally:
        await finance.aclose()

    result = await reconcile(ts_system, period)

    found = {d.kind: d for d in result.differences if d.project_id == project_id}
    assert set(found) == {"line_account_differs", "line_dimensions_differ"}
    assert all(d.owner == "finance" for d in found.values())
    assert (
        "books to account 260; rule UK service 'ADV-TM' maps it to 200"
        in found["line_account_differs"].reason
    )
    assert (
        f"1 of {len(lines)} lines of invoice {billed.invoice.number}"
        in found["line_dimensions_differ"].reason
    )
