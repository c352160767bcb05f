"""A CA's directory row by thumbprint, looked up at most once per transaction.

The issuer lookup of a certificate letter selects its CA's row; the registration
later in the same transaction needs that row again (to learn its URLs). The
first lookup leaves the row with the session's transaction, so the second
costs no query. Rows are remembered per transaction only: after a commit or a
rollback they are selected afresh.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, SessionTransaction

from mailbot.directory.models import CertificationAuthority

_BY_THUMBPRINT = select(CertificationAuthority).where(
    CertificationAuthority.thumbprint_sha1 == bindparam("thumbprint")
)
_KEY = "ca_rows"


def _remembered(session: Session) -> dict[str, CertificationAuthority]:
    transaction: SessionTransaction | None = session.get_transaction()
    held = session.info.get(_KEY)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        session.info[_KEY] = held
    rows: dict[str, CertificationAuthority] = held[1]
    return rows


def remember_ca_rows(session: Session, rows: Iterable[CertificationAuthority]) -> None:
    """Keep *rows* (just selected in *session*) for :func:`ca_row` in this transaction."""
    remembered = _remembered(session)
    for row in rows:
        remembered[row.thumbprint_sha1] = row


def ca_row(session: Session, thumbprint_sha1: str) -> CertificationAuthority | None:
    """The CA row with this certificate thumbprint (active or not), or None."""
    remembered = _remembered(session)
    row = remembered.get(thumbprint_sha1)
    if row is None:
        row = session.scalar(_BY_THUMBPRINT, {"thumbprint": thumbprint_sha1})
        if row is not None:
            remembered[thumbprint_sha1] = row
    return row
