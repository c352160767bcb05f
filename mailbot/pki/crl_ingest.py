"""The work of accepting one CRL into the cache: verify, index, persist, move the state on.

This is the one code path for an ingest, whether it runs inside the calling
process (small CRLs) or in a worker process (:mod:`mailbot.pki.crl_worker`),
so both give the same checks, files and error texts. It is a pure function of
the CRL bytes, the CA and the cache folder: it returns only the small
:class:`Ingested` summary, never the parsed records.

Files are named by hex only (CA key identifier, CRL number, content hash),
never by anything from a URL. Per CA key, ``state-<ski>.json`` remembers the
highest CRL number accepted (it never goes backwards) and which index is
current; it is replaced atomically only after the index is written, so a
reader sees the old or the new index, never a missing one. The last good CRL
stays until a newer verified one replaces it. Callers serialise ingests of one
cache (:class:`mailbot.pki.crl_store.CrlStore` holds a lock around this).
"""

from __future__ import annotations

import hashlib
import json
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailbot.files import write_atomically
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl import ParsedCrl, parse_crl, to_der, verify_crl_signature
from mailbot.pki.errors import CrlError
from mailbot.pki.revocation_index import IndexMeta, RevocationIndex, write_index


def ca_key_id(ca: Certificate) -> str:
    """Hex key identifier of a CA: its SKI, else SHA-1 of its SubjectPublicKeyInfo."""
    if ca.subject_key_identifier:
        return ca.subject_key_identifier.hex()
    return hashlib.sha1(ca.spki, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class CrlState:
    """What ``state-<ski>.json`` remembers about one CA key."""

    max_number: int | None
    current: str | None  # file name of the current index
    this_update: str | None


def state_path(cache_dir: Path, key_id: str) -> Path:
    """Where the state of one CA key lives."""
    return cache_dir / f"state-{key_id}.json"


def read_state(cache_dir: Path, key_id: str) -> CrlState:
    """The state of one CA key (all None before its first CRL); raises CrlError."""
    try:
        raw = json.loads(state_path(cache_dir, key_id).read_text("utf-8"))
        return CrlState(raw.get("max_number"), raw.get("current"), raw.get("this_update"))
    except FileNotFoundError:
        return CrlState(None, None, None)
    except (OSError, ValueError) as exc:
        raise CrlError(f"unreadable CRL cache state for {key_id}: {exc}") from None


@dataclass(frozen=True)
class Validators:
    """Where a CRL came from, and the HTTP validators for the next conditional GET."""

    source_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Ingested:
    """The outcome of an ingest: the current index's file name and a few facts to log."""

    key_id: str
    index_name: str
    number: int | None
    entries: int
    #: False when this very CRL was current already (only its validators were updated).
    new: bool


@contextmanager
def mapped_crl(path: Path, max_bytes: int) -> Iterator[memoryview]:
    """The DER bytes of a CRL file: an mmap view of a DER file, a decoded copy of a PEM one."""
    with path.open("rb") as fh:
        size = path.stat().st_size
        if size > max_bytes:
            raise CrlError(f"{path.name}: {size} bytes exceeds the limit")
        if size == 0:
            raise CrlError(f"{path.name} is empty")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:1] != b"\x30":
                yield memoryview(to_der(bytes(mm)))
                return
            view = memoryview(mm)
            try:
                yield view
            finally:
                view.release()  # views into the map must go before it closes


def ingest_crl(
    raw: memoryview,
    ca: Certificate,
    cache_dir: Path,
    validators: Validators,
    fetched_at: datetime,
) -> Ingested:
    """Verify a DER CRL against ``ca`` and make it the CA key's current one; raises CrlError."""
    try:
        parsed = parse_crl(raw)
        try:
            return _accept(parsed, raw, ca, cache_dir, validators, fetched_at)
        finally:
            parsed.tbs.release()  # a view into ``raw``, which may be an mmap about to close
    except CrlError as exc:
        # The traceback's frames hold views into ``raw``: while they live, an mmap under it
        # cannot close (BufferError instead of this error). Keep only the text.
        failure = str(exc)
    raise CrlError(failure)


def _accept(
    parsed: ParsedCrl,
    raw: memoryview,
    ca: Certificate,
    cache_dir: Path,
    validators: Validators,
    fetched_at: datetime,
) -> Ingested:
    h = parsed.header
    if h.is_delta:
        raise CrlError("delta CRL ignored: only complete CRLs are supported")
    if not verify_crl_signature(parsed, ca):
        raise CrlError(f"CRL signature does not verify with CA {ca.thumbprint_sha1}")
    key_id = ca_key_id(ca)
    state = read_state(cache_dir, key_id)
    if h.number is not None and state.max_number is not None and h.number < state.max_number:
        raise CrlError(f"CRL number {h.number} is older than {state.max_number} already seen")
    if (
        h.number is None
        and state.this_update is not None
        and h.this_update < datetime.fromisoformat(state.this_update)
    ):
        raise CrlError("CRL without a number is older than the cached one")
    suffix = f"{h.number:x}" if h.number is not None else "h" + h.sha256[:16]
    name = f"crl-{key_id}-{suffix}"
    idx_path = cache_dir / f"{name}.idx"
    if state.current == idx_path.name and idx_path.exists():
        existing = RevocationIndex(idx_path)
        same = existing.meta.sha256 == h.sha256
        existing.close()
        if not same:
            raise CrlError(f"CRL number {h.number} re-issued with different content")
        _update_validators(idx_path, validators)
        return Ingested(key_id, idx_path.name, h.number, parsed.entry_count, new=False)
    meta = IndexMeta(
        issuer=h.issuer.rfc4514(),
        authority_key_identifier=key_id,
        ca_thumbprint_sha1=ca.thumbprint_sha1,
        this_update=h.this_update.isoformat(),
        next_update=h.next_update.isoformat() if h.next_update else None,
        crl_number=h.number,
        entries=parsed.entry_count,
        sha256=h.sha256,
        source_url=validators.source_url,
        etag=validators.etag,
        last_modified=validators.last_modified,
        fetched_at=fetched_at.isoformat(),
    )
    write_atomically(cache_dir / f"{name}.crl", [raw])
    write_index(idx_path, parsed.records, meta)
    max_number = (
        max(h.number, state.max_number or h.number) if h.number is not None else state.max_number
    )
    new_state = {
        "max_number": max_number,
        "current": idx_path.name,
        "this_update": h.this_update.isoformat(),
    }
    write_atomically(state_path(cache_dir, key_id), [json.dumps(new_state).encode()])
    return Ingested(key_id, idx_path.name, h.number, parsed.entry_count, new=True)


def _update_validators(idx_path: Path, validators: Validators) -> None:
    if validators.etag is None and validators.last_modified is None:
        return
    meta_path = idx_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text("utf-8"))
    meta["etag"], meta["last_modified"] = validators.etag, validators.last_modified
    write_atomically(meta_path, [json.dumps(meta, ensure_ascii=False, indent=1).encode()])
