"""expiry reminders: one row per certificate and threshold

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "expiry_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("threshold_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("days_left", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_expiry_reminders_certificate_id_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_expiry_reminders_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expiry_reminders")),
        sa.UniqueConstraint(
            "certificate_id",
            "threshold_days",
            name=op.f("uq_expiry_reminders_certificate_id_threshold_days"),
        ),
    )
    with op.batch_alter_table("expiry_reminders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_expiry_reminders_status"), ["status"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("expiry_reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expiry_reminders_status"))

    op.drop_table("expiry_reminders")
