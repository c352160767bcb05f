"""``scripts/demo``: the main job on embedded defaults, start to finish, on this machine.

It starts a private Dovecot and SMTP server on loopback, writes a
configuration (SQLite in a temporary folder), registers a generated GOST CA
with a current CRL, an organisation and a participant with a trusted
address, sends real letters over SMTP to reestrin@, runs the daemon, and
shows each reply as it landed in the participant's IMAP INBOX.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import imaplib
import shutil
import smtplib
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

from mailbot.config import load_config
from mailbot.daemon.runner import Daemon
from mailbot.log import configure_logging
from testkit import pki as factory
from testkit.scenario import (
    ADMIN,
    FUND,
    MAIL_USERS,
    PARTICIPANT,
    STRANGER,
    Scenario,
    build_scenario,
)


def read_inbox(scenario: Scenario, user: str) -> list[EmailMessage]:
    """Every letter in *user*'s INBOX, over IMAP."""
    found: list[EmailMessage] = []
    with imaplib.IMAP4("127.0.0.1", scenario.dovecot.imap_port) as client:
        client.login(user, MAIL_USERS[user])
        client.select("INBOX", readonly=True)
        _status, data = client.uid("SEARCH", "ALL")
        for uid in (data[0] or b"").split():
            _status, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            message = email.message_from_bytes(raw, policy=policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def send(scenario: Scenario, raw: bytes, sender: str) -> None:
    """Send a letter to reestrin@ through the SMTP server, as a participant's client would."""
    with smtplib.SMTP("127.0.0.1", scenario.smtp.port, timeout=30) as client:
        client.sendmail(sender, [scenario.address(FUND)], raw)


def letters_to_send(scenario: Scenario) -> list[tuple[str, bytes, str]]:
    """(what it shows, raw letter, envelope sender)."""
    participant = scenario.address(PARTICIPANT)
    stranger = scenario.address(STRANGER)
    unknown_ca = factory.make_ca("УЦ, которого нет в справочнике", slot=3)
    return [
        ("a good certificate", scenario.add_cert_letter(scenario.participant_certificate()),
         participant),
        ("a certificate with someone else's SNILS",
         scenario.add_cert_letter(scenario.participant_certificate("12345678964")), participant),
        ("a certificate from an unknown CA",
         scenario.add_cert_letter(scenario.participant_certificate(ca=unknown_ca)), participant),
        ("a letter without an attachment", scenario.add_cert_letter(None), participant),
        ("a letter from a stranger",
         scenario.add_cert_letter(scenario.participant_certificate(), sender=stranger), stranger),
    ]  # fmt: skip


async def run_demo(scenario: Scenario, timeout: float) -> int:
    """Send the letters, run the daemon until the replies are in, print them."""
    daemon = Daemon(load_config(scenario.config_path))
    task = asyncio.create_task(daemon.run())
    sent = letters_to_send(scenario)
    print("Sending letters to", scenario.address(FUND))
    for what, raw, sender in sent:
        await asyncio.to_thread(send, scenario, raw, sender)
        print(f"  sent: {what} (from {sender})")
    expected = sum(1 for _what, _raw, sender in sent if sender == scenario.address(PARTICIPANT))
    started = time.monotonic()
    replies: list[EmailMessage] = []
    while time.monotonic() - started < timeout:
        replies = await asyncio.to_thread(read_inbox, scenario, PARTICIPANT)
        if len(replies) >= expected:
            break
        await asyncio.sleep(0.5)
    # Let the daemon journal and file the stranger's letter too (it gets no reply).
    while time.monotonic() - started < timeout and scenario.dovecot.message_count(FUND) > 0:
        await asyncio.sleep(0.2)
    daemon.stop.set()
    await task
    print()
    print(f"Replies in {scenario.address(PARTICIPANT)}'s INBOX ({len(replies)} of {expected}):")
    for number, reply in enumerate(replies, 1):
        print(
            f"\n--- reply {number}: {reply['Subject']}  (Auto-Submitted: {reply['Auto-Submitted']})"
        )
        print(reply.get_content().strip())
    stranger_inbox = await asyncio.to_thread(read_inbox, scenario, STRANGER)
    stranger = scenario.address(STRANGER)
    print(f"\n{stranger}'s INBOX: {len(stranger_inbox)} letter(s) (no reply to strangers)")
    admin_inbox = await asyncio.to_thread(read_inbox, scenario, ADMIN)
    print(f"{scenario.address(ADMIN)}'s INBOX: {len(admin_inbox)} alert(s)")
    for alert in admin_inbox:
        print(f"  alert: {alert['Subject']}")
    ok = len(replies) == expected and not stranger_inbox
    print("\nDemo", "succeeded" if ok else "FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/demo``."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the demo's folder afterwards")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for replies")
    args = parser.parse_args(argv)
    configure_logging("console", "warning")
    directory = Path(tempfile.mkdtemp(prefix="mailbot-demo-"))
    print(f"Demo folder: {directory}")
    scenario = build_scenario(directory)
    print(
        f"Dovecot: IMAP 127.0.0.1:{scenario.dovecot.imap_port}, SMTP 127.0.0.1:{scenario.smtp.port}"
    )
    print(f"Configuration: {scenario.config_path} (SQLite: {scenario.config.database_url})")
    participant = scenario.address(PARTICIPANT)
    print(f"Registered CA: {scenario.ca.cert.subject_cn}; participant {participant}\n")
    try:
        return asyncio.run(run_demo(scenario, args.timeout))
    finally:
        scenario.close()
        if args.keep:
            print(f"Kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
