from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger.database import Database
from ledger.errors import CrosswalkConflict, InvalidLedgerInput, LinkNotFound
from ledger.repository import (
    find_canonical_key,
    find_external_id,
    get_link,
    link_ids,
    links_for,
    set_link_status,
)
from ledger.tables import IdMap
from ledger.vocab import LinkStatus

OPPORTUNITY = "salesforce:0065g00000AbCdEAAV"


def _rows(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(IdMap)) or 0


def test_link_ids_creates_an_active_link(db: Database) -> None:
    with db.session() as session:
        link = link_ids(
            session, entity="project", canonical_key=OPPORTUNITY, system="kantata", external_id="981"
        )
    assert (link.entity, link.canonical_key, link.system, link.external_id) == (
        "project",
        OPPORTUNITY,
        "kantata",
        "981",
    )
    assert link.status is LinkStatus.ACTIVE
    assert link.created_at.tzinfo is not None


def test_linking_the_same_pair_again_returns_the_existing_link_without_a_second_row(db: Database) -> None:
    with db.session() as session:
        first = link_ids(
            session, entity="project", canonical_key=OPPORTUNITY, system="kantata", external_id="981"
        )
    with db.session() as session:
        again = link_ids(
            session,
            entity="project",
            canonical_key=OPPORTUNITY,
            system="kantata",
            external_id="981",
            status="on_hold",
            note="ignored for an existing link",
        )
    assert again == first
    assert _rows(db) == 1


def test_linking_a_key_to_a_different_external_id_raises_a_conflict_naming_both_ids(db: Database) -> None:
    with db.session() as session:
        link_ids(session, entity="project", canonical_key=OPPORTUNITY, system="kantata", external_id="981")
    with pytest.raises(CrosswalkConflict, match=r"already linked to kantata id '981'.*'982'") as caught:
        with db.session() as session:
            link_ids(
                session, entity="project", canonical_key=OPPORTUNITY, system="kantata", external_id="982"
            )
    assert caught.value.existing_external_id == "981"
    assert caught.value.external_id == "982"
    assert _rows(db) == 1


def test_linking_an_external_id_already_owned_by_another_key_raises_a_conflict(db: Database) -> None:
    with db.session() as session:
        link_ids(
            session, entity="customer", canonical_key="salesforce:001A", system="xero", external_id="C-9"
        )
    with pytest.raises(CrosswalkConflict, match=r"'C-9' is already linked to 'salesforce:001A'") as caught:
        with db.session() as session:
            link_ids(
                session, entity="customer", canonical_key="salesforce:001B", system="xero", external_id="C-9"
            )
    assert caught.value.existing_canonical_key == "salesforce:001A"


def test_any_system_the_configuration_names_is_linked_and_found_again(db: Database) -> None:
    with db.session() as session:
        link = link_ids(
            session, entity="customer", canonical_key="crm:001A", system="netsuite", external_id="C-1"
        )
    with db.session() as session:
        assert (
            find_external_id(session, entity="customer", canonical_key="crm:001A", system="netsuite") == "C-1"
        )
        assert find_canonical_key(session, entity="customer", system="netsuite", external_id="C-1") == (
            "crm:001A"
        )
    assert link.system == "netsuite"


def test_one_key_links_to_each_system_and_entity_independently(db: Database) -> None:
    with db.session() as session:
        link_ids(session, entity="project", canonical_key=OPPORTUNITY, system="kantata", external_id="981")
        link_ids(session, entity="project", canonical_key=OPPORTUNITY, system="tryton", external_id="981")
        link_ids(
            session, entity="opportunity", canonical_key=OPPORTUNITY, system="kantata", external_id="981"
        )
    with db.session() as session:
        both = links_for(session, entity="project", canonical_key=OPPORTUNITY)
    assert [(link.system, link.external_id) for link in both] == [
        ("kantata", "981"),
        ("tryton", "981"),
    ]


def test_find_external_id_and_canonical_key_look_both_ways_and_return_none_when_unlinked(
    db: Database,
) -> None:
    with db.session() as session:
        link_ids(
            session, entity="invoice", canonical_key="TTB-P1-2025-03", system="xero", external_id="inv-uuid"
        )
    with db.session() as session:
        assert find_external_id(session, entity="invoice", canonical_key="TTB-P1-2025-03", system="xero") == (
            "inv-uuid"
        )
        assert find_canonical_key(session, entity="invoice", system="xero", external_id="inv-uuid") == (
            "TTB-P1-2025-03"
        )
        assert (
            find_external_id(session, entity="invoice", canonical_key="TTB-P1-2025-03", system="tryton")
            is None
        )
        assert find_canonical_key(session, entity="invoice", system="xero", external_id="other") is None
        assert get_link(session, entity="invoice", canonical_key="unknown", system="xero") is None


def test_set_link_status_changes_status_and_note_and_touches_updated_at(db: Database) -> None:
    with db.session() as session:
        created = link_ids(
            session, entity="project", canonical_key=OPPORTUNITY, system="kantata", external_id="981"
        )
    with db.session() as session:
        held = set_link_status(
            session,
            entity="project",
            canonical_key=OPPORTUNITY,
            system="kantata",
            status="on_hold",
            note="customer credit hold",
        )
    assert held.status is LinkStatus.ON_HOLD
    assert held.note == "customer credit hold"
    assert held.updated_at > created.updated_at
    with db.session() as session:
        stored = get_link(session, entity="project", canonical_key=OPPORTUNITY, system="kantata")
    assert stored == held
    # A held project keeps its id: lookups ignore the status.
    with db.session() as session:
        assert (
            find_external_id(session, entity="project", canonical_key=OPPORTUNITY, system="kantata") == "981"
        )


def test_set_link_status_on_a_missing_link_raises_link_not_found(db: Database) -> None:
    with pytest.raises(LinkNotFound, match="no kantata link for project"), db.session() as session:
        set_link_status(
            session,
            entity="project",
            canonical_key=OPPORTUNITY,
            system="kantata",
            status="archived",
            note=None,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"system": "NetSuite"}, "system must be a system name as configured: .*; got 'NetSuite'"),
        ({"system": "net suite"}, "system must be a system name as configured: .*; got 'net suite'"),
        ({"system": "1erp"}, "system must be a system name as configured: .*; got '1erp'"),
        ({"system": "x" * 17}, "system is 17 characters long; the ledger stores at most 16"),
        ({"status": "deleted"}, "status must be one of active, archived, on_hold"),
        ({"canonical_key": " salesforce:001"}, "leading or trailing whitespace"),
        ({"external_id": ""}, "external_id must not be empty"),
        ({"external_id": "x" * 256}, "external_id is 256 characters long; the ledger stores at most 255"),
        ({"entity": "Project"}, "entity must be snake_case"),
        ({"note": "   "}, "note must not be blank"),
    ],
)
def test_link_ids_refuses_bad_input_with_a_specific_message(
    db: Database, overrides: dict[str, str], message: str
) -> None:
    arguments = {"entity": "project", "canonical_key": OPPORTUNITY, "system": "kantata", "external_id": "981"}
    with pytest.raises(InvalidLedgerInput, match=message), db.session() as session:
        link_ids(session, **{**arguments, **overrides})
    assert _rows(db) == 0
