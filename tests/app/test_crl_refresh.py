"""The scheduled CRL refresh ingests what letters would otherwise wait for.

Processor level on SQLite and PostgreSQL, with the daemon's assembly (one CRL
store shared by letters and the refresh, worker processes for big CRLs).
"""

from __future__ import annotations

import datetime as dt
import resource
from typing import Any

from structlog.testing import capture_logs

from mailbot.app.adapters import DbCaDirectory
from mailbot.app.crl_refresh import refresh_crls
from mailbot.pki.crl_fetch import CachingCrlSource
from mailbot.pki.crl_store import CrlStore
from testkit import pki as factory
from testkit.crl_server import CrlServer
from tests.app.world import SNILS, World, cert_letter

HORIZON = factory.NOW + dt.timedelta(hours=2)  # the daemon's: now + 2 refresh intervals


def accepted(logs: list[dict[str, Any]]) -> list[tuple[int, str | None]]:
    """(CRL number, source) of every CRL ingested while the logs were captured."""
    return [(e["number"], e["source"]) for e in logs if e["event"] == "crl_accepted"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def shared_store(world: World) -> CrlStore:
    with world.sessions() as session:
        source = world.processor.crl_source_for(DbCaDirectory(session))
        assert isinstance(source, CachingCrlSource)
        return source.store


def test_a_dropped_crl_is_ingested_by_the_refresh_not_by_the_next_letter(world: World) -> None:
    first = factory.make_end_entity(world.ca, snils=SNILS, serial=0x5001, crl_urls=())
    with capture_logs() as logs:
        assert world.process(cert_letter(first), uid=1).outcome == "success"
    assert accepted(logs) == [(1, "file:ca.crl")]  # first use: the letter ingests (fallback)

    entries = 30_000  # ~1.2 MB: over the in-process threshold, a worker indexes it
    big = factory.make_crl(world.ca, raw_entries=factory.bulk_entries(entries), number=2)
    world.drop_crl(big, "2.crl")
    before = children_cpu()
    with capture_logs() as logs:
        found = refresh_crls(world.sessions, world.processor.crl_source_for, HORIZON)
    assert accepted(logs) == [(2, "file:2.crl")]
    assert children_cpu() > before
    assert [(c.ca_name, c.problem) for c in found] == [(world.ca.cert.subject_cn, None)]

    revoked = factory.make_end_entity(
        world.ca, snils=SNILS, serial=int.from_bytes(factory.bulk_serial(7), "big"), crl_urls=()
    )
    with capture_logs() as logs:
        result = world.process(cert_letter(revoked), uid=2)
    assert accepted(logs) == []  # the letter only looked the serial up
    assert result.outcome == "invalid_cert", result.detail
    current = shared_store(world).current(world.ca.cert)
    assert current is not None and (current.meta.crl_number, len(current)) == (2, entries)


def test_the_refresh_renews_a_crl_from_the_url_it_came_from(world: World) -> None:
    """The cached CRL came from a certificate's distribution point the directory does not
    list; it runs out before the horizon, so the refresh fetches its successor there."""
    for dropped in world.config.crl_drop_dir.iterdir():
        dropped.unlink()
    server = CrlServer()
    try:
        store = shared_store(world)
        ending = factory.make_crl(
            world.ca, number=1, next_update=factory.NOW + dt.timedelta(hours=1)
        )
        store.ingest(ending, world.ca.cert, source_url=server.url)
        server.crl = factory.make_crl(world.ca, number=2)
        found = refresh_crls(world.sessions, world.processor.crl_source_for, HORIZON)
        assert [c.problem for c in found] == [None]
        assert server.requests == 1
    finally:
        server.stop()
    current = store.current(world.ca.cert)
    assert current is not None and current.meta.crl_number == 2
    assert current.meta.source_url == server.url
