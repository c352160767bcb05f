"""Raw RFC 5322 bytes to a :class:`Letter`: a value object that never raises on access.

Parsing uses the stdlib ``email`` package with ``policy.default``. Header
access under that policy builds header objects lazily and a hostile header can
make that raise, so :func:`parse_letter` reads every header the pipeline needs
once, defensively, and stores plain strings. Letters over the size cap are not
parsed past their header section: the loop guard, the sender gate and the
routes still see them, and the attachment check rejects them.
"""

from __future__ import annotations

import email.header
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

#: The header section of an oversized letter is parsed up to this many bytes.
MAX_HEADER_BYTES = 256 * 1024

_MSG_ID = re.compile(r"<[^<>\s]{1,998}>")
_FOLD = re.compile(r"\r?\n[ \t]*")
_ADDR_SPEC = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:\[\]]+$")


@dataclass(frozen=True)
class Mailbox:
    """One address of a From/Sender header: decoded display name and addr-spec."""

    display_name: str
    address: str

    @property
    def normalized(self) -> str:
        """The address lower-cased, as compared with trusted addresses."""
        return self.address.strip().lower()

    @property
    def domain(self) -> str:
        """The part after the last ``@``, lower-cased ('' if none)."""
        return self.address.rpartition("@")[2].lower() if "@" in self.address else ""

    @property
    def is_well_formed(self) -> bool:
        """Whether the address looks like ``local@domain`` without oddities."""
        return bool(_ADDR_SPEC.match(self.address))


@dataclass(frozen=True)
class Letter:
    """A received letter: its raw bytes and the facts the pipeline reads from it."""

    raw: bytes = field(repr=False)
    #: The parsed message (only the header section when ``oversized``).
    message: Message = field(repr=False, compare=False)
    oversized: bool
    defects: tuple[str, ...]
    #: Decoded From mailboxes across all From headers, and how many From headers there were.
    from_mailboxes: tuple[Mailbox, ...]
    from_header_count: int
    subject: str
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]

    @property
    def size(self) -> int:
        """Size of the raw letter in bytes."""
        return len(self.raw)

    def header_values(self, name: str) -> list[str]:
        """Every value of header *name*, decoded; a header that cannot be decoded is skipped."""
        return header_values(self.message, name)

    def raw_header_values(self, name: str) -> list[str]:
        """Every value of header *name* as received (unfolded, 8-bit bytes as surrogates)."""
        return raw_header_values(self.message, name)


def parse_letter(raw: bytes, max_letter_bytes: int, declared_size: int | None = None) -> Letter:
    """Parse *raw*; never raises. Letters over *max_letter_bytes* keep only their headers.

    *declared_size* is the server's RFC822.SIZE when only the header section of
    an oversized letter was fetched.
    """
    oversized = max(len(raw), declared_size or 0) > max_letter_bytes
    source = _header_section(raw) if oversized else raw
    try:
        message: Message = BytesParser(policy=policy.default).parsebytes(source)
    except Exception:  # the parser is lenient; this is a last resort for stdlib bugs
        message = EmailMessage(policy=policy.default)
    defects = tuple(type(d).__name__ for d in _all_defects(message))
    from_values = raw_header_values(message, "From")
    mailboxes: list[Mailbox] = []
    for value in from_values:
        mailboxes.extend(_parse_mailboxes(message, "From", value))
    return Letter(
        raw=raw,
        message=message,
        oversized=oversized,
        defects=defects,
        from_mailboxes=tuple(mailboxes),
        from_header_count=len(from_values),
        subject=_first(header_values(message, "Subject")) or "",
        message_id=_first(message_ids(_first(raw_header_values(message, "Message-ID")) or "")),
        in_reply_to=tuple(message_ids(" ".join(raw_header_values(message, "In-Reply-To")))),
        references=tuple(message_ids(" ".join(raw_header_values(message, "References")))),
    )


def message_ids(text: str) -> list[str]:
    """The ``<id>`` tokens of a Message-ID/In-Reply-To/References value, in order."""
    return _MSG_ID.findall(text)


def raw_header_values(message: Message, name: str) -> list[str]:
    """Values of header *name* as stored by the parser, unfolded."""
    wanted = name.lower()
    try:
        items = list(message.raw_items())
    except Exception:
        return []
    return [_FOLD.sub(" ", str(v)).strip() for k, v in items if str(k).lower() == wanted]


def header_values(message: Message, name: str) -> list[str]:
    """Values of header *name*, RFC 2047-decoded; raw 8-bit text recovered as UTF-8/cp1251."""
    return [decode_header_text(v) for v in raw_header_values(message, name)]


def decode_header_text(raw_value: str) -> str:
    """Decode one unfolded raw header value; never raises."""
    if has_surrogates(raw_value):
        # Raw 8-bit header bytes (no RFC 2047): the parser kept them as surrogates.
        return decode_8bit(raw_value.encode("ascii", "surrogateescape"))
    if "=?" not in raw_value:
        return raw_value
    try:
        parts = email.header.decode_header(raw_value)
        return str(email.header.make_header(parts))
    except Exception:  # unknown charset, broken base64 ...
        return raw_value


def has_surrogates(text: str) -> bool:
    """Whether *text* holds surrogate-escaped bytes (undecodable 8-bit input)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def decode_8bit(data: bytes) -> str:
    """Bytes of unknown charset: UTF-8 if valid, else cp1251 (the Russian Windows default)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


def _parse_mailboxes(message: Message, name: str, raw_value: str) -> list[Mailbox]:
    try:
        header: Any = message.policy.header_fetch_parse(name, raw_value)
        addresses = header.addresses
        return [
            Mailbox(str(a.display_name), f"{a.username}@{a.domain}" if a.domain else a.username)
            for a in addresses
        ]
    except Exception:
        # A header the policy cannot model: fall back to the lenient compat parser.
        import email.utils

        pairs = email.utils.getaddresses([decode_header_text(raw_value)])
        return [Mailbox(n, a) for n, a in pairs if a or n]


def _header_section(raw: bytes) -> bytes:
    head = raw[:MAX_HEADER_BYTES]
    cut = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    return head[: min(cut)] + b"\r\n\r\n" if cut else head


def _all_defects(message: Message) -> list[object]:
    found: list[object] = []
    try:
        for part in message.walk():
            found.extend(getattr(part, "defects", []))
    except Exception:
        found.append(RecursionError())  # a tree too deep to walk is itself a defect
    return found


def _first(values: list[str]) -> str | None:
    return values[0] if values else None
