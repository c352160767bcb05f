"""The letter's MIME tree to the list of its attachments, the way step 4 counts them.

An attachment is a MIME leaf with a file name or ``Content-Disposition:
attachment`` - or any other leaf that is not body text: a ZIP sent without a
name is an attachment whose name cannot match. Not attachments: the body
(``text/plain`` and ``text/html`` leaves without a file name or attachment
disposition, alternatives included), images referenced by ``cid:`` from an
HTML part (Outlook's ``image001.png`` signature), and the signature part of
S/MIME ``multipart/signed``. A ``winmail.dat`` (TNEF) stands for the files
inside it; a forwarded ``message/*`` part is one attachment that is never
opened. File names are recovered from every encoding clients use, down to the
raw header bytes (see :func:`recover_filename`). A letter whose MIME structure
was not read in full (:func:`mailbot.mail.letter.unreadable`) has one
unacceptable attachment standing for whatever it holds.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message

from mailbot.mail.letter import (
    MAX_MIME_DEPTH,
    MAX_PARSED_HEADER_CHARS,
    decode_8bit,
    decode_header_text,
    has_surrogates,
    raw_header_values,
    unreadable,
)
from mailbot.mail.tnef import TnefError, is_tnef, unpack_tnef

#: Leaves of these types without a file name are the letter's body, not attachments.
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_CID_REF = re.compile(r"cid:([^\"'\s>)]+)", re.IGNORECASE)
_PARAM = re.compile(
    r"""(?:^|;)\s*(?P<key>[A-Za-z0-9_\-]+)\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|[^;]*)""", re.DOTALL
)


@dataclass(frozen=True)
class Attachment:
    """One attachment as the regulation counts it."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    #: ``mime`` (a MIME leaf), ``tnef`` (from a winmail.dat) or ``message`` (a forwarded letter).
    source: str = "mime"
    #: Why this attachment can never be acceptable (forwarded, oversized, unreadable), if so.
    problem: str | None = None


def find_attachments(message: Message, max_attachment_bytes: int) -> list[Attachment]:
    """Every attachment of *message*, in MIME order; never raises."""
    found: list[Attachment] = []
    if unreadable(message) is None:
        _walk(message, 0, _html_cids(message), max_attachment_bytes, found)
    # Checked again: looking at the parts can exhaust the letter's header budget.
    problem = unreadable(message)
    if problem is not None:
        return [Attachment("", _content_type(message), b"", problem=problem)]
    return found


def _walk(part: Message, depth: int, cids: set[str], cap: int, out: list[Attachment]) -> None:
    ctype = _content_type(part)
    if depth > MAX_MIME_DEPTH:
        out.append(Attachment("", ctype, b"", problem="MIME nesting too deep"))
        return
    if ctype.startswith("message/"):
        # A forwarded letter is an attachment in its own right; its contents never count.
        name = recover_filename(part) or "forwarded letter"
        out.append(Attachment(name, ctype, b"", "message", "forwarded letter (message/*)"))
        return
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            return
        for child in children:
            if not isinstance(child, Message):
                continue
            if ctype == "multipart/signed" and _content_type(child) in _SIGNATURE_TYPES:
                continue  # the S/MIME (or PGP) signature of the letter, not a file
            _walk(child, depth + 1, cids, cap, out)
        return
    filename = recover_filename(part)
    if filename is None and _is_body(ctype) and _disposition(part) != "attachment":
        return  # body text, its HTML alternative, a multipart without parts (no boundary)
    if ctype.startswith("image/") and _content_id(part) in cids:
        return  # an inline image shown by the HTML body (signature logos)
    data = _payload(part)
    name = filename or ""
    if len(data) > cap:
        out.append(Attachment(name, ctype, b"", problem=f"attachment over {cap} bytes"))
    elif ctype in _TNEF_TYPES or name.casefold() == "winmail.dat" or is_tnef(data):
        out.extend(_tnef_files(name, ctype, data, cap))
    else:
        out.append(Attachment(name, ctype, data))


def _is_body(ctype: str) -> bool:
    return ctype in _BODY_TYPES or ctype.startswith("multipart/")


def _tnef_files(name: str, ctype: str, data: bytes, cap: int) -> list[Attachment]:
    try:
        files = unpack_tnef(data)
    except TnefError as exc:
        return [Attachment(name, ctype, b"", problem=f"unreadable winmail.dat: {exc}")]
    return [
        Attachment(unicodedata.normalize("NFC", f.name), "application/octet-stream", f.data, "tnef")
        if len(f.data) <= cap
        else Attachment(f.name, "application/octet-stream", b"", "tnef", "attachment too large")
        for f in files
    ]


def recover_filename(part: Message) -> str | None:
    """The part's file name, decoded whatever the client did; ``None`` if it has none.

    ``policy.default`` handles RFC 2231 and RFC 2047 (also inside quotes and
    folded over several encoded-words). What it cannot handle - raw 8-bit cp1251
    (The Bat!, 1C), unquoted encoded-words, unknown charsets - shows up as U+FFFD,
    surrogates or leftover ``=?``; then the name is taken from the raw header bytes.
    """
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is not None and not _needs_recovery(name):
        return unicodedata.normalize("NFC", name.strip())
    for header, key in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        for raw_value in raw_header_values(part, header):
            # Longer values were not parsed either: the letter is unreadable anyway.
            recovered = _raw_param(raw_value[:MAX_PARSED_HEADER_CHARS], key)
            if recovered:
                return unicodedata.normalize("NFC", recovered)
    if name is None:
        return None
    return unicodedata.normalize("NFC", name.encode("utf-8", "replace").decode("utf-8").strip())


def _needs_recovery(name: str) -> bool:
    return "\ufffd" in name or has_surrogates(name) or "=?" in name or not name.strip()


def _raw_param(raw_value: str, key: str) -> str | None:
    """Parameter *key* from a raw header value: encoded-words or raw 8-bit bytes decoded."""
    for match in _PARAM.finditer(raw_value):
        if match["key"].lower() != key:
            continue
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if has_surrogates(value):
            value = decode_8bit(value.encode("ascii", "surrogateescape"))
        if "=?" in value:
            # RFC 2047 inside (or without) quotes, possibly split over several words.
            value = decode_header_text(re.sub(r"\?=\s+=\?", "?==?", value))
        value = value.strip()
        return value or None
    return None


def _html_cids(message: Message) -> set[str]:
    """Content-IDs referenced as ``cid:`` from any HTML part, lower-cased."""
    found: set[str] = set()
    try:
        parts = list(message.walk())
    except Exception:
        return found
    for part in parts:
        if _content_type(part) != "text/html" or part.is_multipart():
            continue
        text = _payload(part).decode("utf-8", errors="replace")
        found.update(urllib.parse.unquote(m).strip("<>").lower() for m in _CID_REF.findall(text))
    return found


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        value = part.get_content_disposition()
    except Exception:
        values = raw_header_values(part, "Content-Disposition")
        value = values[0].split(";")[0].strip().lower() if values else None
    return value


def _content_id(part: Message) -> str:
    values = raw_header_values(part, "Content-ID")
    return values[0].strip().strip("<>").strip().lower() if values else ""


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""
