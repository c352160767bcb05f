"""templates/phrases.toml: the reasons put into replies are editable, and checked at load."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailbot.notices.templates import PHRASES, PHRASES_FILE, TemplateError, load_templates
from mailbot.pki.crl import REASON_NAMES
from mailbot.pki.validation import Reason
from mailbot.regulation.add_cert import CRL_UNAVAILABLE_REASON

# The registration world of the processor's tests, its fixture included under its own name.
from tests.app.world import World, cert_letter, expired_certificate
from tests.app.world import make_world as make_world
from tests.notices.helpers import copy_templates

EXPIRED = 'expired = "срок действия истёк"'


def edit_phrases(templates: Path, old: str, new: str) -> None:
    path = templates / PHRASES_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_an_edited_phrase_is_what_the_participant_reads(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    templates = copy_templates(tmp_path)
    edit_phrases(templates, EXPIRED, 'expired = "истёк срок действия (правка)"')
    world = make_world(paths={"templates_dir": str(templates)})
    expired = expired_certificate(world)
    result = world.process(cert_letter(expired))
    assert result.outcome == "invalid_cert"
    assert result.reply_text == (
        f"Сертификат ключа проверки электронной подписи: {expired.cert.serial_hex} недействителен. "
        "Причина: истёк срок действия (правка). Установка сертификата не может быть выполнена"
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (EXPIRED, "", "missing phrase invalid_cert_reasons.expired"),
        (EXPIRED, EXPIRED + '\nexpird = "опечатка"', "unknown phrase invalid_cert_reasons.expird"),
        (EXPIRED, 'expired = "  "', "phrase invalid_cert_reasons.expired must be a non-empty"),
        (EXPIRED, "expired = 1", "phrase invalid_cert_reasons.expired must be a non-empty"),
        ("[revoked_notice]", "[revoked_notices]", "unknown section \\[revoked_notices\\]"),
        ("[revoked_notice]", "[revoked_notices]", "missing section \\[revoked_notice\\]"),
        (EXPIRED, 'expired = "без кавычки', "cannot read as UTF-8 TOML"),
    ],
    ids=["missing", "unknown", "blank", "not-text", "unknown-section", "missing-section", "toml"],
)
def test_phrase_problems_are_errors_at_load(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    templates = copy_templates(tmp_path)
    edit_phrases(templates, old, new)
    with pytest.raises(TemplateError, match=problem):
        load_templates(templates)


def test_a_missing_phrases_file_is_an_error_at_load(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / PHRASES_FILE).unlink()
    with pytest.raises(TemplateError, match=f"{PHRASES_FILE}: missing"):
        load_templates(templates)


def test_phrase_keys_are_the_codes_keys() -> None:
    # A reason the code can hand over always has a phrase (a KeyError at render otherwise).
    assert PHRASES["revocation_reasons"] == set(REASON_NAMES.values())
    invalid = {Reason.EXPIRED, Reason.NOT_YET_VALID, Reason.INVALID_PUBLIC_KEY, Reason.REVOKED}
    invalid |= {Reason.BAD_CA_SIGNATURE, Reason.CA_NOT_USABLE, Reason.CA_NOT_ACCREDITED}
    keys = {r.value for r in invalid} | {CRL_UNAVAILABLE_REASON}
    assert PHRASES["invalid_cert_reasons"] == keys
