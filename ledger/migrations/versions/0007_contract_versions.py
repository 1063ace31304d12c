"""Contract versions: a won deal changed in the CRM becomes a new version of the project's contract.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contract_version",
        # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("psa", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("contract", sa.JSON(), nullable=False),
        sa.Column("opportunity_id", sa.String(255), nullable=False),
        sa.Column("cause", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_version")),
        sa.UniqueConstraint(
            "psa", "project_id", "version", name=op.f("uq_contract_version_psa_project_id_version")
        ),
    )
    op.create_index(op.f("ix_contract_version_opportunity_id"), "contract_version", ["opportunity_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_contract_version_opportunity_id"), table_name="contract_version")
    op.drop_table("contract_version")
