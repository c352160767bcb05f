"""The backup's database snapshot on SQLite and PostgreSQL: every read of one backup sees
the same moment, while writers go on; and the dump's values come back as they went in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select

from mailbot.app.backup.dump import encode_value, snapshot
from mailbot.app.backup.load import decoder_for
from mailbot.directory import migrate
from mailbot.directory.models import CertificationAuthority, Organisation


def test_a_snapshot_does_not_see_rows_committed_after_its_first_read(engine: Engine) -> None:
    migrate.upgrade(engine)
    count = select(func.count()).select_from(Organisation.__table__)
    insert = Organisation.__table__.insert()
    with engine.begin() as writer:
        writer.execute(insert, {"name": "до копии", "active": True})
    with snapshot(engine) as reader:
        assert reader.execute(count).scalar() == 1
        # A letter is registered while the backup runs (SQLite in WAL mode, too).
        with engine.begin() as writer:
            writer.execute(insert, {"name": "во время копии", "active": True})
        assert reader.execute(count).scalar() == 1
    with engine.connect() as connection:
        assert connection.execute(count).scalar() == 2


def test_values_survive_the_dump_format() -> None:
    table = CertificationAuthority.__table__
    moment = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    for column, value in (
        ("certificate_der", b"\x30\x82\x00\xff"),
        ("not_after", moment),
        ("crl_urls", ["http://ca.example/1.crl"]),
        ("active", False),
        ("ski", None),
    ):
        decode = decoder_for(table.c[column].type)
        assert decode(encode_value(value)) == value, column
    # SQLite hands back zone-less UTC times: they are dumped as UTC.
    naive = moment.replace(tzinfo=None)
    assert decoder_for(table.c["not_after"].type)(encode_value(naive)) == moment
