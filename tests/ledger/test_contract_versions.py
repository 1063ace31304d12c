from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from canonical import Money
from canonical.contract_versions import ContractVersion, CrmChange, FieldChange
from ledger.contract_versions import (
    FIRST_DAY,
    VersionConflict,
    contract_in_force,
    contract_versions,
    project_for_opportunity,
    save_contract_version,
)
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.repository import get_contract, save_contract

from .test_contracts import _contract

CHANGE = CrmChange(
    crm="salesforce",
    opportunity_id="0065g00000AbCdEAAV",
    notification_id="04l5g00000N1",
    modified_at=datetime(2026, 12, 3, 9, 15, tzinfo=UTC),
    changes=(FieldChange(field="not_to_exceed", old="150000.00 GBP", new="180000.00 GBP"),),
)


def _amendment(version: int = 2, cap: str = "180000.00", on: date = date(2026, 12, 10)) -> ContractVersion:
    base = _contract()
    raised = base.model_copy(
        update={"contract": base.contract.model_copy(update={"not_to_exceed": Money.of(cap, "GBP")})}
    )
    return ContractVersion(version=version, effective_from=on, contract=raised, cause=CHANGE)


def test_closed_won_contract_reads_as_version_one_before_any_amendment(db: Database) -> None:
    with db.session() as session:
        save_contract(session, contract=_contract())
    with db.session() as session:
        versions = contract_versions(session, psa="kantata", project_id="981")
        in_force = contract_in_force(session, psa="kantata", project_id="981", on=date(2026, 12, 1))
    assert versions == (ContractVersion(version=1, effective_from=FIRST_DAY, contract=_contract()),)
    assert in_force == versions[0]


def test_amendment_is_version_two_from_its_date_and_the_latest_contract(db: Database) -> None:
    with db.session() as session:
        save_contract(session, contract=_contract())
    amendment = _amendment()
    with db.session() as session:
        save_contract_version(session, version=amendment)
    with db.session() as session:
        before = contract_in_force(session, psa="kantata", project_id="981", on=date(2026, 12, 9))
        after = contract_in_force(session, psa="kantata", project_id="981", on=date(2026, 12, 10))
        latest = get_contract(session, psa="kantata", project_id="981")
        versions = contract_versions(session, psa="kantata", project_id="981")
    assert before is not None and before.version == 1 and before.contract == _contract()
    assert after == amendment
    assert latest == amendment.contract
    assert [v.version for v in versions] == [1, 2]
    # The audit of the change travels with the version: stamp and fields, exactly as saved.
    assert versions[1].cause == CHANGE


def test_saving_the_same_amendment_again_changes_nothing(db: Database) -> None:
    with db.session() as session:
        save_contract(session, contract=_contract())
    with db.session() as session:
        save_contract_version(session, version=_amendment())
    with db.session() as session:
        save_contract_version(session, version=_amendment())
        assert len(contract_versions(session, psa="kantata", project_id="981")) == 2


def test_other_terms_under_a_taken_number_or_a_skipped_number_conflict(db: Database) -> None:
    with db.session() as session:
        save_contract(session, contract=_contract())
    with db.session() as session:
        save_contract_version(session, version=_amendment())
    with db.session() as session, pytest.raises(VersionConflict):
        save_contract_version(session, version=_amendment(cap="200000.00"))
    with db.session() as session, pytest.raises(VersionConflict):
        save_contract_version(session, version=_amendment(version=4))


def test_an_amendment_needs_a_contract_and_a_cause(db: Database) -> None:
    with db.session() as session, pytest.raises(InvalidLedgerInput):
        save_contract_version(session, version=_amendment())
    with db.session() as session:
        save_contract(session, contract=_contract())
    with db.session() as session, pytest.raises(InvalidLedgerInput):
        save_contract_version(session, version=_amendment().model_copy(update={"cause": None}))


def test_no_contract_has_no_versions(db: Database) -> None:
    with db.session() as session:
        assert contract_versions(session, psa="kantata", project_id="nope") == ()
        assert contract_in_force(session, psa="kantata", project_id="nope", on=date(2026, 1, 1)) is None


def test_the_project_a_won_deal_became_is_found_by_its_opportunity_and_crm(db: Database) -> None:
    with db.session() as session:
        save_contract(session, contract=_contract())
    with db.session() as session:
        found = project_for_opportunity(
            session, crm="salesforce", psa="kantata", opportunity_id="0065g00000AbCdEAAV"
        )
        other_crm = project_for_opportunity(
            session, crm="hubspot", psa="kantata", opportunity_id="0065g00000AbCdEAAV"
        )
        unknown = project_for_opportunity(session, crm="salesforce", psa="kantata", opportunity_id="006X")
    assert (found, other_crm, unknown) == ("981", None, None)
