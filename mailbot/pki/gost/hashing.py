"""GOST R 34.11 hashing: OpenSSL's GOST provider through ``hashlib``, else pure Python.

Python's ``_hashlib`` links the system ``libcrypto.so.3``; Debian's
``libengine-gost-openssl`` ships ``gostprov.so`` for it. Loading the
``default`` provider first and then ``gostprov`` into the default library
context makes ``hashlib.new("md_gost12_256")`` work in-process at ≈130 MB/s
(gostcrypto manages ≈0.18 MB/s, i.e. 40 s for a 10 MB CRL). ``default`` must
come first: loading only ``gostprov`` disables the implicit default provider
and breaks ``ssl``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import threading
from dataclasses import dataclass
from typing import Protocol

from mailbot.log import get_logger
from mailbot.pki.errors import UnsupportedAlgorithmError

log = get_logger(__name__)

STREEBOG_256 = "streebog256"
STREEBOG_512 = "streebog512"
GOST94 = "gost94"

#: Our names → OpenSSL provider names.
_OPENSSL_NAMES = {STREEBOG_256: "md_gost12_256", STREEBOG_512: "md_gost12_512", GOST94: "md_gost94"}

#: Digest OIDs → our names.
DIGEST_OIDS = {
    "1.2.643.7.1.1.2.2": STREEBOG_256,
    "1.2.643.7.1.1.2.3": STREEBOG_512,
    "1.2.643.2.2.9": GOST94,
}

# GOST R 34.11-2012 test message M1 and its 256-bit digest (hex as printed by OpenSSL).
_M1 = b"012345678901234567890123456789012345678901234567890123456789012"
_M1_256 = "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"


class Hasher(Protocol):
    """The part of a ``hashlib`` object we use."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class Backend:
    """Which implementation computes GOST hashes in this process."""

    name: str  # "openssl-gostprov" or "gostcrypto"
    detail: str
    algorithms: frozenset[str]


class _GostcryptoHasher:
    """Adapter: gostcrypto's streebog behind the hashlib interface."""

    def __init__(self, name: str) -> None:
        import gostcrypto.gosthash

        self._h = gostcrypto.gosthash.new(name)

    def update(self, data: bytes | memoryview, /) -> None:
        self._h.update(bytearray(data))

    def digest(self) -> bytes:
        return bytes(self._h.digest())


_lock = threading.Lock()
_backend: Backend | None = None


def _openssl_works(name: str) -> bool:
    try:
        h = hashlib.new(_OPENSSL_NAMES[name])
    except (ValueError, TypeError):
        return False
    if name == STREEBOG_256:
        h.update(_M1)
        return h.hexdigest() == _M1_256
    return True


def _load_provider() -> str:
    """Load default + gostprov into the default OpenSSL context; returns a note."""
    path = ctypes.util.find_library("crypto") or "libcrypto.so.3"
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        return f"cannot open libcrypto: {exc}"
    load = lib.OSSL_PROVIDER_load
    load.restype = ctypes.c_void_p
    load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    if not load(None, b"default"):
        return "OSSL_PROVIDER_load(default) failed"
    if not load(None, b"gostprov"):
        return "gostprov provider not found (install libengine-gost-openssl)"
    return "loaded"


def backend() -> Backend:
    """Detect (once) and return the active backend; warns once when falling back."""
    global _backend
    with _lock:
        if _backend is not None:
            return _backend
        note = "already available"
        if not _openssl_works(STREEBOG_256):
            note = _load_provider()
        if _openssl_works(STREEBOG_256):
            algos = {STREEBOG_256, STREEBOG_512} | ({GOST94} if _openssl_works(GOST94) else set())
            _backend = Backend(
                "openssl-gostprov", f"hashlib via OpenSSL gostprov ({note})", frozenset(algos)
            )
        else:
            _backend = Backend(
                "gostcrypto",
                f"pure-Python gostcrypto, ~0.2 MB/s; OpenSSL provider unavailable: {note}",
                frozenset({STREEBOG_256, STREEBOG_512}),
            )
            log.warning("gost_hash_fallback", backend="gostcrypto", reason=note)
        return _backend


def force_backend(name: str | None) -> None:
    """Tests: pin the backend ("gostcrypto") or reset detection (None)."""
    global _backend
    with _lock:
        if name is None:
            _backend = None
        elif name == "gostcrypto":
            _backend = Backend("gostcrypto", "forced", frozenset({STREEBOG_256, STREEBOG_512}))
        else:
            raise ValueError(name)


def new(name: str) -> Hasher:
    """A fresh hasher for ``streebog256``, ``streebog512`` or ``gost94``."""
    active = backend()
    if name not in active.algorithms:
        raise UnsupportedAlgorithmError(
            f"{name} is not available with the {active.name} hashing backend"
        )
    if active.name == "openssl-gostprov":
        return hashlib.new(_OPENSSL_NAMES[name])
    return _GostcryptoHasher(name)


def digest(name: str, data: bytes | memoryview) -> bytes:
    """One-shot digest."""
    h = new(name)
    h.update(data)
    return h.digest()
