"""Distinguished names: attributes (with Russian OIDs), RFC 4514 strings, SNILS checks.

Real CA certificates put values in whatever string type their software chose
(NumericString, PrintableString with characters outside its alphabet, UTF8,
BMP, Teletex...). Values are decoded leniently and the tag is kept, so that
parsing valid DER never fails because of a string type.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.identifiers import IdentifierError, normalise_snils
from mailbot.pki import der
from mailbot.pki.errors import DerError

#: OID → short name used in RFC 4514 strings and in the Windows/CryptoPro UI.
SHORT_NAMES: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.42": "G",
    "2.5.4.12": "T",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.6": "C",
    "2.5.4.5": "SERIALNUMBER",
    "2.5.4.43": "INITIALS",
    "2.5.4.65": "PSEUDONYM",
    "1.2.840.113549.1.9.1": "E",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
    "1.2.643.100.1": "OGRN",
    "1.2.643.100.3": "SNILS",
    "1.2.643.3.131.1.1": "INN",
    "1.2.643.100.4": "INNLE",
    "1.2.643.100.5": "OGRNIP",
}
OID_BY_SHORT_NAME: dict[str, str] = {v: k for k, v in SHORT_NAMES.items()}

#: String tags: UTF8, Numeric, Printable, Teletex, IA5, BMP, Universal, Visible.
_TAG_NAMES = {
    0x0C: "UTF8String",
    0x12: "NumericString",
    0x13: "PrintableString",
    0x14: "TeletexString",
    0x16: "IA5String",
    0x1A: "VisibleString",
    0x1C: "UniversalString",
    0x1E: "BMPString",
}


@dataclass(frozen=True)
class NameAttribute:
    """One attribute type and value of a name."""

    oid: str
    short_name: str | None
    value: str
    tag: str  # e.g. "NumericString"; "tag 0x.." for anything unusual


def _decode_value(tag: int, content: bytes) -> str:
    try:
        if tag == 0x1E:
            return content.decode("utf-16-be")
        if tag == 0x1C:
            return content.decode("utf-32-be")
        if tag == 0x0C:
            return content.decode("utf-8")
        if tag in (0x12, 0x13, 0x16, 0x1A):
            # These are ASCII by definition, but CAs put UTF-8 in them; be lenient.
            return content.decode("utf-8")
        if tag == 0x14:
            return content.decode("latin-1")
    except UnicodeDecodeError:
        return content.decode("latin-1")
    return "#" + content.hex()  # not a string: RFC 4514 hex form


def parse_name(data: bytes | memoryview) -> tuple[tuple[NameAttribute, ...], ...]:
    """RDNs (in encoding order) of a DER Name; raises :class:`DerError` if malformed."""
    buf = bytes(data)
    top = der.expect(buf, 0, len(buf), der.TAG_SEQUENCE)
    rdns: list[tuple[NameAttribute, ...]] = []
    for rdn in der.children(buf, top):
        if rdn.tag != der.TAG_SET:
            raise DerError("RDN is not a SET")
        attrs: list[NameAttribute] = []
        for atv in der.children(buf, rdn):
            parts = der.children(buf, atv)
            if atv.tag != der.TAG_SEQUENCE or len(parts) != 2 or parts[0].tag != der.TAG_OID:
                raise DerError("malformed AttributeTypeAndValue")
            oid = der.decode_oid(buf[parts[0].start : parts[0].end])
            value = parts[1]
            content = buf[value.start : value.end]
            tag_name = _TAG_NAMES.get(value.tag, f"tag 0x{value.tag:02x}")
            text = _decode_value(value.tag, content)
            attrs.append(NameAttribute(oid, SHORT_NAMES.get(oid), text, tag_name))
        rdns.append(tuple(attrs))
    return tuple(rdns)


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def _format(attr: NameAttribute) -> str:
    # Non-string values are already in RFC 4514's "#hex" form and must not be escaped.
    return attr.value if attr.tag.startswith("tag ") else _escape(attr.value)


@dataclass(frozen=True)
class Name:
    """A decoded distinguished name plus its exact DER (what issuer matching compares)."""

    der: bytes
    rdns: tuple[tuple[NameAttribute, ...], ...]

    @classmethod
    def from_der(cls, data: bytes | memoryview) -> Name:
        """Decode a DER Name."""
        return cls(bytes(data), parse_name(data))

    @property
    def attributes(self) -> tuple[NameAttribute, ...]:
        """All attributes, flattened, in encoding order."""
        return tuple(a for rdn in self.rdns for a in rdn)

    def get(self, key: str) -> str | None:
        """First value of an attribute by short name (``CN``, ``SNILS``...) or dotted OID."""
        oid = OID_BY_SHORT_NAME.get(key, key)
        for attr in self.attributes:
            if attr.oid == oid:
                return attr.value
        return None

    def rfc4514(self) -> str:
        """RFC 4514 string (last RDN first); Russian attributes by their usual short names."""
        parts = []
        for rdn in reversed(self.rdns):
            parts.append("+".join(f"{a.short_name or a.oid}={_format(a)}" for a in rdn))
        return ",".join(parts)

    def normalized_key(self) -> tuple[tuple[tuple[str, str], ...], ...]:
        """A comparison key tolerant of string-type and case/space differences (RFC 5280 §7.1)."""
        return tuple(
            tuple(sorted((a.oid, " ".join(a.value.casefold().split())) for a in rdn))
            for rdn in self.rdns
        )

    def __str__(self) -> str:
        return self.rfc4514()


def snils_checksum_ok(snils: str) -> bool:
    """Whether an 11-digit SNILS has the right check number (≤ 001-001-998 carry none)."""
    try:
        normalise_snils(snils)
    except IdentifierError:
        return False
    return True
