"""Kantata's side of payables: approved expenses someone is owed for, and the ERP bill they were put on."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from canonical import Money, Period
from canonical.payables import PayableExpense
from connectors.errors import Conflict
from connectors.kantata import KantataConnector
from connectors.roles import PsaPayables
from sandboxes.kantata.seed import KantataSeeder

from .conftest import CURRENCY, People
from .test_billing_reads import _fixed_fee_spec

# A month no other test logs expenses in, so the reads below see only this module's expenses.
DAY = date(2031, 3, 14)
PERIOD = Period.of(DAY)


async def _payables(psa: KantataConnector, project_id: str) -> dict[str, PayableExpense]:
    found: dict[str, PayableExpense] = {}
    async for page in psa.payable_expenses(PERIOD):
        found.update({e.id: e for e in page.items if e.project_id == project_id})
    return found


async def _project(psa: KantataConnector, seeder: KantataSeeder, people: People) -> str:
    project = await psa.ensure_project(_fixed_fee_spec())
    await seeder.add_to_project(project.id, [people.consultant])
    return project.id


async def test_reimbursable_and_vendor_expenses_are_payable_and_others_are_not(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    assert isinstance(psa, PsaPayables)
    project_id = await _project(psa, seeder, people)
    user = people.consultant.user_id
    taxi = await seeder.log_expense(
        project_id, day=DAY, amount=Money.of("42.50", CURRENCY), user_id=user, reimbursable=True
    )
    hotel = await seeder.log_expense(
        project_id, day=DAY, amount=Money.of("310.00", CURRENCY), user_id=user, vendor="Grand Hotel Ltd"
    )
    await seeder.log_expense(project_id, day=DAY, amount=Money.of("9.99", CURRENCY), user_id=user)
    await seeder.log_expense(
        project_id, day=date(2031, 4, 1), amount=Money.of("5.00", CURRENCY), user_id=user, reimbursable=True
    )

    found = await _payables(psa, project_id)

    assert set(found) == {taxi, hotel}
    assert found[taxi].reimbursable and found[taxi].vendor is None
    assert found[taxi].amount == Money.of("42.50", CURRENCY)
    assert found[taxi].person_id == user
    assert found[taxi].person_name == people.consultant.full_name
    assert found[taxi].person_email == people.consultant.email
    assert found[taxi].receipt_ref == f"Kantata expense {taxi}"
    assert found[hotel].vendor == "Grand Hotel Ltd" and not found[hotel].reimbursable
    assert all(e.bill_number is None and not e.reimbursed for e in found.values())


async def test_an_expense_carries_its_bill_until_reimbursed_and_never_moves_to_another_bill(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project_id = await _project(psa, seeder, people)
    taxi = await seeder.log_expense(
        project_id,
        day=DAY,
        amount=Money.of("18.00", CURRENCY),
        user_id=people.consultant.user_id,
        reimbursable=True,
    )
    number = f"EXP-{uuid.uuid4().hex[:8].upper()}"

    await psa.mark_on_bill(expense_ids=[taxi], bill_number=number)
    await psa.mark_on_bill(expense_ids=[taxi], bill_number=number)
    on_bill = (await _payables(psa, project_id))[taxi]
    assert (on_bill.bill_number, on_bill.reimbursed) == (number, False)

    with pytest.raises(Conflict):
        await psa.mark_on_bill(expense_ids=[taxi], bill_number="EXP-OTHER")

    await psa.mark_reimbursed(expense_ids=[taxi], bill_number=number)
    # A late retry of the earlier step must not turn a paid bill back into an unpaid one.
    await psa.mark_on_bill(expense_ids=[taxi], bill_number=number)
    paid = (await _payables(psa, project_id))[taxi]
    assert (paid.bill_number, paid.reimbursed) == (number, True)
