"""Child process of the streaming-fetch memory test: fetch + index one CRL, report memory.

Run as ``python -m tests.pki.fetch_rss_child CA_DER_FILE URL CACHE_DIR``; prints one
JSON line: VmRSS before the fetch, VmHWM (peak) after it, both in KiB, and the
number of entries indexed. The peak is reset just before the fetch where the
kernel allows it (``/proc/self/clear_refs``), so imports do not count.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from mailbot.pki.crl_fetch import CachingCrlSource, HttpCrlFetcher
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.load import load_certificate
from testkit.pki import NOW


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    ca_file, url, cache = sys.argv[1:4]
    ca = load_certificate(Path(ca_file).read_bytes())
    source = CachingCrlSource(CrlStore(Path(cache)), HttpCrlFetcher(timeout_seconds=120))
    # VmHWM := VmRSS; where refused, the peak includes the imports: the test only gets stricter
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    index, problem = source.fresh_index(ca, NOW, [url])
    assert problem is None and index is not None, problem
    peak = status_kib("VmHWM")
    print(json.dumps({"rss_before_kib": before, "peak_kib": peak, "entries": len(index)}))


if __name__ == "__main__":
    main()
