"""Month-end: fixed-fee recognition by percentage of completion, the journals each close posted, and the
position each close left every project in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _exact(precision: int, scale: int) -> sa.types.TypeEngine[Decimal]:
    # SQLite has no decimal type: amounts are fixed-point text there (digits, sign and point).
    return sa.Numeric(precision, scale).with_variant(sa.String(precision + 2), "sqlite")


def _id() -> sa.Column[int]:
    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "project_recognition",
        _id(),
        sa.Column("psa", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("budget_hours", _exact(18, 4), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_recognition")),
        sa.UniqueConstraint("psa", "project_id", name=op.f("uq_project_recognition_psa_project_id")),
    )
    op.create_table(
        "month_end_journal",
        _id(),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("legal_entity", sa.String(16), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("adjustment", sa.Integer(), nullable=False),
        sa.Column("erp", sa.String(16), nullable=False),
        sa.Column("journal_id", sa.String(255), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_debits", _exact(18, 4), nullable=False),
        sa.Column("journals", sa.JSON(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_month_end_journal")),
        sa.UniqueConstraint("reference", name=op.f("uq_month_end_journal_reference")),
    )
    op.create_index(
        op.f("ix_month_end_journal_legal_entity_period_kind"),
        "month_end_journal",
        ["legal_entity", "period", "kind"],
    )
    op.create_table(
        "month_end_position",
        _id(),
        sa.Column("legal_entity", sa.String(16), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("position", sa.JSON(), nullable=False),
        sa.Column("margin", sa.JSON(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_month_end_position")),
        sa.UniqueConstraint(
            "legal_entity",
            "period",
            "project_id",
            name=op.f("uq_month_end_position_legal_entity_period_project_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("month_end_position")
    op.drop_index(op.f("ix_month_end_journal_legal_entity_period_kind"), table_name="month_end_journal")
    op.drop_table("month_end_journal")
    op.drop_table("project_recognition")
