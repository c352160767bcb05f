"""Run one CRL ingest in a short-lived worker process, under a hard deadline.

Parsing a million-entry CRL builds a million small Python objects. CPython
keeps the arenas they lived in after they are freed, so a long-running daemon
that ingested in-process would stay ~160 MB bigger for good. A worker process
(``python -m mailbot.pki.crl_worker``) does the same work
(:func:`mailbot.pki.crl_ingest.ingest_crl`) and returns its memory to the
system when it exits; the caller only receives the small :class:`Ingested`
summary as one JSON line.

The protocol is private to this module: a JSON request on the worker's
standard input, a JSON answer (``{"ok": …}`` or ``{"error": …}``) on its
standard output. A worker that misses the deadline is killed; a bad CRL's
:class:`CrlError` text comes back unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mailbot.pki.certificate import Certificate
from mailbot.pki.crl_ingest import Ingested, Validators, ingest_crl, mapped_crl
from mailbot.pki.errors import CrlError, CrlWorkerError, PkiError
from mailbot.workers import worker_command, worker_environment

#: At most this much of the worker's standard error goes into an error message.
_STDERR_TAIL = 500


@dataclass(frozen=True)
class IngestJob:
    """Everything the worker needs: where the CRL is, for which CA, into which cache."""

    crl_path: Path
    ca: Certificate
    cache_dir: Path
    max_bytes: int
    validators: Validators
    fetched_at: datetime

    def to_json(self) -> bytes:
        """The request line sent to the worker."""
        return json.dumps(
            {
                "crl_path": str(self.crl_path),
                "ca_der": self.ca.der.hex(),
                "cache_dir": str(self.cache_dir),
                "max_bytes": self.max_bytes,
                "validators": asdict(self.validators),
                "fetched_at": self.fetched_at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> IngestJob:
        """Read a request line (worker side)."""
        raw = json.loads(data)
        return cls(
            crl_path=Path(raw["crl_path"]),
            ca=Certificate.from_der(bytes.fromhex(raw["ca_der"])),
            cache_dir=Path(raw["cache_dir"]),
            max_bytes=int(raw["max_bytes"]),
            validators=Validators(**raw["validators"]),
            fetched_at=datetime.fromisoformat(raw["fetched_at"]),
        )


def run_job(job: IngestJob) -> Ingested:
    """Do the ingest described by ``job`` in this process; raises CrlError."""
    with mapped_crl(job.crl_path, job.max_bytes) as raw:
        return ingest_crl(raw, job.ca, job.cache_dir, job.validators, job.fetched_at)


def run_in_worker(job: IngestJob, timeout: float) -> Ingested:
    """Do the ingest in a worker process killed after ``timeout`` seconds.

    Raises CrlError with the worker's own text for a rejected CRL, and
    :class:`CrlWorkerError` when the worker timed out or died.
    """
    with subprocess.Popen(
        worker_command(__name__),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_environment(),
        close_fds=True,
    ) as worker:
        try:
            out, err = worker.communicate(job.to_json(), timeout=timeout)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
            raise CrlWorkerError(
                f"CRL ingest did not finish within {timeout:g} s; the worker was stopped"
            ) from None
    return _answer(out, err, worker.returncode)


def _answer(out: bytes, err: bytes, returncode: int) -> Ingested:
    try:
        answer: dict[str, Any] = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, ValueError, IndexError):
        tail = err.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise CrlWorkerError(f"CRL ingest worker failed (exit {returncode}): {tail}") from None
    if "error" in answer:
        if answer.get("kind") == "os":
            raise OSError(str(answer["error"]))  # as an in-process ingest would: unreadable file
        raise CrlError(str(answer["error"]))
    ingested = Ingested(**answer["ok"])
    if Path(ingested.index_name).name != ingested.index_name:
        raise CrlWorkerError(f"CRL ingest worker named a bad index {ingested.index_name!r}")
    return ingested


def main() -> int:
    """Worker entry point: one request on stdin, one answer on stdout."""
    try:
        job = IngestJob.from_json(sys.stdin.buffer.read())
        answer: dict[str, Any] = {"ok": asdict(run_job(job))}
    except PkiError as exc:  # what an in-process ingest would raise, text unchanged
        answer = {"error": str(exc), "kind": "crl"}
    except OSError as exc:
        answer = {"error": str(exc), "kind": "os"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
