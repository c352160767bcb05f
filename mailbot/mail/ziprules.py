"""The regulation's ZIP rules, applied to hostile input: ZIP bytes to a certificate file or a no.

Nothing is ever extracted to disk and no name is ever used as a path. The
archive is read from memory with :mod:`zipfile`, after checks that module does
not make (its "Decompression pitfalls" are the caller's problem): a cap on the
archive and on each entry, the compression ratio, the encryption flag, the
compression method, and overlapping entries (the "quoted overlap" bomb check is
missing from Python 3.11.7, so :func:`find_overlap` does it by hand). The one
``.cer`` entry is then read in chunks under our own byte counter, so a lying
declared size cannot make us inflate more than the cap; ``zipfile`` verifies
the CRC at the end of the entry.
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

from mailbot.config.schema import LimitsConfig
from mailbot.regulation.decision import Outcome

#: Local file header / empty-archive end record: how a ZIP starts, whatever its name says.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: More entries than this is not a certificate archive; don't even look at their names.
MAX_ENTRIES = 256
_READ_CHUNK = 64 * 1024
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_DATA_DESCRIPTOR_FLAG = 0x8
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
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
class ZipVerdict:
    """Either the certificate file, or the outcome (``no_cer``/``invalid_files``) and why."""

    certificate: CertificateFile | None
    outcome: Outcome | None
    reason: str


def _reject(reason: str, outcome: Outcome = Outcome.INVALID_FILES) -> ZipVerdict:
    return ZipVerdict(None, outcome, reason)


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


def inspect_zip(zip_name: str, data: bytes, limits: LimitsConfig) -> ZipVerdict:
    """Apply SPEC step 4's archive rules to one ZIP attachment; never raises."""
    if len(data) > limits.max_attachment_bytes:
        return _reject(f"archive larger than {limits.max_attachment_bytes} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, but also struct/Unicode/Value errors on junk
        return _reject(f"damaged archive ({type(exc).__name__})")
    with archive:
        return _inspect_open_zip(zip_name, data, archive, limits)


def _inspect_open_zip(
    zip_name: str, data: bytes, archive: zipfile.ZipFile, limits: LimitsConfig
) -> ZipVerdict:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        return _reject(f"archive has {len(infos)} entries")
    problem = find_overlap(data, infos, getattr(archive, "start_dir", len(data)))
    if problem:
        return _reject(problem)

    named = [(info, _entry_name(info)) for info in infos]
    files = [(info, name) for info, name in named if not _is_folder(info, name)]
    certificates = [(info, name) for info, name in files if _is_cer(name)]
    if not certificates:
        return _reject("archive holds no .cer file", Outcome.NO_CER)
    unsafe = [name for _info, name in named if is_unsafe_name(name)]
    if unsafe:
        return _reject("entry name with '..', an absolute path or control characters")
    if len(files) > 1:
        return _reject(f"archive holds {len(files)} files; only one .cer is allowed")
    info, entry_name = certificates[0]

    if stem(zip_name, ".zip") != stem(entry_name, ".cer"):
        return _reject("archive name differs from the certificate file name")
    if info.flag_bits & _ENCRYPTED_FLAG:
        return _reject("encrypted entry")
    if info.compress_type not in _SUPPORTED_METHODS:
        return _reject(f"unsupported compression method {info.compress_type}")
    if info.file_size > limits.max_zip_entry_bytes:
        return _reject(f"entry declares {info.file_size} bytes")
    if info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
        return _reject("compression ratio too high (possible zip bomb)")

    content = read_entry_capped(archive, info, limits.max_zip_entry_bytes)
    if isinstance(content, str):
        return _reject(content)
    encoding = sniff_certificate(content)
    if encoding is None:
        return _reject("the .cer file is neither DER nor PEM X.509")
    return ZipVerdict(CertificateFile(zip_name, entry_name, content, encoding), None, "")


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


def _is_folder(info: zipfile.ZipInfo, name: str) -> bool:
    return name.endswith(("/", "\\")) and info.file_size == 0


def _is_cer(name: str) -> bool:
    return base_name(name).casefold().endswith(".cer")


# --- structural sniff of the certificate file --------------------------------------------

_PEM = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]*)"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----"
)
_BASE64_ONLY = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


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


def _tlv(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the DER element at *pos*, or ``None``."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    if first < 0x80:
        start, length = pos + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + 2 + count > len(data):
            return None  # indefinite length is BER, not DER
        start = pos + 2 + count
        length = int.from_bytes(data[pos + 2 : start], "big")
    end = start + length
    return (tag, start, end) if end <= len(data) else None


def is_der_certificate_shape(data: bytes) -> bool:
    """Whether *data* is exactly one SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING }."""
    outer = _tlv(data, 0)
    if outer is None or outer[0] != 0x30 or outer[2] != len(data):
        return False
    tags: list[int] = []
    pos = outer[1]
    while pos < outer[2]:
        element = _tlv(data, pos)
        if element is None or element[2] > outer[2]:
            return False
        tags.append(element[0])
        pos = element[2]
    return tags == [0x30, 0x30, 0x03]
