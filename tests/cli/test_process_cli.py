"""``mailbot process FILE.eml`` against the database: the reply is queued once; --dry-run changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.cli.main import main
from mailbot.directory.models import LetterRecord, OutboxMessage
from testkit import pki as factory
from tests.app.world import REPO, SNILS, World, cert_letter


def config_file(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "mailbot.toml"
    path.write_text(
        f'[general]\nstate_dir = "{world.config.general.state_dir}"\n'
        f'[imap]\npassword_env = "UNUSED"\n'
        f'[smtp]\nfrom_address = "{world.config.smtp.from_address}"\n'
        f'[database]\nurl = "{world.config.database_url}"\n'
        f'[paths]\nrules_dir = "{REPO / "rules"}"\ntemplates_dir = "{REPO / "templates"}"\n',
        encoding="utf-8",
    )
    return path


def test_process_queues_the_reply_once(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    world.drop_crl(
        factory.make_crl(world.ca, this_update=now - dt.timedelta(hours=1),
                         next_update=now + dt.timedelta(days=7), number=5),
        name="today.crl",
    )  # fmt: skip
    eml = tmp_path / "letter.eml"
    eml.write_bytes(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    config = str(config_file(world, tmp_path))

    assert main(["process", str(eml), "--dry-run", "--format", "json", "--config", config]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["outcome"], report["queued"], report["dry_run"]) == ("success", False, True)
    with world.sessions() as session:
        assert session.scalar(select(func.count(LetterRecord.id))) == 0

    assert main(["process", str(eml), "--config", config]) == 0
    out = capsys.readouterr().out
    assert "outcome:   success" in out
    assert "queued in the outbox" in out
    assert "Установка сертификата ключа проверки электронной подписи выполнена успешно." in out

    assert main(["process", str(eml), "--format", "json", "--config", config]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["duplicate"] is True
    with world.sessions() as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 1
