"""The Ministry's official list of accredited certification authorities (the "TSL").

:func:`read_trust_list` streams a file; the values are in :mod:`.model`.
"""

from mailbot.trustlist.errors import TrustListError
from mailbot.trustlist.model import (
    AccreditationStatus,
    AccreditedAuthority,
    AuthorityCertificate,
    AuthorityEntry,
    AuthorityKey,
    Problem,
    ProblemScope,
    StatusKind,
    TrustList,
    TrustListHeader,
)
from mailbot.trustlist.reader import TrustListStream, load_trust_list, read_trust_list
from mailbot.trustlist.safe_xml import Limits

__all__ = [
    "AccreditationStatus",
    "AccreditedAuthority",
    "AuthorityCertificate",
    "AuthorityEntry",
    "AuthorityKey",
    "Limits",
    "Problem",
    "ProblemScope",
    "StatusKind",
    "TrustList",
    "TrustListError",
    "TrustListHeader",
    "TrustListStream",
    "load_trust_list",
    "read_trust_list",
]
