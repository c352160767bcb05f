"""On systemd's journal stream every line starts with its syslog priority (``<4>`` for a
warning), so ``journalctl -p warning`` works; anywhere else the output is unchanged.

Real processes whose stderr is a file: ``JOURNAL_STREAM`` names that file's device and
inode, exactly as systemd names the socket it connects a service's stderr to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Logs one line at each level through structlog and one through a library's stdlib logger.
LOGGING_PROGRAM = """
import logging, sys
from mailbot.log import configure_logging, get_logger
configure_logging(sys.argv[1], "debug")
log = get_logger("probe")
log.debug("probe.debug")
log.info("probe.info", n=1)
log.warning("probe.warning")
log.error("probe.error")
log.critical("probe.critical")
logging.getLogger("somelibrary").warning("library warning")
"""


def stderr_of(tmp_path: Path, argv: list[str], journal_stream: str | None) -> list[str]:
    """Run *argv* with stderr on a file; ``None`` as *journal_stream* means that file's own."""
    path = tmp_path / "stderr"
    environment = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    environment["PYTHONPATH"] = str(Path(__file__).parents[2])
    with path.open("wb") as stderr:
        found = os.fstat(stderr.fileno())
        own = f"{found.st_dev}:{found.st_ino}"
        environment["JOURNAL_STREAM"] = own if journal_stream is None else journal_stream
        subprocess.run(argv, stderr=stderr, stdout=subprocess.DEVNULL, env=environment, timeout=60)
    return path.read_text(encoding="utf-8").splitlines()


def logged(tmp_path: Path, log_format: str, journal_stream: str | None = None) -> list[str]:
    return stderr_of(tmp_path, [sys.executable, "-c", LOGGING_PROGRAM, log_format], journal_stream)


def test_on_the_journal_each_json_line_carries_its_priority(tmp_path: Path) -> None:
    lines = logged(tmp_path, "json")
    prefixes = [line[:3] for line in lines]
    assert prefixes == ["<7>", "<6>", "<4>", "<3>", "<2>", "<4>"]
    # What journald keeps after taking the prefix off is the JSON of today.
    records = [json.loads(line[3:]) for line in lines]
    assert [r["event"] for r in records][:3] == ["probe.debug", "probe.info", "probe.warning"]
    assert records[1]["n"] == 1
    assert records[-1]["logger"] == "somelibrary"


def test_on_the_journal_every_console_line_is_prefixed(tmp_path: Path) -> None:
    lines = logged(tmp_path, "console")
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>", "<2>", "<4>"]
    assert "probe.warning" in lines[2]


@pytest.mark.parametrize(
    "journal_stream",
    ["", "1:1", "not-a-number", "0:0:0"],
    ids=["unset", "another-file", "garbage", "malformed"],
)
def test_elsewhere_the_output_is_plain_json(tmp_path: Path, journal_stream: str) -> None:
    lines = logged(tmp_path, "json", journal_stream)
    assert len(lines) == 6
    assert all(line.startswith("{") for line in lines)
    assert json.loads(lines[2])["level"] == "warning"


def test_inherited_through_a_redirection_the_variable_no_longer_matches(tmp_path: Path) -> None:
    """The journal's dev:ino reaches a child whose stderr went elsewhere (``2>file``)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.touch()
    found = elsewhere.stat()
    lines = logged(tmp_path, "json", f"{found.st_dev}:{found.st_ino}")
    assert lines and all(line.startswith("{") for line in lines)


def test_a_failing_command_s_line_is_an_error_on_the_journal(tmp_path: Path) -> None:
    """The one line a failed command leaves is found by ``journalctl -p err``."""
    missing = tmp_path / "missing.toml"
    argv = [sys.executable, "-m", "mailbot", "db", "current", "--config", str(missing)]
    (line,) = stderr_of(tmp_path, argv, None)
    assert line.startswith("<3>mailbot: ")
    (plain,) = stderr_of(tmp_path, argv, "")
    assert plain.startswith("mailbot: ")
