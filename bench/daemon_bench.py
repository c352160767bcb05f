"""Daemon benchmark (issue 12, "fast at volume"): bursts, latency with IDLE, scaling.

Run as root (it starts a private Dovecot): ``.venv/bin/python bench/daemon_bench.py``
(defaults are the issue's sizes and fit in five minutes on two cores once a letter
costs 10-20 ms; ``--quick`` scales everything down for a smoke run).

Sections, each printing its figures with n:

1. **Burst.** Real certificate letters (a ZIP with a participant certificate, half
   GOST 2012-256 and half 2012-512 keys, each certificate distinct) and letters
   without attachments wait in the mailbox; ``mailbot run --once`` answers them.
   Every letter must be answered, every certificate letter with "success". Beside
   it, in the same run and on the same letters, two plumbing limits (no processing
   at all): (a) the daemon's batching - UID SEARCH, a UID FETCH per letter, one SMTP
   connection for every reply, UID MOVE every ``FILE_EVERY_LETTERS`` letters; (b)
   a UID MOVE and a new SMTP connection per letter.
2. **Latency with IDLE.** A running ``mailbot run``; each certificate letter is
   delivered only after the daemon has been idle for a while; p50/p95/p99 beside
   Dovecot's own push delay, measured with a raw IDLE client.
3. **Scaling.** Per-letter processing (claim + process, in-process) at 1, 10,000
   and 100,000 subscribers and 0 and 50,000 replies today; ``mailbot import`` of a
   100,000-row CSV; the first letter and the daemon's memory with a CRL of
   1,000,000 entries.

The last two lines are the scaling and burst summaries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aioimaplib  # noqa: E402
import aiosmtplib  # noqa: E402
from sqlalchemy import Engine, insert  # noqa: E402

from mailbot.app.assembly import make_processor  # noqa: E402
from mailbot.app.letters import LetterSource  # noqa: E402
from mailbot.daemon.runner import FILE_EVERY_LETTERS  # noqa: E402
from mailbot.directory.engine import engine_from_config  # noqa: E402
from mailbot.directory.models import (  # noqa: E402
    Organisation,
    OutboxMessage,
    Subscriber,
    TrustedAddress,
)
from mailbot.directory.session import session_factory  # noqa: E402
from mailbot.log import configure_logging  # noqa: E402
from testkit import pki as factory  # noqa: E402
from testkit.directory_csv import (  # noqa: E402
    address_of,
    snils_of,
    write_directory_csv,
)
from testkit.scenario import (  # noqa: E402
    FUND,
    MAIL_USERS,
    PARTICIPANT,
    PARTICIPANT_SNILS,
    Scenario,
    build_scenario,
    now,
)
from testkit.smtpd import ReceivedMessage  # noqa: E402

#: Every letter comes from the one participant: lift the per-sender reply cap.
EXTRA_CONFIG = "[limits]\nreplies_per_sender_per_day = 100000000\n"
#: The first sentence of templates/success.txt (before any placeholder).
SUCCESS_TEXT = (REPO / "templates" / "success.txt").read_text("utf-8").split("{")[0].strip()
#: Seconds the daemon is left idle before each latency letter (it is in IDLE by then).
#: Subscribers per organisation in the bulk-inserted directory.
PER_ORGANISATION = 50
IDLE_GAP = 1.0
#: Letters processed before any timing (module imports, caches, the small CRL's ingest).
WARM_UP = 3


@dataclass(frozen=True)
class Sizes:
    """How much of everything; the defaults are what the issue asks for."""

    burst: int = 500
    plain: int = 400
    latency: int = 100
    push: int = 10
    scaling_letters: int = 40
    #: Seconds one scaling point may take (at least 10 letters are measured anyway).
    scaling_budget: float = 10.0
    subscribers: tuple[int, ...] = (1, 10_000, 100_000)
    replies: int = 50_000
    import_rows: int = 100_000
    import_timeout: float = 60.0
    crl_entries: int = 1_000_000


QUICK = Sizes(
    burst=40, plain=40, latency=10, push=4, scaling_letters=10, scaling_budget=3.0,
    subscribers=(1, 1_000, 5_000), replies=5_000, import_rows=2_000, crl_entries=100_000,
)  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def ms(seconds: float) -> str:
    """Seconds as milliseconds for printing."""
    return f"{seconds * 1000:.1f} ms"


def short(count: int) -> str:
    """10000 -> 10k, 1000000 -> 1M (for labels)."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


def percentiles(samples: Sequence[float]) -> str:
    """p50/p95/p99 (inclusive method: with 100 samples p99 lies between the two largest)."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"n={len(samples)}: p50 {ms(cuts[49])}, p95 {ms(cuts[94])}, p99 {ms(cuts[98])}, "
        f"min {ms(min(samples))}, max {ms(max(samples))}"
    )


def subprocess_env() -> dict[str, str]:
    """The environment for ``python -m mailbot`` children: this checkout first on the path."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def mailbot_command(*arguments: str) -> list[str]:
    """``python -m mailbot ARGUMENTS`` with this interpreter."""
    return [sys.executable, "-m", "mailbot", *arguments]


def deliver_all(scenario: Scenario, letters: Sequence[bytes]) -> None:
    """Put letters into the fund's INBOX over one LMTP connection (untimed)."""
    with smtplib.LMTP("127.0.0.1", scenario.dovecot.lmtp_port, timeout=120) as lmtp:
        for raw in letters:
            lmtp.sendmail(scenario.address(PARTICIPANT), [scenario.address(FUND)], raw)


def replies_since(scenario: Scenario, before: int) -> list[ReceivedMessage]:
    """Messages to the participant the SMTP server accepted after the first *before*."""
    participant = scenario.address(PARTICIPANT)
    return [m for m in scenario.smtp.handler.messages[before:] if participant in m.recipients]


def body_text(message: EmailMessage) -> str:
    """The plain-text body of a reply, whitespace collapsed."""
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return " ".join(str(text).split())


def count_successes(replies: Sequence[ReceivedMessage]) -> int:
    """How many replies are the "success" reply."""
    return sum(1 for reply in replies if body_text(reply.message).startswith(SUCCESS_TEXT))


_slots = itertools.count(10_000)


def certificates(scenario: Scenario, count: int) -> list[factory.Issued]:
    """Distinct participant certificates (each its own key), GOST 2012-256 and -512 by turns."""
    moment = now()
    kinds = (factory.GOST256, factory.GOST512)
    issued = []
    for number in range(count):
        kind = kinds[number % 2]
        issued.append(
            factory.make_end_entity(
                scenario.ca, kind=kind, key=factory.make_key(kind, slot=next(_slots)),
                snils=PARTICIPANT_SNILS, crl_urls=(),
                not_before=moment - dt.timedelta(days=1),
                not_after=moment + dt.timedelta(days=365),
            )
        )  # fmt: skip
    return issued


def cert_letters(scenario: Scenario, count: int) -> list[bytes]:
    """*count* ADD_CERT letters, each with a ZIP holding a distinct certificate."""
    return [scenario.add_cert_letter(c) for c in certificates(scenario, count)]


def process_status(pid: int, field_name: str) -> int:
    """A ``kB`` figure (VmRSS, VmHWM) of a running process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


@dataclass(frozen=True)
class ChildUsage:
    """What a finished (or killed) child cost."""

    seconds: float
    peak_rss_mb: float
    exit_code: int
    timed_out: bool


def run_measured(command: list[str], log_path: Path, timeout: float) -> ChildUsage:
    """Run *command*; its wall time and peak RSS.

    The peak comes from ``/usr/bin/time -f %M``: the ``ru_maxrss`` that ``wait4``
    reports for a child of this (large) process counts the pages the child shared
    with it between fork and exec, so it shows the bench's size, not the command's.
    """
    peak_path = log_path.with_suffix(".maxrss")
    with log_path.open("wb") as log:
        started = time.perf_counter()
        child = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", str(peak_path), *command],
            stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
        )  # fmt: skip
        deadline = started + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline and not timed_out:
                timed_out = True
                child.kill()
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    try:
        peak_kb = float(peak_path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):  # killed before /usr/bin/time wrote it
        peak_kb = usage.ru_maxrss
    return ChildUsage(seconds, peak_kb / 1024, child.returncode, timed_out)


@contextlib.contextmanager
def running_daemon(scenario: Scenario, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``mailbot run`` as a child process; SIGTERM and wait on exit."""
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            mailbot_command("run", "--config", str(scenario.config_path)),
            stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
        )  # fmt: skip
        try:
            yield daemon
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def await_replies(
    scenario: Scenario, since: int, count: int, daemon: subprocess.Popen[bytes], timeout: float
) -> float:
    """Block until *count* replies to the participant arrived after message *since*.

    Returns the moment (``perf_counter``) the last one was accepted; alerts to the
    administrators do not count.
    """
    handler = scenario.smtp.handler
    deadline = time.perf_counter() + timeout
    while True:
        with handler.arrived:
            if handler.arrived.wait_for(
                lambda: len(replies_since(scenario, since)) >= count, timeout=0.5
            ):
                return time.perf_counter()
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no reply within {timeout:g} s")


class DescendantPeak(threading.Thread):
    """Samples the largest VmRSS among a process's descendants (a child ingesting a CRL)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until :attr:`done` is set."""
        while not self.done.wait(self.every):
            for child in descendants(self.pid):
                with contextlib.suppress(OSError, KeyError, ValueError):
                    self.peak_kb = max(self.peak_kb, process_status(child, "VmRSS"))


def descendants(pid: int) -> list[int]:
    """Every live descendant of *pid* (through ``/proc/PID/task/TID/children``)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                kids = [int(x) for x in children.read_text().split()]
                found += kids
                todo += kids
    return found


@contextlib.contextmanager
def stopwatch(name: str) -> Iterator[None]:
    """Print how long a section took (the whole bench must stay under five minutes)."""
    started = time.perf_counter()
    yield
    print(f"({name} took {time.perf_counter() - started:.0f} s)")


# ------------------------------------------------------------------------------ worlds


@dataclass
class Bench:
    """The servers (started once) and one fresh database per section."""

    root: Path
    postgres: bool
    first: Scenario | None = None
    databases: list[str] = field(default_factory=list)

    def world(self, name: str) -> Scenario:
        """A fresh configuration, database, CA and CRL on the shared Dovecot and SMTP server."""
        directory = self.root / name
        directory.mkdir()
        url = None
        if self.postgres:
            from testkit import postgres

            url = postgres.create_database()
            self.databases.append(url)
        if self.first is None:
            self.first = build_scenario(directory, database_url=url, extra_config=EXTRA_CONFIG)
            return self.first
        first = self.first
        return build_scenario(directory, first.dovecot, first.smtp, url, EXTRA_CONFIG)

    def close(self) -> None:
        """Stop the servers, drop the databases, remove the files."""
        if self.first is not None:
            self.first.close()
        if self.databases:
            from testkit import postgres

            for url in self.databases:
                with contextlib.suppress(Exception):
                    postgres.drop_database(url)
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------ 1. burst


def run_once(scenario: Scenario, log_path: Path) -> float:
    """Seconds for ``mailbot run --once`` (a child process) to finish."""
    usage = run_measured(
        mailbot_command("run", "--once", "--config", str(scenario.config_path)), log_path, 900
    )
    if usage.exit_code != 0:
        raise RuntimeError(f"mailbot run --once failed: {log_path.read_text()[-2000:]}")
    return usage.seconds


@dataclass(frozen=True)
class BurstResult:
    """One daemon burst: its gross time and the replies it produced."""

    letters: int
    seconds: float
    replies: list[ReceivedMessage]


def daemon_burst(scenario: Scenario, letters: Sequence[bytes], log_path: Path) -> BurstResult:
    """Deliver *letters* (untimed), then time one ``run --once`` that answers them all."""
    deliver_all(scenario, letters)
    before = len(scenario.smtp.handler.messages)
    seconds = run_once(scenario, log_path)
    replies = replies_since(scenario, before)
    assert len(replies) == len(letters), f"{len(replies)} replies to {len(letters)} letters"
    assert scenario.dovecot.message_count(FUND) == 0, "letters left in the INBOX"
    return BurstResult(len(letters), seconds, replies)


def plumbing(scenario: Scenario, letters: Sequence[bytes], reply: Path, batched: bool) -> float:
    """Seconds the plumbing child needs for *letters* (delivered first, untimed)."""
    deliver_all(scenario, letters)
    before = len(scenario.smtp.handler.messages)
    spec = {
        "imap_port": scenario.dovecot.imap_port,
        "smtp_port": scenario.smtp.port,
        "user": FUND,
        "password": MAIL_USERS[FUND],
        "folder": scenario.config.imap.processed_folder,
        "from": scenario.config.smtp.from_address,
        "to": scenario.address(PARTICIPANT),
        "reply": str(reply),
        "batched": batched,
    }
    out = subprocess.run(
        [sys.executable, __file__, "--plumbing-child", json.dumps(spec)],
        capture_output=True, text=True, env=subprocess_env(), check=True, timeout=900,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["letters"] == len(letters), result
    assert len(replies_since(scenario, before)) == len(letters), "plumbing lost a reply"
    assert scenario.dovecot.message_count(FUND) == 0, "plumbing left letters in the INBOX"
    return float(result["seconds"])


async def plumbing_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Fetch every letter and send a reply-sized message for each, with no processing.

    Timed from SELECT to the last MOVE (connecting and LOGIN excluded, as the
    daemon's empty pass subtracts them from its time).
    """
    reply = Path(spec["reply"]).read_bytes()
    imap = aioimaplib.IMAP4(host="127.0.0.1", port=spec["imap_port"], timeout=60)
    await imap.wait_hello_from_server()
    await imap.login(spec["user"], spec["password"])
    started = time.perf_counter()
    await imap.select("INBOX")
    found = await imap.uid_search("ALL", charset=None)
    uids = [int(t) for line in found.lines[:-1] for t in bytes(line).split() if t.isdigit()]

    def smtp_client() -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname="127.0.0.1", port=spec["smtp_port"], use_tls=False, start_tls=False
        )

    async def move(members: list[int]) -> None:
        answer = await imap.uid("move", ",".join(map(str, members)), spec["folder"])
        assert answer.result == "OK", answer

    shared = smtp_client() if spec["batched"] else None
    if shared is not None:
        await shared.connect()
    pending: list[int] = []
    for uid in uids:
        fetched = await imap.uid("fetch", str(uid), "(UID BODY.PEEK[])")
        literal = next(bytes(x) for x in fetched.lines if isinstance(x, bytearray))
        assert fetched.result == "OK" and literal, fetched
        if shared is not None:
            await shared.sendmail(spec["from"], [spec["to"]], reply)
            pending.append(uid)
            if len(pending) == FILE_EVERY_LETTERS:
                await move(pending)
                pending = []
        else:
            async with smtp_client() as single:
                await single.sendmail(spec["from"], [spec["to"]], reply)
            await move([uid])
    if pending:
        await move(pending)
    if shared is not None:
        await shared.quit()
    seconds = time.perf_counter() - started
    await imap.logout()
    return {"seconds": seconds, "letters": len(uids)}


@dataclass(frozen=True)
class BurstFigures:
    """Letters per second of section 1."""

    cert_rate: float
    plumbing_rate: float


def section_burst(bench: Bench, sizes: Sizes) -> BurstFigures:
    """Section 1: both bursts, the empty pass they are corrected by, both plumbing limits."""
    print(f"== 1. burst: {sizes.burst} certificate letters, {sizes.plain} without attachments ==")
    world = bench.world("burst")
    logs = world.directory
    started = time.perf_counter()
    letters = cert_letters(world, sizes.burst)
    warm = cert_letters(world, WARM_UP)
    print(f"generated {sizes.burst + WARM_UP} distinct certificates (GOST 2012-256/512 by turns) "
          f"and letters in {time.perf_counter() - started:.1f} s (untimed)")  # fmt: skip
    daemon_burst(world, warm, logs / "warm.log")  # ingests the CRL; not timed
    # The fixed cost of a pass (interpreter, imports, database, IMAP login, folders,
    # reminders, outbox): what cron pays per run, not per letter.
    empty = [run_once(world, logs / "empty.log") for _ in range(3)]
    fixed = statistics.median(empty)
    print(f"empty pass (run --once, nothing to do): median {fixed:.2f} s, n={len(empty)}")

    cert = daemon_burst(world, letters, logs / "cert-burst.log")
    successes = count_successes(cert.replies)
    assert successes == sizes.burst, f"{successes} success replies to {sizes.burst} letters"
    cert_net = cert.seconds - fixed
    print(f"daemon, certificate letters: {cert.letters} letters, {cert.seconds:.2f} s gross, "
          f"{cert_net:.2f} s net of the empty pass -> {cert.letters / cert_net:.1f} letters/s "
          f"({ms(cert_net / cert.letters)} per letter); {successes}/{cert.letters} success "
          f"replies")  # fmt: skip

    plain_world = bench.world("plain")
    warm_plain = [plain_world.add_cert_letter(None) for _ in range(WARM_UP)]
    daemon_burst(plain_world, warm_plain, logs / "plain-warm.log")
    plain = daemon_burst(
        plain_world,
        [plain_world.add_cert_letter(None) for _ in range(sizes.plain)],
        logs / "plain-burst.log",
    )
    plain_net = plain.seconds - fixed
    print(f"daemon, letters without attachments: {plain.letters} letters, {plain.seconds:.2f} s "
          f"gross, {plain_net:.2f} s net -> {plain.letters / plain_net:.1f} letters/s "
          f"({ms(plain_net / plain.letters)} per letter); {len(plain.replies)} "
          f"replies")  # fmt: skip

    # The plumbing sends the daemon's own median-sized reply for every letter.
    reply_sizes = sorted(cert.replies, key=lambda m: len(m.data))
    reply = logs / "reply.eml"
    reply.write_bytes(reply_sizes[len(reply_sizes) // 2].data)
    certs = certificates(world, sizes.burst)  # the same kind and size of letters
    batched = plumbing(world, [world.add_cert_letter(c) for c in certs], reply, batched=True)
    single = plumbing(world, [world.add_cert_letter(c) for c in certs], reply, batched=False)
    size = sum(len(r.data) for r in cert.replies) / len(cert.replies)
    print(f"plumbing (a), daemon's batching (UID SEARCH, UID FETCH per letter, one SMTP "
          f"connection, UID MOVE per {FILE_EVERY_LETTERS}): {sizes.burst} letters in "
          f"{batched:.2f} s -> {sizes.burst / batched:.1f} letters/s")  # fmt: skip
    print(f"plumbing (b), UID MOVE and a new SMTP connection per letter: {sizes.burst} letters "
          f"in {single:.2f} s -> {sizes.burst / single:.1f} letters/s "
          f"(replies {len(reply.read_bytes())} bytes; the daemon's average "
          f"{size:.0f})")  # fmt: skip
    cert_rate = cert.letters / cert_net
    plumbing_rate = sizes.burst / batched
    print(f"ratio daemon / plumbing (a): certificate letters {cert_rate / plumbing_rate:.3f}, "
          f"without attachments {plain.letters / plain_net / plumbing_rate:.3f}; "
          f"daemon / plumbing (b): {cert_rate / (sizes.burst / single):.3f}")  # fmt: skip
    return BurstFigures(cert_rate, plumbing_rate)


# ---------------------------------------------------------------------------- 2. latency


def imap_command(sock: socket.socket, reader: Any, tag: bytes, command: bytes) -> None:
    """Send one IMAP command and read up to its tagged OK."""
    sock.sendall(tag + b" " + command + b"\r\n")
    while True:
        line = reader.readline()
        if not line:
            raise RuntimeError("IMAP connection closed")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise RuntimeError(line.decode(errors="replace"))
            return


def push_delays(scenario: Scenario, count: int) -> list[float]:
    """Seconds from an LMTP delivery to Dovecot's untagged EXISTS on an idling connection."""
    samples = []
    password = MAIL_USERS[FUND].encode()
    with socket.create_connection(("127.0.0.1", scenario.dovecot.imap_port), timeout=30) as sock:
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        imap_command(sock, reader, b"a", b'LOGIN "' + FUND.encode() + b'" "' + password + b'"')
        imap_command(sock, reader, b"b", b"SELECT INBOX")
        for number in range(count):
            tag = b"i%d" % number
            sock.sendall(tag + b" IDLE\r\n")
            if not reader.readline().startswith(b"+"):
                raise RuntimeError("IDLE refused")
            raw = scenario.add_cert_letter(None)
            started = time.perf_counter()
            scenario.deliver(raw)
            while not re.match(rb"\* \d+ EXISTS", reader.readline()):
                pass
            samples.append(time.perf_counter() - started)
            sock.sendall(b"DONE\r\n")
            while not reader.readline().startswith(tag + b" "):
                pass
            time.sleep(0.1)
        imap_command(sock, reader, b"z", b"LOGOUT")
    scenario.dovecot.expunge_all(FUND)
    return samples


def section_latency(bench: Bench, sizes: Sizes) -> None:
    """Section 2: letter -> reply with the daemon idling between letters."""
    print(f"\n== 2. latency: {sizes.latency} certificate letters, each after {IDLE_GAP:g} s of "
          f"idle ==")  # fmt: skip
    world = bench.world("latency")
    push = push_delays(world, sizes.push)
    print(f"Dovecot push delay (raw IDLE client, LMTP delivery -> untagged EXISTS): median "
          f"{ms(statistics.median(push))}, min {ms(min(push))}, max {ms(max(push))}, "
          f"n={len(push)}")  # fmt: skip
    letters = cert_letters(world, WARM_UP + sizes.latency)
    handler = world.smtp.handler
    first = len(handler.messages)
    samples = []
    with running_daemon(world, world.directory / "latency.log") as daemon:
        landed = time.perf_counter()
        for number, raw in enumerate(letters):
            time.sleep(max(0.0, landed + IDLE_GAP - time.perf_counter()))
            started = time.perf_counter()
            world.deliver(raw)
            # The first letter also waits for the daemon to start and connect.
            landed = await_replies(world, first, number + 1, daemon, 60 if number == 0 else 30)
            if number >= WARM_UP:
                samples.append(landed - started)
    replies = replies_since(world, first)
    assert count_successes(replies) == len(letters), "a latency letter got no success reply"
    print(f"letter -> reply (LMTP delivery to the reply accepted by the SMTP server), warm-up "
          f"{WARM_UP} excluded: {percentiles(samples)}")  # fmt: skip


# ---------------------------------------------------------------------------- 3. scaling


def insert_subscribers(engine: Engine, first_row: int, count: int) -> None:
    """*count* subscribers, each with one trusted address, in organisations of 50 (Core)."""
    moment = dt.datetime.now(dt.UTC)
    rows = range(first_row, first_row + count)
    with engine.begin() as connection:
        organisations = sorted({row // PER_ORGANISATION for row in rows})
        ids = connection.execute(
            insert(Organisation).returning(Organisation.id, sort_by_parameter_order=True),
            [
                {"name": f"ГБУЗ МО «Больница № {o}»", "registry_code": f"BENCH{o:06d}",
                 "active": True, "created_at": moment, "updated_at": moment}
                for o in organisations
            ],
        ).scalars().all()  # fmt: skip
        organisation_id = dict(zip(organisations, ids, strict=True))
        subscriber_ids = connection.execute(
            insert(Subscriber).returning(Subscriber.id, sort_by_parameter_order=True),
            [
                {"organisation_id": organisation_id[row // PER_ORGANISATION],
                 "surname": f"Фамилия{row}", "given_names": "Иван Иванович",
                 "snils": snils_of(row), "active": True, "certificate_fields": {},
                 "created_at": moment, "updated_at": moment}
                for row in rows
            ],
        ).scalars().all()  # fmt: skip
        connection.execute(
            insert(TrustedAddress),
            [
                {"subscriber_id": subscriber_id, "address": address_of(row),
                 "active": True, "created_at": moment}
                for row, subscriber_id in zip(rows, subscriber_ids, strict=True)
            ],
        )  # fmt: skip


def insert_replies(engine: Engine, count: int, raw: bytes, timezone: str) -> None:
    """*count* sent replies created today (in the configured zone), each to its own address."""
    moment = dt.datetime.now(dt.UTC)
    midnight = moment.astimezone(ZoneInfo(timezone)).replace(hour=0, minute=0, second=0)
    span = moment - midnight
    with engine.begin() as connection:
        for start in range(0, count, 5000):
            rows = []
            for number in range(start, min(count, start + 5000)):
                created = midnight + span * (number + 1) / (count + 1)
                rows.append(
                    {"letter_id": None, "kind": "reply", "template_key": "success",
                     "recipients": [f"sender{number}@org{number // 50}.clinic.example"],
                     "message_id": f"<bench-reply-{number}-{id(engine)}@example.test>",
                     "raw": raw, "status": "sent", "attempts": 1, "next_attempt_at": created,
                     "last_error": None, "created_at": created, "sent_at": created}
                )  # fmt: skip
            connection.execute(insert(OutboxMessage), rows)


@dataclass
class Processing:
    """The daemon's letter processor on one world's database, timed per letter."""

    world: Scenario
    engine: Engine
    uids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.processor = make_processor(self.world.config, session_factory(self.engine))

    def one(self, raw: bytes) -> float:
        """Seconds for claim + process of one certificate letter (which must succeed)."""
        source = LetterSource("INBOX", 1, next(self.uids))
        started = time.perf_counter()
        claim = self.processor.claim(raw, source)
        result = self.processor.process(raw, source)
        seconds = time.perf_counter() - started
        assert not claim.finished and str(result.outcome) == "success", result.outcome
        return seconds

    def cost(self, letters: int, budget: float) -> list[float]:
        """Per-letter seconds over up to *letters* letters (fewer, at least 10, past *budget*)."""
        for raw in cert_letters(self.world, WARM_UP):
            self.one(raw)
        samples: list[float] = []
        deadline = time.perf_counter() + budget
        for raw in cert_letters(self.world, letters):
            samples.append(self.one(raw))
            if len(samples) >= 10 and time.perf_counter() > deadline:
                break
        return samples


def section_scaling(bench: Bench, sizes: Sizes, reply_raw: bytes) -> tuple[float, float]:
    """Section 3 (per-letter cost) over the grid of directory sizes and replies today.

    Two databases grow step by step: one first in subscribers (then gets the
    replies), the other first in replies (then in subscribers).
    """
    print(f"\n== 3. scaling: claim + process of one certificate letter, in-process, median of "
          f"up to {sizes.scaling_letters} after {WARM_UP} warm-up ==")  # fmt: skip
    costs: dict[tuple[int, int], float] = {}

    def measure(processing: Processing, subscribers: int, replies: int) -> None:
        samples = processing.cost(sizes.scaling_letters, sizes.scaling_budget)
        costs[(subscribers, replies)] = statistics.median(samples)
        print(f"{short(subscribers):>6} subscribers, {short(replies):>4} replies today: "
              f"median {ms(costs[(subscribers, replies)])}, min {ms(min(samples))}, "
              f"max {ms(max(samples))}, n={len(samples)}")  # fmt: skip

    def grow(engine: Engine, present: int, wanted: int) -> int:
        if wanted > present:
            started = time.perf_counter()
            insert_subscribers(engine, present, wanted - present)
            print(f"  ({wanted - present} subscribers inserted in "
                  f"{time.perf_counter() - started:.1f} s, untimed)")  # fmt: skip
        return max(present, wanted)

    def answered(engine: Engine, world: Scenario) -> None:
        started = time.perf_counter()
        insert_replies(engine, sizes.replies, reply_raw, world.config.general.timezone)
        print(f"  ({sizes.replies} replies of today, {len(reply_raw)} bytes each, inserted in "
              f"{time.perf_counter() - started:.1f} s, untimed)")  # fmt: skip

    largest = max(sizes.subscribers)
    for replies_first in (False, True):
        world = bench.world(f"scaling-{'replies' if replies_first else 'subscribers'}")
        engine = engine_from_config(world.config)
        processing = Processing(world, engine)
        present = 1
        if replies_first:
            answered(engine, world)
        for subscribers in sizes.subscribers:
            if replies_first and subscribers == largest:
                continue  # measured on the other database
            present = grow(engine, present, subscribers)
            measure(processing, present, sizes.replies if replies_first else 0)
        if not replies_first:
            answered(engine, world)
            measure(processing, present, sizes.replies)
        engine.dispose()
    return costs[(1, 0)], costs[(largest, sizes.replies)]


def section_import(bench: Bench, sizes: Sizes) -> None:
    """``mailbot import`` of a generated CSV into a fresh database: wall time and peak RSS."""
    world = bench.world("import")
    csv_path = world.directory / "directory.csv"
    write_directory_csv(csv_path, sizes.import_rows)
    log_path = world.directory / "import.log"
    usage = run_measured(
        mailbot_command("import", str(csv_path), "--config", str(world.config_path)),
        log_path,
        sizes.import_timeout,
    )
    size_mb = csv_path.stat().st_size / 1e6
    if usage.timed_out:
        print(f"mailbot import of {sizes.import_rows} rows ({size_mb:.1f} MB): did NOT finish "
              f"within {sizes.import_timeout:g} s (killed), peak RSS {usage.peak_rss_mb:.0f} MB "
              f"by then, n=1")  # fmt: skip
        return
    if usage.exit_code != 0:
        raise RuntimeError(f"mailbot import failed: {log_path.read_text()[-2000:]}")
    print(f"mailbot import of {sizes.import_rows} rows ({size_mb:.1f} MB): {usage.seconds:.1f} s "
          f"({sizes.import_rows / usage.seconds:.0f} rows/s), peak RSS "
          f"{usage.peak_rss_mb:.0f} MB, n=1")  # fmt: skip


def wait_until_idle(pid: int, settle: float, quiet: float = 1.0) -> None:
    """Sleep *settle* seconds, then until the process used no CPU for *quiet* seconds."""
    time.sleep(settle)
    ticks = cpu_ticks(pid)
    for _ in range(30):
        time.sleep(quiet)
        if (latest := cpu_ticks(pid)) == ticks:
            return
        ticks = latest


def big_crl(world: Scenario, entries: int, number: int) -> Path:
    """A CRL of *entries* entries of the world's CA, current now, staged beside the drop folder."""
    started = time.perf_counter()
    moment = now()
    crl = factory.make_crl(
        world.ca, raw_entries=factory.bulk_entries(entries),
        this_update=moment - dt.timedelta(hours=1), next_update=moment + dt.timedelta(days=7),
        number=number,
    )  # fmt: skip
    staged = world.directory / "big.crl"
    staged.write_bytes(crl)
    print(f"CRL of {entries} entries ({len(crl) / 1e6:.1f} MB) built in "
          f"{time.perf_counter() - started:.1f} s (untimed)")  # fmt: skip
    return staged


def crl_number_on_file(world: Scenario) -> int | None:
    """The highest CRL number the daemon has indexed for the world's CA (None: none yet)."""
    for state in world.config.crl_cache_dir.glob("state-*.json"):
        with contextlib.suppress(OSError, ValueError):
            number = json.loads(state.read_text("utf-8")).get("max_number")
            return int(number) if number is not None else None
    return None


def letter_times(
    world: Scenario, daemon: subprocess.Popen[bytes], letters: Sequence[bytes]
) -> list[float]:
    """Seconds from delivery to reply for each letter, one after the other, idle between."""
    handler = world.smtp.handler
    first = len(handler.messages)
    times = []
    for number, raw in enumerate(letters):
        sent = time.perf_counter()
        world.deliver(raw)
        times.append(await_replies(world, first, number + 1, daemon, 300) - sent)
        time.sleep(IDLE_GAP)
    replies = replies_since(world, first)
    assert count_successes(replies) == len(letters), "a big-CRL letter got no success reply"
    return times


def memory_line(daemon: subprocess.Popen[bytes], idle_kb: int, sampler: DescendantPeak) -> str:
    """The daemon's VmRSS before and now, its peak, and the largest child seen."""
    return (
        f"daemon VmRSS idle before {idle_kb / 1024:.0f} MB, after "
        f"{process_status(daemon.pid, 'VmRSS') / 1024:.0f} MB, peak (VmHWM) "
        f"{process_status(daemon.pid, 'VmHWM') / 1024:.0f} MB; largest child process seen "
        f"meanwhile (sampled every 20 ms): {sampler.peak_kb / 1024:.0f} MB"
    )


def section_big_crl(bench: Bench, sizes: Sizes) -> None:
    """A CRL of *crl_entries* entries: indexed by the refresh (the steady state), then the
    fallback when a letter finds no CRL on file at all; letter times and the daemon's RSS."""
    # Steady state: the big CRL waits in the drop folder; the daemon's refresh (its first
    # run comes 5 s after the start) indexes it before any letter needs it.
    world = bench.world("big-crl-refresh")
    for old in world.config.crl_drop_dir.iterdir():
        old.unlink()
    staged = big_crl(world, sizes.crl_entries, number=2)
    staged.replace(world.config.crl_drop_dir / f"{world.ca.cert.thumbprint_sha1}-2.crl")
    letters = cert_letters(world, 2)
    with running_daemon(world, world.directory / "big-crl-refresh.log") as daemon:
        sampler = DescendantPeak(daemon.pid)
        sampler.start()
        time.sleep(2.0)  # started, not yet refreshing
        rss_idle = process_status(daemon.pid, "VmRSS")
        waited = time.perf_counter()
        while crl_number_on_file(world) != 2:
            if time.perf_counter() - waited > 120:
                raise RuntimeError("the refresh did not index the big CRL within 120 s")
            time.sleep(0.1)
        wait_until_idle(daemon.pid, settle=0.5)
        times = letter_times(world, daemon, letters)
        sampler.done.set()
        sampler.join()
        print(f"letters after the refresh indexed a {short(sizes.crl_entries)}-entry CRL: "
              f"{ms(times[0])}, {ms(times[1])} (push delay included), n=1 each")  # fmt: skip
        print(memory_line(daemon, rss_idle, sampler))
    # Fallback: no CRL on file for the CA when the first letter comes (a new CA).
    world = bench.world("big-crl-first-use")
    for old in world.config.crl_drop_dir.iterdir():
        old.unlink()  # only the big CRL will exist for this CA
    staged = big_crl(world, sizes.crl_entries, number=2)
    letters = cert_letters(world, 2)
    with running_daemon(world, world.directory / "big-crl.log") as daemon:
        # Past the scheduler's first jobs (5 s), with the drop folder still empty.
        wait_until_idle(daemon.pid, settle=6.5)
        rss_idle = process_status(daemon.pid, "VmRSS")
        staged.replace(world.config.crl_drop_dir / f"{world.ca.cert.thumbprint_sha1}-2.crl")
        sampler = DescendantPeak(daemon.pid)
        sampler.start()
        times = letter_times(world, daemon, letters)
        sampler.done.set()
        sampler.join()
        print(f"first letter when no CRL is on file and a {short(sizes.crl_entries)}-entry one "
              f"waits in the drop folder: {ms(times[0])} (the letter has it indexed; push delay "
              f"included), second letter {ms(times[1])}, n=1 each")  # fmt: skip
        print(memory_line(daemon, rss_idle, sampler))


# -------------------------------------------------------------------------------- main


def main() -> None:
    """Run every section; the last two lines are the summaries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--burst", type=int, help="certificate letters in the burst")
    parser.add_argument("--plain", type=int, help="letters without attachments in the burst")
    parser.add_argument("--latency", type=int, help="latency samples")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    overrides = {k: v for k in ("burst", "plain", "latency") if (v := getattr(args, k))}
    sizes = replace(sizes, **overrides)
    configure_logging("console", "error")
    started = time.perf_counter()
    bench = Bench(Path(tempfile.mkdtemp(prefix="mailbot-bench-")), args.postgres)
    try:
        database = "PostgreSQL" if args.postgres else "SQLite"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"mailbot daemon bench: {database}, {os.cpu_count()} CPUs (load average {load}), "
              f"FILE_EVERY_LETTERS={FILE_EVERY_LETTERS}")  # fmt: skip
        with stopwatch("section 1"):
            burst = section_burst(bench, sizes)
        with stopwatch("section 2"):
            section_latency(bench, sizes)
        reply_raw = (bench.root / "burst" / "reply.eml").read_bytes()
        with stopwatch("section 3, per-letter cost"):
            small, large = section_scaling(bench, sizes, reply_raw)
        with stopwatch("section 3, import"):
            section_import(bench, sizes)
        with stopwatch("section 3, big CRL"):
            section_big_crl(bench, sizes)
    finally:
        if args.keep:
            print(f"files kept in {bench.root}")
            if bench.first is not None:
                bench.first.close()
        else:
            bench.close()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s (load average now {load})")
    label = f"{short(max(sizes.subscribers))} subscribers + {short(sizes.replies)} replies today"
    print(f"scaling: per-letter cost at {label} vs 1 + 0 ({ms(large)} vs {ms(small)}, "
          f"medians), ratio {large / small:.2f}")  # fmt: skip
    print(f"burst: daemon {burst.cert_rate:.1f} letters/s, plumbing {burst.plumbing_rate:.1f} "
          f"letters/s, ratio {burst.cert_rate / burst.plumbing_rate:.3f}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--plumbing-child":
        print(json.dumps(asyncio.run(plumbing_child(json.loads(sys.argv[2])))))
    else:
        main()
