"""Every command that takes an id refuses one that does not exist: one line on stderr,
nothing on stdout, exit 1 (a refusal, see mailbot.cli.exit_codes), instead of an
empty table with exit 0. On SQLite, the schema made by ``mailbot db upgrade``."""

from __future__ import annotations

import pytest

from mailbot.cli.exit_codes import EX_FAILURE, EX_OK
from mailbot.cli.main import main

UNKNOWN = "999"
NO_ORGANISATION = f"no organisation with id {UNKNOWN}"
NO_SUBSCRIBER = f"no subscriber with id {UNKNOWN}"
NO_CA = f"no CA with id {UNKNOWN}"
NO_QUARANTINED = f"no quarantined certificate with id {UNKNOWN}"

#: (command line, the refusal on stderr)
REFUSALS: list[tuple[tuple[str, ...], str]] = [
    (("org", "show", UNKNOWN), NO_ORGANISATION),
    (("org", "activate", UNKNOWN), NO_ORGANISATION),
    (("org", "deactivate", UNKNOWN), NO_ORGANISATION),
    (("subscriber", "add", "--org", UNKNOWN, "--surname", "Иванов"), NO_ORGANISATION),
    (("subscriber", "list", "--org", UNKNOWN), NO_ORGANISATION),
    (("subscriber", "show", UNKNOWN), NO_SUBSCRIBER),
    (("subscriber", "activate", UNKNOWN), NO_SUBSCRIBER),
    (("subscriber", "deactivate", UNKNOWN), NO_SUBSCRIBER),
    (("subscriber", "set-snils", UNKNOWN, "--clear"), NO_SUBSCRIBER),
    (("address", "add", UNKNOWN, "a@clinic.example"), NO_SUBSCRIBER),
    (("address", "remove", UNKNOWN, "a@clinic.example"), NO_SUBSCRIBER),
    (("address", "list", "--subscriber", UNKNOWN), NO_SUBSCRIBER),
    (("cert", "list", "--subscriber", UNKNOWN), NO_SUBSCRIBER),
    (("ca", "show", UNKNOWN), NO_CA),
    (("ca", "deactivate", UNKNOWN), NO_CA),
    (("quarantine", "show", UNKNOWN), NO_QUARANTINED),
    (("quarantine", "reject", UNKNOWN, "--reason", "нет"), NO_QUARANTINED),
    (("quarantine", "retry", UNKNOWN), NO_QUARANTINED),
]
#: The same filters with an id that exists: they still list (the refusal is no blanket).
KNOWN_FILTERS: list[tuple[str, ...]] = [
    ("subscriber", "list", "--org", "1"),
    ("address", "list", "--subscriber", "1"),
    ("cert", "list", "--subscriber", "1"),
]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``--config FILE`` on an SQLite database migrated by ``mailbot db upgrade``, holding
    organisation 1 with subscriber 1 (so that 999 is unknown among known ones)."""
    folder = tmp_path_factory.mktemp("unknown-ids")
    path = folder / "config.toml"
    path.write_text(
        f'[general]\nstate_dir = "{folder / "state"}"\n'
        f'[imap]\npassword_env = "UNUSED"\n'
        f'[database]\nurl = "sqlite:///{folder / "mailbot.sqlite3"}"\n'
        f'[logging]\nformat = "console"\nlevel = "warning"\n',
        encoding="utf-8",
    )
    option = ["--config", str(path)]
    assert main(["db", "upgrade", *option]) == EX_OK
    assert main(["org", "add", "--name", "Поликлиника", *option]) == EX_OK
    assert main(["subscriber", "add", "--org", "1", "--address", "a@clinic.example", *option]) == 0
    return option


@pytest.mark.parametrize(
    ("command", "refusal"), REFUSALS, ids=[" ".join(c[:2]) + f" {c[2]}" for c, _ in REFUSALS]
)
def test_an_unknown_id_is_refused_on_one_line(
    config: list[str], capsys: pytest.CaptureFixture[str], command: tuple[str, ...], refusal: str
) -> None:
    capsys.readouterr()
    code = main([*command, *config])
    out, err = capsys.readouterr()
    assert (code, out, err) == (EX_FAILURE, "", f"mailbot: {refusal}\n")


def test_an_unknown_letter_is_refused_on_one_line(
    config: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The letter commands' texts belong to other work: only the contract is pinned here.
    capsys.readouterr()
    code = main(["letter", "retry", UNKNOWN, *config])
    out, err = capsys.readouterr()
    assert (code, out) == (EX_FAILURE, "")
    assert err.startswith("mailbot: ") and f"letter {UNKNOWN} " in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", KNOWN_FILTERS, ids=" ".join)
def test_a_filter_lists_a_known_id_and_refuses_an_unknown_one(
    config: list[str], capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    # Refusing is no blanket: with an id that exists, the filter still lists.
    capsys.readouterr()
    assert main([*command, *config]) == EX_OK
    assert capsys.readouterr().err == ""
    assert main([*command[:-1], UNKNOWN, *config]) == EX_FAILURE
    assert capsys.readouterr().err.count("\n") == 1
