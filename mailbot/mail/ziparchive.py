"""Reading a ZIP attachment from hostile bytes: what it holds, never a verdict on it.

Nothing is ever extracted to disk and no name is ever used as a path. The
archive is read from memory with :mod:`zipfile`, and this module reports the
facts that module does not check (its "Decompression pitfalls" are the
caller's problem): entry names decoded the way Russian archivers write them,
declared and compressed sizes, the encryption flag, the compression method,
and overlapping entries (the "quoted overlap" bomb check is missing from
Python 3.11.7, so :func:`find_overlap` does it by hand). An entry is read in
chunks under our own byte counter, so a lying declared size cannot make us
inflate more than the cap; ``zipfile`` verifies the CRC at the end of the
entry. What is acceptable is decided by step 4's rules,
:mod:`mailbot.regulation.attachment_rules`.
"""

from __future__ import annotations

import binascii
import io
import itertools
import re
import struct
import unicodedata
import zipfile
from dataclasses import dataclass, field
from types import TracebackType

from mailbot.pki import der
from mailbot.pki.errors import DerError

#: Local file header / empty-archive end record: how a ZIP starts, whatever its name says.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_READ_CHUNK = 64 * 1024
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_DATA_DESCRIPTOR_FLAG = 0x8
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
# Letters and digits of names as Russian users write them; anything else marks a wrong guess.
_PLAUSIBLE_NAME = re.compile(r"^[\x20-\x7eА-Яа-яЁё№«»–—]*$")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class CertificateFile:
    """The certificate found in the letter's ZIP, with the names it came under."""

    zip_name: str
    #: The entry's full name inside the archive (decoded, NFC), e.g. ``keys/Иванов.cer``.
    entry_name: str
    data: bytes = field(repr=False)
    #: ``der``, ``pem`` or ``base64``: what the structural sniff saw.
    encoding: str

    @property
    def file_name(self) -> str:
        """The entry's base name: what the ZIP's name is compared with."""
        return base_name(self.entry_name)


@dataclass(frozen=True)
class ArchiveEntry:
    """What the central directory says about one entry; nothing of it is inflated."""

    #: The full name inside the archive, decoded (:func:`decode_entry_name`) and NFC.
    name: str
    is_folder: bool
    encrypted: bool
    #: The compression method number (0 stored, 8 deflated, 12 bzip2 ...).
    method: int
    declared_size: int
    compressed_size: int
    info: zipfile.ZipInfo = field(repr=False, compare=False)

    @property
    def is_cer(self) -> bool:
        """Whether the entry's base name ends in ``.cer``, in any case."""
        return base_name(self.name).casefold().endswith(".cer")


class ZipArchive:
    """A ZIP opened from memory: its entries' facts, and one entry's bytes on demand."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile) -> None:
        self._data = data
        self._archive = archive

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._archive.close()

    @property
    def entry_count(self) -> int:
        """How many entries the central directory lists (their names are not decoded)."""
        return len(self._archive.infolist())

    def layout_problem(self) -> str | None:
        """Why the entries' byte ranges are inconsistent (:func:`find_overlap`), or ``None``."""
        infos = self._archive.infolist()
        return find_overlap(self._data, infos, getattr(self._archive, "start_dir", len(self._data)))

    def entries(self) -> list[ArchiveEntry]:
        """Every entry, folders included, in central directory order."""
        out = []
        for info in self._archive.infolist():
            name = _entry_name(info)
            out.append(
                ArchiveEntry(
                    name=name,
                    is_folder=name.endswith(("/", "\\")) and info.file_size == 0,
                    encrypted=bool(info.flag_bits & _ENCRYPTED_FLAG),
                    method=info.compress_type,
                    declared_size=info.file_size,
                    compressed_size=info.compress_size,
                    info=info,
                )
            )
        return out

    def read(self, entry: ArchiveEntry, cap: int) -> bytes | str:
        """The entry's bytes, or why not (:func:`read_entry_capped`)."""
        return read_entry_capped(self._archive, entry.info, cap)


def open_zip(data: bytes) -> ZipArchive | str:
    """The archive in *data*, or why it cannot be opened; never raises."""
    try:
        return ZipArchive(data, zipfile.ZipFile(io.BytesIO(data)))
    except Exception as exc:  # BadZipFile, but also struct/Unicode/Value errors on junk
        return f"damaged archive ({type(exc).__name__})"


def is_zip_bytes(data: bytes) -> bool:
    """Whether *data* starts like a ZIP archive (the declared content type is not trusted)."""
    return data[:4] in ZIP_MAGIC


def has_zip_extension(name: str) -> bool:
    """Whether a file name ends in ``.zip``, in any case."""
    return base_name(name).casefold().endswith(".zip")


def base_name(name: str) -> str:
    """The last component of a name, splitting on both ``/`` and ``\\`` (never a path)."""
    return re.split(r"[/\\]", name)[-1]


def stem(name: str, extension: str) -> str:
    """*name*'s base name without *extension* (case-insensitive), NFC-normalised and casefolded."""
    plain = unicodedata.normalize("NFC", base_name(name)).casefold()
    return plain[: -len(extension)] if plain.endswith(extension) else plain


def decode_entry_name(raw: bytes, utf8_flag: bool) -> str:
    """An entry name from its bytes: UTF-8 when flagged, else the first plausible guess.

    Without the UTF-8 flag the bytes are in the archiver's OEM or ANSI code page:
    Windows Explorer writes CP866, other Russian tools CP1251, Linux ``zip`` raw
    UTF-8. The first decoding that yields a plausible name wins; CP866 otherwise.
    Never raises: a flagged name that is not UTF-8 is decoded with replacements.
    """
    if utf8_flag:
        text = raw.decode("utf-8", errors="replace")
    else:
        text = raw.decode("cp866", errors="replace")
        for codec in ("utf-8", "cp866", "cp1251"):
            try:
                candidate = raw.decode(codec)
            except UnicodeDecodeError:
                continue
            if _PLAUSIBLE_NAME.match(candidate):
                text = candidate
                break
    return unicodedata.normalize("NFC", text)


def is_unsafe_name(name: str) -> bool:
    """Absolute paths, drive letters, ``..`` components and control characters."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        return True
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in unified):
        return True
    return any(part == ".." for part in unified.split("/"))


def find_overlap(data: bytes, infos: list[zipfile.ZipInfo], central_dir_offset: int) -> str | None:
    """Why the entries' byte ranges are inconsistent (overlap, bad header), or ``None``.

    Each entry spans its local header, name, extra field, compressed data and
    optional data descriptor. Spans must not overlap each other nor run into
    the central directory: overlapping entries are how "quoted overlap" bombs
    reuse one compressed stream many times.
    """
    spans: list[tuple[int, int, str]] = []
    for info in infos:
        start = info.header_offset
        header = data[start : start + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            return "entry without a valid local header"
        name_len, extra_len = _LOCAL_HEADER.unpack(header)[9:11]
        end = start + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        if info.flag_bits & _DATA_DESCRIPTOR_FLAG:
            end += 16 if data[end : end + 4] == b"PK\x07\x08" else 12
        spans.append((start, end, info.orig_filename))
    spans.sort()
    for (_, end, _name), (next_start, _, _next) in itertools.pairwise(spans):
        if end > next_start:
            return "overlapping entries (possible zip bomb)"
    if spans and spans[-1][1] > central_dir_offset:
        return "entry data runs into the central directory"
    return None


def read_entry_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | str:
    """The entry's bytes, or why not: never more than *cap* bytes are inflated."""
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(info) as stream:
            while True:
                chunk = stream.read(_READ_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap:
                    return f"entry inflates past {cap} bytes"
                chunks.append(chunk)
    except zipfile.BadZipFile as exc:
        # zipfile's messages are fixed texts ("Bad CRC-32 for file ...") minus the name.
        return "damaged entry: " + str(exc).split(" for file")[0]
    except Exception as exc:  # zlib.error, EOFError, RuntimeError, NotImplementedError ...
        return f"unreadable entry ({type(exc).__name__})"
    return b"".join(chunks)


def _entry_name(info: zipfile.ZipInfo) -> str:
    utf8 = bool(info.flag_bits & _UTF8_FLAG)
    # Unflagged names were decoded by zipfile as cp437, which round-trips to the bytes.
    raw = info.orig_filename.encode("utf-8" if utf8 else "cp437", errors="surrogateescape")
    return decode_entry_name(raw, utf8)


# --- structural sniff of the certificate file --------------------------------------------

_PEM = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]*)"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----"
)
_BASE64_ONLY = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
_CERTIFICATE_SHAPE = [der.TAG_SEQUENCE, der.TAG_SEQUENCE, der.TAG_BIT_STRING]


def sniff_certificate(data: bytes) -> str | None:
    """``der``, ``pem`` or ``base64`` when *data* is shaped like one X.509 certificate.

    A cheap structural check (SEQUENCE of SEQUENCE, SEQUENCE, BIT STRING filling
    the file exactly), not a parse: the PKI module parses and verifies later.
    """
    if is_der_certificate_shape(data):
        return "der"
    text = data.removeprefix(b"\xef\xbb\xbf").strip()
    blocks = list(_PEM.finditer(text))
    if len(blocks) == 1 and text.startswith(b"-----BEGIN"):
        return "pem" if is_der_certificate_shape(_b64(blocks[0]["body"])) else None
    if _BASE64_ONLY.match(text):
        return "base64" if is_der_certificate_shape(_b64(text)) else None
    return None


def _b64(text: bytes) -> bytes:
    try:
        return binascii.a2b_base64(b"".join(text.split()), strict_mode=True)
    except (binascii.Error, ValueError):
        return b""


def is_der_certificate_shape(data: bytes) -> bool:
    """Whether *data* is exactly one SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING }.

    Read with :mod:`mailbot.pki.der`, lenient about non-minimal lengths: a sniff
    lets such a file on to the certificate loader, which tells what is wrong.
    """
    try:
        outer = der.read_tlv(data, 0, len(data), minimal=False)
        if outer.tag != der.TAG_SEQUENCE or outer.end != len(data):
            return False
        tags: list[int] = []
        pos = outer.start
        # Stop after one element too many: a hostile file may hold a million tiny ones.
        while pos < outer.end and len(tags) <= len(_CERTIFICATE_SHAPE):
            element = der.read_tlv(data, pos, outer.end, minimal=False)
            tags.append(element.tag)
            pos = element.end
    except DerError:
        return False
    return tags == _CERTIFICATE_SHAPE
