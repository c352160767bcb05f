"""Reading certificates however Windows (or anything else) exported them.

Accepted: DER; PEM / "Base-64 encoded X.509" (CRLF or LF, with or without a
UTF-8 BOM); bare base64 without armour lines; PKCS#7 (.p7b, DER or PEM).
The content is sniffed, the file name is never trusted. Every failure is a
:class:`CertificateLoadError`.
"""

from __future__ import annotations

import base64
import binascii
import re

from mailbot.pki import der
from mailbot.pki.certificate import Certificate
from mailbot.pki.errors import CertificateLoadError, CertificateParseError, DerError

#: A certificate file larger than this is not a certificate (real ones are 1–3 KB).
MAX_INPUT_BYTES = 1024 * 1024

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS", b"CERTIFICATE CHAIN"}
_BASE64_ONLY = re.compile(rb"[A-Za-z0-9+/=\s]+")


def _b64(text: bytes) -> bytes:
    compact = b"".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateLoadError(f"invalid base64: {exc}") from None


def _der_blobs(data: bytes) -> list[bytes]:
    """Split input into DER blobs (each a certificate or a PKCS#7 ContentInfo)."""
    if len(data) > MAX_INPUT_BYTES:
        raise CertificateLoadError(f"input of {len(data)} bytes is too large for a certificate")
    body = data
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if body[:1] == b"\x30":
        return [body]
    stripped = body.strip()
    if not stripped:
        raise CertificateLoadError("the file is empty")
    if b"-----BEGIN" in stripped:
        blocks = _PEM_BLOCK.findall(stripped)
        if not blocks:
            raise CertificateLoadError("PEM armour without a matching END line")
        out = []
        for label, payload in blocks:
            if label in _CERT_LABELS or label in _PKCS7_LABELS:
                out.append(_b64(payload))
        if not out:
            labels = ", ".join(sorted({lab.decode("ascii", "replace") for lab, _ in blocks}))
            raise CertificateLoadError(f"PEM holds no certificate (found: {labels})")
        return out
    if _BASE64_ONLY.fullmatch(stripped):
        return [_b64(stripped)]
    raise CertificateLoadError("neither DER nor PEM/base64 X.509 data")


def _classify(blob: bytes) -> list[Certificate]:
    """A DER blob → the certificates it holds."""
    try:
        end = der.check_well_formed(blob)
        # Some exporters pad with NULs or a newline; anything else after the element is junk.
        if blob[end:].strip(b"\x00\r\n\t ") != b"":
            raise CertificateLoadError(f"{len(blob) - end} unexpected bytes after the DER data")
        top = der.expect(blob, 0, end, der.TAG_SEQUENCE)
        parts = der.children(blob, top)
        if len(parts) == 2 and parts[0].tag == der.TAG_OID:
            oid = der.decode_oid(blob[parts[0].start : parts[0].end])
            if oid != OID_SIGNED_DATA:
                raise CertificateLoadError(f"PKCS#7 content type {oid} holds no certificates")
            return _pkcs7_certificates(blob, parts[1])
        return [Certificate.from_walked_der(blob[:end])]  # walked above: not twice
    except DerError as exc:
        raise CertificateLoadError(f"malformed DER: {exc}") from None
    except CertificateParseError as exc:
        raise CertificateLoadError(str(exc)) from None


def _pkcs7_certificates(blob: bytes, content: der.Tlv) -> list[Certificate]:
    if content.tag != 0xA0:
        raise DerError("PKCS#7 content is not [0] EXPLICIT")
    inner = der.children(blob, content)
    if len(inner) != 1 or inner[0].tag != der.TAG_SEQUENCE:
        raise DerError("bad SignedData")
    certs: list[Certificate] = []
    for field in der.children(blob, inner[0]):
        if field.tag == 0xA0:  # certificates [0] IMPLICIT SET OF CertificateChoices
            for item in der.children(blob, field):
                if item.tag == der.TAG_SEQUENCE:  # attribute certificates etc. are skipped
                    certs.append(Certificate.from_der(blob[item.header_start : item.end]))
    if not certs:
        raise CertificateLoadError("the PKCS#7 bundle holds no certificate")
    return certs


def load_certificates(data: bytes) -> list[Certificate]:
    """Every certificate in the input (a CA file may hold a chain)."""
    certs: list[Certificate] = []
    for blob in _der_blobs(bytes(data)):
        certs += _classify(blob)
    return certs


def load_certificate(data: bytes) -> Certificate:
    """The one certificate a participant sent.

    A single certificate is returned as is. From a bundle (PKCS#7 or several
    PEM blocks) exactly one end-entity (non-CA) certificate must be found.
    """
    certs = load_certificates(data)
    if len(certs) == 1:
        return certs[0]
    leaves = [c for c in certs if not c.is_ca]
    if len(leaves) != 1:
        raise CertificateLoadError(
            f"the bundle holds {len(certs)} certificates and {len(leaves)} end-entity ones; "
            "exactly one end-entity certificate is required"
        )
    return leaves[0]
