"""``mailbot process FILE.eml --dry-run``: text and JSON reports, clear errors, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailbot.cli.main import main
from testkit import letters as L  # noqa: N812


@pytest.fixture(autouse=True)
def intake_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration named by $MAILBOT_CONFIG (``--intake-only`` touches no state)."""
    path = tmp_path / "intake.toml"
    path.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n[imap]\npassword_env = "UNUSED"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("MAILBOT_CONFIG", str(path))
    return path


def write(tmp_path: Path, raw: bytes, name: str = "letter.eml") -> str:
    path = tmp_path / name
    path.write_bytes(raw)
    return str(path)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["process", *args, "--intake-only", "--format", "json"]) == 0
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def test_json_for_a_letter_that_passes_intake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = write(tmp_path, L.outlook_letter("Иванов.zip", L.certificate_zip("Иванов.cer")))
    report = run_json(capsys, eml, "--trusted", L.TRUSTED_SENDER.upper())
    assert report["outcome"] == "certificate_checks_pending"
    assert report["route"] == "add_cert"
    assert report["reply_to"] == L.TRUSTED_SENDER
    assert report["reply_text"] is None
    assert report["attachments"] == {
        "verdict": "ok",
        "zip_name": "Иванов.zip",
        "certificate_file": "Иванов.cer",
        "certificate_encoding": "der",
        "certificate_bytes": len(L.certificate_der()),
    }


def test_json_for_a_rejected_letter_has_the_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = write(tmp_path, L.no_attachment_letter())
    report = run_json(capsys, eml, "--trusted", L.TRUSTED_SENDER)
    assert report["outcome"] == "no_cer"
    assert report["reply_to"] == L.TRUSTED_SENDER
    assert str(report["reply_text"]).startswith("В полученном от Вас письме отсутствует")
    assert report["reply_subject"] == "Re: ADD_CERT"


def test_json_untrusted_sender_and_reply_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = write(tmp_path, L.no_attachment_letter())
    report = run_json(capsys, eml)
    assert (report["outcome"], report["reply_to"], report["stage"]) == (
        "no_reply",
        None,
        "sender_gate",
    )
    capped = run_json(capsys, eml, "--trusted", L.TRUSTED_SENDER, "--replies-today", "20")
    # Over the cap the checks still run (no_cer here); only the reply is withheld.
    assert (capped["outcome"], capped["reply_to"]) == ("no_cer", None)


def test_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eml = write(tmp_path, L.no_attachment_letter(subject="Привет"))
    assert main(["process", eml, "--intake-only", "--trusted", L.TRUSTED_SENDER]) == 0
    out = capsys.readouterr().out
    assert "outcome:      unknown_subject" in out
    assert f"reply to:     {L.TRUSTED_SENDER}" in out
    assert "«Привет» не соответствует" in out
    assert "miss route:add_cert" in out


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 100, b"garbage without headers", b"From:"])
def test_broken_input_gives_a_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes
) -> None:
    report = run_json(capsys, write(tmp_path, raw))
    assert report["outcome"] == "no_reply"


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["process", str(tmp_path / "missing.eml"), "--intake-only"]) == 1
    assert "cannot read" in capsys.readouterr().err
    eml = write(tmp_path, L.no_attachment_letter())
    assert main(["process", eml, "--trusted", L.TRUSTED_SENDER]) == 2
    assert "--intake-only" in capsys.readouterr().err
    config = tmp_path / "mailbot.toml"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.toml").write_text('[[route]]\nname="x"\naction="nope"\nsubject="A"\n')
    config.write_text(f'[imap]\npassword_env = "X"\n[paths]\nrules_dir = "{rules}"\n')
    assert main(["process", eml, "--intake-only", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "route table is invalid" in err and "Traceback" not in err


def test_json_report_on_a_strict_utf8_stdout_survives_8bit_headers(tmp_path: Path) -> None:
    """Raw 8-bit bytes that are not UTF-8 (From, Message-ID) never crash the report."""
    import os
    import subprocess
    import sys

    eml = write(
        tmp_path,
        b"From: J\xf6e <j\xf6e@m\xe4chine.example>\r\nTo: reestrin@fund.example\r\n"
        b"Subject: ADD_CERT \xff\r\nMessage-ID: <a\xff@x>\r\n\r\nbody\r\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "mailbot", "process", "--intake-only", "--format", "json", eml],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    report = json.loads(done.stdout.decode("utf-8"))
    assert report["outcome"] == "no_reply"
