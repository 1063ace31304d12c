"""Bill postings: every supplier bill ps-sync posted, what reconciliation holds the ERP's bills against.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _exact(precision: int, scale: int) -> sa.types.TypeEngine[Decimal]:
    # SQLite has no decimal type: amounts are fixed-point text there (digits, sign and point).
    return sa.Numeric(precision, scale).with_variant(sa.String(precision + 2), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bill_posting",
        # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("erp", sa.String(16), nullable=False),
        sa.Column("legal_entity", sa.String(16), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("supplier_key", sa.String(255), nullable=False),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("bill_id", sa.String(255), nullable=False),
        sa.Column("number", sa.String(255), nullable=False),
        sa.Column("total", _exact(18, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("source_ids", sa.JSON(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_posting")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_bill_posting_idempotency_key")),
    )
    op.create_index(op.f("ix_bill_posting_legal_entity_period"), "bill_posting", ["legal_entity", "period"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bill_posting_legal_entity_period"), table_name="bill_posting")
    op.drop_table("bill_posting")
