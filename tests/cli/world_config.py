"""A configuration file for CLI runs against a reminders world and a real SMTP server."""

from __future__ import annotations

from pathlib import Path

from testkit.smtpd import SmtpServer
from tests.app.reminders_world import World


def write_world_config(tmp_path: Path, world: World, smtp: SmtpServer, sections: str = "") -> Path:
    """``cli.toml`` for *world*'s database and *smtp*, with further TOML *sections*."""
    path = tmp_path / "cli.toml"
    path.write_text(
        f"""
[general]
state_dir = "{world.config.general.state_dir}"
[imap]
password_env = "UNUSED"
[smtp]
host = "127.0.0.1"
port = {smtp.port}
tls = "none"
from_address = "{world.config.smtp.from_address}"
[database]
url = "{world.config.database_url}"
[logging]
format = "console"
level = "warning"
{sections}
""",
        encoding="utf-8",
    )
    return path
