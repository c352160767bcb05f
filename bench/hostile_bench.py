"""Hostile-letter benchmark: does any letter cost more than its size says?

Run: ``.venv/bin/python bench/hostile_bench.py`` (a few seconds).

For each family of hostile letters (a huge From local part, a huge subject,
thousands of From addresses, of headers, of MIME parts, of RFC 2231
continuations, deep nesting) and each size, the same work is timed as for
every letter in the daemon: the whole intake (steps 1-4, with its log line
through the redacting processor) and, when a reply is due, building the reply.
Each hostile letter is compared with a **benign letter of the same byte size**
(a good ADD_CERT letter padded with body text), measured in the same run; the
growth column is the time ratio between one size and the previous (2x) size:
about 2 means linear, about 4 quadratic. Medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailbot.log import configure_logging
from mailbot.mail.reply import ReplySettings, build_reply
from testkit import letters as L  # noqa: N812
from tests.regulation import hostile
from tests.regulation.helpers import NOW, run

REPLY_SETTINGS = ReplySettings(L.FUND_ADDRESS, "mailbot")
STRANGER = "stranger@evil.example"


def benign(size: int) -> bytes:
    """A good letter of about *size* bytes: the padding is ordinary body text."""
    line = "Добрый день! Высылаю сертификат для регистрации.\r\n"
    base = len(hostile.good_letter())
    text = line * max(1, (size - base) // len(line.encode()))
    zip_part = L.part(
        hostile.good_zip(),
        b'application/zip; name="' + L.rfc2047(hostile.GOOD_ZIP_NAME).encode() + b'"',
        b"attachment",
    )
    return L.letter(L.multipart("mixed", [L.text_part(text), zip_part], "b1"))


#: family -> (builder of a letter of n units, the sizes n).
FAMILIES: dict[str, tuple[Callable[[int], bytes], list[int]]] = {
    "from_local_part_bytes": (
        lambda n: hostile.set_header(hostile.good_letter(), b"From", b"a" * n + b"@evil.example"),
        [64_000, 128_000, 256_000, 512_000],
    ),
    "subject_bytes_words": (
        lambda n: hostile.set_header(hostile.good_letter(), b"Subject", b"ab " * (n // 3)),
        [64_000, 128_000, 256_000, 512_000],
    ),
    "subject_encoded_words": (
        lambda n: hostile.set_header(
            hostile.good_letter(), b"Subject", b"=?utf-8?b?0K8=?= " * (n // 17)
        ),
        [64_000, 128_000, 256_000, 512_000],
    ),
    "from_addresses": (
        lambda n: hostile.set_header(
            hostile.good_letter(), b"From", b", ".join([b"a@b.example"] * n)
        ),
        [5_000, 10_000, 20_000, 40_000],
    ),
    "header_lines": (
        lambda n: hostile.add_headers(hostile.good_letter(), b"X-Junk: value\r\n" * n),
        [5_000, 10_000, 20_000, 40_000],
    ),
    "mime_parts_named": (
        lambda n: hostile.many_parts(n, named=True),
        [2_000, 4_000, 8_000, 16_000],
    ),
    "rfc2231_continuations": (hostile.rfc2231_continuations, [1_000, 2_000, 4_000, 8_000]),
    "nesting_levels": (hostile.nested_multipart, [250, 500, 1_000, 2_000]),
}


def letter_cost(raw: bytes) -> float:
    """Seconds for the intake of *raw* (with its log line) plus its reply, if one is due."""
    started = time.perf_counter()
    decision = run(raw)
    if decision.reply_to is not None:
        build_reply(decision.letter, decision.reply_to, "текст", REPLY_SETTINGS, NOW).as_bytes()
    return time.perf_counter() - started


def median_cost(raw: bytes, runs: int) -> float:
    """The median of *runs* measurements of :func:`letter_cost`."""
    return statistics.median(letter_cost(raw) for _ in range(runs))


def main() -> None:
    """Print one table row per family and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="run only families whose name contains this")
    args = parser.parse_args()
    # The redacting processor runs as in the daemon; the output goes nowhere.
    configure_logging("json", "info", stream=io.StringIO())
    print(f"{'family':24} {'n':>7} {'bytes':>9} {'ms':>8} {'benign ms':>9} "
          f"{'x benign':>8} {'growth':>6}")  # fmt: skip
    worst = 0.0
    for family, (build, sizes) in FAMILIES.items():
        if args.only and args.only not in family:
            continue
        previous: float | None = None
        for n in sizes:
            raw = build(n)
            cost = median_cost(raw, args.runs)
            base = median_cost(benign(len(raw)), args.runs)
            growth = f"{cost / previous:6.2f}" if previous else "     -"
            previous = cost
            worst = max(worst, cost)
            print(f"{family:24} {n:>7} {len(raw):>9} {cost * 1000:8.1f} {base * 1000:9.1f} "
                  f"{cost / base:8.2f} {growth}")  # fmt: skip
    print(f"slowest letter: {worst * 1000:.0f} ms (growth per 2x step: ~2 linear, ~4 quadratic)")


if __name__ == "__main__":
    main()
