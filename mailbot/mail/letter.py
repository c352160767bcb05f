"""Raw RFC 5322 bytes to a :class:`Letter`: a value object that never raises on access.

Parsing uses the stdlib ``email`` package with ``policy.default``. Header
access under that policy builds header objects lazily and a hostile header can
make that raise, so :func:`parse_letter` reads every header the pipeline needs
once, defensively, and stores plain strings. Letters over the size cap are not
parsed past their header section: the loop guard, the sender gate and the
routes still see them, and the attachment check rejects them.

Every string of a :class:`Letter` is clean text: 8-bit header bytes are decoded
(UTF-8, RFC 6532; else cp1251 for display texts), and what stays undecodable
or is a NUL becomes U+FFFD, so nothing downstream (the database, the logs, a
reply) meets a surrogate or a NUL.

Reading is bounded in time whatever the letter holds. The stdlib parser and
header parser are linear at best and quadratic or recursive at worst, so a
letter is read only within the limits below; one that exceeds them is
*unreadable*: its header section is still read (sender, subject, Message-ID),
and :func:`unreadable` says why, which the attachment check turns into
``invalid_files``.
"""

from __future__ import annotations

import email.header
import re
from dataclasses import dataclass, field
from email.headerregistry import BaseHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

from mailbot.addresses import MAX_ADDRESS_CHARS, normalize_address
from mailbot.mail import policies

#: Every letter mailbot writes carries this header with the instance name, so that a
#: letter carrying it is known to come from us (the loop guard, step 1, reads it).
LOOP_HEADER = "X-Mailbot-Loop"

#: A header section is read up to this many bytes: a longer one makes the letter unreadable,
#: and only that much of it, and of an oversized letter's, is parsed. Real ones take a few KB.
MAX_HEADER_BYTES = 1024 * 1024
#: MIME nesting deeper than this is not a letter a person sent (clients nest 4-6 levels:
#: signed > mixed > related > alternative > leaf); it also keeps the stdlib parser's
#: recursion and its per-line boundary checks (one per open level) small.
MAX_MIME_DEPTH = 16
#: Parts per letter. Each costs the stdlib parser and the attachment search a fraction
#: of a millisecond; real letters have a few dozen at most.
MAX_MIME_PARTS = 500
#: Lines per letter: the parser's cost is per line. 25 MiB of base64 is 340,000 lines.
MAX_LINES = 500_000
#: The stdlib's structured header parser is quadratic in a value's length (and recursive
#: in nested comments): a value longer than this is not parsed. Real values take a few
#: hundred; a 250-character Cyrillic file name in RFC 2231 continuations takes 1,950.
MAX_PARSED_HEADER_CHARS = 2048
#: Characters of structured header values parsed per letter, in all its parts together.
PARSED_HEADER_BUDGET = 32 * 1024
#: Values of one header, and characters of each, decoded by :func:`header_values`.
MAX_HEADER_VALUES = 8
MAX_DECODED_HEADER_CHARS = 8192

_MSG_ID = re.compile(r"<[^<>\s\x00-\x1f\x7f\ufffd]{1,998}>")
_FOLD = re.compile(r"\r?\n[ \t]*")
_LINE_BREAK = re.compile(r"\r|\n")
_ADDR_SPEC = re.compile(
    r"^[^@\s<>\"(),;:\x00-\x1f\x7f\ufffd]+@[^@\s<>\"(),;:\[\]\x00-\x1f\x7f\ufffd]+$"
)
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Mailbox:
    """One address of a From/Sender header: decoded display name and addr-spec."""

    display_name: str
    address: str
    #: The addr-spec held an RFC 2047 encoded-word, which RFC 2047 section 5 forbids in
    #: addresses (the stdlib decodes it anyway): such an address never passes the gate.
    encoded_word: bool = False

    @property
    def normalized(self) -> str:
        """The comparison key of the address (see :func:`normalize_address`)."""
        return normalize_address(self.address)

    @property
    def domain(self) -> str:
        """The part after the last ``@``, lower-cased ('' if none)."""
        return self.address.rpartition("@")[2].lower() if "@" in self.address else ""

    @property
    def is_well_formed(self) -> bool:
        """Whether the address looks like ``local@domain`` without oddities."""
        return (
            not self.encoded_word
            and len(self.address) <= MAX_ADDRESS_CHARS
            and bool(_ADDR_SPEC.match(self.address))
        )


@dataclass(frozen=True)
class Letter:
    """A received letter: its raw bytes and the facts the pipeline reads from it."""

    raw: bytes = field(repr=False)
    #: The parsed message (only the header section when ``oversized`` or unreadable).
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

    @property
    def unreadable(self) -> str | None:
        """Why the letter's MIME structure was not read in full, if it was not."""
        return unreadable(self.message)

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
    message = _parse(raw, headers_only=oversized)
    defects = tuple(type(d).__name__ for d in _all_defects(message))
    from_values = raw_header_values(message, "From")
    mailboxes: list[Mailbox] = []
    for value in from_values[:MAX_HEADER_VALUES]:  # one From is allowed; a few show who it was
        mailboxes.extend(_parse_mailboxes(message, "From", value))
    return Letter(
        raw=raw,
        message=message,
        oversized=oversized,
        defects=defects,
        from_mailboxes=tuple(mailboxes),
        from_header_count=len(from_values),
        subject=_first(header_values(message, "Subject")) or "",
        message_id=_first(_ids(raw_header_values(message, "Message-ID")[:1])),
        in_reply_to=tuple(_ids(raw_header_values(message, "In-Reply-To"))),
        references=tuple(_ids(raw_header_values(message, "References"))),
    )


def unreadable(message: Message) -> str | None:
    """Why *message* (from :func:`parse_letter`) was not read in full; ``None`` if it was.

    Also set after parsing, when looking at the parts exhausts the letter's
    header parsing budget.
    """
    tally = getattr(message.policy, "tally", None)
    return tally.problem if isinstance(tally, _Tally) else None


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
    """Values of header *name*, RFC 2047-decoded; raw 8-bit text recovered as UTF-8/cp1251.

    Only the first :data:`MAX_HEADER_VALUES` values are decoded: decoding costs
    time per encoded-word, and the topmost headers are the ones that matter.
    """
    return [decode_header_text(v) for v in raw_header_values(message, name)[:MAX_HEADER_VALUES]]


def decode_header_text(raw_value: str) -> str:
    """Decode one unfolded raw header value to clean text; never raises.

    Only its first :data:`MAX_DECODED_HEADER_CHARS` characters are decoded.
    """
    raw_value = raw_value[:MAX_DECODED_HEADER_CHARS]
    if has_surrogates(raw_value):
        # Raw 8-bit header bytes (no RFC 2047): the parser kept them as surrogates.
        return text_8bit(raw_value)
    if "=?" not in raw_value:
        return clean_text(raw_value)
    try:
        parts = email.header.decode_header(raw_value)
        return clean_text(str(email.header.make_header(parts)))
    except Exception:  # unknown charset, broken base64 ...
        return clean_text(raw_value)


def has_surrogates(text: str) -> bool:
    """Whether *text* holds surrogate-escaped bytes (undecodable 8-bit input)."""
    return _SURROGATE_ESCAPE.search(text) is not None


def decode_8bit(data: bytes) -> str:
    """Bytes of unknown charset: UTF-8 if valid, else cp1251 (the Russian Windows default)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1251", errors="replace")


def text_8bit(text: str) -> str:
    """*text* with its surrogate-escaped 8-bit bytes decoded by :func:`decode_8bit`, clean."""
    if has_surrogates(text):
        text = decode_8bit(text.encode("utf-8", "surrogateescape"))
    return clean_text(text)


def clean_text(text: str) -> str:
    """*text* with surrogates and NULs replaced by U+FFFD: safe for a database, a log, a reply."""
    return _UNSAFE.sub("\ufffd", text)


def utf8_text(raw_value: str) -> str:
    """A raw header value with its 8-bit bytes read as UTF-8 (RFC 6532), the rest as U+FFFD."""
    if has_surrogates(raw_value):
        data = raw_value.encode("utf-8", "surrogateescape")
        raw_value = data.decode("utf-8", errors="replace")
    return clean_text(raw_value)


# --- bounded parsing ----------------------------------------------------------------------


class _Unreadable(Exception):
    """Raised inside the stdlib parser to stop reading a letter past a limit."""


@dataclass
class _Tally:
    """What reading one letter has cost so far, and the first limit it hit."""

    parts: int = 0
    header_chars_left: int = PARSED_HEADER_BUDGET
    problem: str | None = None
    parsed: dict[tuple[str, str, bool], BaseHeader] = field(default_factory=dict)

    def hit(self, problem: str) -> None:
        """Record *problem* unless an earlier one is recorded."""
        self.problem = self.problem or problem


class _LetterPart(EmailMessage):
    """A part of a letter being parsed: attaching a child past the limits stops the parser.

    The stdlib feed parser attaches every part it starts to its parent, so this
    is where depth and count are known before the part is read.
    """

    mime_depth = 0

    def attach(self, payload: Any) -> None:
        """Attach *payload*, or raise :class:`_Unreadable` when the letter is too deep or big."""
        tally = getattr(self.policy, "tally", None)
        if isinstance(tally, _Tally) and isinstance(payload, _LetterPart):
            tally.parts += 1
            if self.mime_depth >= MAX_MIME_DEPTH:
                raise _Unreadable(f"MIME nesting deeper than {MAX_MIME_DEPTH} levels")
            if tally.parts > MAX_MIME_PARTS:
                raise _Unreadable(f"more than {MAX_MIME_PARTS} MIME parts")
            payload.mime_depth = self.mime_depth + 1
        super().attach(payload)


class _LetterPolicy(EmailPolicy):
    """``policy.default`` for one letter: header values parsed once each, within budget.

    ``Message.get`` parses a header value on every call (the parser itself asks
    a parent for its Content-Type once per child), and the header parser is
    quadratic, so values are memoised per letter, and one over
    :data:`MAX_PARSED_HEADER_CHARS` or over the letter's remaining budget - or
    one the parser raises on - is parsed as empty and makes the letter unreadable.
    """

    tally: _Tally | None = None

    def __init__(self, tally: _Tally | None = None) -> None:
        super().__init__(message_factory=_LetterPart, header_factory=policies.HEADER_FACTORY)
        object.__setattr__(self, "tally", tally)  # policies are read-only once made

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        """See :meth:`email.policy.EmailPolicy.header_fetch_parse`; never raises."""
        if hasattr(value, "name") or self.tally is None:
            return super().header_fetch_parse(name, value)
        return self.parse_once(name, value)

    def parse_once(self, name: str, value: str, *, budgeted: bool = True) -> BaseHeader:
        """Header *name* with raw *value*, parsed on first use (empty if too long)."""
        tally = self.tally or _Tally()
        key = (name, value, budgeted)
        parsed = tally.parsed.get(key)
        if parsed is None:
            parsed = self._parse_value(tally, name, _LINE_BREAK.sub("", value), budgeted)
            tally.parsed[key] = parsed
        return parsed

    def _parse_value(self, tally: _Tally, name: str, text: str, budgeted: bool) -> BaseHeader:
        if len(text) > MAX_PARSED_HEADER_CHARS:
            tally.hit(f"{name} header over {MAX_PARSED_HEADER_CHARS} characters")
            text = ""
        elif budgeted and len(text) > tally.header_chars_left:
            tally.hit(f"MIME headers over {PARSED_HEADER_BUDGET} characters")
            text = ""
        if budgeted:
            tally.header_chars_left -= len(text)
        try:
            header: BaseHeader = self.header_factory(name, text)
        except Exception:  # RecursionError on nested comments, stdlib parser bugs
            tally.hit(f"{name} header unreadable")
            header = self.header_factory(name, "")
        return header


def _parse(raw: bytes, headers_only: bool) -> Message:
    """The parsed letter, or only its header section when it is oversized or unreadable."""
    tally = _Tally()
    policy = _LetterPolicy(tally)
    message: Message
    problem = None if headers_only else _too_big_to_parse(raw)
    if problem is None and not headers_only:
        try:
            message = BytesParser(policy=policy).parsebytes(raw)
            return message
        except _Unreadable as exc:
            problem = str(exc)
        except Exception:  # the parser is lenient; this is a last resort for stdlib bugs
            problem = "MIME structure unreadable"
    if problem is not None:
        tally.hit(problem)
    try:
        message = BytesParser(policy=policy).parsebytes(_header_section(raw), headersonly=True)
    except Exception:
        tally.hit("header section unreadable")
        message = EmailMessage(policy=policy)
    return message


def _too_big_to_parse(raw: bytes) -> str | None:
    """Why *raw* is beyond the parser's limits, found without parsing it."""
    lines = raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")
    if lines > MAX_LINES:
        return f"more than {MAX_LINES} lines"
    if len(raw) > MAX_HEADER_BYTES and _header_end(raw[:MAX_HEADER_BYTES]) < 0:
        return f"header section over {MAX_HEADER_BYTES} bytes"
    return None


def _header_end(head: bytes) -> int:
    """Where the header section of *head* ends (-1 if it does not end in *head*)."""
    cuts = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n"), head.find(b"\r\r")) if i >= 0]
    return min(cuts) if cuts else -1


def _header_section(raw: bytes) -> bytes:
    head = raw[:MAX_HEADER_BYTES]
    end = _header_end(head)
    return head[:end] + b"\r\n\r\n" if end >= 0 else head


def _parse_mailboxes(message: Message, name: str, raw_value: str) -> list[Mailbox]:
    """The mailboxes of one From value: addresses read as UTF-8, names as UTF-8 or cp1251."""
    policy = message.policy
    if not isinstance(policy, _LetterPolicy):
        return []
    # Not on the budget: the sender must be read even when the parts used it up.
    header: Any = policy.parse_once(name, raw_value, budgeted=False)
    encoded = _encoded_word_in_addr_spec(header)
    mailboxes = []
    for a in getattr(header, "addresses", ()):
        address = f"{a.username}@{a.domain}" if a.domain else str(a.username)
        mailboxes.append(Mailbox(text_8bit(str(a.display_name)), utf8_text(address), encoded))
    return mailboxes


def _encoded_word_in_addr_spec(header: Any) -> bool:
    """Whether an addr-spec of the parsed *header* was written as an RFC 2047 encoded-word."""
    stack: list[tuple[Any, bool]] = [(getattr(header, "_parse_tree", None), False)]
    while stack:
        token, inside = stack.pop()
        kind = getattr(token, "token_type", None)
        if inside and kind == "encoded-word":
            return True
        if isinstance(token, list):
            stack.extend((child, inside or kind == "addr-spec") for child in token)
    return False


def _ids(raw_values: list[str]) -> list[str]:
    """The message ids in *raw_values* (RFC 6532 UTF-8 allowed, undecodable ones dropped)."""
    return message_ids(utf8_text(" ".join(raw_values)))


def _all_defects(message: Message) -> list[object]:
    found: list[object] = []
    try:
        for part in message.walk():  # bounded: at most MAX_MIME_PARTS, MAX_MIME_DEPTH deep
            found.extend(getattr(part, "defects", []))
    except Exception:
        found.append(RecursionError())  # a tree too deep to walk is itself a defect
    return found


def _first(values: list[str]) -> str | None:
    return values[0] if values else None
