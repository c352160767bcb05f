"""Configuration loading and validation: every problem names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.cli.main import main
from mailbot.config import ConfigError, SecretError, SecretSource, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"

MINIMAL = """
[imap]
host = "127.0.0.1"
password_env = "TEST_IMAP_PW"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.imap.password.env == "MAILBOT_IMAP_PASSWORD"
    assert config.general.timezone == "Europe/Moscow"
    assert config.crl.unavailable_policy == "defer"
    assert config.database_url == "sqlite:////var/lib/mailbot/mailbot.sqlite3"
    assert config.certificate_store == Path("/var/lib/mailbot/store")


def test_example_config_documents_every_key() -> None:
    """Every key of the schema appears in config.example.toml (set or commented)."""
    import dataclasses
    import typing

    from mailbot.config.schema import Config, SecretSource

    text = EXAMPLE.read_text(encoding="utf-8")
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        if section.name == "source":
            continue
        assert f"[{section.name}]" in text
        section_hints = typing.get_type_hints(hints[section.name])
        for field in dataclasses.fields(hints[section.name]):
            names = (
                [f"{field.name}_env", f"{field.name}_file"]
                if section_hints[field.name] is SecretSource
                else [field.name]
            )
            for name in names:
                assert f"{name} =" in text, f"{section.name}.{name} is not documented"


def test_defaults_need_no_file() -> None:
    config = load_config(None)
    assert config.database_url.startswith("sqlite:///")
    assert config.database_url.endswith("mailbot.sqlite3")
    assert config.rules_dir.name == "rules"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[general]\nstate_dir = "state"\n[paths]\nrules_dir = "r"\n')
    config = load_config(path)
    assert config.general.state_dir == tmp_path / "state"
    assert config.rules_dir == tmp_path / "r"
    assert config.archive_dir == tmp_path / "state" / "archive"


def test_typo_in_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + 'hots = "x"\n')
    problems = problems_of(path)
    assert problems == ["imap.hots: unknown key (did you mean 'imap.host'?)"]
    assert str(path) in str(ConfigError(path, problems))


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, MINIMAL + "[imapp]\nport = 1\n")) == [
        "imapp: unknown key (did you mean 'imap'?)"
    ]


def test_wrong_type_is_named(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + 'port = "993"\n'))
    assert problems == ["imap.port: must be an integer, got a string ('993')"]


def test_boolean_is_not_an_integer(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + "[limits]\nmax_letter_bytes = true\n"))
    assert problems == ["limits.max_letter_bytes: must be an integer, got a boolean (True)"]


def test_choice_is_checked(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + '[crl]\nunavailable_policy = "ignore"\n'))
    assert problems == [
        "crl.unavailable_policy: must be one of 'defer', 'reject', 'accept', got 'ignore'"
    ]


def test_crl_ingest_timeout_must_be_positive(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + "[crl]\ningest_timeout_seconds = 0\n"))
    assert problems == ["crl.ingest_timeout_seconds: must be positive"]


def test_crl_proxy_is_read_and_defaults_to_the_environment(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).crl.proxy == ""
    config = load_config(
        write(
            tmp_path,
            MINIMAL + '[crl]\nproxy = "http://fund@proxy.example:3128"\n'
            'proxy_password_file = "proxy-pw"\n',
        )
    )
    assert config.crl.proxy == "http://fund@proxy.example:3128"
    assert config.crl.proxy_password == SecretSource(file=tmp_path / "proxy-pw")


@pytest.mark.parametrize(
    ("proxy", "extra", "problem"),
    [
        (
            "socks5://proxy.example:1080",
            "",
            "crl.proxy: socks5://proxy.example:1080 scheme 'socks5' is not supported"
            " (only http:// and https:// proxies)",
        ),
        (
            "fund:hunter2@proxy.example:3128",
            "",
            "crl.proxy: proxy.example:3128 has no scheme (write http://host:port)",
        ),
        ("http://:3128", "", "crl.proxy: http://:3128 has no host"),
        ("http://proxy.example:99999", "", "crl.proxy: http://proxy.example:99999 has a bad port"),
        (
            "http://fund:hunter2@proxy.example:3128",
            "",
            "crl.proxy: inline passwords are not allowed; name the user in the URL and use"
            " crl.proxy_password_env or crl.proxy_password_file",
        ),
        (
            "http://proxy.example:3128",
            'proxy_password_env = "PW"\n',
            "crl.proxy: name the user for crl.proxy_password (http://user@host:port)",
        ),
        (
            "",
            'proxy_password_env = "PW"\n',
            "crl.proxy_password_env / crl.proxy_password_file: set but crl.proxy is empty",
        ),
    ],
)
def test_crl_proxy_is_checked(tmp_path: Path, proxy: str, extra: str, problem: str) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + f'[crl]\nproxy = "{proxy}"\n{extra}'))
    assert problems == [problem]
    assert "hunter2" not in problem


def test_missing_password_source_is_refused(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, '[imap]\nhost = "127.0.0.1"\n'))
    assert problems == [
        "imap.password_env / imap.password_file: the mailbox password source is missing"
    ]


def test_inline_password_is_refused(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + 'password = "hunter2"\n'))
    assert problems == [
        "imap.password: inline passwords are not allowed; use password_env or password_file"
    ]


def test_smtp_user_needs_a_password_source(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + '[smtp]\nuser = "bot"\n'))
    assert problems == [
        "smtp.password_env / smtp.password_file: smtp.user is set but no password source"
    ]


def test_password_in_database_url_is_refused(tmp_path: Path) -> None:
    text = MINIMAL + '[database]\nurl = "postgresql://bot:secret@db/mailbot"\n'
    assert problems_of(write(tmp_path, text)) == [
        "database.url: contains a password; use database.password_env or _file"
    ]


def test_plain_imap_only_on_loopback(tmp_path: Path) -> None:
    text = '[imap]\nhost = "mail.example.org"\ntls = "none"\npassword_env = "X"\n'
    assert problems_of(write(tmp_path, text)) == [
        "imap.tls: 'none' is allowed only for a server on the loopback address"
    ]


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    text = MINIMAL + 'port = "x"\n[general]\ntimezone = "Mars/Olympus"\n[admin]\n'
    text += 'alert_addresses = ["not an address"]\n[store]\ninstall_command = ["x", "{bogus}"]\n'
    problems = problems_of(write(tmp_path, text))
    assert problems == ["imap.port: must be an integer, got a string ('x')"]
    text = text.replace('port = "x"\n', "")
    problems = problems_of(write(tmp_path, text))
    assert problems == [
        "general.timezone: unknown time zone 'Mars/Olympus'",
        "admin.alert_addresses[0]: 'not an address' is not an address",
        "store.install_command[1]: unknown placeholder {bogus}",
    ]


def test_not_toml_is_refused(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "[imap\n"))
    assert len(problems) == 1
    assert problems[0].startswith("not valid TOML")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "absent.toml") == [
        "cannot read the file: No such file or directory"
    ]


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SECRET", "s3cr3t")
    assert SecretSource(env="TEST_SECRET").resolve().reveal() == "s3cr3t"
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    secret = SecretSource(file=secret_file).resolve()
    assert secret.reveal() == "from-file"
    assert "from-file" not in repr(secret) and "from-file" not in f"{secret}"
    with pytest.raises(SecretError, match="TEST_ABSENT is not set"):
        SecretSource(env="TEST_ABSENT").resolve()
    with pytest.raises(SecretError, match="cannot read"):
        SecretSource(file=tmp_path / "nope").resolve()


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write(tmp_path, MINIMAL + "hots = 1\n")
    assert main(["check-config", str(bad)]) == 78  # EX_CONFIG
    err = capsys.readouterr().err
    assert f"{bad}: imap.hots: unknown key" in err


def test_check_config_with_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.delenv("TEST_IMAP_PW", raising=False)
    assert main(["check-config", "--check-secrets", str(path)]) == 78  # EX_CONFIG
    assert "TEST_IMAP_PW is not set" in capsys.readouterr().err
    monkeypatch.setenv("TEST_IMAP_PW", "pw")
    assert main(["check-config", "--check-secrets", str(path)]) == 0
