from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from canonical import Money
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.records import (
    AccountRecord,
    CurrencyRateRecord,
    ItemRecord,
    ResourceRecord,
    TaxRateRecord,
    UpsertSummary,
)
from ledger.repository import (
    get_account,
    get_currency_rate,
    get_item,
    get_resource,
    get_tax_rate,
    list_accounts,
    list_currency_rates,
    list_items,
    list_resources,
    list_tax_rates,
    upsert_accounts,
    upsert_currency_rates,
    upsert_items,
    upsert_resources,
    upsert_tax_rates,
)


def _tax(code: str, rate: str, *, active: bool = True, system: str = "xero") -> TaxRateRecord:
    return TaxRateRecord(system=system, code=code, name=f"{code} tax", rate=Decimal(rate), active=active)


def test_upsert_tax_rates_inserts_then_updates_only_what_changed(db: Database) -> None:
    with db.session() as session:
        first = upsert_tax_rates(
            session, system="xero", tax_rates=[_tax("OUTPUT2", "20"), _tax("ZERORATED", "0")]
        )
    assert first == UpsertSummary(inserted=2)
    with db.session() as session:
        second = upsert_tax_rates(
            session, system="xero", tax_rates=[_tax("OUTPUT2", "20.0000"), _tax("ZERORATED", "5")]
        )
    assert second == UpsertSummary(updated=1, unchanged=1)
    with db.session() as session:
        assert get_tax_rate(session, system="xero", code="ZERORATED") == _tax("ZERORATED", "5")
        assert [t.code for t in list_tax_rates(session, system="xero")] == ["OUTPUT2", "ZERORATED"]
        assert list_tax_rates(session, system="tryton") == []


def test_deactivate_missing_marks_absent_codes_inactive_instead_of_deleting_them(db: Database) -> None:
    with db.session() as session:
        upsert_tax_rates(session, system="xero", tax_rates=[_tax("OUTPUT2", "20"), _tax("OLD", "17.5")])
        upsert_tax_rates(session, system="tryton", tax_rates=[_tax("VAT21", "21", system="tryton")])
    with db.session() as session:
        summary = upsert_tax_rates(
            session, system="xero", tax_rates=[_tax("OUTPUT2", "20")], deactivate_missing=True
        )
    assert summary == UpsertSummary(unchanged=1, deactivated=1)
    with db.session() as session:
        assert [t.code for t in list_tax_rates(session, system="xero", active_only=True)] == ["OUTPUT2"]
        old = get_tax_rate(session, system="xero", code="OLD")
        assert old is not None
        assert old.active is False
        # Another system's rows are untouched.
        assert [t.code for t in list_tax_rates(session, system="tryton", active_only=True)] == ["VAT21"]


def test_currency_rates_round_trip_to_eight_decimal_places(db: Database) -> None:
    usd = CurrencyRateRecord(
        system="xero",
        code="USD",
        entity_currency="GBP",
        rate=Decimal("0.78912345"),
        as_of=date(2025, 3, 31),
    )
    with db.session() as session:
        assert upsert_currency_rates(session, system="xero", rates=[usd]) == UpsertSummary(inserted=1)
    with db.session() as session:
        stored = get_currency_rate(session, system="xero", code="USD")
        assert stored == usd
        assert stored is not None
        assert stored.rate == Decimal("0.78912345")
        assert list_currency_rates(session, system="xero") == [usd]


def test_a_currency_rate_finer_than_the_column_is_refused(db: Database) -> None:
    fine = CurrencyRateRecord(
        system="xero",
        code="JPY",
        entity_currency="GBP",
        rate=Decimal("0.005123456789"),
        as_of=date(2025, 3, 31),
    )
    with (
        pytest.raises(InvalidLedgerInput, match=r"rate of JPY .* more than 8 decimal places"),
        db.session() as session,
    ):
        upsert_currency_rates(session, system="xero", rates=[fine])


def test_accounts_upsert_list_and_get(db: Database) -> None:
    revenue = AccountRecord(system="xero", code="200", name="Sales", type="REVENUE")
    with db.session() as session:
        upsert_accounts(session, system="xero", accounts=[revenue])
    renamed = revenue.model_copy(update={"name": "Consulting revenue"})
    with db.session() as session:
        assert upsert_accounts(session, system="xero", accounts=[renamed]) == UpsertSummary(updated=1)
        assert get_account(session, system="xero", code="200") == renamed
        assert list_accounts(session, system="xero", active_only=True) == [renamed]
        assert get_account(session, system="xero", code="999") is None


def test_items_upsert_list_and_get(db: Database) -> None:
    items = [
        ItemRecord(system="tryton", code=code, name=f"{code} service") for code in ("CONSULT", "ADVISORY")
    ]
    with db.session() as session:
        assert upsert_items(session, system="tryton", items=items) == UpsertSummary(inserted=2)
    with db.session() as session:
        assert [i.code for i in list_items(session, system="tryton")] == ["ADVISORY", "CONSULT"]
        assert get_item(session, system="tryton", code="CONSULT") == items[0]


def test_resources_keep_their_cost_rate_as_exact_money_or_none(db: Database) -> None:
    priced = ResourceRecord(
        system="kantata",
        external_id="u-17",
        name="Ada Lovelace",
        role="architect",
        cost_rate=Money.of("87.3350", "GBP"),
    )
    unpriced = ResourceRecord(system="kantata", external_id="u-18", name="Contractor")
    with db.session() as session:
        upsert_resources(session, system="kantata", resources=[priced, unpriced])
    with db.session() as session:
        assert get_resource(session, system="kantata", external_id="u-17") == priced
        assert get_resource(session, system="kantata", external_id="u-18") == unpriced
        assert [r.external_id for r in list_resources(session, system="kantata")] == ["u-17", "u-18"]
    with db.session() as session:
        upsert_resources(session, system="kantata", resources=[priced], deactivate_missing=True)
        assert [r.external_id for r in list_resources(session, system="kantata", active_only=True)] == [
            "u-17"
        ]


def test_an_upsert_refuses_records_of_another_system(db: Database) -> None:
    with (
        pytest.raises(InvalidLedgerInput, match=r"records\[0\] belongs to tryton, not xero"),
        db.session() as session,
    ):
        upsert_tax_rates(session, system="xero", tax_rates=[_tax("VAT21", "21", system="tryton")])


def test_an_upsert_refuses_the_same_code_twice_in_one_batch(db: Database) -> None:
    with pytest.raises(InvalidLedgerInput, match="code 'OUTPUT2' appears twice"), db.session() as session:
        upsert_tax_rates(session, system="xero", tax_rates=[_tax("OUTPUT2", "20"), _tax("OUTPUT2", "17.5")])


def test_an_upsert_refuses_a_record_of_the_wrong_kind(db: Database) -> None:
    with (
        pytest.raises(InvalidLedgerInput, match=r"records\[0\] must be TaxRateRecord"),
        db.session() as session,
    ):
        upsert_tax_rates(
            session,
            system="xero",
            tax_rates=[ItemRecord(system="xero", code="X", name="x")],  # type: ignore[list-item]
        )


def test_reference_records_refuse_float_rates() -> None:
    with pytest.raises(ValidationError, match="never float"):
        TaxRateRecord(system="xero", code="OUTPUT2", name="VAT", rate=20.0)


@pytest.mark.parametrize("system", ["Xero", "", "net suite", "x" * 17])
def test_reference_records_refuse_a_system_name_of_the_wrong_shape(system: str) -> None:
    with pytest.raises(ValidationError, match="system"):
        ItemRecord(system=system, code="CONSULT", name="Consulting")


def test_reference_data_of_a_newly_configured_erp_is_stored(db: Database) -> None:
    item = ItemRecord(system="netsuite", code="CONSULT", name="Consulting")
    with db.session() as session:
        assert upsert_items(session, system="netsuite", items=[item]) == UpsertSummary(inserted=1)
    with db.session() as session:
        assert list_items(session, system="netsuite") == [item]
