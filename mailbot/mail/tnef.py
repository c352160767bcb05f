"""Outlook's ``winmail.dat`` (TNEF, [MS-OXTNEF]): the files it carries, exactly and defensively.

A TNEF stream is a signature, a key and a flat run of attributes (level, id,
length, data, checksum). Each attachment's attributes begin with
``attAttachRendData``; its bytes are in ``attAttachData`` or in the
``PR_ATTACH_DATA_BIN``/``PR_ATTACH_DATA_OBJ`` property of ``attAttachment`` (a
counted list of MAPI properties whose values win over the attributes, MS-OXTNEF
2.1.3).

Read here, not with tnefparse: tnefparse 1.4 (the last release; its master is
unchanged) strips trailing zero bytes from every binary MAPI value, and a ZIP
always ends in zeros, so a good archive arrived cut short; it also trusts
counts read from the blob (a property count of 2**32 spins for hours) and
parses embedded messages recursively. Here every count and length is checked
against the bytes present before it is used, nothing is parsed recursively, so
time and memory stay linear in the size of the blob.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

TNEF_SIGNATURE = 0x223E9F78
_LVL_MESSAGE = 0x01
_LVL_ATTACHMENT = 0x02
_OBJECT_HEADER = struct.Struct("<BII")  # level, attribute id (type << 16 | name), length
_OBJECT_OVERHEAD = _OBJECT_HEADER.size + 2  # plus the 16-bit checksum
#: An Outlook letter has a few dozen objects; far more means a hostile or broken blob.
MAX_OBJECTS = 2048

_ATT_OEM_CODEPAGE = 0x9007
_ATT_ATTACH_REND_DATA = 0x9002  # opens the attributes of each attachment
_ATT_ATTACH_TITLE = 0x8010  # the 8.3 file name, in the stream's code page
_ATT_ATTACH_DATA = 0x800F  # the file's bytes, exactly
_ATT_ATTACHMENT = 0x9005  # the attachment's MAPI properties

_PR_ATTACH_DATA = 0x3701  # PR_ATTACH_DATA_BIN (PT_BINARY) or PR_ATTACH_DATA_OBJ (PT_OBJECT)
#: MAPI properties naming the file, by the name of their source.
_NAME_PROPERTIES = {0x3707: "long file name", 0x3704: "file name", 0x3001: "display name"}
#: Where a file's name comes from, best first (the title is the 8.3 attAttachTitle).
_NAME_SOURCES = ("long file name", "file name", "title", "display name")

_PT_OBJECT = 0x000D
_PT_STRING8 = 0x001E
_PT_UNICODE = 0x001F
_PT_BINARY = 0x0102
_MULTI_VALUE = 0x1000
_FIRST_NAMED_ID = 0x8000  # named properties carry a GUID and a name before the value
#: Sizes of the fixed-length MAPI types (each value is padded to 4 bytes in TNEF).
_FIXED_SIZE = {
    0x0002: 2, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8,
    0x000A: 4, 0x000B: 2, 0x0014: 8, 0x0040: 8, 0x0048: 16,
}  # fmt: skip
_COUNTED = frozenset({_PT_OBJECT, _PT_STRING8, _PT_UNICODE, _PT_BINARY})
#: Windows code page numbers Python knows under another name than ``cpNNNN``.
_CODEPAGE_NAMES = {20866: "koi8_r", 21866: "koi8_u", 28595: "iso8859_5", 65001: "utf-8"}


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
    """The files inside a TNEF blob, byte for byte, empty ones too.

    An attachment counts when it carries contents (``attAttachData`` or
    ``PR_ATTACH_DATA_*``), even zero bytes of them; one without (a link, a
    rendering) is no file. Raises :class:`TnefError` for anything unreadable.
    """
    if not is_tnef(data) or len(data) < 6:
        raise TnefError("not a TNEF stream")
    codepage: str | None = None
    drafts: list[_Draft] = []
    for level, name, body in _objects(data):
        if level == _LVL_MESSAGE:
            if name == _ATT_OEM_CODEPAGE and len(body) >= 4:
                codepage = _codec(struct.unpack_from("<I", body)[0])
            continue
        if name == _ATT_ATTACH_REND_DATA or not drafts:
            drafts.append(_Draft())
        drafts[-1].add(name, body, codepage)
    files = []
    for draft in drafts:
        contents = draft.contents()
        if contents is not None:
            files.append(TnefFile(draft.name(), contents))
    return files


@dataclass
class _Draft:
    """What one attachment's attributes said so far."""

    names: dict[str, str] = field(default_factory=dict)
    attribute_data: bytes | None = None
    property_data: bytes | None = None

    def add(self, attribute: int, body: bytes, codepage: str | None) -> None:
        if attribute == _ATT_ATTACH_TITLE:
            self.names["title"] = _text(body, codepage)
        elif attribute == _ATT_ATTACH_DATA:
            self.attribute_data = body
        elif attribute == _ATT_ATTACHMENT:
            for prop, kind, value in _properties(body):
                if prop == _PR_ATTACH_DATA and kind in (_PT_BINARY, _PT_OBJECT):
                    self.property_data = _object_data(value) if kind == _PT_OBJECT else value
                elif prop in _NAME_PROPERTIES and kind == _PT_UNICODE:
                    self.names[_NAME_PROPERTIES[prop]] = _unicode(value)
                elif prop in _NAME_PROPERTIES and kind == _PT_STRING8:
                    self.names[_NAME_PROPERTIES[prop]] = _text(value, codepage)

    def name(self) -> str:
        return next((self.names[s] for s in _NAME_SOURCES if self.names.get(s)), "")

    def contents(self) -> bytes | None:
        # The encapsulated property wins over the attribute (MS-OXTNEF 2.1.3).
        return self.attribute_data if self.property_data is None else self.property_data


def _objects(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(level, attribute name, body) of each object, every length checked first."""
    offset, count = 6, 0
    while offset < len(data):
        if len(data) - offset < _OBJECT_OVERHEAD:
            if data[offset:].strip(b"\x00"):
                raise TnefError("truncated stream")
            return  # zero padding after the last object
        level, attribute, length = _OBJECT_HEADER.unpack_from(data, offset)
        end = offset + _OBJECT_HEADER.size + length + 2
        if end > len(data):
            raise TnefError("object runs past the end of the stream")
        count += 1
        if count > MAX_OBJECTS:
            raise TnefError("too many objects")
        if level not in (_LVL_MESSAGE, _LVL_ATTACHMENT):
            raise TnefError(f"unknown object level {level}")
        yield level, attribute & 0xFFFF, data[offset + _OBJECT_HEADER.size : end - 2]
        offset = end


class _Reader:
    """Little-endian reads from a MAPI property list that never run past its end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if size > len(self.data) - self.pos:
            raise TnefError("MAPI property runs past the end of its attribute")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def count(self, smallest_item: int) -> int:
        """A count of items that each take at least *smallest_item* bytes, checked."""
        value = self.u32()
        if value * smallest_item > len(self.data) - self.pos:
            raise TnefError("implausible MAPI property count")
        return value

    def skip_padding(self, size: int) -> None:
        # Values are padded to 4 bytes; a writer that drops the last padding loses nothing.
        self.pos = min(self.pos + -size % 4, len(self.data))


def _properties(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(property id, type, value) of each single-valued string, binary or object property.

    Everything else is walked over: no file's name or contents is a number or a
    list. Values come with their exact length; the padding after them is
    dropped, never a byte of the value.
    """
    reader = _Reader(body)
    for _ in range(reader.count(8)):  # tag plus at least a 4-byte value
        kind, prop = reader.u16(), reader.u16()
        if prop >= _FIRST_NAMED_ID:
            reader.take(16)  # the property set GUID
            name_kind = reader.u32()
            if name_kind == 0:
                reader.take(4)  # a numeric name
            elif name_kind == 1:
                size = reader.u32()
                reader.take(size)
                reader.skip_padding(size)
            else:
                raise TnefError(f"unknown MAPI name kind {name_kind}")
        base, multi = kind & ~_MULTI_VALUE, bool(kind & _MULTI_VALUE)
        if base in _FIXED_SIZE:
            size = _FIXED_SIZE[base]
            for _ in range(reader.count(4) if multi else 1):
                reader.take(size)
                reader.skip_padding(size)
        elif base in _COUNTED:
            for _ in range(reader.count(4)):  # a length per value
                size = reader.u32()
                value = reader.take(size)
                reader.skip_padding(size)
                if not multi:
                    yield prop, base, value
        else:
            raise TnefError(f"unknown MAPI property type {kind:#06x}")


def _object_data(value: bytes) -> bytes:
    # A PT_OBJECT value starts with the interface id of the object (IMessage, IStorage...).
    if len(value) < 16:
        raise TnefError("PR_ATTACH_DATA_OBJ without an interface id")
    return value[16:]


def _codec(number: int) -> str | None:
    """The Python codec of a Windows code page number, if Python has one."""
    for candidate in (_CODEPAGE_NAMES.get(number), f"cp{number}"):
        if candidate is None:
            continue
        try:
            return codecs.lookup(candidate).name
        except LookupError:
            continue
    return None


def _unicode(raw: bytes) -> str:
    """A PT_UNICODE value without its terminating NUL."""
    return raw.decode("utf-16-le", errors="replace").strip("\x00")


def _text(raw: bytes, codepage: str | None) -> str:
    """An 8-bit name: UTF-8 if it is valid UTF-8, else the stream's code page."""
    raw = raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(codepage or "cp1251", errors="replace")
