"""What one import of the list of accredited CAs changed: plain values, no database.

:func:`mailbot.app.trust_list_import.import_trust_list` fills an
:class:`ImportReport`; ``mailbot ca import-tsl`` prints it (text or JSON) and
the refresh job logs it. Every item names its CA with the CA's status, so a
report can be narrowed to the CAs of one status (:meth:`ImportReport.only_status`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: Why the list no longer vouches for a key of the CA directory.
ListFlag = Literal["key_gone", "accreditation_lost"]
#: The flags, in the order an alert lists them.
LIST_FLAGS: tuple[ListFlag, ...] = ("key_gone", "accreditation_lost")


def ca_identity(registry_number: str | None, ogrn: str | None, name: str) -> str:
    """A CA's identity across editions: ``reg:<РеестровыйНомер>``, else ``ogrn:``/``name:``."""
    if registry_number:
        return f"reg:{registry_number}"
    if ogrn:
        return f"ogrn:{ogrn}"
    return f"name:{name}"


@dataclass(frozen=True)
class CaRef:
    """A CA of the list as a report names it."""

    name: str
    registry_number: str | None
    #: The CA's status (``Статус`` as written) after the import.
    status: str


@dataclass(frozen=True)
class KeyRef:
    """One key of a listed CA."""

    ca: CaRef
    #: Upper-case hex.
    ski: str


@dataclass(frozen=True)
class StatusChange:
    """A CA whose status differs from the previous edition's."""

    ca: CaRef
    old: str
    new: str


@dataclass(frozen=True)
class CertificateAdded:
    """A new certificate of a key the previous edition listed already (a re-issue)."""

    ca: CaRef
    ski: str
    thumbprint_sha1: str


@dataclass(frozen=True)
class DirectoryChange:
    """A row of the CA directory the import registered, flagged or cleared."""

    ca_id: int
    name: str
    ski: str | None
    thumbprint_sha1: str
    #: ``manual``, ``automatic`` or ``trust_list``.
    source: str
    #: The flag set (None: registered, or its flag cleared).
    flag: ListFlag | None
    #: The listed CA this key belongs to.
    listed_as: CaRef | None


@dataclass
class ImportReport:
    """The outcome of importing one file of the list."""

    version: int
    published_at: datetime
    sha256: str
    size: int
    #: The URL or file name.
    source: str
    #: The newest edition imported before (None: the first import).
    previous_version: int | None
    #: True: this very file was imported already; nothing was written.
    unchanged: bool = False
    dry_run: bool = False
    #: Authorities, keys and certificates read from the file (after the checks).
    authorities: int = 0
    keys: int = 0
    certificates: int = 0
    cas_added: list[CaRef] = field(default_factory=list)
    cas_gone: list[CaRef] = field(default_factory=list)
    #: New keys of CAs listed before (re-keys); a new CA's keys are in :attr:`keys`.
    keys_added: list[KeyRef] = field(default_factory=list)
    keys_gone: list[KeyRef] = field(default_factory=list)
    status_changes: list[StatusChange] = field(default_factory=list)
    certificates_added: list[CertificateAdded] = field(default_factory=list)
    #: CA directory rows created by ``register = "accredited"``.
    registered: list[DirectoryChange] = field(default_factory=list)
    #: CA directory rows newly flagged (the alert lists them).
    flagged: list[DirectoryChange] = field(default_factory=list)
    #: CA directory rows whose flag this import cleared.
    unflagged: list[DirectoryChange] = field(default_factory=list)
    #: Entries of the file left out (a malformed entry, a thumbprint mismatch), as text.
    problems: list[str] = field(default_factory=list)
    #: Whether the administrators' alert about :attr:`flagged` was queued by this import.
    alert_queued: bool = False

    @property
    def changed(self) -> bool:
        """Whether the list says anything new about CAs, keys or the directory."""
        return any(
            (
                self.cas_added,
                self.cas_gone,
                self.keys_added,
                self.keys_gone,
                self.status_changes,
                self.certificates_added,
                self.registered,
                self.flagged,
                self.unflagged,
            )
        )

    def only_status(self, status: str) -> ImportReport:
        """A copy whose lists hold only items about CAs of *status* (case-insensitive)."""
        wanted = status.strip().casefold()

        def keep(ca: CaRef | None) -> bool:
            return ca is not None and ca.status.casefold() == wanted

        return dataclasses.replace(
            self,
            cas_added=[c for c in self.cas_added if keep(c)],
            cas_gone=[c for c in self.cas_gone if keep(c)],
            keys_added=[k for k in self.keys_added if keep(k.ca)],
            keys_gone=[k for k in self.keys_gone if keep(k.ca)],
            status_changes=[s for s in self.status_changes if keep(s.ca)],
            certificates_added=[c for c in self.certificates_added if keep(c.ca)],
            registered=[d for d in self.registered if keep(d.listed_as)],
            flagged=[d for d in self.flagged if keep(d.listed_as)],
            unflagged=[d for d in self.unflagged if keep(d.listed_as)],
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (dates in ISO 8601)."""
        data = dataclasses.asdict(self)
        data["published_at"] = self.published_at.isoformat()
        data["changed"] = self.changed
        return data
