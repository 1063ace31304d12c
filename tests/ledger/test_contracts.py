from __future__ import annotations

from decimal import Decimal

from canonical import BillingModel, Contract, Money, ProjectContract
from ledger.database import Database
from ledger.repository import get_contract, save_contract


def _contract(**overrides: object) -> ProjectContract:
    values: dict[str, object] = {
        "project_id": "981",
        "psa": "kantata",
        "crm": "salesforce",
        "opportunity_id": "0065g00000AbCdEAAV",
        "account_id": "0015g00000XyZaBAAV",
        "customer_name": "Contoso Ltd",
        "erp": "xero",
        "erp_customer_id": "C-1",
        "contract": Contract(
            legal_entity="UK",
            currency="GBP",
            billing_model=BillingModel.TIME_AND_MATERIALS,
            tax_code="OUTPUT2",
            expense_markup=Decimal("0.125"),
            not_to_exceed=Money.of("150000.00", "GBP"),
        ),
    }
    return ProjectContract.model_validate({**values, **overrides})


def test_saved_contract_reads_back_equal_with_exact_money(db: Database) -> None:
    contract = _contract()
    with db.session() as session:
        save_contract(session, contract=contract)
    with db.session() as session:
        stored = get_contract(session, psa="kantata", project_id="981")
    assert stored == contract
    assert stored is not None
    assert stored.contract.not_to_exceed == Money.of("150000.00", "GBP")


def test_saving_a_contract_again_replaces_the_earlier_version(db: Database) -> None:
    with db.session() as session:
        save_contract(session, contract=_contract())
    changed = _contract(customer_name="Contoso Group Ltd")
    with db.session() as session:
        save_contract(session, contract=changed)
    with db.session() as session:
        assert get_contract(session, psa="kantata", project_id="981") == changed


def test_get_contract_for_an_unknown_project_returns_none(db: Database) -> None:
    with db.session() as session:
        assert get_contract(session, psa="kantata", project_id="nope") is None
