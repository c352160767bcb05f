"""Pure helpers for the IMAP client: argument encoding and response parsing.

aioimaplib sends arguments verbatim and hands back raw response lines, so the
quoting (RFC 3501 §9), modified UTF-7 mailbox names (RFC 3501 §5.1.3), UID sets
and the parsing of SELECT / SEARCH / FETCH answers live here, where they can
be tested without a server.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

#: Most UIDs one FETCH/STORE/COPY/MOVE may name. aioimaplib 2.0.3 parses a
#: response recursively, one stack frame per line, and dies (then hangs) at
#: about 700 lines; 200 keeps every response far below that.
MAX_UIDS_PER_COMMAND = 200

# Keyword = IMAP atom without "\" (RFC 3501 §9: atom-specials are excluded).
_ATOM = re.compile(r"^[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+$")
_LITERAL_AT_END = re.compile(rb"([A-Z0-9.\[\]<>]+) \{(\d+)\}$", re.IGNORECASE)
_FETCH_START = re.compile(rb"^(\d+) FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class MailboxState:
    """What SELECT reported about a mailbox.

    Letters are identified by ``(name, uidvalidity, uid)``: a changed
    UIDVALIDITY means every UID seen before is meaningless.
    """

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    read_only: bool = False


@dataclass
class FetchRecord:
    """One ``* n FETCH (...)`` answer: its text parts and its literals by item name."""

    sequence: int
    text: bytes = b""
    literals: dict[str, bytes] = field(default_factory=dict)

    @property
    def uid(self) -> int | None:
        """The UID the server named, if any."""
        found = _UID.search(self.text)
        return int(found.group(1)) if found else None

    @property
    def size(self) -> int | None:
        """RFC822.SIZE, if it was fetched."""
        found = _SIZE.search(self.text)
        return int(found.group(1)) if found else None


def quote(text: str) -> str:
    """An IMAP quoted string (backslash and double quote escaped)."""
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError("CR, LF and NUL cannot be sent in an IMAP quoted string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mailbox_name(name: str) -> str:
    """Modified UTF-7 (RFC 3501 §5.1.3): printable ASCII stays, ``&`` is ``&-``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode_mailbox_name(encoded: str) -> str:
    """The inverse of :func:`encode_mailbox_name`."""

    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        if not body:
            return "&"
        padded = body.replace(",", "/") + "=" * (-len(body) % 4)
        return base64.b64decode(padded).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", replace, encoded)


def mailbox_argument(name: str) -> str:
    """A mailbox name ready to be sent: modified UTF-7, then quoted."""
    if not name:
        raise ValueError("empty mailbox name")
    return quote(encode_mailbox_name(name))


def check_keyword(keyword: str) -> str:
    """Return *keyword* if it is a valid IMAP flag keyword (an atom), else raise ValueError."""
    if not _ATOM.match(keyword):
        raise ValueError(f"not a valid IMAP keyword: {keyword!r}")
    return keyword


def check_uids(uids: Iterable[int]) -> list[int]:
    """Sorted, de-duplicated UIDs; raises ValueError for anything but positive integers."""
    checked: set[int] = set()
    for uid in uids:
        if isinstance(uid, bool) or not isinstance(uid, int) or uid < 1:
            raise ValueError(f"not a UID: {uid!r}")
        checked.add(uid)
    return sorted(checked)


def uid_set(uids: Sequence[int]) -> str:
    """Compress sorted UIDs into an IMAP sequence set: ``[1, 2, 3, 7]`` → ``1:3,7``."""
    if not uids:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        parts.append(f"{start}:{previous}" if previous != start else str(start))
        start = previous = uid
    parts.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(parts)


def batches(uids: Sequence[int], size: int = MAX_UIDS_PER_COMMAND) -> Iterator[list[int]]:
    """Consecutive slices of at most *size* UIDs."""
    for index in range(0, len(uids), size):
        yield list(uids[index : index + size])


def parse_select(name: str, lines: Sequence[bytes | bytearray]) -> MailboxState:
    """Build a :class:`MailboxState` from a SELECT's untagged and tagged lines.

    Raises ValueError when UIDVALIDITY is missing (RFC 3501 makes it mandatory).
    """
    uidvalidity: int | None = None
    uidnext: int | None = None
    exists = 0
    read_only = False
    for raw in lines:
        line = bytes(raw)
        if m := re.match(rb"^(\d+) EXISTS", line):
            exists = int(m.group(1))
        elif m := re.search(rb"\[UIDVALIDITY (\d+)\]", line):
            uidvalidity = int(m.group(1))
        elif m := re.search(rb"\[UIDNEXT (\d+)\]", line):
            uidnext = int(m.group(1))
        elif b"[READ-ONLY]" in line.upper():
            read_only = True
    if uidvalidity is None:
        raise ValueError("the server sent no UIDVALIDITY")
    return MailboxState(name, uidvalidity, uidnext, exists, read_only)


def parse_search(lines: Sequence[bytes | bytearray]) -> list[int]:
    """UIDs from a UID SEARCH answer (aioimaplib strips the ``SEARCH`` word).

    The last line is the tagged completion text and is skipped; tokens that are
    not numbers (a CONDSTORE ``(MODSEQ n)``) are ignored.
    """
    found: set[int] = set()
    for raw in lines[:-1]:
        for token in bytes(raw).split():
            if token.isdigit():
                found.add(int(token))
    return sorted(found)


def parse_fetch(lines: Sequence[bytes | bytearray]) -> list[FetchRecord]:
    """Group a FETCH answer into records; literals arrive as separate ``bytearray`` items.

    The last line is the tagged completion text and is skipped.
    """
    records: list[FetchRecord] = []
    current: FetchRecord | None = None
    literal_name: str | None = None
    for item in lines[:-1]:
        if isinstance(item, bytearray):
            if current is not None and literal_name is not None:
                current.literals[literal_name] = bytes(item)
            literal_name = None
            continue
        if m := _FETCH_START.match(item):
            current = FetchRecord(int(m.group(1)))
            records.append(current)
        if current is None:
            continue  # an untagged line that is not part of a FETCH answer
        current.text += item
        literal = _LITERAL_AT_END.search(item)
        literal_name = literal.group(1).decode().upper() if literal else None
    return records


def is_bye(lines: Sequence[bytes | bytearray]) -> bool:
    """True when an untagged BYE is among *lines* (the server is closing the connection)."""
    return any(bytes(line).lstrip(b"* ").upper().startswith(b"BYE") for line in lines)
