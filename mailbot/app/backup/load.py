"""Load a dump (:mod:`mailbot.app.backup.dump`) into a database, in one transaction.

The schema is created by the migrations at the backup's revision, so the
tables are exactly those the rows were read from; then the rows go in,
parents first, and PostgreSQL's id sequences are moved past the highest id.
On both databases the drop, the schema and the rows commit together or not
at all.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from mailbot.app.backup.dump import ALEMBIC_TABLE, read_rows
from mailbot.app.backup.layout import BackupError
from mailbot.directory import migrate
from mailbot.directory.models import Base

_ROWS_PER_INSERT = 500
#: (table, column) -> (folder the backup was taken from, folder of this installation).
PathRewrites = Mapping[tuple[str, str], tuple[str, str]]


def mailbot_tables(bind: Engine | Connection, extra: Iterable[str] = ()) -> list[str]:
    """The tables of the database that are mailbot's (never another application's)."""
    known = set(Base.metadata.tables) | {ALEMBIC_TABLE} | set(extra)
    return sorted(set(inspect(bind).get_table_names()) & known)


def tables_with_rows(engine: Engine) -> list[str]:
    """mailbot's tables that hold at least one row (the schema's revision row aside)."""
    metadata = MetaData()
    with engine.connect() as connection:
        names = [n for n in mailbot_tables(connection) if n != ALEMBIC_TABLE]
        metadata.reflect(connection, only=names)
        return [
            name
            for name in names
            if connection.execute(select(metadata.tables[name]).limit(1)).first() is not None
        ]


def load_database(
    engine: Engine,
    folder: Path,
    revision: str,
    tables: Mapping[str, int],
    rewrites: PathRewrites,
) -> None:
    """Replace mailbot's tables with the backup's rows; raises :class:`BackupError`."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # The driver would run the DDL outside a transaction; SQLite can do it inside.
            connection.exec_driver_sql("BEGIN")
        old = MetaData()
        old.reflect(connection, only=mailbot_tables(connection, tables))
        old.drop_all(connection)
        migrate.upgrade_in(connection, revision)
        target = MetaData()
        target.reflect(connection)
        unknown = sorted(set(tables) - set(target.tables))
        if unknown:
            raise BackupError(
                f"the backup has tables the schema at revision {revision} lacks: "
                + ", ".join(unknown)
            )
        for table in target.sorted_tables:
            if table.name in tables:
                loaded = _load_table(connection, folder, table, rewrites)
                if loaded != tables[table.name]:
                    raise BackupError(
                        f"table {table.name}: the backup holds {loaded} rows, "
                        f"its manifest says {tables[table.name]}"
                    )
        if engine.dialect.name == "postgresql":
            _move_sequences(connection, [t for t in target.sorted_tables if t.name in tables])
        connection.commit()


def _load_table(connection: Connection, folder: Path, table: Table, rewrites: PathRewrites) -> int:
    decoders = {column.name: decoder_for(column.type) for column in table.columns}
    moved = {
        column: prefixes
        for (name, column), prefixes in rewrites.items()
        if name == table.name and prefixes[0] and prefixes[0] != prefixes[1]
    }
    batch: list[dict[str, Any]] = []
    count = 0
    for row in read_rows(folder, table.name):
        strange = set(row) - set(decoders)
        if strange:
            raise BackupError(f"table {table.name}: unknown columns {', '.join(sorted(strange))}")
        values = {name: decoders[name](value) for name, value in row.items()}
        for column, (old, new) in moved.items():
            values[column] = rewrite_path(values.get(column), old, new)
        batch.append(values)
        count += 1
        if len(batch) == _ROWS_PER_INSERT:
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)
    return count


def rewrite_path(value: Any, old: str, new: str) -> Any:
    """A path stored in a row, moved from folder *old* to folder *new* (others untouched)."""
    if isinstance(value, str) and value.startswith(old.rstrip("/") + "/"):
        return new.rstrip("/") + value[len(old.rstrip("/")) :]
    return value


def decoder_for(column_type: TypeEngine[Any]) -> Callable[[Any], Any]:
    """The inverse of :func:`mailbot.app.backup.dump.encode_value` for a column's type."""

    def optional(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return lambda value: None if value is None else decode(value)

    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, LargeBinary):
        return optional(base64.b64decode)
    if isinstance(column_type, DateTime):
        return optional(dt.datetime.fromisoformat)
    if isinstance(column_type, Date):
        return optional(dt.date.fromisoformat)
    return lambda value: value


def _move_sequences(connection: Connection, tables: list[Table]) -> None:
    """Let PostgreSQL's next ids follow the loaded rows (inserts named the ids themselves)."""
    for table in tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, Integer):
                continue
            highest = connection.execute(select(func.max(column))).scalar()
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence(:table, :column), :value, :called)"),
                {
                    "table": table.name,
                    "column": column.name,
                    "value": highest or 1,
                    "called": highest is not None,
                },
            )
