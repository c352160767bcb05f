"""A command prints its answer, not alembic's INFO chatter ("Context impl SQLiteImpl")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_db_upgrade_prints_no_alembic_info(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[general]\nstate_dir = "{tmp_path / "state"}"\n[imap]\npassword_env = "X"\n'
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "db", "upgrade", "--config", str(config)],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "at revision" in result.stdout  # the migration ran
    assert "alembic" not in result.stderr
    assert "Context impl" not in result.stderr
