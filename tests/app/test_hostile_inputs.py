"""Certificates and situations a stranger or a broken server can produce: an answer, never a crash."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot.directory.certstore import os_error_key
from mailbot.directory.models import CertificateRecord, LetterRecord
from mailbot.notices.templates import install_error_text, load_templates
from mailbot.pki.certificate import MAX_SERIAL_OCTETS
from testkit import pki as factory
from tests.app.world import REPO, SNILS, World, cert_letter


@pytest.mark.parametrize("octets", [MAX_SERIAL_OCTETS + 1, 200])
def test_a_serial_longer_than_the_directory_holds_is_invalid_files(
    world: World, octets: int
) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS, serial=b"\x11" * octets)
    result = world.process(cert_letter(participant), uid=1)
    assert result.outcome == "invalid_files", result.detail
    assert result.reply_text is not None
    with world.sessions() as session:
        assert session.scalar(select(func.count(CertificateRecord.id))) == 0
        assert session.scalars(select(LetterRecord)).one().state == "done"


def test_the_longest_accepted_serial_is_registered(world: World) -> None:
    participant = factory.make_end_entity(world.ca, snils=SNILS, serial=b"\x11" * MAX_SERIAL_OCTETS)
    result = world.process(cert_letter(participant), uid=1)
    assert result.outcome == "success", result.detail
    with world.sessions() as session:
        assert session.scalars(select(CertificateRecord)).one().serial == "11" * MAX_SERIAL_OCTETS


def test_a_store_write_failure_is_explained_in_russian(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    world = make_world(paths={"certificate_store": str(blocker / "store")})
    result = world.process(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    assert result.outcome == "install_error"
    assert result.reply_text == (
        "Установка сертификата ключа проверки электронной подписи не может быть выполнена. "
        "Ошибка: не удалось записать файл сертификата: папка хранилища сертификатов не найдена"
    )
    with world.sessions() as session:
        install = session.scalars(select(LetterRecord)).one().detail["install"]
    assert "Not a directory" in install["os_error"]  # the admins still see the system's words


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (errno.ENOSPC, "недостаточно места на диске сервера"),
        (errno.EACCES, "нет прав на запись в хранилище сертификатов"),
        (errno.EEXIST, "в хранилище сертификатов мешает существующий файл"),
        (errno.ELOOP, "системная ошибка ELOOP"),
    ],
)
def test_os_errors_in_participants_words(code: int, text: str) -> None:
    phrases = load_templates(REPO / "templates").phrases
    reason = os_error_key(OSError(code, "English words"))
    written = install_error_text(phrases, "write_failed", {"reason": reason})
    assert written == f"не удалось записать файл сертификата: {text}"
