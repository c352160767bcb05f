"""indexed address keys: trusted_addresses.address_key, outbox.recipient_key

The sender gate and the reply cap compare addresses by ``normalize_address``
(Unicode case folding, IDNA), which SQL cannot compute: the keys are stored,
filled here in Python in batches, and indexed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from mailbot.addresses import normalize_address
from mailbot.directory.address_keys import reply_recipient_key

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Rows read and updated per round trip while filling the keys.
BATCH = 1000

trusted_addresses = sa.table(
    "trusted_addresses",
    sa.column("id", sa.Integer()),
    sa.column("address", sa.String()),
    sa.column("address_key", sa.String()),
)
outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("recipients", sa.JSON()),
    sa.column("recipient_key", sa.String()),
)


def _fill(
    table: sa.TableClause,
    target: str,
    sources: list[str],
    compute: Callable[[Any], str | None],
    where: sa.ColumnElement[bool] | None = None,
) -> None:
    """Set *target* to ``compute(row)`` for every row (matching *where*), BATCH rows at a time."""
    connection = op.get_bind()
    update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values({target: sa.bindparam("key")})
    )
    last = 0
    while True:
        query = sa.select(table.c.id, *(table.c[s] for s in sources)).where(table.c.id > last)
        if where is not None:
            query = query.where(where)
        rows = connection.execute(query.order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        connection.execute(update, [{"row_id": row.id, "key": compute(row)} for row in rows])
        last = rows[-1].id


def upgrade() -> None:

    with op.batch_alter_table("trusted_addresses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_key", sa.String(length=320), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_key", sa.String(length=320), nullable=True))

    _fill(trusted_addresses, "address_key", ["address"], lambda r: normalize_address(r.address))
    _fill(
        outbox,
        "recipient_key",
        ["kind", "recipients"],
        lambda r: reply_recipient_key(r.kind, r.recipients),
        where=outbox.c.kind == "reply",
    )

    with op.batch_alter_table("trusted_addresses", schema=None) as batch_op:
        batch_op.alter_column("address_key", existing_type=sa.String(length=320), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_trusted_addresses_address_key"), ["address_key"], unique=False
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_recipient_key_created_at", ["recipient_key", "created_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_recipient_key_created_at")
        batch_op.drop_column("recipient_key")
    with op.batch_alter_table("trusted_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trusted_addresses_address_key"))
        batch_op.drop_column("address_key")
