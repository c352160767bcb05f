"""Structured logs: JSON lines with bound context; secrets and personal data never appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mailbot.config import SecretSource
from mailbot.log import bind_letter, configure_logging, get_logger


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("json", "debug", stream=buffer)
    yield buffer
    configure_logging("console", "warning")


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_letter_context(stream: io.StringIO) -> None:
    log = get_logger("test")
    with bind_letter(letter_id=7, uid=42, message_id="<a@b>"):
        log.info("letter.routed", route="add_cert")
    log.info("after")
    first, second = lines(stream)
    assert first["event"] == "letter.routed"
    assert (first["letter_id"], first["uid"], first["message_id"]) == (7, 42, "<a@b>")
    assert first["route"] == "add_cert"
    assert first["level"] == "info"
    assert "timestamp" in first
    assert "letter_id" not in second


def test_secret_keys_and_values_are_withheld(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LOG_SECRET", "Sup3r-S3cret-Value")
    secret = SecretSource(env="TEST_LOG_SECRET").resolve()
    log = get_logger()
    log.info("imap.login", user="reestrin", password="Sup3r-S3cret-Value")
    log.info("oops", detail="server said: LOGIN reestrin Sup3r-S3cret-Value failed")
    log.info("db", url="postgresql://bot:dbpass@db.example.org/mailbot")
    log.info("secret object", value=secret)
    text = stream.getvalue()
    assert "Sup3r-S3cret-Value" not in text
    assert "dbpass" not in text
    records = lines(stream)
    assert records[0]["password"] == "[redacted]"
    assert records[0]["user"] == "reestrin"
    assert records[1]["detail"] == "server said: LOGIN reestrin [redacted] failed"
    assert records[2]["url"] == "postgresql://bot:[redacted]@db.example.org/mailbot"


def test_certificate_bodies_raw_letters_and_private_keys_are_withheld(
    stream: io.StringIO,
) -> None:
    log = get_logger()
    pem_key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----"
    log.info("letter", raw=b"From: a@b\r\n\r\nsecret body", der=b"\x30\x82\x01\x00")
    log.info("bundle", detail=f"got {pem_key} in text", blob=b"\x00\x01")
    text = stream.getvalue()
    assert "secret body" not in text
    assert "MIGHAgEAMBMG" not in text
    first, second = lines(stream)
    assert first["raw"] == "[24 bytes withheld]"
    assert first["der"] == "[4 bytes withheld]"
    assert second["blob"] == "[2 bytes withheld]"


def test_snils_is_masked(stream: io.StringIO) -> None:
    get_logger().info("snils.compared", snils="112-233-445 95", certificate_snils="11223344595")
    (record,) = lines(stream)
    assert record["snils"] == "*********95"
    assert record["certificate_snils"] == "*********95"
    assert "112233445" not in stream.getvalue()


def test_stdlib_logging_goes_through_the_same_redaction(stream: io.StringIO) -> None:
    logging.getLogger("some.library").warning("connect to postgresql://u:topsecret@h/db failed")
    text = stream.getvalue()
    assert "topsecret" not in text
    (record,) = lines(stream)
    assert record["level"] == "warning"
    assert "postgresql://u:[redacted]@h/db" in str(record["event"])


def test_console_format_is_human_readable() -> None:
    buffer = io.StringIO()
    configure_logging("console", "info", stream=buffer)
    try:
        get_logger().info("hello", password="pw-console-123")
        get_logger().debug("hidden at info level")
    finally:
        configure_logging("console", "warning")
    text = buffer.getvalue()
    assert "hello" in text
    assert "pw-console-123" not in text
    assert "hidden at info level" not in text
    assert not text.lstrip().startswith("{")


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 200_000,  # an 80 KB From local part took 80 s before the scheme was bounded
        "a1" * 100_000,
        "x://" + "b:" * 100_000,
        ("-----BEGIN " + "A" * 100) * 2_000,
    ],
    ids=["letters", "alnum", "colons", "pem-headers"],
)
def test_hostile_strings_are_scrubbed_in_linear_time(stream: io.StringIO, hostile: str) -> None:
    import time

    started = time.monotonic()
    get_logger().info("letter", sender=hostile + " postgresql://u:pw@h/db")
    # Generous: linear scrubbing takes ~0.05 s here; the quadratic one took minutes.
    assert time.monotonic() - started < 5
    (record,) = lines(stream)
    assert len(str(record["sender"])) < 20_000


def test_long_strings_are_cut_after_scrubbing(stream: io.StringIO) -> None:
    long_prefix = "z" * 40 + "1postgresql://bot:dbpass@h/db "
    get_logger().info("x", detail=long_prefix + "y" * 100_000)
    (record,) = lines(stream)
    detail = str(record["detail"])
    assert "dbpass" not in detail
    assert "1postgresql://bot:[redacted]@h/db" in detail
    assert detail.endswith("more characters]")
    assert len(detail) < 17_000
