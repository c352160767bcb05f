"""PKI benchmark: CRL ingest vs ``openssl crl -verify``, lookups, validation vs ``openssl verify``.

Run: ``.venv/bin/python bench/pki_bench.py`` (default sizes 200,000 and 1,000,000
entries, ~1–2 minutes). Every ingest runs in a child process and its peak RSS is
read with ``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper process, so the
measurements do not contaminate each other. OpenSSL runs with the GOST engine
on the same files in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOST_CONF = """openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
gost = gost_section
[gost_section]
engine_id = gost
default_algorithms = ALL
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``cmd`` under a wrapper process; wall time and the child's peak RSS."""
    wrapper = [sys.executable, __file__, "--measure", "--", *cmd]
    out = subprocess.run(wrapper, capture_output=True, text=True, env=env, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _measure_main(cmd: list[str]) -> None:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
    print(
        json.dumps(
            {"wall": wall, "rss_mb": rss_kb / 1024, "rc": r.returncode, "stdout": r.stdout[-200:]}
        )
    )


def _ingest_main(crl_path: str, ca_path: str, cache: str) -> None:
    from mailbot.pki.crl_store import CrlStore
    from mailbot.pki.load import load_certificate

    t = time.perf_counter()
    ca = load_certificate(Path(ca_path).read_bytes())
    index = CrlStore(Path(cache)).ingest_file(Path(crl_path), ca)
    print(f"ingested {len(index)} entries in {time.perf_counter() - t:.3f}s (in-process)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    from mailbot.pki.crl_fetch import StaticCrlSource
    from mailbot.pki.crl_store import CrlStore
    from mailbot.pki.gost import hashing
    from mailbot.pki.issuer import InMemoryCaDirectory, signed_by
    from mailbot.pki.validation import ValidationVerdict, validate
    from testkit import pki

    openssl = shutil.which("openssl")
    tmp = Path(tempfile.mkdtemp(prefix="pki-bench-"))
    conf = tmp / "gost.cnf"
    conf.write_text(GOST_CONF)
    env = dict(os.environ, OPENSSL_CONF=str(conf))
    print(f"hashing backend: {hashing.backend().name}; openssl: {openssl or 'absent'}")
    ca = pki.make_ca()
    (tmp / "ca.cer").write_bytes(ca.der)
    (tmp / "ca.pem").write_bytes(ca.pem())

    print("\n== CRL ingest (parse + verify + index), child processes ==")
    print(
        f"{'entries':>9} {'MB':>6} | {'mailbot s':>9} {'RSS MB':>7} | {'openssl s':>9} "
        f"{'RSS MB':>7} | ratio | lookup µs (hit/miss)"
    )
    big_index_dir = None
    for size in [int(s) for s in args.sizes.split(",") if s]:
        crl = pki.make_crl(ca, raw_entries=pki.bulk_entries(size), number=size)
        crl_path = tmp / f"crl-{size}.crl"
        crl_path.write_bytes(crl)
        mb = len(crl) / 1e6
        del crl
        cache = tmp / f"cache-{size}"
        ours = measure(
            [sys.executable, __file__, "--ingest", str(crl_path), str(tmp / "ca.cer"), str(cache)]
        )
        if openssl:
            theirs = measure(
                [
                    openssl,
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    str(crl_path),
                    "-CAfile",
                    str(tmp / "ca.pem"),
                    "-noout",
                    "-verify",
                ],
                env=env,
            )
            ok = theirs["rc"] == 0
            ratio = f"{ours['wall'] / theirs['wall']:.2f}x"
            o_wall = f"{theirs['wall']:9.2f}{'' if ok else '!'}"
            o_rss = f"{theirs['rss_mb']:7.0f}"
        else:
            o_wall, o_rss, ratio = "      n/a", "    n/a", "n/a"
        store = CrlStore(cache)
        index = store.current(ca.cert)
        assert index is not None and len(index) == size
        hits = [pki.bulk_serial(i) for i in range(0, min(size, 2000), 7)]
        misses = [os.urandom(16) for _ in range(len(hits))]
        t = time.perf_counter()
        for s in hits:
            assert index.lookup(s) is not None
        hit_us = (time.perf_counter() - t) / len(hits) * 1e6
        t = time.perf_counter()
        for s in misses:
            index.lookup(s)
        miss_us = (time.perf_counter() - t) / len(misses) * 1e6
        print(
            f"{size:9d} {mb:6.1f} | {ours['wall']:9.2f} {ours['rss_mb']:7.0f} | {o_wall} "
            f"{o_rss} | {ratio:>5} | {hit_us:.1f}/{miss_us:.1f}"
        )
        big_index_dir = cache

    print("\n== one GOST 2012-256 signature verification (in-process) ==")
    ee = pki.make_end_entity(ca, serial=0x7001)
    times = []
    for _ in range(50):
        t = time.perf_counter()
        assert signed_by(ee.cert, ca.cert)
        times.append(time.perf_counter() - t)
    print(
        f"mailbot: median {statistics.median(times) * 1000:.2f} ms, min {min(times) * 1000:.2f} ms"
    )
    import gostcrypto.gostsignature as gs

    from mailbot.pki.gost.keys import decode_public_key, decode_signature, digest_to_int

    key = decode_public_key(ca.cert.spki)
    r, s = decode_signature(key.curve, ee.cert.signature)
    digest = digest_to_int(hashing.digest(hashing.STREEBOG_256, ee.cert.tbs)).to_bytes(32, "big")
    g = gs.new(gs.MODE_256, gs.CURVES_R_1323565_1_024_2019["id-tc26-gost-3410-2012-256-paramSetB"])
    t = time.perf_counter()
    assert g.verify(
        bytearray(key.x.to_bytes(32, "big") + key.y.to_bytes(32, "big")),
        bytearray(digest),
        bytearray(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
    )
    print(f"gostcrypto baseline: {(time.perf_counter() - t) * 1000:.1f} ms")

    print("\n== one full validation (validity, issuer, signature, CRL) ==")
    small_crl = pki.make_crl(ca, [pki.Revoked(i) for i in range(100, 110)], number=10**7)
    small_path = tmp / "small.crl"
    small_path.write_bytes(small_crl)
    store = CrlStore(tmp / "cache-small")
    store.ingest(small_crl, ca.cert)
    directory = InMemoryCaDirectory()
    directory.add(ca.cert)
    source = StaticCrlSource(store)
    ee_path = tmp / "ee.pem"
    ee_path.write_bytes(ee.pem())
    from mailbot.pki.load import load_certificate

    times = []
    for _ in range(30):
        t = time.perf_counter()
        cert = load_certificate(ee.der)
        assert validate(cert, directory, source, pki.NOW).verdict is ValidationVerdict.VALID
        times.append(time.perf_counter() - t)
    print(
        f"mailbot in-process (load + validate, CRL index warm): "
        f"median {statistics.median(times) * 1000:.2f} ms"
    )
    if big_index_dir is not None:
        big_source = StaticCrlSource(CrlStore(big_index_dir))
        t = time.perf_counter()
        result = validate(load_certificate(ee.der), directory, big_source, pki.NOW)
        print(
            f"mailbot with the largest CRL's index (cold open): "
            f"{(time.perf_counter() - t) * 1000:.2f} ms, verdict {result.verdict.value}"
        )
    if openssl:
        subprocess.run(
            [
                openssl,
                "crl",
                "-inform",
                "DER",
                "-in",
                str(small_path),
                "-out",
                str(tmp / "small.pem"),
            ],
            check=True,
        )
        cmd = [
            openssl,
            "verify",
            "-CAfile",
            str(tmp / "ca.pem"),
            "-CRLfile",
            str(tmp / "small.pem"),
            "-crl_check",
            "-attime",
            str(int(pki.NOW.timestamp())),
            str(ee_path),
        ]
        times = []
        for _ in range(10):
            t = time.perf_counter()
            r2 = subprocess.run(cmd, capture_output=True, text=True, env=env)
            times.append(time.perf_counter() - t)
            assert r2.returncode == 0, r2.stderr
        print(
            f"openssl verify -crl_check subprocess: median {statistics.median(times) * 1000:.2f} ms"
        )
    if args.keep:
        print(f"\nfiles kept in {tmp}")
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        _measure_main(sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "--ingest":
        _ingest_main(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
