"""Outlook's ``winmail.dat`` (TNEF): the files it hides, via :mod:`tnefparse`, defensively.

tnefparse trusts counts read from the blob: a MAPI property count of 2**32 makes
it spin for hours, and every object is sliced off a copy of the remaining data.
So the blob is first walked here (cheap, no copies) and rebuilt with only the
objects that carry attachments, after checking every count against the bytes
actually present; only then is it handed to tnefparse.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

TNEF_SIGNATURE = 0x223E9F78
_LVL_MESSAGE = 0x01
_LVL_ATTACHMENT = 0x02
_ATT_OEM_CODEPAGE = 0x9007
_ATT_TNEF_VERSION = 0x9006
_ATT_ATTACHMENT = 0x9005  # MAPI properties of one attachment (long file name, data)
_OBJECT_HEADER = struct.Struct("<BII")  # level, attribute id (type << 16 | name), length
_OBJECT_OVERHEAD = _OBJECT_HEADER.size + 2  # plus the 16-bit checksum
#: An Outlook letter has a few dozen objects; far more means a hostile or broken blob.
MAX_OBJECTS = 2048


class TnefError(Exception):
    """The blob is not a TNEF stream we can read safely."""


@dataclass(frozen=True)
class TnefFile:
    """One file carried inside a TNEF stream."""

    name: str
    data: bytes = field(repr=False)


def is_tnef(data: bytes) -> bool:
    """Whether *data* starts with the TNEF signature."""
    return len(data) >= 4 and struct.unpack_from("<I", data)[0] == TNEF_SIGNATURE


def unpack_tnef(data: bytes) -> list[TnefFile]:
    """The files inside a TNEF blob. Raises :class:`TnefError` for anything unreadable."""
    if not is_tnef(data) or len(data) < 6:
        raise TnefError("not a TNEF stream")
    sanitized = _sanitize(data)
    try:
        from tnefparse.tnef import TNEF

        parsed = TNEF(sanitized, do_checksum=False)
        files = []
        for attachment in parsed.attachments:
            payload = attachment.data
            if not isinstance(payload, bytes) or not payload:
                continue  # rendering-only objects (OLE previews) carry no file
            files.append(TnefFile(_attachment_name(attachment, parsed.codepage), payload))
    except TnefError:
        raise
    except Exception as exc:  # tnefparse raises whatever struct/Unicode/Index error it meets
        raise TnefError(f"unreadable TNEF ({type(exc).__name__})") from None
    return files


def _sanitize(data: bytes) -> bytes:
    """Keep the header, code page, version and attachment-level objects, checking lengths."""
    kept = [data[:6]]
    offset, count = 6, 0
    while offset < len(data):
        if len(data) - offset < _OBJECT_OVERHEAD:
            if data[offset:].strip(b"\x00"):
                raise TnefError("truncated stream")
            break  # zero padding after the last object
        level, attribute, length = _OBJECT_HEADER.unpack_from(data, offset)
        end = offset + _OBJECT_HEADER.size + length + 2
        if end > len(data):
            raise TnefError("object runs past the end of the stream")
        count += 1
        if count > MAX_OBJECTS:
            raise TnefError("too many objects")
        name = attribute & 0xFFFF
        body = data[offset + _OBJECT_HEADER.size : end - 2]
        if level == _LVL_ATTACHMENT:
            if name == _ATT_ATTACHMENT:
                _check_property_count(body)
            kept.append(data[offset:end])
        elif level == _LVL_MESSAGE and name in (_ATT_OEM_CODEPAGE, _ATT_TNEF_VERSION):
            kept.append(data[offset:end])
        elif level not in (_LVL_MESSAGE, _LVL_ATTACHMENT):
            raise TnefError(f"unknown object level {level}")
        offset = end
    return b"".join(kept)


def _check_property_count(body: bytes) -> None:
    # Every MAPI property takes at least 8 bytes (type, id, 4-byte value).
    if len(body) < 4 or struct.unpack_from("<I", body)[0] * 8 > len(body) - 4:
        raise TnefError("implausible MAPI property count")


def _attachment_name(attachment: object, codepage: str | None) -> str:
    """The long file name if present, else the 8.3 title, decoded in the blob's code page."""
    from tnefparse import properties

    for attr in getattr(attachment, "mapi_attrs", []):
        if attr.name == properties.MAPI_ATTACH_LONG_FILENAME:
            return _text(attr.data, codepage)
    return _text(getattr(attachment, "_name", b""), codepage)


def _text(value: object, codepage: str | None) -> str:
    if isinstance(value, str):
        return value.strip("\x00")
    if isinstance(value, bytes):
        raw = value.rstrip(b"\x00")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                return raw.decode(codepage or "cp1251", errors="replace")
            except LookupError:
                return raw.decode("cp1251", errors="replace")
    return ""
