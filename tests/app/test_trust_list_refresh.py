"""The list of accredited CAs from a URL, through a real local HTTP server: the scheduled
refresh with its conditional GET, the size cap, failures alerted once a day."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.app.trust_list_refresh import refresh_trust_list
from mailbot.directory.models import Alert, CertificationAuthority, TrustListEdition
from testkit import pki
from testkit import trust_list as tl
from testkit.crl_server import CrlServer
from tests.app.world import World

ADMIN = "admin@example.test"


@pytest.fixture
def server() -> Iterator[CrlServer]:
    served = CrlServer()
    yield served
    served.stop()


def listed(version: int) -> bytes:
    return tl.trust_list_xml(
        [tl.make_authority(1, keys=1), tl.make_authority(2, keys=1)], version=version
    )


@pytest.fixture
def refreshing(make_world: Callable[..., World], server: CrlServer) -> World:
    return make_world(
        trust_list={"url": server.url, "register": "accredited"},
        admin={"alert_addresses": [ADMIN]},
    )


def editions(world: World) -> list[tuple[int, str | None]]:
    with world.sessions() as session:
        rows = session.scalars(select(TrustListEdition).order_by(TrustListEdition.version))
        return [(row.version, row.etag) for row in rows]


def test_refresh_imports_then_asks_conditionally(refreshing: World, server: CrlServer) -> None:
    world = refreshing
    server.crl, server.etag = listed(1000), '"v1000"'
    result = refresh_trust_list(world.config, world.sessions, pki.NOW)
    assert result.error is None and result.report is not None
    assert len(result.report.registered) == 2
    assert editions(world) == [(1000, '"v1000"')]
    assert "If-None-Match" not in server.request_headers[0]

    # Unchanged on the server: 304, nothing imported.
    again = refresh_trust_list(world.config, world.sessions, pki.NOW)
    assert again.report is None and again.error is None
    assert server.request_headers[1]["If-None-Match"] == '"v1000"'
    assert server.requests == 2

    # A new publication: imported.
    server.crl, server.etag = listed(1001), '"v1001"'
    newer = refresh_trust_list(world.config, world.sessions, pki.NOW)
    assert newer.report is not None and newer.report.previous_version == 1000
    assert editions(world) == [(1000, '"v1000"'), (1001, '"v1001"')]
    # The temporary download is gone; nothing else was left in the state folder.
    assert not list(world.config.general.state_dir.glob(".tmp-trust-list-*"))


def test_failures_are_alerted_once_a_day_and_change_nothing(
    refreshing: World, server: CrlServer
) -> None:
    world = refreshing
    first = refresh_trust_list(world.config, world.sessions, pki.NOW)  # 404
    assert first.error is not None and "404" in first.error
    server.crl = b"<html><body>maintenance</body></html>" + b" " * 100
    second = refresh_trust_list(world.config, world.sessions, pki.NOW)
    assert second.error is not None and "not an XML file" in second.error
    # A truncated list fails part-way: nothing written.
    server.crl = listed(1000)[:-200]
    third = refresh_trust_list(world.config, world.sessions, pki.NOW)
    assert third.error is not None
    with world.sessions() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "trust_list_unavailable"))
        assert [a.subject for a in alerts] == ["Ошибка загрузки перечня аккредитованных УЦ"]
        assert session.scalar(select(func.count(TrustListEdition.id))) == 0
        assert session.scalar(select(func.count(CertificationAuthority.id))) == 1
    # The next day: alerted again.
    refresh_trust_list(world.config, world.sessions, pki.NOW + dt.timedelta(days=1))
    with world.sessions() as session:
        count = select(func.count(Alert.id)).where(Alert.kind == "trust_list_unavailable")
        assert session.scalar(count) == 2


def test_the_size_cap_holds(make_world: Callable[..., World], server: CrlServer) -> None:
    world = make_world(trust_list={"url": server.url, "max_size_mib": 1})
    server.crl = tl.trust_list_xml([tl.make_authority(1, keys=1, padding=600_000),
                                    tl.make_authority(2, keys=1, padding=600_000)])  # fmt: skip
    assert len(server.crl) > 1024 * 1024
    result = refresh_trust_list(world.config, world.sessions, pki.NOW)
    assert result.error is not None and "limit" in result.error
    assert editions(world) == []


def test_the_download_is_private(refreshing: World, server: CrlServer, tmp_path: Path) -> None:
    """The download goes through a private scratch file of the state folder, gone afterwards."""
    from mailbot.files import private_scratch_file

    with private_scratch_file(refreshing.config.general.state_dir, ".tmp-trust-list-") as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.exists()
    folder = refreshing.config.general.state_dir
    with pytest.raises(RuntimeError), private_scratch_file(folder, ".tmp-x-") as path:
        raise RuntimeError("a failed download")
    assert not path.exists()
    refresh_trust_list(refreshing.config, refreshing.sessions, pki.NOW)
    assert not list(refreshing.config.general.state_dir.glob(".tmp-trust-list-*"))
