"""CRL ingest in a worker process: same verdicts and files as in-process, a hard deadline.

Which path ran is read from the kernel: ``getrusage(RUSAGE_CHILDREN)`` counts
the CPU time of finished child processes, and only a worker adds to it.
"""

from __future__ import annotations

import base64
import errno
import os
import resource
import stat
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import CrlError, CrlWorkerError
from mailbot.pki.revocation_index import RevocationIndex
from testkit import pki
from testkit.pki import NOW, Revoked, oid, seq

IN_PROCESS = 1 << 62  # every CRL is "small"
WORKER = 0  # every CRL goes to a worker


def children_cpu() -> float:
    """CPU seconds of all child processes this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def outcome(action: Callable[[], RevocationIndex]) -> str:
    """What an ingest did, as text to compare: the CRL number taken, or the error."""
    try:
        index = action()
    except CrlError as exc:
        return f"{type(exc).__name__}: {exc}"
    return f"current {index.meta.crl_number}"


def test_a_worker_accepts_and_refuses_exactly_as_in_process(
    gost_ca: pki.Issued, tmp_path: Path
) -> None:
    ca = gost_ca.cert
    critical = seq(oid("1.2.3.4.99"), b"\x01\x01\xff", b"\x04\x02\x05\x00")
    delta = seq(oid("2.5.29.27"), b"\x01\x01\xff", b"\x04\x03\x02\x01\x0a")
    crl_13 = pki.make_crl(gost_ca, [Revoked(0x51)], number=13)
    pem_14 = b"-----BEGIN X509 CRL-----\n%s-----END X509 CRL-----\n" % base64.encodebytes(
        pki.make_crl(gost_ca, number=14)
    )
    steps = [
        pki.make_crl(gost_ca, bad_signature=True),
        pki.make_crl(gost_ca, signing_key=pki.make_key(slot=51)),  # same name, other key
        pki.make_crl(gost_ca, number=10),
        pki.make_crl(gost_ca, number=9),
        pki.make_crl(gost_ca, number=11, extra_extensions=(critical,)),
        pki.make_crl(gost_ca, number=12, extra_extensions=(delta,)),
        b"<html>proxy error</html>",
        pki.make_crl(gost_ca, number=10)[:-7],  # truncated
        crl_13,
        crl_13,  # the identical CRL again is fine
        pki.make_crl(gost_ca, number=13, revoked=[Revoked(5)]),  # same number, other content
        pem_14,
    ]
    stores = {
        "in-process": CrlStore(tmp_path / "a", in_process_below=IN_PROCESS),
        "worker": CrlStore(tmp_path / "b", in_process_below=WORKER),
    }
    seen: dict[str, list[str]] = {}
    for name, store in stores.items():
        before = children_cpu()
        seen[name] = [outcome(partial(store.ingest, data, ca, now=NOW)) for data in steps]
        # files too: a worker and the calling process apply the size limit the same way
        big = tmp_path / f"files-{name}" / "big.crl"
        big.parent.mkdir()
        big.write_bytes(crl_13)
        small_limit = CrlStore(store.cache_dir, 100, in_process_below=store.in_process_below)
        seen[name].append(outcome(partial(small_limit.ingest_file, big, ca)))
        spawned = children_cpu() > before
        assert spawned is (name == "worker")
    assert seen["worker"] == seen["in-process"]
    assert seen["worker"][:4] == [
        f"CrlError: CRL signature does not verify with CA {ca.thumbprint_sha1}",
        f"CrlError: CRL signature does not verify with CA {ca.thumbprint_sha1}",
        "current 10",
        "CrlError: CRL number 9 is older than 10 already seen",
    ]
    assert seen["worker"][6:] == [
        "CrlError: neither a DER nor a PEM CRL",
        seen["worker"][7],
        "current 13",
        "current 13",
        "CrlError: CRL number 13 re-issued with different content",
        "current 14",
        f"CrlError: big.crl: {len(crl_13)} bytes exceeds the limit",
    ]
    assert seen["worker"][7].startswith("CrlError: malformed CRL")
    # identical files; private modes; no temporary body left behind
    a, b = (sorted(p.name for p in s.cache_dir.iterdir()) for s in stores.values())
    assert a == b and not [n for n in b if n.startswith(".tmp")]
    for name in b:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert stat.S_IMODE((tmp_path / "b" / name).stat().st_mode) == 0o640
    index = stores["worker"].current(ca)
    assert index is not None and index.meta.crl_number == 14
    assert CrlStore(tmp_path / "b").current(ca).meta.crl_number == 14  # type: ignore[union-attr]


def test_crls_from_the_threshold_up_go_to_a_worker(gost_ca: pki.Issued, tmp_path: Path) -> None:
    small = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(10), number=1)
    big = pki.make_crl(gost_ca, raw_entries=pki.bulk_entries(500), number=2)
    store = CrlStore(tmp_path / "cache", in_process_below=len(small) + 1)
    assert len(big) > store.in_process_below
    before = children_cpu()
    store.ingest(small, gost_ca.cert)
    assert children_cpu() == before  # in-process
    index = store.ingest(big, gost_ca.cert)
    assert children_cpu() > before  # a worker did it
    assert index.meta.crl_number == 2 and len(index) == 500
    hit = index.lookup(pki.bulk_serial(3))
    assert hit is not None and hit.reason == "keyCompromise"
    assert not [p for p in store.cache_dir.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.timeout(60)
def test_a_hung_worker_is_killed_at_the_deadline(gost_ca: pki.Issued, tmp_path: Path) -> None:
    store = CrlStore(tmp_path / "cache", ingest_timeout=1)
    store.ingest(pki.make_crl(gost_ca, number=1), gost_ca.cert)
    fifo = tmp_path / "never-written.crl"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: none will
    start = time.monotonic()
    with pytest.raises(CrlWorkerError, match=r"did not finish within 1 s; the worker was stopped"):
        store.ingest_file(fifo, gost_ca.cert)
    assert time.monotonic() - start < 30  # without the kill this never returns
    with pytest.raises(OSError) as no_reader:
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert no_reader.value.errno == errno.ENXIO  # nobody holds the FIFO open: the worker is gone
    current = store.current(gost_ca.cert)
    assert current is not None and current.meta.crl_number == 1  # last good CRL kept


def test_the_drop_folder_reads_only_the_header_of_other_cas_crls(
    gost_ca: pki.Issued, tmp_path: Path
) -> None:
    other = pki.make_ca("УЦ Другой", slot=9)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "other.crl").write_bytes(
        pki.make_crl(other, raw_entries=pki.bulk_entries(2000), number=5)
    )
    store = CrlStore(tmp_path / "cache", in_process_below=WORKER)
    before = children_cpu()
    assert store.scan_drop_dir(drop, gost_ca.cert) is None
    assert children_cpu() == before  # not parsed for a CA that did not issue it
    index = store.scan_drop_dir(drop, other.cert)
    assert index is not None and len(index) == 2000
    assert children_cpu() > before


def test_a_refused_drop_file_is_tried_again_only_when_it_changes(
    gost_ca: pki.Issued, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    forged = drop / "forged.crl"
    forged.write_bytes(pki.make_crl(gost_ca, bad_signature=True))
    store = CrlStore(tmp_path / "cache", in_process_below=WORKER)
    first = children_cpu()
    assert store.scan_drop_dir(drop, gost_ca.cert) is None
    second = children_cpu()
    assert second > first
    assert store.scan_drop_dir(drop, gost_ca.cert) is None
    assert children_cpu() == second  # the same bytes would be refused again
    forged.write_bytes(pki.make_crl(gost_ca, number=3))  # the administrator replaces it
    index = store.scan_drop_dir(drop, gost_ca.cert)
    assert index is not None and index.meta.crl_number == 3


@pytest.mark.parametrize("below", [IN_PROCESS, WORKER], ids=["in-process", "worker"])
def test_malformed_dropped_files_are_skipped_not_a_crash(
    gost_ca: pki.Issued, tmp_path: Path, below: int
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    critical = seq(oid("1.2.3.4.99"), b"\x01\x01\xff", b"\x04\x02\x05\x00")
    # Errors raised deep in the parser once kept views into the file's mmap alive
    # (BufferError on closing it, out of the drop scan and the letter's CRL step).
    (drop / "a-truncated.crl").write_bytes(pki.make_crl(gost_ca, number=5)[:-7])
    (drop / "b-critical.crl").write_bytes(
        pki.make_crl(gost_ca, number=6, extra_extensions=(critical,))
    )
    (drop / "c-good.crl").write_bytes(pki.make_crl(gost_ca, number=4))
    index = CrlStore(tmp_path / "cache", in_process_below=below).scan_drop_dir(drop, gost_ca.cert)
    assert index is not None and index.meta.crl_number == 4
