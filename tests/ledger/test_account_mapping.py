"""Finance's account mapping in the ledger (SQLite and PostgreSQL): one rule per entity, kind and key, each
change kept with the person who made it, on the rule and in the audit trail."""

from __future__ import annotations

import pytest

from domain.account_mapping import AccountRule
from ledger.account_mapping import (
    account_rules,
    list_account_mappings,
    remove_account_mapping,
    set_account_mapping,
)
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.repository import audit_trail

TRAVEL = AccountRule(kind="expense_category", key="Travel", account_code="260", cost_account_code="493")


def test_a_rule_is_kept_with_who_set_it_and_audited(db: Database) -> None:
    with db.session() as session:
        record = set_account_mapping(session, legal_entity="UK", rule=TRAVEL, actor="Fin Lead <f1>")

    with db.session(read_only=True) as session:
        (kept,) = list_account_mappings(session, legal_entity="UK")
        (event,) = audit_trail(session, key="UK:expense_category:Travel")
    assert record.rule == kept.rule == TRAVEL
    assert kept.updated_by == "Fin Lead <f1>"
    assert event.actor == "Fin Lead <f1>" and event.action == "account_mapping_set"
    assert event.detail["rule"]["cost_account_code"] == "493" and event.detail["previous"] is None


def test_setting_a_rule_again_replaces_it_and_audits_what_it_was(db: Database) -> None:
    moved = TRAVEL.model_copy(update={"account_code": "261"})
    with db.session() as session:
        set_account_mapping(session, legal_entity="UK", rule=TRAVEL, actor="a <1>")
    with db.session() as session:
        set_account_mapping(session, legal_entity="UK", rule=moved, actor="b <2>")

    with db.session(read_only=True) as session:
        rules = account_rules(session, legal_entity="UK")
        newest = audit_trail(session, key="UK:expense_category:Travel")[0]
        (kept,) = list_account_mappings(session)
    assert rules == (moved,)
    assert kept.updated_by == "b <2>"
    assert newest.detail["previous"]["account_code"] == "260"
    assert newest.detail["rule"]["account_code"] == "261"


def test_rules_belong_to_their_entity(db: Database) -> None:
    with db.session() as session:
        set_account_mapping(session, legal_entity="UK", rule=TRAVEL, actor="a <1>")
        set_account_mapping(
            session,
            legal_entity="EU",
            rule=AccountRule(kind="service", key="*", account_code="7000"),
            actor="a <1>",
        )

    with db.session(read_only=True) as session:
        assert [r.kind for r in account_rules(session, legal_entity="UK")] == ["expense_category"]
        assert [r.account_code for r in account_rules(session, legal_entity="EU")] == ["7000"]
        assert [m.legal_entity for m in list_account_mappings(session)] == ["EU", "UK"]


def test_removing_a_rule_is_audited_and_removing_a_missing_one_finds_nothing(db: Database) -> None:
    with db.session() as session:
        set_account_mapping(session, legal_entity="UK", rule=TRAVEL, actor="a <1>")
    with db.session() as session:
        removed = remove_account_mapping(
            session, legal_entity="UK", kind="expense_category", key="Travel", actor="b <2>"
        )
        again = remove_account_mapping(
            session, legal_entity="UK", kind="expense_category", key="Travel", actor="b <2>"
        )

    with db.session(read_only=True) as session:
        assert account_rules(session, legal_entity="UK") == ()
        newest = audit_trail(session, key="UK:expense_category:Travel")[0]
    assert removed is not None and removed.rule == TRAVEL
    assert again is None
    assert newest.action == "account_mapping_removed" and newest.actor == "b <2>"


def test_an_unknown_kind_is_refused(db: Database) -> None:
    with db.session() as session, pytest.raises(InvalidLedgerInput, match="kind must be one of"):
        remove_account_mapping(session, legal_entity="UK", kind="department", key="x", actor="a <1>")
