"""Child process of the import memory test: import one list into a new SQLite database.

Run as ``python -m tests.trustlist.import_rss_child FILE STATE_DIR``; prints one
JSON line: VmRSS before the import and VmHWM (peak) after the commit, in KiB,
with the counts the import reported.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from mailbot.app.trust_list_import import Download, import_trust_list
from mailbot.config import Config
from mailbot.config.schema import GeneralConfig, TrustListConfig
from mailbot.directory import migrate
from mailbot.directory.engine import engine_from_config
from mailbot.directory.session import session_factory
from tests.pki.fetch_rss_child import status_kib


def main() -> None:
    path, state = Path(sys.argv[1]), Path(sys.argv[2])
    config = Config(
        general=GeneralConfig(state_dir=state), trust_list=TrustListConfig(register="accredited")
    )
    engine = engine_from_config(config)
    migrate.upgrade(engine)
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    with session_factory(engine)() as session:
        report = import_trust_list(session, path, config, Download(path.name))
        session.commit()
    print(
        json.dumps(
            {
                "rss_before_kib": before,
                "peak_kib": status_kib("VmHWM"),
                "authorities": report.authorities,
                "certificates": report.certificates,
                "cas_added": len(report.cas_added),
                "registered": len(report.registered),
            }
        )
    )


if __name__ == "__main__":
    main()
