"""Why an install failed: ``[install_errors]`` of templates/phrases.toml, editable and checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.directory import certstore
from mailbot.directory.models import LetterRecord
from mailbot.notices.templates import (
    PHRASE_PLACEHOLDERS,
    PHRASES,
    TemplateError,
    load_templates,
)
from testkit import pki as factory

# The registration world of the processor's tests, its fixture included under its own name.
from tests.app.world import SNILS, World, cert_letter
from tests.app.world import make_world as make_world
from tests.notices.helpers import copy_templates
from tests.notices.test_phrases import edit_phrases

WRITE_FAILED = 'write_failed = "не удалось записать файл сертификата: {reason}"'
NO_FOLDER = 'no_folder = "папка хранилища сертификатов не найдена"'


def test_edited_install_phrases_are_what_the_participant_reads(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    templates = copy_templates(tmp_path)
    edit_phrases(templates, WRITE_FAILED, 'write_failed = "файл не записан ({reason}), правка"')
    edit_phrases(templates, NO_FOLDER, 'no_folder = "нет папки (правка)"')
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")  # the store's parent is a file: ENOTDIR
    world = make_world(
        paths={"templates_dir": str(templates), "certificate_store": str(blocker / "store")}
    )
    result = world.process(cert_letter(factory.make_end_entity(world.ca, snils=SNILS)))
    assert result.outcome == "install_error"
    assert result.reply_text == (
        "Установка сертификата ключа проверки электронной подписи не может быть выполнена. "
        "Ошибка: файл не записан (нет папки (правка)), правка"
    )
    with world.sessions() as session:
        install = session.scalars(select(LetterRecord)).one().detail["install"]
    assert install["error"] == "файл не записан (нет папки (правка)), правка"
    assert "Not a directory" in install["os_error"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            WRITE_FAILED,
            'write_failed = "не записан {path}: {reason}"',
            r"phrase install_errors.write_failed: unknown placeholder \{path\}",
        ),
        (
            WRITE_FAILED,
            'write_failed = "не удалось записать файл сертификата"',
            r"phrase install_errors.write_failed: missing placeholder \{reason\}",
        ),
        (
            NO_FOLDER,
            'no_folder = "нет папки {reason}"',
            r"phrase install_os_errors.no_folder: unknown placeholder \{reason\}",
        ),
        (
            WRITE_FAILED,
            'write_failed = "не записан: {reason!r}"',
            r"phrase install_errors.write_failed: placeholder \{reason\} must be a plain",
        ),
    ],
    ids=["undeclared", "missing", "none-declared", "fancy"],
)
def test_install_phrase_placeholders_are_checked_at_load(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    templates = copy_templates(tmp_path)
    edit_phrases(templates, old, new)
    with pytest.raises(TemplateError, match=problem):
        load_templates(templates)


def test_every_install_phrase_key_is_declared() -> None:
    # Every errno the store names has a phrase; each phrase declares its placeholders.
    assert set(certstore._OS_ERROR_KEYS.values()) < PHRASES["install_os_errors"]
    for section in ("install_errors", "install_os_errors"):
        assert set(PHRASE_PLACEHOLDERS[section]) == PHRASES[section]
