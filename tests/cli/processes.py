"""``mailbot`` as a real process, and the check that it failed the way an operator expects:
one ``mailbot:`` line on stderr, a sysexits code, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

#: Never set in a test's environment: a password source that cannot be read.
UNSET_VARIABLE = "MAILBOT_TEST_NEVER_SET_PASSWORD"


def mailbot(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mailbot ARGS`` outside systemd; its output captured as text."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"NOTIFY_SOCKET", "JOURNAL_STREAM", UNSET_VARIABLE}
    }
    return subprocess.run(
        [sys.executable, "-m", "mailbot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Exit *code*, no traceback, exactly one ``mailbot:`` line, holding every one of *words*."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mailbot: ")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], result.stderr
    assert result.returncode == code, result.stderr
    return lines[0]
