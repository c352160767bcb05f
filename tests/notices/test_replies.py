"""Templates (byte for byte as in docs/regulation.md, strict placeholders) and the reply letter."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailbot.config.schema import shipped_dir
from mailbot.dates import format_reply_datetime
from mailbot.mail.letter import parse_letter
from mailbot.mail.reply import (
    MAX_ECHOED_SUBJECT_CHARS,
    ReplySettings,
    build_reply,
    thread_references,
)
from mailbot.notices.templates import (
    PLACEHOLDERS,
    TemplateError,
    load_templates,
)
from mailbot.regulation.decision import Outcome
from testkit import letters as L  # noqa: N812

SERIAL = "0191BEB900FCB08BA240275D9525313540"
VALUES: dict[Outcome, dict[str, str]] = {
    Outcome.INVALID_CERT: {"serial": SERIAL, "reason": "expired"},  # a phrase key
    Outcome.UNKNOWN_CA: {"serial": SERIAL},
    Outcome.INSTALL_ERROR: {"error": "нет места на диске"},
    Outcome.SUCCESS: {
        "subject_cn": "Иванов Иван Иванович",
        "valid_from": "01.01.2025 03:00:00",
        "valid_to": "01.01.2026 03:00:00",
    },
    Outcome.UNKNOWN_SUBJECT: {"subject": "ADD CERT"},
    Outcome.UNKNOWN_CA_REJECTED: {"serial": SERIAL, "reason": "УЦ не аккредитован"},
    Outcome.EXPIRY_REMINDER: {
        "serial": SERIAL,
        "subject_cn": "Иванов Иван Иванович",
        "valid_to": "01.01.2026 03:00:00",
        "days": "7",
    },
    Outcome.REVOKED_NOTICE: {
        "serial": SERIAL,
        "subject_cn": "Иванов Иван Иванович",
        "revoked_at": "20.12.2025 10:00:00",
        "reason": "keyCompromise",  # a phrase key
    },
}
# docs/regulation.md, "Replies", with the values above substituted.
REGULATION_TEXTS = {
    Outcome.NO_CER: "В полученном от Вас письме отсутствует файл сертификата ключа проверки "
    "электронной подписи *.cer. Установка сертификата не может быть выполнена",
    Outcome.INVALID_FILES: "К полученному от Вас письму приложены недопустимые файлы. Установка "
    "сертификата ключа проверки электронной подписи не может быть выполнена",
    Outcome.INVALID_CERT: f"Сертификат ключа проверки электронной подписи: {SERIAL} "
    "недействителен. Причина: срок действия истёк. Установка сертификата не может быть выполнена",
    Outcome.UNKNOWN_CA: f"Сертификат ключа проверки электронной подписи: {SERIAL} выдан "
    "неизвестным системе удостоверяющим центром. Установка сертификата в автоматическом режиме "
    "не может быть выполнена до завершения проверки. О результатах проверки и установке "
    "сертификата вы будете уведомлены дополнительно",
    Outcome.SNILS_MISMATCH: "Установка сертификата ключа проверки электронной подписи не может "
    "быть выполнена. Причина: СНИЛС, указанный в сертификате отличается от ранее "
    "зарегистрированного для данного абонента",
    Outcome.INSTALL_ERROR: "Установка сертификата ключа проверки электронной подписи не может "
    "быть выполнена. Ошибка: нет места на диске",
    Outcome.SUCCESS: "Установка сертификата ключа проверки электронной подписи выполнена "
    "успешно. Сертификат выдан: Иванов Иван Иванович. Срок действия сертификата: с 01.01.2025 "
    "03:00:00 по 01.01.2026 03:00:00",
    Outcome.UNKNOWN_SUBJECT: "Тема полученного от Вас письма «ADD CERT» не соответствует ни "
    "одному из известных шаблонов",
    # Not in the regulation (letters of mailbot's own: quarantine decisions, reminders, revocations).
    Outcome.UNKNOWN_CA_REJECTED: f"Сертификат ключа проверки электронной подписи: {SERIAL} не "
    "установлен: удостоверяющий центр, выдавший сертификат, не прошёл проверку. Причина: УЦ не "
    "аккредитован",
    Outcome.EXPIRY_REMINDER: f"Срок действия сертификата ключа проверки электронной подписи: "
    f"{SERIAL} (выдан: Иванов Иван Иванович) истекает 01.01.2026 03:00:00. Осталось дней: 7. "
    "Чтобы не потерять доступ, получите новый сертификат и направьте его письмом с темой ADD_CERT",
    Outcome.REVOKED_NOTICE: f"Сертификат ключа проверки электронной подписи: {SERIAL} (выдан: "
    "Иванов Иван Иванович) отозван удостоверяющим центром 20.12.2025 10:00:00. Причина отзыва: "
    "компрометация ключа. Работа с этим сертификатом невозможна. Получите новый сертификат и "
    "направьте его письмом с темой ADD_CERT",
}
TEMPLATES = load_templates(shipped_dir("templates"))


@pytest.mark.parametrize("outcome", list(PLACEHOLDERS))
def test_every_template_renders_spec_text_byte_for_byte(outcome: Outcome) -> None:
    rendered = TEMPLATES.render(outcome, VALUES.get(outcome, {}))
    assert rendered.encode("utf-8") == REGULATION_TEXTS[outcome].encode("utf-8")


def test_every_reply_outcome_has_a_template() -> None:
    assert set(PLACEHOLDERS) == {o for o in Outcome if o.has_reply}


def test_notices_have_subjects() -> None:
    values = VALUES[Outcome.EXPIRY_REMINDER]
    assert (
        TEMPLATES.render_subject(Outcome.EXPIRY_REMINDER, values)
        == f"Срок действия сертификата {SERIAL} истекает 01.01.2026 03:00:00"
    )
    subject = TEMPLATES.render_subject(Outcome.REVOKED_NOTICE, VALUES[Outcome.REVOKED_NOTICE])
    assert subject == f"Сертификат {SERIAL} отозван удостоверяющим центром"
    with pytest.raises(TemplateError, match="no subject"):
        TEMPLATES.render_subject(Outcome.SUCCESS, VALUES[Outcome.SUCCESS])


def test_render_demands_exactly_the_declared_values() -> None:
    with pytest.raises(TemplateError, match="takes"):
        TEMPLATES.render(Outcome.UNKNOWN_CA, {})
    with pytest.raises(TemplateError, match="takes"):
        TEMPLATES.render(Outcome.NO_CER, {"serial": "1"})
    braces = TEMPLATES.render(Outcome.UNKNOWN_SUBJECT, {"subject": "{serial} {{x}}"})
    assert "«{serial} {{x}}»" in braces


def copy_templates(tmp_path: Path) -> Path:
    for path in shipped_dir("templates").glob("*.txt"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    return tmp_path


@pytest.mark.parametrize(
    ("key", "text", "problem"),
    [
        ("unknown_ca", "Сертификат {serial} от {issuer}", "unknown placeholder {issuer}"),
        ("unknown_ca", "Сертификат без номера", "missing placeholder {serial}"),
        ("no_cer", "Нет файла {", "bad braces"),
        ("success", "{subject_cn!r} {valid_from} {valid_to}", "plain {name}"),
        ("no_cer", "   \n", "empty template"),
    ],
)
def test_template_problems_are_errors_at_load(
    tmp_path: Path, key: str, text: str, problem: str
) -> None:
    folder = copy_templates(tmp_path)
    (folder / f"{key}.txt").write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        load_templates(folder)


def test_missing_or_undecodable_template_file(tmp_path: Path) -> None:
    folder = copy_templates(tmp_path)
    (folder / "success.txt").unlink()
    (folder / "no_cer.txt").write_bytes("нет".encode("cp1251"))
    with pytest.raises(TemplateError) as info:
        load_templates(folder)
    assert "success.txt: missing" in str(info.value)
    assert "no_cer.txt: cannot read as UTF-8" in str(info.value)


def test_reply_dates_are_local_time() -> None:
    moment = datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert format_reply_datetime(moment, "Europe/Moscow") == "01.01.2025 03:00:05"
    assert format_reply_datetime(moment, "Asia/Vladivostok") == "01.01.2025 10:00:05"
    with pytest.raises(ValueError, match="naive"):
        format_reply_datetime(datetime(2025, 1, 1), "Europe/Moscow")


# --- the reply letter ------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 7, 15, tzinfo=UTC)
SETTINGS = ReplySettings("reestrin@fund.example", "mailbot-prod")


def reply_to(raw: bytes, body: str = "Текст ответа") -> bytes:
    letter = parse_letter(raw, 10**6)
    return build_reply(letter, L.TRUSTED_SENDER, body, SETTINGS, NOW).as_bytes()


def test_reply_headers_and_body() -> None:
    refs = " ".join(f"<r{i}@x>" for i in range(12))
    raw = L.no_attachment_letter(
        subject="Вопрос", headers=[("References", refs), ("Reply-To", "evil@x.example")]
    )
    parsed = BytesParser(policy=policy.default).parsebytes(reply_to(raw))
    assert parsed["To"] == L.TRUSTED_SENDER
    assert parsed["From"] == "reestrin@fund.example"
    assert parsed["Subject"] == "Re: Вопрос"
    assert parsed["In-Reply-To"] == "<20250301101500.1@clinic.example>"
    ids = str(parsed["References"]).split()
    assert ids == [*(f"<r{i}@x>" for i in range(4)), *(f"<r{i}@x>" for i in range(7, 12)),
                   "<20250301101500.1@clinic.example>"]  # fmt: skip
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["X-Mailbot-Loop"] == "mailbot-prod"
    assert str(parsed["Message-ID"]).endswith("@fund.example>")
    assert parsed["Date"].datetime == NOW
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content().replace("\r\n", "\n") == "Текст ответа\n"


def test_reply_without_message_id_and_with_in_reply_to_only() -> None:
    assert thread_references([], ["<a@x>"], "<b@x>") == ["<a@x>", "<b@x>"]
    assert thread_references([], ["<a@x>", "<c@x>"], None) == []
    raw = L.no_attachment_letter(message_id="")
    parsed = BytesParser(policy=policy.default).parsebytes(reply_to(raw))
    assert parsed["In-Reply-To"] is None and parsed["References"] is None


def test_reply_subject_cannot_inject_headers() -> None:
    raw = L.no_attachment_letter(
        subject="=?utf-8?B?QURE?=\r\n =?utf-8?Q?=0D=0ABcc:_x@evil.example?="
    )
    out = reply_to(raw)
    assert b"\r\nBcc:" not in out


@pytest.mark.parametrize(
    "subject",
    ["Вопрос " * 150_000, "ab " * 350_000, "я" * 1_000_000, " " * 500_000 + "ADD_CERT"],
    ids=["cyrillic-words", "short-words", "one-word", "leading-space"],
)
def test_a_megabyte_subject_is_echoed_cut_and_fast(subject: str) -> None:
    import time

    raw = L.no_attachment_letter(subject=subject)
    started = time.monotonic()
    out = reply_to(raw)
    # Generous bound: ~0.05 s here; building the uncut header took over a minute.
    assert time.monotonic() - started < 5
    parsed = BytesParser(policy=policy.default).parsebytes(out)
    echoed = str(parsed["Subject"])
    assert echoed.startswith("Re: ")
    assert len(echoed) <= len("Re: ") + MAX_ECHOED_SUBJECT_CHARS
    expected = " ".join(subject.split())
    assert echoed == "Re: " + expected or (
        echoed.endswith("…") and expected.startswith(echoed[4:-1])
    )
    assert len(out) < 10_000
