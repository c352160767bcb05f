"""The [metrics] section: off by default, loopback addresses only."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.config import ConfigError, load_config
from mailbot.config.schema import parse_listen
from tests.logs import _captured_logs  # noqa: F401  (autouse, as in its old folder)

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
[imap]
host = "127.0.0.1"
password_env = "TEST_IMAP_PW"
"""


def load(tmp_path: Path, metrics: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(MINIMAL + "\n[metrics]\n" + metrics, encoding="utf-8")
    return load_config(path)


def test_defaults_and_example() -> None:
    for config in (load_config(None), load_config(REPO / "config.example.toml")):
        assert config.metrics.enabled is False
        assert config.metrics.address == ("127.0.0.1", 9468)


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9468", ("127.0.0.1", 9468)),
        ("127.0.0.53:1", ("127.0.0.53", 1)),
        ("[::1]:9468", ("::1", 9468)),
    ],
)
def test_loopback_addresses_are_accepted(listen: str, address: tuple[str, int]) -> None:
    assert parse_listen(listen) == address


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("0.0.0.0:9468", "only a loopback address"),
        ("[::]:9468", "only a loopback address"),
        ("10.1.2.3:9468", "only a loopback address"),
        ("localhost:9468", "not a name"),
        ("metrics.example.org:9468", "not a name"),
        ("::1:9468", "in brackets"),
        ("127.0.0.1", "not host:port"),
        (":9468", "not host:port"),
        ("127.0.0.1:http", "not host:port"),
        ("127.0.0.1:0", "1-65535"),
        ("127.0.0.1:70000", "1-65535"),
    ],
)
def test_bad_listen_is_refused_with_the_key(tmp_path: Path, listen: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f'enabled = true\nlisten = "{listen}"\n')
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("metrics.listen: ")
    assert message in info.value.problems[0]


def test_checked_even_when_disabled(tmp_path: Path) -> None:
    # A typo should show up when the file is written, not months later when enabled.
    with pytest.raises(ConfigError):
        load(tmp_path, 'enabled = false\nlisten = "0.0.0.0:9468"\n')


def test_enabled_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.enabled: must be true or false"):
        load(tmp_path, 'enabled = "yes"\n')


def test_textfile_is_off_by_default_and_empty_means_off(tmp_path: Path) -> None:
    assert load_config(None).metrics.textfile is None
    assert load_config(REPO / "config.example.toml").metrics.textfile is None
    config = load(tmp_path, 'textfile = ""\n')
    assert config.metrics.textfile is None  # type: ignore[attr-defined]


def test_textfile_path_is_taken_relative_to_the_config(tmp_path: Path) -> None:
    config = load(tmp_path, 'textfile = "/var/lib/prometheus/node-exporter/mailbot.prom"\n')
    assert config.metrics.textfile == Path(  # type: ignore[attr-defined]
        "/var/lib/prometheus/node-exporter/mailbot.prom"
    )
    config = load(tmp_path, 'textfile = "prom/mailbot.prom"\n')
    assert config.metrics.textfile == tmp_path / "prom" / "mailbot.prom"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"/var/lib/prometheus/node-exporter/mailbot.txt"', "must end in .prom"),
        ('"/var/lib/prometheus/node-exporter/"', "must end in .prom"),
        ("true", "must be a non-empty path string"),
    ],
)
def test_bad_textfile_is_refused_with_the_key(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"textfile = {value}\n")
    assert info.value.problems == [info.value.problems[0]]
    assert info.value.problems[0].startswith("metrics.textfile: ")
    assert message in info.value.problems[0]
