"""Registering a CA key from the list of accredited CAs for one letter (``auto_register_unknown``).

The certificate checks (:func:`mailbot.regulation.add_cert.decide_add_cert`)
decide that an unregistered key is accredited in the list and that one of its
listed certificates verifies the participant's signature; this effect writes
that into the CA directory in the caller's transaction
(:func:`mailbot.app.trust_list_policy.register_listed_key`) and returns what
the journal says about it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from mailbot.app.trust_list_policy import register_listed_key
from mailbot.log import get_logger
from mailbot.trustlist.register import ListedKey

log = get_logger(__name__)


def register_for_letter(session: Session, listed: ListedKey, now: dt.datetime) -> dict[str, Any]:
    """Register the certificates of *listed*'s key; returns the journal's note on it."""
    rows = register_listed_key(session, listed, now)
    registered = [row.thumbprint_sha1 for row in rows if row.active]
    log.info("CA key registered from the trust list", key=listed.key_identifier_hex,
             list_version=listed.listed_in.version, certificates=len(registered))  # fmt: skip
    return {
        "key": listed.key_identifier_hex,
        "authority": listed.authority_name,
        "registry_number": listed.registry_number,
        "status": listed.status.text,
        "list_version": listed.listed_in.version,
        "registered": registered,
    }
