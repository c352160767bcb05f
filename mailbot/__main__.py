"""Allow ``python -m mailbot``."""

from mailbot.cli.main import run

run()
