"""A post whose create the budget holds back waits inside its attempt: Xero sees one look-up and one
create, not a look-up again on every retry. An ordinary call held as long fails its attempt (test_client)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.erp import ErpActivities, PostInvoiceInput
from activities.erp_router import ErpRouter
from canonical import Account, LegalEntity
from connectors.xero import XeroConnector
from ledger.database import Database
from sandboxes.xero.control import XeroSandboxControl

from ..contract.erp_contract import build_invoice, net_thousand_lines
from .held_budget import HoldsOneCall


@pytest.fixture
def database(tmp_path: Path) -> Database:
    database = Database.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    database.migrate()
    return database


async def test_a_held_create_is_waited_out_so_the_post_costs_a_look_up_and_a_create(
    erp: XeroConnector,
    control: XeroSandboxControl,
    entity: LegalEntity,
    seed_account: Account,
    database: Database,
) -> None:
    customer_id = await erp.create_customer(seed_account, entity=entity, idempotency_key=f"t:{uuid.uuid4()}")
    invoice = build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity))
    activities = ErpActivities(ErpRouter({"xero": erp}, [entity]), database)
    # Any hold at all would fail an ordinary call's attempt.
    erp.client.max_wait_in_attempt = 0.0
    # The look-up goes; the create after it is held back, as a spent minute would hold it.
    erp.client.pacer = HoldsOneCall(0.5, nth=2)
    before = (await control.stats())["calls_by_operation"]

    environment = ActivityEnvironment()
    # As the workflows schedule it: half an hour to the attempt, heartbeats meanwhile.
    environment.info = replace(environment.info, start_to_close_timeout=timedelta(minutes=30))
    result = await environment.run(
        activities.post_invoice, PostInvoiceInput(invoice=invoice, idempotency_key=f"t:{uuid.uuid4()}")
    )

    after = (await control.stats())["calls_by_operation"]
    sent = {op: after.get(op, 0) - before.get(op, 0) for op in after if after.get(op, 0) != before.get(op, 0)}
    assert result.created and result.posted.invoice_id
    assert sent == {"getInvoices": 1, "createInvoices": 1}
    assert erp.client.waited_seconds == pytest.approx(0.5)
    database.dispose()
