"""The on-disk CRL cache: verified CRLs, their indexes, and per-CA-key rollback state.

Files are named by hex only (CA key identifier, CRL number, content hash),
never by anything from a URL. Per CA key, ``state-<ski>.json`` remembers the
highest CRL number accepted (it never goes backwards) and which index is
current. The last good CRL stays until a newer verified one replaces it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbot.files import write_atomically
from mailbot.log import get_logger
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl import ParsedCrl, parse_crl, to_der, verify_crl_signature
from mailbot.pki.errors import CrlError, PkiError
from mailbot.pki.revocation_index import IndexMeta, RevocationIndex, write_index

log = get_logger(__name__)

#: Drop-directory files above this size are ignored (same default as fetching).
DEFAULT_MAX_CRL_BYTES = 100 * 1024 * 1024


def ca_key_id(ca: Certificate) -> str:
    """Hex key identifier of a CA: its SKI, else SHA-1 of its SubjectPublicKeyInfo."""
    if ca.subject_key_identifier:
        return ca.subject_key_identifier.hex()
    return hashlib.sha1(ca.spki, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class _State:
    max_number: int | None
    current: str | None
    this_update: str | None


class CrlStore:
    """Ingests CRLs (verify → index → persist) and serves the current index per CA key."""

    def __init__(self, cache_dir: Path, max_crl_bytes: int = DEFAULT_MAX_CRL_BYTES) -> None:
        self.cache_dir = cache_dir
        self.max_crl_bytes = max_crl_bytes
        self._open: dict[str, RevocationIndex] = {}
        self._lock = threading.Lock()
        self._seen_drops: dict[Path, tuple[int, int]] = {}

    # --- state ---------------------------------------------------------------------------
    def _state_path(self, key_id: str) -> Path:
        return self.cache_dir / f"state-{key_id}.json"

    def _state(self, key_id: str) -> _State:
        try:
            raw = json.loads(self._state_path(key_id).read_text("utf-8"))
            return _State(raw.get("max_number"), raw.get("current"), raw.get("this_update"))
        except FileNotFoundError:
            return _State(None, None, None)
        except (OSError, ValueError) as exc:
            raise CrlError(f"unreadable CRL cache state for {key_id}: {exc}") from None

    def current(self, ca: Certificate) -> RevocationIndex | None:
        """The current (last accepted) index for this CA key, or None."""
        key_id = ca_key_id(ca)
        with self._lock:
            state = self._state(key_id)
            if state.current is None:
                return None
            cached = self._open.get(key_id)
            if cached is not None and cached.path.name == state.current:
                return cached
            index = RevocationIndex(self.cache_dir / state.current)
            if cached is not None:
                cached.close()
            self._open[key_id] = index
            return index

    # --- ingest ---------------------------------------------------------------------------
    def ingest(
        self,
        data: bytes | memoryview,
        ca: Certificate,
        *,
        source_url: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        now: datetime | None = None,
    ) -> RevocationIndex:
        """Verify a CRL (DER or PEM) against ``ca`` and make it current; raises CrlError."""
        if len(data) > self.max_crl_bytes:
            raise CrlError(f"CRL of {len(data)} bytes exceeds the {self.max_crl_bytes} limit")
        raw = data if isinstance(data, memoryview) else memoryview(to_der(bytes(data)))
        parsed = parse_crl(raw)
        return self._accept(parsed, raw, ca, source_url, etag, last_modified, now)

    def ingest_file(
        self, path: Path, ca: Certificate, *, source_url: str | None = None
    ) -> RevocationIndex:
        """Like :meth:`ingest` for a file, read through mmap (no copy of a 50 MB body)."""
        with path.open("rb") as fh:
            size = path.stat().st_size
            if size > self.max_crl_bytes:
                raise CrlError(f"{path.name}: {size} bytes exceeds the limit")
            if size == 0:
                raise CrlError(f"{path.name} is empty")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                if mm[:1] != b"\x30":
                    return self.ingest(bytes(mm), ca, source_url=source_url)
                view = memoryview(mm)
                try:
                    parsed = parse_crl(view)
                    try:
                        return self._accept(parsed, view, ca, source_url, None, None, None)
                    finally:
                        parsed.tbs.release()  # views into the map must go before it closes
                finally:
                    view.release()

    def _accept(
        self,
        parsed: ParsedCrl,
        raw: memoryview,
        ca: Certificate,
        source_url: str | None,
        etag: str | None,
        last_modified: str | None,
        now: datetime | None,
    ) -> RevocationIndex:
        h = parsed.header
        if h.is_delta:
            raise CrlError("delta CRL ignored: only complete CRLs are supported")
        if not verify_crl_signature(parsed, ca):
            raise CrlError(f"CRL signature does not verify with CA {ca.thumbprint_sha1}")
        key_id = ca_key_id(ca)
        with self._lock:
            state = self._state(key_id)
            if (
                h.number is not None
                and state.max_number is not None
                and h.number < state.max_number
            ):
                raise CrlError(
                    f"CRL number {h.number} is older than {state.max_number} already seen"
                )
            if (
                h.number is None
                and state.this_update is not None
                and h.this_update < datetime.fromisoformat(state.this_update)
            ):
                raise CrlError("CRL without a number is older than the cached one")
            suffix = f"{h.number:x}" if h.number is not None else "h" + h.sha256[:16]
            name = f"crl-{key_id}-{suffix}"
            idx_path = self.cache_dir / f"{name}.idx"
            if state.current == idx_path.name and idx_path.exists():
                existing = RevocationIndex(idx_path)
                if existing.meta.sha256 != h.sha256:
                    existing.close()
                    raise CrlError(f"CRL number {h.number} re-issued with different content")
                existing.close()
                self._update_validators(idx_path, etag, last_modified)
                return self._reopen(key_id, idx_path)
            meta = IndexMeta(
                issuer=h.issuer.rfc4514(),
                authority_key_identifier=key_id,
                ca_thumbprint_sha1=ca.thumbprint_sha1,
                this_update=h.this_update.isoformat(),
                next_update=h.next_update.isoformat() if h.next_update else None,
                crl_number=h.number,
                entries=parsed.entry_count,
                sha256=h.sha256,
                source_url=source_url,
                etag=etag,
                last_modified=last_modified,
                fetched_at=(now or datetime.now(UTC)).isoformat(),
            )
            write_atomically(self.cache_dir / f"{name}.crl", [bytes(raw)])
            write_index(idx_path, parsed.records, meta)
            write_atomically(
                self._state_path(key_id),
                [
                    json.dumps(
                        {
                            "max_number": max(h.number, state.max_number or h.number)
                            if h.number is not None
                            else state.max_number,
                            "current": idx_path.name,
                            "this_update": h.this_update.isoformat(),
                        }
                    ).encode()
                ],
            )
            log.info(
                "crl_accepted",
                ca=ca.thumbprint_sha1,
                number=h.number,
                entries=parsed.entry_count,
                source=source_url,
            )
            return self._reopen(key_id, idx_path)

    def _reopen(self, key_id: str, path: Path) -> RevocationIndex:
        old = self._open.pop(key_id, None)
        if old is not None:
            old.close()
        index = RevocationIndex(path)
        self._open[key_id] = index
        return index

    def _update_validators(
        self, idx_path: Path, etag: str | None, last_modified: str | None
    ) -> None:
        if etag is None and last_modified is None:
            return
        meta_path = idx_path.with_suffix(".json")
        meta = json.loads(meta_path.read_text("utf-8"))
        meta["etag"], meta["last_modified"] = etag, last_modified
        write_atomically(meta_path, [json.dumps(meta, ensure_ascii=False, indent=1).encode()])

    # --- administrator's drop directory ----------------------------------------------------
    def scan_drop_dir(self, drop_dir: Path | None, ca: Certificate) -> RevocationIndex | None:
        """Ingest dropped CRL files issued by ``ca`` (each file once per size/mtime)."""
        if drop_dir is None or not drop_dir.is_dir():
            return None
        result = None
        for path in sorted(drop_dir.iterdir()):
            try:
                if not path.is_file():
                    continue
                stat = path.stat()
                marker = (stat.st_size, stat.st_mtime_ns)
                if self._seen_drops.get(path) == marker:
                    continue
                if stat.st_size > self.max_crl_bytes:
                    log.warning("crl_drop_too_large", file=path.name)
                    self._seen_drops[path] = marker
                    continue
                index = self.ingest_file(path, ca, source_url=f"file:{path.name}")
                self._seen_drops[path] = marker
                result = index
            except PkiError as exc:
                # Most files belong to other CAs; that is not an error worth more than debug.
                log.debug("crl_drop_skipped", file=path.name, reason=str(exc))
            except OSError as exc:
                log.warning("crl_drop_unreadable", file=path.name, error=str(exc))
        return result


def grace_delta(seconds: int) -> timedelta:
    """Config seconds → timedelta."""
    return timedelta(seconds=seconds)
