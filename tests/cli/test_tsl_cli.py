"""``mailbot ca import-tsl`` (file and URL, text and JSON, dry run, status filter, refusals)
and what ``ca list`` / ``ca show`` then say, on both databases."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.cli.main import main
from mailbot.directory.models import AccreditedCa, CertificationAuthority
from testkit import pki
from testkit import trust_list as tl
from testkit.crl_server import CrlServer
from tests.app.world import World
from tests.cli.test_process_cli import config_file


def cas() -> list[tl.TslAuthority]:
    terminated = tl.TslStatus("Прекращена", pki.NOW - dt.timedelta(days=10))
    return [
        tl.make_authority(1, keys=1),
        tl.make_authority(2, keys=1, status=terminated),
    ]


@pytest.fixture
def config(make_world: Callable[..., World], tmp_path: Path) -> list[str]:
    world = make_world()
    path = config_file(world, tmp_path)
    with path.open("a", encoding="utf-8") as out:
        out.write('[trust_list]\nregister = "accredited"\n')
    return ["--config", str(path)]


def count(config: list[str], table: type) -> int:
    from mailbot.config import load_config
    from mailbot.directory.session import database

    with database(load_config(Path(config[1]))) as sessions, sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_import_a_file_then_again(
    config: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tsl.xml"
    tl.write_trust_list(path, cas(), version=1000)

    assert main(["ca", "import-tsl", str(path), "--dry-run", *config]) == 0
    out = capsys.readouterr().out
    assert "DRY RUN: nothing was written" in out
    assert "CAs added: 2" in out
    assert count(config, AccreditedCa) == 0

    assert main(["ca", "import-tsl", str(path), "--only-status", "ДЕЙСТВУЕТ", *config]) == 0
    out = capsys.readouterr().out
    assert "trust list version 1000" in out
    assert "CAs added: 1\n" in out and "(no. 901) [Действует]" in out and "902" not in out
    assert "CA directory: registered: 1" in out
    assert count(config, AccreditedCa) == 2

    assert main(["ca", "import-tsl", str(path), "--format", "json", *config]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["unchanged"] is True and again["version"] == 1000

    assert main(["ca", "list", "--format", "json", *config]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    listed = rows["Тестовый аккредитованный УЦ 1"]
    assert (listed["origin"], listed["accreditation"]) == ("list v1000", "Действует")
    assert (rows["УЦ Тест"]["origin"], rows["УЦ Тест"]["accreditation"]) == ("hand", "not listed")

    # A newer edition ends CA 1's accreditation: flagged, shown as such.
    ended = replace(cas()[0], status=tl.TslStatus("Приостановлена", pki.NOW))
    newer = tmp_path / "tsl-1001.xml"
    tl.write_trust_list(newer, [ended, cas()[1]], version=1001)
    assert main(["ca", "import-tsl", str(newer), *config]) == 0
    out = capsys.readouterr().out
    assert "Действует -> Приостановлена" in out
    assert "CA directory: flagged: 1" in out and "accreditation_lost" in out
    assert main(["ca", "list", *config]) == 0
    table = capsys.readouterr().out
    assert "Приостановлена [flag: accreditation_lost]" in table
    assert "list v1000" in table
    ca_id = listed["id"]
    assert main(["ca", "show", str(ca_id), *config]) == 0
    shown = capsys.readouterr().out
    assert "registry_number  901" in shown
    assert "list_flag        accreditation_lost" in shown
    assert "status_history   Действует" in shown and "Приостановлена" in shown
    assert main(["ca", "show", str(ca_id), "--format", "json", *config]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["listed_as"].endswith("«Тестовый УЦ 1»")
    assert [h.split()[0] for h in data["status_history"]] == [
        "Действует",
        "Приостановлена",
        "Действует",
    ]


def test_refusals_and_broken_files(
    config: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tsl.xml"
    tl.write_trust_list(path, cas(), version=1001)
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(path.read_bytes()[:-300])
    assert main(["ca", "import-tsl", str(truncated), *config]) == 1
    assert "nothing written" in capsys.readouterr().err
    assert count(config, AccreditedCa) == 0

    assert main(["ca", "import-tsl", str(path), *config]) == 0
    older = tmp_path / "older.xml"
    tl.write_trust_list(older, cas(), version=1000)
    assert main(["ca", "import-tsl", str(older), *config]) == 1
    assert "older than the current version 1001" in capsys.readouterr().err
    assert main(["ca", "import-tsl", str(older), "--force", *config]) == 0
    assert main(["ca", "import-tsl", str(tmp_path / "missing.xml"), *config]) == 74


def test_import_from_a_url(config: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    server = CrlServer()
    try:
        server.crl = tl.trust_list_xml(cas(), version=1000)
        server.etag = '"abc"'
        assert main(["ca", "import-tsl", server.url, "--format", "json", *config]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["source"] == server.url and len(report["registered"]) == 1
        # By hand, the file is always fetched (no validators sent).
        assert main(["ca", "import-tsl", server.url, *config]) == 0
        assert "already imported" in capsys.readouterr().out
        assert "If-None-Match" not in server.request_headers[1]
    finally:
        server.stop()
    assert count(config, CertificationAuthority) == 2
