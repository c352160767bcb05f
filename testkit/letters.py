"""Letters, ZIP archives, TNEF blobs and certificates built byte by byte, for tests and the demo.

Each builder reproduces how one mail client or archiver really encodes things
(Outlook's RFC 2047 names and signature images, Thunderbird's RFC 2231, The
Bat!'s raw cp1251, Windows Explorer's CP866 ZIP names, S/MIME signatures,
winmail.dat ...), so the intake is tested against what arrives in practice.
The ZIP writer can also lie (sizes, CRC, flags, offsets) to build hostile archives.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.header
import struct
import urllib.parse
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

CRLF = b"\r\n"
TRUSTED_SENDER = "ivanov@clinic.example"
FUND_ADDRESS = "reestrin@fund.example"

# --- certificates --------------------------------------------------------------------------


@lru_cache(maxsize=4)
def certificate_der(common_name: str = "Иванов Иван Иванович") -> bytes:
    """A real self-signed RSA certificate (DER), generated once per name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x0191BEB900FCB08BA240275D9525313540)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_pem() -> bytes:
    """The same certificate, PEM-armoured with CRLF lines (CryptoPro's "Base-64" export)."""
    body = base64.encodebytes(certificate_der()).replace(b"\n", CRLF)
    return b"-----BEGIN CERTIFICATE-----\r\n" + body + b"-----END CERTIFICATE-----\r\n"


# --- ZIP archives --------------------------------------------------------------------------

STORED, DEFLATED, BZIP2 = 0, 8, 12
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01


@dataclass(frozen=True)
class ZipEntry:
    """One entry to write. ``name`` bytes are written as given; ``str`` names as *encoding*."""

    name: str | bytes
    data: bytes = b""
    method: int = DEFLATED
    encoding: str = "utf-8"
    #: Set bit 11 (names are UTF-8). ``None``: set it when a str name is non-ASCII UTF-8.
    utf8_flag: bool | None = None
    extra_flags: int = 0
    #: Lies: override what the headers declare.
    declared_size: int | None = None
    declared_crc: int | None = None
    #: Raw compressed bytes to write instead of compressing ``data``.
    compressed: bytes | None = None


def _compress(entry: ZipEntry) -> bytes:
    if entry.compressed is not None:
        return entry.compressed
    if entry.method == DEFLATED:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(entry.data) + packer.flush()
    return entry.data


def build_zip(entries: Sequence[ZipEntry], *, duplicate_offsets: bool = False) -> bytes:
    """A ZIP archive of *entries*; ``duplicate_offsets`` points every central record at entry 1.

    The second form is the "overlapping entries" bomb: many names, one stream.
    """
    local = b""
    central = b""
    for entry in entries:
        name = entry.name if isinstance(entry.name, bytes) else entry.name.encode(entry.encoding)
        flag = entry.utf8_flag
        if flag is None:
            flag = isinstance(entry.name, str) and entry.encoding == "utf-8" and not name.isascii()
        flags = (0x800 if flag else 0) | entry.extra_flags
        payload = _compress(entry)
        crc = entry.declared_crc if entry.declared_crc is not None else zlib.crc32(entry.data)
        size = entry.declared_size if entry.declared_size is not None else len(entry.data)
        offset = 0 if duplicate_offsets else len(local)
        header = struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, entry.method, 0, _DOS_DATE,
            crc, len(payload), size, len(name), 0,
        )  # fmt: skip
        if not (duplicate_offsets and central):
            local += header + name + payload
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, entry.method, 0, _DOS_DATE,
            crc, len(payload), size, len(name), 0, 0, 0, 0, 0, offset,
        ) + name  # fmt: skip
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0
    )
    return local + central + end


def certificate_zip(
    entry_name: str = "Иванов.cer", data: bytes | None = None, encoding: str = "cp866"
) -> bytes:
    """A ZIP as Windows Explorer makes it: one deflated entry, CP866 name, no UTF-8 flag."""
    content = certificate_der() if data is None else data
    flag = encoding == "utf-8" and not entry_name.isascii()
    return build_zip([ZipEntry(entry_name, content, encoding=encoding, utf8_flag=flag)])


# --- TNEF (winmail.dat) --------------------------------------------------------------------

_TNEF_SIGNATURE = 0x223E9F78


def tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    """One TNEF attribute: level, id (type << 16 | name), length, data, checksum."""
    attribute = (kind << 16) | name
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


_MAPI_COUNTED_TYPES = frozenset({0x000D, 0x001E, 0x001F, 0x0102})  # object, strings, binary
_PS_PUBLIC_STRINGS = bytes.fromhex("2903020000000000c000000000000046")


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def utf16z(text: str) -> bytes:
    """A PT_UNICODE value: UTF-16LE with its terminating NUL."""
    return (text + "\x00").encode("utf-16-le")


def mapi_property(kind: int, prop: int, *values: bytes, name: str | None = None) -> bytes:
    """One MAPI property as TNEF encapsulates it (MS-OXTNEF 2.1.3.4).

    Tag, then for a *name*d property its GUID and name, then the values padded
    to 4 bytes: strings, binaries and objects counted and length-prefixed,
    several *values* only for a multi-valued (0x1000) *kind*.
    """
    out = struct.pack("<HH", kind, prop)
    if name is not None:
        raw = utf16z(name)
        out += _PS_PUBLIC_STRINGS + struct.pack("<II", 1, len(raw)) + _pad4(raw)
    counted = kind & 0x0FFF in _MAPI_COUNTED_TYPES
    if counted or kind & 0x1000:
        out += struct.pack("<I", len(values))
    for value in values:
        out += (struct.pack("<I", len(value)) if counted else b"") + _pad4(value)
    return out


def build_tnef(
    files: Sequence[tuple[str, bytes]],
    codepage: int = 1251,
    *,
    data_in: str = "attAttachData",
    extra_properties: Sequence[bytes] = (),
) -> bytes:
    """A winmail.dat carrying *files*: 8.3 title in *codepage*, long name as MAPI Unicode.

    The contents go into the ``attAttachData`` attribute (as Outlook writes
    them) or, with ``data_in="mapi"``, into the ``PR_ATTACH_DATA_BIN`` property
    of ``attAttachment``, after *extra_properties* (encoded by :func:`mapi_property`).
    """
    out = struct.pack("<IH", _TNEF_SIGNATURE, 0x0001)
    out += tnef_object(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    out += tnef_object(1, 0x9007, 0x0008, struct.pack("<II", codepage, 0))
    out += tnef_object(1, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\x00")
    for name, data in files:
        short = name[:8].encode(f"cp{codepage}", "replace") + b"\x00"
        out += tnef_object(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)
        out += tnef_object(2, 0x8010, 0x0001, short)
        props = [*extra_properties, mapi_property(0x001F, 0x3707, utf16z(name))]
        if data_in == "mapi":
            props.append(mapi_property(0x0102, 0x3701, data))
        else:
            out += tnef_object(2, 0x800F, 0x0006, data)
        out += tnef_object(2, 0x9005, 0x0006, struct.pack("<I", len(props)) + b"".join(props))
    return out


# --- letters -------------------------------------------------------------------------------


def _b64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def rfc2047(text: str, charset: str = "utf-8", maxlinelen: int = 76) -> str:
    """*text* as RFC 2047 encoded-words (several when long), joined by folding whitespace."""
    return email.header.Header(text, charset, maxlinelen=maxlinelen).encode()


def rfc2231(key: str, text: str, chunk: int = 10) -> bytes:
    """``key*0*=UTF-8''…; key*1*=…`` continuations, as Thunderbird writes long names."""
    # Split between whole characters' %XX groups, never inside one.
    tokens = [urllib.parse.quote(ch.encode("utf-8"), safe="") for ch in text]
    pieces = ["".join(tokens[i : i + chunk]) for i in range(0, len(tokens), chunk)]
    params = [f"{key}*0*=UTF-8''{pieces[0]}"] + [
        f"{key}*{i}*={p}" for i, p in enumerate(pieces[1:], start=1)
    ]
    return ";\r\n ".join(params).encode()


def part(
    data: bytes,
    content_type: bytes = b"application/zip",
    disposition: bytes | None = b"attachment",
    extra: Sequence[bytes] = (),
) -> bytes:
    """A base64 MIME leaf; *content_type*/*disposition* are raw header values (any bytes)."""
    head = [b"Content-Type: " + content_type, b"Content-Transfer-Encoding: base64"]
    if disposition is not None:
        head.append(b"Content-Disposition: " + disposition)
    return CRLF.join([*head, *extra]) + CRLF + CRLF + _b64_lines(data)


def text_part(text: str, subtype: str = "plain") -> bytes:
    """A UTF-8 text leaf (8bit)."""
    return (
        f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        .encode() + text.encode("utf-8") + CRLF
    )  # fmt: skip


def multipart(subtype: str, parts: Sequence[bytes], boundary: str, params: str = "") -> bytes:
    """A multipart entity (headers and body) around *parts*."""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}\r\n\r\n'.encode()
    body = b"".join(b"--" + boundary.encode() + CRLF + p + CRLF for p in parts)
    return head + body + b"--" + boundary.encode() + b"--" + CRLF


def letter(
    body: bytes,
    *,
    sender: str = TRUSTED_SENDER,
    subject: str = "ADD_CERT",
    to: str = FUND_ADDRESS,
    message_id: str = "<20250301101500.1@clinic.example>",
    headers: Sequence[tuple[str, str | bytes]] = (),
) -> bytes:
    """A whole letter: top-level headers, then *body* (an entity with its own headers)."""
    encoded_subject = subject if subject.isascii() else rfc2047(subject)
    lines: list[bytes] = [
        f"From: Иванов Иван <{sender}>".encode() if sender else b"From: ",
        f"To: {to}".encode(),
        f"Subject: {encoded_subject}".encode(),
        b"Date: Sat, 01 Mar 2025 10:15:00 +0300",
        f"Message-ID: {message_id}".encode(),
        b"MIME-Version: 1.0",
    ]
    for name, value in headers:
        lines.append(
            name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
        )
    lines[0] = lines[0].replace("Иванов Иван".encode(), rfc2047("Иванов Иван").encode())
    return CRLF.join(lines) + CRLF + body


def plain_zip_letter(zip_name: str, zip_data: bytes, **kwargs: object) -> bytes:
    """A simple letter: short text plus one ZIP attachment with an RFC 2047 name."""
    name = rfc2047(zip_name).encode() if not zip_name.isascii() else zip_name.encode()
    body = multipart(
        "mixed",
        [
            text_part("Сертификат во вложении."),
            part(zip_data, b'application/zip; name="' + name + b'"',
                 b'attachment; filename="' + name + b'"'),
        ],
        "b1",
    )  # fmt: skip
    return letter(body, **kwargs)  # type: ignore[arg-type]


def outlook_letter(zip_name: str, zip_data: bytes, **kwargs: object) -> bytes:
    """Outlook: HTML with a signature image001.png (Content-ID, no disposition), RFC 2047 names
    in quotes, ``application/x-zip-compressed``."""
    cid = "image001.png@01DB8A6B.5F3E2C10"
    html = f'<html><body><p>Добрый день!</p><img src="cid:{cid}"></body></html>'
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    alternative = multipart(
        "alternative", [text_part("Добрый день!"), text_part(html, "html")], "alt"
    )
    related = multipart(
        "related",
        [alternative, part(png, b'image/png; name="image001.png"', None,
                           [f"Content-ID: <{cid}>".encode()])],
        "rel", '; type="multipart/alternative"',
    )  # fmt: skip
    name = rfc2047(zip_name).encode()
    attachment = part(
        zip_data,
        b'application/x-zip-compressed; name="' + name + b'"',
        b'attachment; filename="' + name + b'"; size=' + str(len(zip_data)).encode(),
    )
    return letter(multipart("mixed", [related, attachment], "mix"), **kwargs)  # type: ignore[arg-type]


def thunderbird_letter(zip_name: str, zip_data: bytes, **kwargs: object) -> bytes:
    """Thunderbird: RFC 2231 continuations in both name parameters."""
    attachment = part(
        zip_data,
        b"application/zip;\r\n " + rfc2231("name", zip_name),
        b"attachment;\r\n " + rfc2231("filename", zip_name),
    )
    body = multipart("mixed", [text_part("Сертификат."), attachment], "------------tb01")
    return letter(body, **kwargs)  # type: ignore[arg-type]


def the_bat_letter(zip_name: str, zip_data: bytes, **kwargs: object) -> bytes:
    """The Bat! (and 1C, PHP mailers): raw 8-bit cp1251 names, ``application/octet-stream``."""
    raw_name = zip_name.encode("cp1251")
    attachment = part(
        zip_data,
        b'application/octet-stream; name="' + raw_name + b'"',
        b'attachment; filename="' + raw_name + b'"',
    )
    body = multipart("mixed", [text_part("Сертификат"), attachment], "----------BAT01")
    return letter(body, **kwargs)  # type: ignore[arg-type]


def koi8_letter(zip_name: str, zip_data: bytes, **kwargs: object) -> bytes:
    """A koi8-r name split over several RFC 2047 words inside quotes."""
    name = rfc2047(zip_name, "koi8-r", maxlinelen=30).encode()
    attachment = part(zip_data, b"application/zip", b'attachment; filename="' + name + b'"')
    return letter(multipart("mixed", [text_part("x"), attachment], "k8"), **kwargs)  # type: ignore[arg-type]


def smime_signed_letter(zip_name: str, zip_data: bytes, **kwargs: object) -> bytes:
    """S/MIME ``multipart/signed``: content, then ``smime.p7s`` marked as an attachment."""
    content = multipart(
        "mixed",
        [text_part("Подписано."),
         part(zip_data, b'application/zip; name="' + rfc2047(zip_name).encode() + b'"',
              b'attachment; filename="' + rfc2047(zip_name).encode() + b'"')],
        "inner",
    )  # fmt: skip
    signature = part(
        b"0\x82\x01\x00" + b"\x00" * 256,
        b'application/pkcs7-signature; name="smime.p7s"',
        b'attachment; filename="smime.p7s"',
    )
    params = '; protocol="application/pkcs7-signature"; micalg=sha-256'
    return letter(multipart("signed", [content, signature], "sig", params), **kwargs)  # type: ignore[arg-type]


def tnef_letter(files: Sequence[tuple[str, bytes]], **kwargs: object) -> bytes:
    """Outlook/Exchange "rich text": the files hidden in ``winmail.dat``."""
    attachment = part(
        build_tnef(files), b'application/ms-tnef; name="winmail.dat"',
        b'attachment; filename="winmail.dat"',
    )  # fmt: skip
    return letter(multipart("mixed", [text_part("См. вложение"), attachment], "tn"), **kwargs)  # type: ignore[arg-type]


def forwarded_letter(inner: bytes, **kwargs: object) -> bytes:
    """A letter forwarding another one as ``message/rfc822``."""
    forwarded = b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner
    return letter(multipart("mixed", [text_part("Пересылаю"), forwarded], "fw"), **kwargs)  # type: ignore[arg-type]


def delivery_report(**kwargs: object) -> bytes:
    """A DSN (``multipart/report``) from MAILER-DAEMON."""
    status = b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n"
    body = multipart(
        "report", [text_part("Undelivered"), status], "dsn", "; report-type=delivery-status"
    )
    kwargs.setdefault("sender", "MAILER-DAEMON@mx.example")
    kwargs.setdefault("subject", "Undelivered Mail Returned to Sender")
    return letter(body, **kwargs)  # type: ignore[arg-type]


def no_attachment_letter(**kwargs: object) -> bytes:
    """Only a text body."""
    return letter(text_part("Забыл приложить"), **kwargs)  # type: ignore[arg-type]
