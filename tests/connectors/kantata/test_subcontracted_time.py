"""Kantata's side of subcontracted time: a member whose `Supplier` User field names a firm logs approved time,
which carries the member's cost rate when it was logged and, once billed, the ERP bill it is on."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from canonical import Money, Period
from canonical.payables import SubcontractedTime
from connectors.errors import Conflict
from connectors.kantata import KantataConnector
from sandboxes.kantata.seed import KantataSeeder, TimeLog

from .conftest import CURRENCY, People
from .test_billing_reads import _fixed_fee_spec

# A month no other test logs time in, so the reads below see only this module's entries.
DAY = date(2031, 5, 13)
PERIOD = Period.of(DAY)


async def _subcontracted(psa: KantataConnector, project_id: str) -> dict[str, SubcontractedTime]:
    found: dict[str, SubcontractedTime] = {}
    async for page in psa.subcontracted_time(PERIOD):
        found.update({t.id: t for t in page.items if t.project_id == project_id})
    return found


async def _subcontractor(seeder: KantataSeeder, firm: str, rate: Money | None) -> str:
    who = uuid.uuid4().hex[:8]
    person = await seeder.consultant(f"Sam Contractor {who}", f"sam.{who}@contractors.example", "Consultant")
    await seeder.works_for(person.user_id, firm)
    if rate is not None:
        await seeder.cost_rate(person.user_id, rate)
    return person.user_id


async def test_a_subcontractors_approved_time_is_listed_at_the_cost_rate_it_was_logged_at(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_fixed_fee_spec())
    firm = f"Contractors {uuid.uuid4().hex[:6]} Ltd"
    sam = await _subcontractor(seeder, firm, Money.of("61.37", CURRENCY))
    # Paid in another currency only: the project's currency has no cost rate for this one.
    eve = await _subcontractor(seeder, firm, Money.of("70.00", "EUR"))
    await seeder.add_to_project(project.id, [people.consultant])
    (sam_entry, eve_entry, own) = await seeder.log_time(
        project.id,
        [
            TimeLog(user_id=sam, day=DAY, minutes=505),
            TimeLog(user_id=eve, day=DAY, minutes=25),
            TimeLog(user_id=people.consultant.user_id, day=DAY, minutes=60),
        ],
    )
    await seeder.submit_and_approve(project.id, [sam_entry, eve_entry, own])
    # A new cost rate is for future work: time already logged keeps the rate it was logged at.
    await seeder.cost_rate(sam, Money.of("99.00", CURRENCY))

    found = await _subcontracted(psa, project.id)

    assert set(found) == {sam_entry, eve_entry}
    assert found[sam_entry].supplier == firm and found[sam_entry].person_id == sam
    assert found[sam_entry].minutes == 505 and found[sam_entry].date == DAY
    assert found[sam_entry].cost_rate == Money.of("61.37", CURRENCY)
    assert found[sam_entry].role == "Consultant"
    assert found[eve_entry].cost_rate is None and found[eve_entry].currency == CURRENCY
    assert all(t.bill_number is None and not t.paid for t in found.values())


async def test_subcontracted_time_carries_its_bill_until_paid_and_never_moves_to_another_bill(
    psa: KantataConnector, seeder: KantataSeeder
) -> None:
    project = await psa.ensure_project(_fixed_fee_spec())
    sam = await _subcontractor(seeder, f"Contractors {uuid.uuid4().hex[:6]} Ltd", Money.of("50", CURRENCY))
    (entry,) = await seeder.log_time(project.id, [TimeLog(user_id=sam, day=DAY, minutes=90)])
    await seeder.submit_and_approve(project.id, [entry])
    number = f"EXP-{uuid.uuid4().hex[:8].upper()}"

    # Approved time is locked, yet an integration's reference can still be written on it.
    await psa.mark_time_on_bill(time_entry_ids=[entry], bill_number=number)
    await psa.mark_time_on_bill(time_entry_ids=[entry], bill_number=number)
    assert (await _subcontracted(psa, project.id))[entry].bill_number == number
    with pytest.raises(Conflict):
        await psa.mark_time_on_bill(time_entry_ids=[entry], bill_number="EXP-OTHER")

    await psa.mark_time_paid(time_entry_ids=[entry], bill_number=number)
    await psa.mark_time_on_bill(time_entry_ids=[entry], bill_number=number)
    paid = (await _subcontracted(psa, project.id))[entry]
    assert (paid.bill_number, paid.paid) == (number, True)
