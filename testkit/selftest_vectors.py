"""Regenerate :mod:`mailbot.pki.selftest_vectors` (run once; the output is committed).

``python -m testkit.selftest_vectors > mailbot/pki/selftest_vectors.py``

Fresh keys every run, so the output differs each time; any output is valid.
"""

from __future__ import annotations

import base64
import datetime as dt
import textwrap

from testkit import pki

_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_END = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def _constant(name: str, der: bytes) -> str:
    lines = textwrap.wrap(base64.b64encode(der).decode("ascii"), 76)
    body = "\n".join(f'    "{line}"' for line in lines)
    return f"{name} = base64.b64decode(\n{body}\n)\n"


def render() -> str:
    """The module's text: a CA and a certificate it signed, for each GOST 2012 curve size."""
    parts = [
        '"""Known-answer vectors for the GOST signature self-test (``mailbot doctor``).\n\n'
        "Generated once by ``python -m testkit.selftest_vectors`` with the test PKI:\n"
        "for GOST R 34.10-2012 with 256- and 512-bit keys, a self-signed CA and a\n"
        "certificate it signed. Synthetic names, no personal data. Do not edit by hand.\n"
        '"""\n\nfrom __future__ import annotations\n\nimport base64\n',
    ]
    for kind, bits in ((pki.GOST256, 256), (pki.GOST512, 512)):
        ca = pki.make_ca(f"mailbot self-test CA {bits}", kind=kind, not_before=_START,
                         not_after=_END)  # fmt: skip
        leaf = pki.make_end_entity(
            ca, cn=f"mailbot self-test {bits}", kind=kind, snils=None, crl_urls=(),
            not_before=_START, not_after=_END,
        )  # fmt: skip
        parts.append(f"\n#: GOST R 34.10-2012 {bits}: the CA (self-signed).\n")
        parts.append(_constant(f"CA_{bits}", ca.der))
        parts.append(f"#: GOST R 34.10-2012 {bits}: a certificate signed by :data:`CA_{bits}`.\n")
        parts.append(_constant(f"CERTIFICATE_{bits}", leaf.der))
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
