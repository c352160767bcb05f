"""Daemon benchmark: letter -> reply latency with IDLE, and a burst of letters end to end,
side by side with the plumbing limit measured in the same run (the same letters fetched
over IMAP with aioimaplib and sent with aiosmtplib, without any processing).

Run: ``.venv/bin/python bench/daemon_bench.py [--latency-letters 30] [--burst 1000]``
(as root: it starts a private Dovecot). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import statistics
import tempfile
import time
from pathlib import Path

import aiosmtplib

from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from mailbot.log import configure_logging
from mailbot.mail.imap import MailboxClient
from testkit.scenario import FUND, PARTICIPANT, Scenario, build_scenario


def deliver_burst(scenario: Scenario, letters: list[bytes]) -> None:
    with smtplib.LMTP("127.0.0.1", scenario.dovecot.lmtp_port, timeout=120) as lmtp:
        for raw in letters:
            lmtp.sendmail(scenario.address(PARTICIPANT), [scenario.address(FUND)], raw)


async def latency(scenario: Scenario, count: int) -> list[float]:
    """Seconds from delivery into reestrin@ to the reply accepted by the SMTP server."""
    daemon = Daemon(load_config(scenario.config_path))
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(2.0)  # connected and idling
    samples = []
    handler = scenario.smtp.handler
    for number in range(count):
        before = len(handler.messages)
        raw = scenario.add_cert_letter(scenario.participant_certificate())
        started = time.monotonic()
        await asyncio.to_thread(scenario.deliver, raw)
        await asyncio.to_thread(handler.wait_for, before + 1, 30.0)
        samples.append(time.monotonic() - started)
        if number % 10 == 9:
            print(f"  latency: {number + 1}/{count}")
    daemon.stop.set()
    await task
    return samples


async def burst(scenario: Scenario, count: int) -> float:
    """Seconds for the daemon (one pass, --once) to answer *count* waiting letters."""
    letters = [scenario.add_cert_letter(None) for _ in range(count)]
    await asyncio.to_thread(deliver_burst, scenario, letters)
    handler = scenario.smtp.handler
    before = len(handler.messages)
    started = time.monotonic()
    await Daemon(load_config(scenario.config_path), once=True).run()
    elapsed = time.monotonic() - started
    assert len(handler.messages) - before == count, "not every letter was answered"
    return elapsed


async def plumbing(scenario: Scenario, count: int) -> float:
    """Seconds to fetch *count* letters over IMAP and send each once over SMTP, nothing else."""
    letters = [scenario.add_cert_letter(None) for _ in range(count)]
    await asyncio.to_thread(deliver_burst, scenario, letters)
    config = load_config(scenario.config_path)
    started = time.monotonic()
    async with MailboxClient(config.imap) as client:
        await client.select(config.imap.mailbox)
        uids = await client.search_uids("ALL")
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=scenario.smtp.port, start_tls=False)
        await smtp.connect()
        for uid in uids:
            raw = await client.fetch_message(uid)
            assert raw is not None
            await smtp.sendmail(config.smtp.from_address, [scenario.address(PARTICIPANT)], raw)
        await smtp.quit()
        await client.move(uids, config.imap.processed_folder)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-letters", type=int, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("console", "error")
    extra = "[limits]\nreplies_per_sender_per_day = 100000\n"
    scenario = build_scenario(Path(tempfile.mkdtemp(prefix="mailbot-bench-")), extra_config=extra)
    try:
        samples = asyncio.run(latency(scenario, args.latency_letters))
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(f"letter -> reply latency over {len(samples)} letters (IDLE; Dovecot adds a fixed "
              f"0.5 s push delay): p50 {statistics.median(samples) * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms")  # fmt: skip
        daemon_seconds = asyncio.run(burst(scenario, args.burst))
        plumbing_seconds = asyncio.run(plumbing(scenario, args.burst))
        print(f"burst of {args.burst} letters: daemon {daemon_seconds:.1f} s "
              f"({args.burst / daemon_seconds:.0f} letters/s); plumbing limit "
              f"{plumbing_seconds:.1f} s ({args.burst / plumbing_seconds:.0f} letters/s); "
              f"ratio {daemon_seconds / plumbing_seconds:.2f}x")  # fmt: skip
    finally:
        scenario.close()


if __name__ == "__main__":
    main()
