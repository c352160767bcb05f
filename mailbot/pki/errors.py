"""Typed errors of the PKI core: callers catch :class:`PkiError`, never a library exception."""

from __future__ import annotations


class PkiError(Exception):
    """Base class of every error raised by :mod:`mailbot.pki`."""


class DerError(PkiError):
    """Bytes that are not well-formed DER (truncated, wrong length, too deep, ...)."""


class CertificateLoadError(PkiError):
    """The input is not one X.509 certificate in a supported encoding."""


class CertificateParseError(PkiError):
    """The certificate decodes as DER but its structure is not an X.509 certificate."""


class UnsupportedAlgorithmError(PkiError):
    """A signature, key or hash algorithm (or GOST parameter set) we do not implement."""


class SignatureError(PkiError):
    """A signature could not be checked at all (malformed key or signature encoding)."""


class InvalidPublicKeyError(SignatureError):
    """A public key that decodes but is no valid key (off its curve, wrong subgroup, ...)."""


class CrlError(PkiError):
    """A CRL that cannot be parsed or must be rejected (e.g. unknown critical extension)."""


class CrlFetchError(PkiError):
    """No CRL could be obtained from a URL (network, HTTP status, size, not a CRL)."""


class CrlWorkerError(CrlError):
    """A CRL ingest worker process missed its deadline or died (not a verdict on the CRL)."""
