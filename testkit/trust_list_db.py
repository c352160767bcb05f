"""Put a generated list of accredited CAs into a database through the real importer.

One call renders *authorities* as a list file (:mod:`testkit.trust_list`) and
imports it with :func:`mailbot.app.trust_list_import.import_trust_list`, in the
caller's session (the caller commits), with the configuration's policy.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from mailbot.app.trust_list_import import Download, import_trust_list
from mailbot.config import Config
from mailbot.trustlist.changes import ImportReport
from testkit import pki
from testkit import trust_list as tl


def import_authorities(
    session: Session,
    config: Config,
    authorities: Iterable[tl.TslAuthority],
    version: int = 1000,
) -> ImportReport:
    """Import a list of *authorities* as edition *version* (the caller commits)."""
    with tempfile.TemporaryDirectory(prefix="mailbot-tsl-") as folder:
        path = Path(folder) / f"tsl-{version}.xml"
        tl.write_trust_list(path, authorities, version=version)
        return import_trust_list(session, path, config, Download(path.name), now=pki.NOW)
