"""The on-disk CRL cache: verified CRLs, their indexes, and per-CA-key rollback state.

Files are named by hex only (CA key identifier, CRL number, content hash),
never by anything from a URL. Per CA key, ``state-<ski>.json`` remembers the
highest CRL number accepted (it never goes backwards) and which index is
current. The last good CRL stays until a newer verified one replaces it.
"""

from __future__ import annotations

import mmap
import stat
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbot.files import private_scratch_file
from mailbot.log import get_logger
from mailbot.pki.certificate import Certificate
from mailbot.pki.crl import crl_issuer, to_der
from mailbot.pki.crl_ingest import (
    Ingested,
    Validators,
    ca_key_id,
    ingest_crl,
    mapped_crl,
    read_state,
)
from mailbot.pki.crl_worker import IngestJob, run_in_worker
from mailbot.pki.errors import CrlError, CrlWorkerError, PkiError
from mailbot.pki.revocation_index import RevocationIndex

log = get_logger(__name__)

#: Drop-directory files above this size are ignored (same default as fetching).
DEFAULT_MAX_CRL_BYTES = 100 * 1024 * 1024
#: CRLs at least this big are ingested in a worker process (see :mod:`mailbot.pki.crl_worker`);
#: below it the worker's start (~0.2 s) costs more than the few MB the parse leaves behind.
IN_PROCESS_BELOW_BYTES = 1024 * 1024
#: A worker still busy after this long is killed (a 1M-entry CRL takes ~2–3 s).
DEFAULT_INGEST_TIMEOUT_SECONDS = 60.0

__all__ = ["CrlStore", "ca_key_id", "grace_delta"]


class CrlStore:
    """Ingests CRLs (verify → index → persist) and serves the current index per CA key."""

    def __init__(
        self,
        cache_dir: Path,
        max_crl_bytes: int = DEFAULT_MAX_CRL_BYTES,
        *,
        ingest_timeout: float = DEFAULT_INGEST_TIMEOUT_SECONDS,
        in_process_below: int = IN_PROCESS_BELOW_BYTES,
    ) -> None:
        self.cache_dir = cache_dir
        self.max_crl_bytes = max_crl_bytes
        self.ingest_timeout = ingest_timeout
        self.in_process_below = in_process_below
        self._open: dict[str, RevocationIndex] = {}
        self._lock = threading.Lock()  # guards _open; held only briefly
        self._ingesting = threading.Lock()  # one ingest at a time; readers never wait for it
        #: (file, CA key) -> (size, mtime) of a dropped file already dealt with for that CA.
        self._seen_drops: dict[tuple[Path, str], tuple[int, int]] = {}

    def current(self, ca: Certificate) -> RevocationIndex | None:
        """The current (last accepted) index for this CA key, or None."""
        key_id = ca_key_id(ca)
        with self._lock:
            state = read_state(self.cache_dir, key_id)
            if state.current is None:
                return None
            cached = self._open.get(key_id)
            if cached is not None and cached.path.name == state.current:
                return cached
            # The replaced index is not closed: another thread may be looking a serial up
            # in it right now. Its mapping goes when the last reference does.
            index = RevocationIndex(self.cache_dir / state.current)
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
        self.check_size(len(data))
        validators = Validators(source_url, etag, last_modified)
        fetched_at = now or datetime.now(UTC)
        if len(data) < self.in_process_below:
            raw = data if isinstance(data, memoryview) else memoryview(to_der(bytes(data)))
            return self._run(
                ca, validators, lambda: ingest_crl(raw, ca, self.cache_dir, validators, fetched_at)
            )
        # The worker reads the body from a private temporary file in the cache folder.
        with self.scratch_file(".tmp-ingest-") as body:
            with body.open("wb") as handle:
                handle.write(data)
            job = IngestJob(body, ca, self.cache_dir, self.max_crl_bytes, validators, fetched_at)
            return self._run(ca, validators, lambda: run_in_worker(job, self.ingest_timeout))

    def check_size(self, size: int) -> None:
        """Refuse (CrlError) a CRL of ``size`` bytes, if that is over this cache's limit."""
        if size > self.max_crl_bytes:
            raise CrlError(f"CRL of {size} bytes exceeds the {self.max_crl_bytes} limit")

    def scratch_file(self, prefix: str) -> AbstractContextManager[Path]:
        """An empty private (``0600``) temporary file in the cache folder, deleted on exit."""
        return private_scratch_file(self.cache_dir, prefix)

    def ingest_file(
        self,
        path: Path,
        ca: Certificate,
        *,
        source_url: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> RevocationIndex:
        """Like :meth:`ingest` for a file, read through mmap (no copy of a 50 MB body)."""
        validators = Validators(source_url, etag, last_modified)
        fetched_at = datetime.now(UTC)
        info = path.stat()
        # Anything but a small regular file goes to the worker: reading a FIFO or a
        # device may block, and only the worker runs under a deadline.
        if stat.S_ISREG(info.st_mode) and info.st_size < self.in_process_below:

            def in_process() -> Ingested:
                with mapped_crl(path, self.max_crl_bytes) as raw:
                    return ingest_crl(raw, ca, self.cache_dir, validators, fetched_at)

            return self._run(ca, validators, in_process)
        job = IngestJob(path, ca, self.cache_dir, self.max_crl_bytes, validators, fetched_at)
        return self._run(ca, validators, lambda: run_in_worker(job, self.ingest_timeout))

    def _run(
        self, ca: Certificate, validators: Validators, work: Callable[[], Ingested]
    ) -> RevocationIndex:
        """Run one ingest (serialised with the others), then serve its index."""
        with self._ingesting:
            done = work()
        if done.new:
            log.info(
                "crl_accepted",
                ca=ca.thumbprint_sha1,
                number=done.number,
                entries=done.entries,
                source=validators.source_url,
            )
        return self._reopen(done.key_id, self.cache_dir / done.index_name)

    def _reopen(self, key_id: str, path: Path) -> RevocationIndex:
        with self._lock:
            index = RevocationIndex(path)  # the old one is left to its users (see current())
            self._open[key_id] = index
            return index

    # --- administrator's drop directory ----------------------------------------------------
    def scan_drop_dir(self, drop_dir: Path | None, ca: Certificate) -> RevocationIndex | None:
        """Ingest dropped CRL files issued by ``ca`` (each file once per size/mtime and CA).

        Most files belong to other CAs: a DER file naming another issuer is passed
        over after reading its header only. A file this CA's ingest refused is not
        tried again until it changes (the same bytes would be refused again), except
        after a worker failure (deadline), which may not recur.
        """
        if drop_dir is None or not drop_dir.is_dir():
            return None
        key_id = ca_key_id(ca)
        result = None
        for path in sorted(drop_dir.iterdir()):
            seen = (path, key_id)
            try:
                if not path.is_file():
                    continue
                info = path.stat()
                marker = (info.st_size, info.st_mtime_ns)
                if self._seen_drops.get(seen) == marker:
                    continue
                if info.st_size > self.max_crl_bytes:
                    log.warning("crl_drop_too_large", file=path.name)
                elif not _names_another_issuer(path, ca):
                    result = self.ingest_file(path, ca, source_url=f"file:{path.name}")
                self._seen_drops[seen] = marker
            except CrlWorkerError as exc:
                log.warning("crl_drop_failed", file=path.name, error=str(exc))
            except PkiError as exc:
                self._seen_drops[seen] = marker
                log.debug("crl_drop_skipped", file=path.name, reason=str(exc))
            except OSError as exc:
                log.warning("crl_drop_unreadable", file=path.name, error=str(exc))
        return result


def _names_another_issuer(path: Path, ca: Certificate) -> bool:
    """Whether a DER CRL file is plainly another CA's (its issuer name differs).

    Reads the header through mmap, not the entries. Anything else (PEM, garbage)
    is left to the ingest, which says what is wrong with it.
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            issuer = crl_issuer(view) if mm[:1] == b"\x30" else None
        except PkiError:
            issuer = None
        finally:
            view.release()
    return issuer is not None and issuer.normalized_key() != ca.subject.normalized_key()


def grace_delta(seconds: int) -> timedelta:
    """Config seconds → timedelta."""
    return timedelta(seconds=seconds)
