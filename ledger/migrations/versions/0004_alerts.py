"""Alerts: the incidents each team was told about (and their notifications per channel), and how far each
polled feed has been read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id(name: str = "id") -> sa.Column[int]:
    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "feed_state",
        _id(),
        sa.Column("feed", sa.String(64), nullable=False),
        _instant("read_at"),
        _instant("last_event_at", nullable=True),
        sa.Column("events_read", sa.BigInteger(), nullable=False),
        _instant("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_state")),
        sa.UniqueConstraint("feed", name=op.f("uq_feed_state_feed")),
    )
    op.create_table(
        "alert_incident",
        _id(),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        _instant("opened_at"),
        _instant("cleared_at", nullable=True),
        _instant("updated_at"),
        sa.CheckConstraint(
            "kind IN ('new_exception', 'approval_overdue', 'feed_stale', 'vendor_failing')",
            name=op.f("ck_alert_incident_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_incident")),
        sa.UniqueConstraint("subject", "occurrence", name=op.f("uq_alert_incident_subject_occurrence")),
    )
    op.create_index(op.f("ix_alert_incident_cleared_at"), "alert_incident", ["cleared_at"])
    op.create_table(
        "alert_delivery",
        _id(),
        _id("incident_id"),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _instant("claimed_until", nullable=True),
        _instant("sent_at", nullable=True),
        _instant("created_at"),
        sa.CheckConstraint("phase IN ('opened', 'resolved')", name=op.f("ck_alert_delivery_phase")),
        sa.CheckConstraint("state IN ('pending', 'sent', 'cancelled')", name=op.f("ck_alert_delivery_state")),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["alert_incident.id"],
            name=op.f("fk_alert_delivery_incident_id_alert_incident"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery")),
        sa.UniqueConstraint(
            "incident_id", "phase", "channel", name=op.f("uq_alert_delivery_incident_id_phase_channel")
        ),
    )
    op.create_index(op.f("ix_alert_delivery_state_channel"), "alert_delivery", ["state", "channel"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_delivery_state_channel"), table_name="alert_delivery")
    op.drop_table("alert_delivery")
    op.drop_index(op.f("ix_alert_incident_cleared_at"), table_name="alert_incident")
    op.drop_table("alert_incident")
    op.drop_table("feed_state")
