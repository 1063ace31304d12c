"""Initial ledger schema: crosswalk, postings, audit, exceptions, project contracts, reference tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written from an autogenerate run and then made self-contained: the column types are spelled in plain
SQLAlchemy (what ledger.column_types compiles to on each dialect), so this migration keeps working
however the application's types evolve.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _exact(precision: int, scale: int) -> sa.types.TypeEngine[Decimal]:
    # SQLite has no decimal type: amounts are fixed-point text there (digits, sign and point).
    return sa.Numeric(precision, scale).with_variant(sa.String(precision + 2), "sqlite")


def _instant() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "id_map",
        _id(),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("canonical_key", sa.String(255), nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'on_hold', 'archived')", name=op.f("ck_id_map_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_map")),
        sa.UniqueConstraint(
            "entity", "canonical_key", "system", name=op.f("uq_id_map_entity_canonical_key_system")
        ),
        sa.UniqueConstraint(
            "entity", "system", "external_id", name=op.f("uq_id_map_entity_system_external_id")
        ),
    )

    op.create_table(
        "posting",
        _id(),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("erp", sa.String(16), nullable=False),
        sa.Column("legal_entity", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("amount", _exact(18, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("billed_at", _instant(), nullable=True),
        sa.CheckConstraint("state IN ('posted', 'billed')", name=op.f("ck_posting_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posting")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_posting_idempotency_key")),
    )
    op.create_index(op.f("ix_posting_legal_entity_period"), "posting", ["legal_entity", "period"])
    op.create_index(op.f("ix_posting_project_id_period"), "posting", ["project_id", "period"])

    op.create_table(
        "audit_event",
        _id(),
        sa.Column("occurred_at", _instant(), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(op.f("ix_audit_event_key_occurred_at"), "audit_event", ["key", "occurred_at"])
    op.create_index(
        op.f("ix_audit_event_workflow_id_occurred_at"), "audit_event", ["workflow_id", "occurred_at"]
    )

    op.create_table(
        "exception",
        _id(),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("process", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("resolution_action", sa.String(16), nullable=True),
        sa.Column("resolution_actor", sa.String(255), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("corrected_fields", sa.JSON(), nullable=True),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.Column("resolved_at", _instant(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'retrying', 'skipped', 'resolved')", name=op.f("ck_exception_status")
        ),
        sa.CheckConstraint(
            "resolution_action IS NULL OR resolution_action IN ('retry', 'skip', 'fix', 'resolve')",
            name=op.f("ck_exception_resolution_action"),
        ),
        sa.CheckConstraint("attempts >= 1", name=op.f("ck_exception_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exception")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_exception_dedupe_key")),
    )
    op.create_index(op.f("ix_exception_owner_status"), "exception", ["owner", "status"])
    op.create_index(op.f("ix_exception_status_created_at"), "exception", ["status", "created_at"])

    op.create_table(
        "project_contract",
        _id(),
        sa.Column("psa", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("opportunity_id", sa.String(255), nullable=False),
        sa.Column("legal_entity", sa.String(16), nullable=False),
        sa.Column("contract", sa.JSON(), nullable=False),
        sa.Column("created_at", _instant(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_contract")),
        sa.UniqueConstraint("psa", "project_id", name=op.f("uq_project_contract_psa_project_id")),
    )
    op.create_index(op.f("ix_project_contract_opportunity_id"), "project_contract", ["opportunity_id"])

    op.create_table(
        "ref_currency",
        _id(),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("code", sa.String(3), nullable=False),
        sa.Column("entity_currency", sa.String(3), nullable=False),
        sa.Column("rate", _exact(18, 8), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ref_currency")),
        sa.UniqueConstraint("system", "code", name=op.f("uq_ref_currency_system_code")),
    )
    op.create_table(
        "ref_tax_rate",
        _id(),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("rate", _exact(10, 6), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ref_tax_rate")),
        sa.UniqueConstraint("system", "code", name=op.f("uq_ref_tax_rate_system_code")),
    )
    op.create_table(
        "ref_account",
        _id(),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ref_account")),
        sa.UniqueConstraint("system", "code", name=op.f("uq_ref_account_system_code")),
    )
    op.create_table(
        "ref_item",
        _id(),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ref_item")),
        sa.UniqueConstraint("system", "code", name=op.f("uq_ref_item_system_code")),
    )
    op.create_table(
        "ref_resource",
        _id(),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(128), nullable=True),
        sa.Column("cost_rate", _exact(18, 4), nullable=True),
        sa.Column("cost_currency", sa.String(3), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _instant(), nullable=False),
        sa.CheckConstraint(
            "(cost_rate IS NULL) = (cost_currency IS NULL)",
            name=op.f("ck_ref_resource_cost_rate_has_currency"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ref_resource")),
        sa.UniqueConstraint("system", "external_id", name=op.f("uq_ref_resource_system_external_id")),
    )


def downgrade() -> None:
    for table in (
        "ref_resource",
        "ref_item",
        "ref_account",
        "ref_tax_rate",
        "ref_currency",
        "project_contract",
        "exception",
        "audit_event",
        "posting",
        "id_map",
    ):
        # Dropping a table drops its indexes and constraints with it, on both dialects.
        op.drop_table(table)
