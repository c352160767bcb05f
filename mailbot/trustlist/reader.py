"""Reading the Ministry's list of accredited CAs, streaming, from a binary file object.

Usage (what ``mailbot ca import-tsl`` builds on)::

    with path.open("rb") as source:
        stream = read_trust_list(source)          # parses the header only
        if stream.header.version <= last_imported:
            ...                                   # nothing new
        for entry in stream:                      # one УдостоверяющийЦентр at a time
            for problem in entry.problems: ...
            if entry.authority is not None: ...
        stream.sha256, stream.size                # of the whole file, once read to the end

Memory stays flat however large the file is (one authority at a time; see
:mod:`mailbot.trustlist.safe_xml` for the hardening: no DTD, no entities, bounded
depth and text). :func:`load_trust_list` reads a whole (small) file into a
:class:`TrustList`.

Dates: a ``Дата``/``ДействуетС``/``ДействуетДо`` without an offset is read as
Moscow time (the publisher's zone), with one as written; all results are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo

from mailbot.trustlist.authority import read_authority
from mailbot.trustlist.errors import TrustListError
from mailbot.trustlist.fields import MOSCOW, parse_datetime
from mailbot.trustlist.model import (
    AccreditedAuthority,
    AuthorityEntry,
    Problem,
    TrustList,
    TrustListHeader,
)
from mailbot.trustlist.safe_xml import DEFAULT_LIMITS, Limits, Readable, RecordStream

ROOT = "АккредитованныеУдостоверяющиеЦентры"
AUTHORITY = "УдостоверяющийЦентр"
VERSION = "Версия"
DATE = "Дата"


class TrustListStream:
    """An open list: its header is read; iterate for the authorities, one at a time.

    Iterating raises :class:`TrustListError` if the file turns out malformed
    (truncated, not well-formed, over a limit) part-way; what was yielded before
    must then be discarded by a caller that wants all-or-nothing.
    """

    def __init__(
        self, source: Readable, *, naive_timezone: tzinfo = MOSCOW, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._records = RecordStream(
            source,
            root=ROOT,
            record=AUTHORITY,
            header=frozenset({VERSION, DATE}),
            limits=limits,
        )
        self._naive_timezone = naive_timezone
        self._started = False
        self.header = _header(self._records.read_header(), naive_timezone)

    def __iter__(self) -> Iterator[AuthorityEntry]:
        if self._started:
            raise RuntimeError("a trust list stream can be iterated once")
        self._started = True
        for index, record in enumerate(self._records.records(), start=1):
            entry = read_authority(record.element, index, record.line, self._naive_timezone)
            record.element.clear()  # drop the subtree now, not when the entry goes
            yield entry

    def _require_finished(self) -> None:
        if not self._records.finished:
            raise RuntimeError("the trust list has not been read to its end yet")

    @property
    def sha256(self) -> str:
        """SHA-256 of the whole file, lower-case hex (as ``sha256sum`` prints it)."""
        self._require_finished()
        return self._records.sha256

    @property
    def size(self) -> int:
        """Size of the whole file in bytes."""
        self._require_finished()
        return self._records.size


def _header(texts: dict[str, str], naive_timezone: tzinfo) -> TrustListHeader:
    version_text = texts.get(VERSION, "").strip()
    date_text = texts.get(DATE, "").strip()
    if not version_text:
        raise TrustListError(f"the list has no <{VERSION}> before its first <{AUTHORITY}>")
    if not date_text:
        raise TrustListError(f"the list has no <{DATE}> before its first <{AUTHORITY}>")
    if not version_text.isdecimal() or not version_text.isascii():
        raise TrustListError(f"<{VERSION}> is {version_text[:40]!r}, not a whole number")
    try:
        published_at = parse_datetime(date_text, naive_timezone)
    except ValueError as exc:
        raise TrustListError(f"<{DATE}> is unreadable: {exc}") from None
    return TrustListHeader(int(version_text), published_at)


def read_trust_list(
    source: Readable, *, naive_timezone: tzinfo = MOSCOW, limits: Limits = DEFAULT_LIMITS
) -> TrustListStream:
    """Open a list from a binary file object: the header is parsed, the authorities stream.

    Raises :class:`TrustListError` if the file is not such a list (not XML, another
    root element, a DTD, no ``Версия``/``Дата`` before the first authority).
    """
    return TrustListStream(source, naive_timezone=naive_timezone, limits=limits)


def load_trust_list(
    source: Readable, *, naive_timezone: tzinfo = MOSCOW, limits: Limits = DEFAULT_LIMITS
) -> TrustList:
    """Read a whole list into memory (tests, small files); raises :class:`TrustListError`."""
    stream = read_trust_list(source, naive_timezone=naive_timezone, limits=limits)
    authorities: list[AccreditedAuthority] = []
    problems: list[Problem] = []
    for entry in stream:
        problems += entry.problems
        if entry.authority is not None:
            authorities.append(entry.authority)
    return TrustList(
        version=stream.header.version,
        published_at=stream.header.published_at,
        sha256=stream.sha256,
        size=stream.size,
        authorities=tuple(authorities),
        problems=tuple(problems),
    )
