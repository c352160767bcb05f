"""Importing one file of the list of accredited CAs into the database, in one transaction.

:func:`import_trust_list` streams the file (one ``УдостоверяющийЦентр`` at a
time, never the whole tree) and, in the caller's session:

* records the edition (``Версия``, ``Дата``, SHA-256, size, source, HTTP validators);
* upserts every CA (by :func:`~mailbot.trustlist.changes.ca_identity`), its
  status and status history, its keys with their CRL URLs and certificates,
  each with the first and last edition that listed it;
* with ``[trust_list] register = "accredited"``, registers every certificate
  of every key of every CA whose status is «Действует» in the CA directory
  (:mod:`mailbot.app.trust_list_policy`);
* flags CA directory keys the list no longer vouches for, clears flags of keys
  it vouches for again, and queues one alert about the newly flagged ones.

The caller commits; an error part-way (a truncated file) propagates, and the
caller's rollback leaves the database as it was. ``dry_run`` callers roll back
too. A row no longer in the current edition keeps a ``last_version`` below it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from mailbot.app.adapters import status_item
from mailbot.app.trust_list_policy import (
    alert_flags,
    directory_change,
    reconcile_flags,
    register_authority,
)
from mailbot.config import Config
from mailbot.directory.models import (
    AccreditedCa,
    AccreditedCertificate,
    AccreditedKey,
    CertificationAuthority,
    TrustListEdition,
    utcnow,
)
from mailbot.trustlist import AccreditationStatus, AccreditedAuthority, read_trust_list
from mailbot.trustlist.changes import (
    CaRef,
    CertificateAdded,
    DirectoryChange,
    ImportReport,
    KeyRef,
    StatusChange,
    ca_identity,
)

_HASH_CHUNK = 1024 * 1024


class ImportRefused(Exception):
    """The file is an edition that must not replace the current one (older, or altered)."""


@dataclass(frozen=True)
class Download:
    """Where a file came from, and the HTTP validators for the next conditional GET."""

    source: str
    etag: str | None = None
    last_modified: str | None = None


def newest_edition(session: Session) -> TrustListEdition | None:
    """The newest imported edition (the current list), or None."""
    return session.scalars(
        select(TrustListEdition).order_by(TrustListEdition.version.desc()).limit(1)
    ).first()


def import_trust_list(
    session: Session,
    path: Path,
    config: Config,
    origin: Download,
    *,
    force: bool = False,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import the list in *path*; the caller commits (or rolls back: ``dry_run``, errors).

    The same edition again (same ``Версия`` and SHA-256) writes nothing and
    says so (``unchanged``). An older ``Версия`` than the current one, or the
    current ``Версия`` with other bytes, raises :class:`ImportRefused` unless
    *force* (then the file becomes the current edition; records of newer
    editions are dropped). A file unreadable part-way raises
    :class:`~mailbot.trustlist.TrustListError`. With *dry_run* no alert is queued.
    """
    moment = now or utcnow()
    current = newest_edition(session)
    with path.open("rb") as source:
        stream = read_trust_list(source)
        header = stream.header
        if current is not None and header.version <= current.version:
            same = header.version == current.version
            if same and _file_sha256(path) == current.sha256:
                return ImportReport(
                    version=header.version,
                    published_at=header.published_at,
                    sha256=current.sha256,
                    size=current.size,
                    source=origin.source,
                    previous_version=current.version,
                    unchanged=True,
                    dry_run=dry_run,
                )
            if not force:
                raise ImportRefused(_refusal(header.version, header.published_at, current))
        report = ImportReport(
            version=header.version,
            published_at=header.published_at,
            sha256="",
            size=0,
            source=origin.source,
            previous_version=current.version if current is not None else None,
            dry_run=dry_run,
        )
        flags_before = _flags(session)
        importer = _Importer(session, config, report, moment)
        for entry in stream:
            report.problems += [str(problem) for problem in entry.problems]
            if entry.authority is not None:
                importer.store(entry.authority)
        report.sha256, report.size = stream.sha256, stream.size
    importer.finish()
    _record_edition(session, report, header.published_at, origin, moment)
    report.flagged = reconcile_flags(session, report.version, moment)
    report.unflagged = _unflagged(session, flags_before)
    if report.flagged and not dry_run:
        report.alert_queued = alert_flags(session, config, report, moment)
    return report


def _refusal(version: int, published_at: dt.datetime, current: TrustListEdition) -> str:
    if version == current.version:
        return (
            f"version {version} was imported already (SHA-256 {current.sha256}) and this "
            "file's content differs; use --force to import it over the stored one"
        )
    return (
        f"the file is version {version} of {published_at:%Y-%m-%d}, older than the "
        f"current version {current.version} of {current.published_at:%Y-%m-%d}; refused "
        "(use --force to make the older version current)"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _flags(session: Session) -> dict[int, str]:
    rows = session.execute(
        select(CertificationAuthority.id, CertificationAuthority.list_flag).where(
            CertificationAuthority.list_flag.is_not(None)
        )
    ).all()
    return {row.id: row.list_flag for row in rows}


def _unflagged(session: Session, before: dict[int, str]) -> list[DirectoryChange]:
    cleared = []
    for ca_id in sorted(before):
        row = session.get(CertificationAuthority, ca_id)
        if row is not None and row.list_flag is None:
            cleared.append(directory_change(session, row))
    return cleared


def _record_edition(
    session: Session,
    report: ImportReport,
    published_at: dt.datetime,
    origin: Download,
    moment: dt.datetime,
) -> None:
    # A forced older edition becomes current: the newer editions' records go.
    session.execute(delete(TrustListEdition).where(TrustListEdition.version > report.version))
    row = session.scalars(
        select(TrustListEdition).where(TrustListEdition.version == report.version)
    ).first()
    if row is None:
        row = TrustListEdition(version=report.version)
        session.add(row)
    row.published_at = published_at
    row.sha256 = report.sha256
    row.size = report.size
    row.source = origin.source
    row.etag = origin.etag
    row.last_modified = origin.last_modified
    row.imported_at = moment
    session.flush()


class _Importer:
    """Stores authorities one at a time and collects what changed."""

    def __init__(
        self, session: Session, config: Config, report: ImportReport, now: dt.datetime
    ) -> None:
        self.session = session
        self.config = config
        self.report = report
        self.now = now
        self.version = report.version
        self.previous = report.previous_version
        #: Rows this file lists (ids: few thousand integers at most).
        self.seen_cas: set[int] = set()
        self.seen_keys: set[int] = set()

    def _was_listed(self, last_version: int) -> bool:
        return self.previous is not None and last_version == self.previous

    def store(self, authority: AccreditedAuthority) -> None:
        """Upsert one authority, its keys and certificates; register it by the policy."""
        report = self.report
        identity = ca_identity(authority.registry_number, authority.ogrn, authority.name)
        row = self.session.scalars(
            select(AccreditedCa)
            .where(AccreditedCa.identity == identity)
            .options(selectinload(AccreditedCa.keys).selectinload(AccreditedKey.certificates))
        ).first()
        ref = CaRef(authority.name, authority.registry_number, authority.status.text)
        if row is not None and row.id in self.seen_cas:
            report.problems.append(
                f"«{authority.name}» ({identity}) is listed more than once; the later entry wins"
            )
            known = False
        elif row is None:
            row = AccreditedCa(identity=identity, first_version=self.version, keys=[])
            self.session.add(row)
            report.cas_added.append(ref)
            known = False
        else:
            known = self._was_listed(row.last_version)
            if not known:
                report.cas_added.append(ref)  # listed again after a gap
            elif row.status_text.casefold() != authority.status.text.casefold():
                report.status_changes.append(StatusChange(ref, row.status_text, ref.status))
        row.history = _history(row, authority)
        row.name = authority.name
        row.short_name = authority.short_name
        row.inn = authority.inn
        row.ogrn = authority.ogrn
        row.registry_number = authority.registry_number
        row.email = authority.email
        row.info_url = authority.info_url
        row.status_text = authority.status.text
        row.status_from = authority.status.valid_from
        row.status_to = authority.status.valid_to
        row.last_version = self.version
        keys = {key.ski: key for key in row.keys}
        for key in authority.keys:
            report.keys += 1
            report.certificates += len(key.certificates)
            stored = keys.get(key.key_identifier_hex)
            key_known = stored is not None and known and self._was_listed(stored.last_version)
            if stored is None:
                stored = AccreditedKey(
                    ski=key.key_identifier_hex, first_version=self.version, certificates=[]
                )
                row.keys.append(stored)
                keys[stored.ski] = stored
            if known and not key_known:
                report.keys_added.append(KeyRef(ref, stored.ski))
            stored.crl_urls = list(key.crl_urls)
            stored.last_version = self.version
            thumbprints = {c.thumbprint_sha1 for c in stored.certificates}
            for certificate in key.certificates:
                if certificate.thumbprint_sha1 in thumbprints:
                    continue
                thumbprints.add(certificate.thumbprint_sha1)
                stored.certificates.append(
                    AccreditedCertificate(
                        thumbprint_sha1=certificate.thumbprint_sha1,
                        certificate_der=certificate.der,
                        not_before=certificate.not_before,
                        not_after=certificate.not_after,
                        subject_text=certificate.subject_text,
                    )
                )
                if key_known:
                    report.certificates_added.append(
                        CertificateAdded(ref, stored.ski, certificate.thumbprint_sha1)
                    )
        report.authorities += 1
        self.session.flush()
        self.seen_cas.add(row.id)
        self.seen_keys.update(key.id for key in row.keys if key.last_version == self.version)
        if self.config.trust_list.register == "accredited":
            report.registered += register_authority(
                self.session, authority, self.version, self.now, report.problems
            )

    def finish(self) -> None:
        """Report and mark what the previous edition listed and this one does not."""
        # At or above this version but not in the file (a forced re-import): below it now.
        below = self.version - 1
        for ca in self.session.scalars(
            select(AccreditedCa).where(AccreditedCa.last_version >= min(self._floor(), below))
        ):
            if ca.id in self.seen_cas:
                continue
            if self._was_listed(ca.last_version):
                self.report.cas_gone.append(CaRef(ca.name, ca.registry_number, ca.status_text))
            if ca.last_version >= self.version:
                ca.last_version = below
        for key in self.session.scalars(
            select(AccreditedKey)
            .where(AccreditedKey.last_version >= min(self._floor(), below))
            .options(selectinload(AccreditedKey.authority))
        ):
            if key.id in self.seen_keys:
                continue
            ca = key.authority
            if self._was_listed(key.last_version):
                ref = CaRef(ca.name, ca.registry_number, ca.status_text)
                self.report.keys_gone.append(KeyRef(ref, key.ski))
            if key.last_version >= self.version:
                key.last_version = below
        self.session.flush()

    def _floor(self) -> int:
        return self.previous if self.previous is not None else self.version


def _history(row: AccreditedCa, authority: AccreditedAuthority) -> list[dict[str, str | None]]:
    """The file's history, plus what earlier editions said and this one no longer carries.

    So a status once seen (the previous current status included) is never lost,
    and :func:`mailbot.trustlist.register.accredited_on` can still answer for it.
    """
    items = [status_item(status) for status in authority.history]
    seen = {(i["text"], i["from"]) for i in items}
    current = status_item(authority.status)
    seen.add((current["text"], current["from"]))
    earlier: list[dict[str, str | None]] = list(row.history or [])
    if row.status_text is not None and row.status_from is not None:
        previous = AccreditationStatus(row.status_text, row.status_from, row.status_to)
        earlier.append(status_item(previous))
    for item in earlier:
        if (item["text"], item["from"]) not in seen:
            seen.add((item["text"], item["from"]))
            items.append(item)
    return items
