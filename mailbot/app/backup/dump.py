"""The database as JSON lines, one file per table, read in one snapshot transaction.

One logical format for SQLite and PostgreSQL (not ``sqlite3 .backup`` /
``pg_dump``): no client program of the server's major version is needed, a
backup loads into either kind of database, and the schema revision is read
in the same transaction as the rows. The schema itself is not dumped: a
restore creates it with the migrations at the recorded revision.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, Table, select

from mailbot.app.backup.layout import DATABASE_DIR, BackupError, BackupWriter

#: Alembic's own table: its one row is the revision, recorded in the manifest instead.
ALEMBIC_TABLE = "alembic_version"
_ROWS_PER_FETCH = 1000


@dataclass(frozen=True)
class DatabaseDump:
    """What the dump wrote: the database's kind, its schema revision, rows per table."""

    kind: str
    revision: str
    #: Table -> rows, parents before children (the order a load inserts them in).
    tables: dict[str, int]


def table_file(table: str) -> str:
    """The backup's file of a table's rows."""
    return f"{DATABASE_DIR}/{table}.jsonl"


def dump_database(engine: Engine, writer: BackupWriter) -> DatabaseDump:
    """Write every table of the database into the backup, all from one snapshot."""
    with snapshot(engine) as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        if revision is None:
            raise BackupError("the database has no mailbot schema: nothing to back up")
        metadata = MetaData()
        metadata.reflect(connection)
        tables = {}
        for table in metadata.sorted_tables:
            if table.name == ALEMBIC_TABLE:
                continue
            counter = [0]
            writer.write_chunks(table_file(table.name), _lines(connection, table, counter))
            tables[table.name] = counter[0]
        connection.rollback()  # read only: nothing to commit
    return DatabaseDump(engine.dialect.name, revision, tables)


class snapshot:  # noqa: N801 - used like a function: ``with snapshot(engine) as c``
    """A connection whose reads all see one consistent state of the database.

    PostgreSQL: a REPEATABLE READ, read-only transaction. SQLite (WAL mode): an
    explicit ``BEGIN``, since the driver opens a transaction only before a
    write; the first read then fixes the snapshot for the rest. Writers go on
    meanwhile in both.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def __enter__(self) -> Connection:
        connection = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        elif self.engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        self.connection = connection
        return connection

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()


def _lines(connection: Connection, table: Table, counter: list[int]) -> Iterator[bytes]:
    """The table's rows as JSON lines, in primary-key order, fetched in batches."""
    order = list(table.primary_key.columns) or list(table.columns)
    result = connection.execution_options(yield_per=_ROWS_PER_FETCH).execute(
        select(table).order_by(*order)
    )
    for row in result.mappings():
        counter[0] += 1
        encoded = {name: encode_value(value) for name, value in row.items()}
        yield json.dumps(encoded, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def encode_value(value: Any) -> Any:
    """A JSON-able form of a database value: bytes as base64, times as ISO 8601 in UTC.

    No type tags: the load decodes by the type of the target's column.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        # SQLite keeps no zone: mailbot stores UTC there (UtcDateTime).
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def read_rows(folder: Path, table: str) -> Iterator[dict[str, Any]]:
    """The rows of *table* in the backup in *folder*, as dumped (values still encoded)."""
    path = folder / table_file(table)
    if not path.exists():
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except ValueError:
                raise BackupError(f"{path}: line {number} is not JSON") from None
            if not isinstance(row, dict):
                raise BackupError(f"{path}: line {number} is not a row")
            yield row
