"""Allow ``python -m mailbot``."""

from mailbot.cli.main import main

raise SystemExit(main())
