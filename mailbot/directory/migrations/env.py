"""Alembic environment: migrations run against the connection mailbot hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mailbot.directory.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    """Run the migrations on *connection* (SQLite needs batch mode for ALTERs)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - mailbot always passes one
    raise RuntimeError("mailbot migrations run through `mailbot db upgrade`")
run_migrations(connection)
