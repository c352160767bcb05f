"""Child process of the memory test: read one trust list file, report the peak RSS.

Run as ``python -m tests.trustlist.read_rss_child FILE``; prints one JSON line:
VmRSS before reading and VmHWM (peak) after it, in KiB, with what was read. The
peak is reset just before reading where the kernel allows it, so imports do not count.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from mailbot.trustlist import read_trust_list
from tests.pki.fetch_rss_child import status_kib


def main() -> None:
    path = Path(sys.argv[1])
    # VmHWM := VmRSS; where refused, the peak includes the imports: the test only gets stricter
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")
    authorities = certificates = problems = 0
    with path.open("rb") as source:
        stream = read_trust_list(source)
        for entry in stream:
            problems += len(entry.problems)
            if entry.authority is not None:
                authorities += 1
                certificates += len(entry.authority.certificates)
    report = {
        "rss_before_kib": before,
        "peak_kib": status_kib("VmHWM"),
        "authorities": authorities,
        "certificates": certificates,
        "problems": problems,
        "sha256": stream.sha256,
        "size": stream.size,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
