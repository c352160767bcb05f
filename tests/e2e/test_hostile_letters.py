"""Hostile letters through the daemon as a real process (``mailbot run``), one after another.

The acceptance check of "every odd or hostile letter gets its answer in bounded
time; nothing stalls the mailbox or exposes personal data". Real Dovecot, SMTP
bridge, SQLite and PostgreSQL, GOST certificates, a CRL server that trickles.

Each case of :data:`CASES` delivers its hostile letter and, right after it, a
control letter (a good ADD_CERT of the trusted participant). It asserts:

* the control letter's reply lands in the participant's INBOX within
  :data:`CONTROL_BUDGET` of delivering the control letter;
* the hostile letter has exactly one journal row, is not ``failed`` nor in the
  failed folder, raised no "failed letter" alert, and got the regulation's answer;
* the daemon is still running.

One daemon serves every case of a database (letters one after another). When a
case leaves it stuck (a letter still in hand after :data:`SETTLE_SECONDS`), the
next case starts from a fresh daemon and an emptied INBOX, so one defect fails
its own case and not every later one. The daemon runs under umask 022; the last
test walks the state folders it wrote for modes open to other users.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import imaplib
import itertools
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot.cli.main import main as cli
from mailbot.directory.engine import engine_from_config
from mailbot.directory.models import Alert, CertificateRecord, LetterRecord, OutboxMessage
from mailbot.directory.session import session_factory
from testkit import letters, postgres
from testkit import pki as factory
from testkit.crl_server import SlowServer, one_byte_at_a_time
from testkit.dovecot import DovecotServer
from testkit.dovecot import wait_until as poll_until
from testkit.scenario import (
    DOMAIN,
    FUND,
    MAIL_USERS,
    PARTICIPANT,
    PARTICIPANT_SNILS,
    STRANGER,
    Scenario,
    build_scenario,
    now,
)
from testkit.smtpd import SmtpServer, start_smtp_server
from tests.e2e.test_resilience import kill_daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

#: Dovecot delays every IDLE push by a fixed 500 ms (testkit.dovecot).
DOVECOT_PUSH_DELAY = 0.5
#: The target is 5 s from delivery to the reply in the INBOX, plus Dovecot's push delay.
#: The margin covers a busy test machine, the reply's own trip through the SMTP bridge and
#: LMTP, and polling the INBOX every 100 ms. Measured on 2 cores shared with other test
#: runs (load average up to 17): healthy control letters are answered in 0.6-1.8 s, so
#: 7.5 s fails only a real stall (a 1 MB Subject took 7.5-10 s before its echo was bounded).
MACHINE_MARGIN = 2.0
CONTROL_BUDGET = 5.0 + DOVECOT_PUSH_DELAY + MACHINE_MARGIN
#: ``[crl] fetch_timeout_seconds`` of the scenario: a CRL download's whole deadline.
CRL_TIMEOUT = 3
#: A letter waiting for a trickling CRL is decided (deferred) within T + 1 s of its pickup.
DEFER_BUDGET = CRL_TIMEOUT + 1 + DOVECOT_PUSH_DELAY + MACHINE_MARGIN
#: Between cases: how long the daemon may take to put down the previous letters.
SETTLE_SECONDS = 15.0
#: The regulation's reply templates (docs/regulation.md, "Replies").
REGULATION_TEMPLATES = frozenset({
    "no_cer", "invalid_files", "invalid_cert", "unknown_ca", "snils_mismatch", "install_error",
    "success", "unknown_subject",
})  # fmt: skip
ADD_CERT_TEMPLATES = REGULATION_TEMPLATES - {"unknown_subject"}
#: A trusted address written in Unicode (RFC 6532), registered through the CLI.
UTF8_ADDRESS = "иван@пример.рф"
EXTRA_CONFIG = f"""
[limits]
replies_per_sender_per_day = 1000

[crl]
unavailable_policy = "defer"
fetch_timeout_seconds = {CRL_TIMEOUT}
"""
_ids = itertools.count(1)
_TRICKLE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n"
    b"Content-Length: 1000000\r\n\r\n" + b"0" * 1000
)


# ----------------------------------------------------------------------------- servers


class StderrTail:
    """Reads the daemon's stderr all the time (a full pipe would stall the daemon itself)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        self.snils_seen = False
        assert process.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        try:
            for raw in stream:  # type: ignore[attr-defined]
                line = raw.decode("utf-8", "replace")
                self.snils_seen = self.snils_seen or PARTICIPANT_SNILS in line
                if len(self.lines) < 10_000:
                    self.lines.append(line.rstrip()[:300])
        except (OSError, ValueError):
            return  # the pipe was closed by stop_daemon

    def since(self, mark: int, count: int = 40) -> str:
        """The last *count* lines logged after line *mark*, for failure messages."""
        return "\n".join(self.lines[mark:][-count:])


# ----------------------------------------------------------------------------- the world


@dataclass
class World:
    """One scenario, its daemon (umask 022) and what the cases have learned."""

    scenario: Scenario
    database: str
    control_certificate: factory.Issued
    slow_ca: factory.Issued
    trickle: SlowServer
    process: subprocess.Popen[bytes] | None = None
    stderr: StderrTail | None = None
    #: Message-IDs of letters that rightly stay in the INBOX (deferred ones).
    waiting: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    stderr_seen_snils: bool = False

    def start(self) -> None:
        """Start ``mailbot run`` under umask 022 and wait for READY=1."""
        previous = os.umask(0o022)  # inherited by the child at fork
        try:
            self.process = start_daemon(self.scenario, wait_ready=True)
        finally:
            os.umask(previous)
        self.stderr = StderrTail(self.process)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (SIGKILL when it does not stop in time)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            try:
                code = stop_daemon(process, timeout=timeout)
                if code != 0:
                    self.notes.append(f"daemon exited with {code}")
            except subprocess.TimeoutExpired:
                self.notes.append(f"daemon ignored SIGTERM for {timeout:.0f} s; killed")
                kill_daemon(process)
        elif process.stderr is not None:
            process.stderr.close()
        if self.stderr is not None:
            self.stderr_seen_snils = self.stderr_seen_snils or self.stderr.snils_seen

    def restart_clean(self, why: str) -> None:
        """A fresh daemon and an emptied INBOX, so the next case is judged on its own."""
        self.notes.append(f"restarted before the next case: {why}")
        if self.process is not None:
            kill_daemon(self.process)
            self.process = None
        self.scenario.dovecot.expunge_all(FUND)
        self.waiting.clear()
        self.start()

    def settle(self) -> None:
        """Wait until the daemon has put down every letter; else start from a clean slate."""
        alive = self.process is not None and self.process.poll() is None
        if not alive:
            code = self.process.returncode if self.process is not None else None
            self.restart_clean(f"the daemon had exited (code {code})")
            return
        settled = poll_until(
            lambda: (
                self.scenario.dovecot.message_count(FUND) <= len(self.waiting)
                and not any(row.state == "claimed" for row in journal(self).letters)
            ),
            timeout=SETTLE_SECONDS,
            interval=0.5,
        )
        if not settled:
            self.restart_clean("letters still in hand after the previous case")

    def log_mark(self) -> tuple[StderrTail | None, int]:
        """Where the daemon's log stands now."""
        return self.stderr, len(self.stderr.lines) if self.stderr is not None else 0

    def log_since(self, mark: tuple[StderrTail | None, int]) -> str:
        """What the daemon logged since *mark* (all of a daemon started since)."""
        stderr, line = mark
        if self.stderr is None:
            return "(no daemon)"
        return self.stderr.since(line if stderr is self.stderr else 0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    dovecot = DovecotServer.start(MAIL_USERS, domain=DOMAIN)
    smtp: SmtpServer = start_smtp_server({DOMAIN}, ("127.0.0.1", dovecot.lmtp_port))
    url = postgres.create_database() if request.param == "postgresql" else None
    # One byte a second: every byte arrives within any per-read socket timeout,
    # so only a whole-download deadline ends the fetch.
    trickle = SlowServer(one_byte_at_a_time(_TRICKLE_RESPONSE))
    # Everything the harness itself writes into the state folder is private (umask 077),
    # as if a fixed `mailbot db upgrade` had made it: the modes test judges the daemon.
    previous = os.umask(0o077)
    try:
        directory = Path(tempfile.mkdtemp(prefix="mailbot-hostile-"))
        scenario = build_scenario(directory, dovecot, smtp, url, EXTRA_CONFIG)
    finally:
        os.umask(previous)
    # A second registered CA with no CRL anywhere but the certificate's trickling CDP.
    slow_ca = factory.make_ca("Медленный УЦ", slot=6, not_before=now() - dt.timedelta(days=30))
    ca_file = directory / "slow-ca.cer"
    ca_file.write_bytes(slow_ca.der)
    config = ["--config", str(scenario.config_path)]
    assert cli(["ca", "add", str(ca_file), *config]) == 0
    assert cli(["address", "add", str(scenario.subscriber_id), UTF8_ADDRESS, *config]) == 0
    world = World(scenario, request.param, scenario.participant_certificate(), slow_ca, trickle)
    world.start()
    try:
        yield world
    finally:
        trickle.stop()
        world.stop()
        if world.notes:
            print(f"\n[{world.database}] " + "\n".join(world.notes))
        smtp.stop()
        dovecot.remove()
        if url is not None:
            postgres.drop_database(url)
        shutil.rmtree(directory, ignore_errors=True)  # archived hostile letters: megabytes


# ----------------------------------------------------------------------------- observation


@dataclass(frozen=True)
class Journal:
    """The rows the assertions read: letters, replies, "failed letter" alerts."""

    letters: list[LetterRecord]
    replies: list[OutboxMessage]
    poison_alerts: int
    certificates: list[CertificateRecord]

    def row(self, letter_id: int) -> LetterRecord:
        """The journal row with this id."""
        return next(r for r in self.letters if r.id == letter_id)

    def replies_to(self, letter_id: int) -> list[OutboxMessage]:
        """The replies queued for one letter."""
        return [m for m in self.replies if m.letter_id == letter_id]


def journal(world: World) -> Journal:
    """A snapshot of the journal, the outbox's replies and the alerts."""
    engine = engine_from_config(world.scenario.config)
    try:
        with session_factory(engine)() as session:
            return Journal(
                letters=list(session.scalars(select(LetterRecord).order_by(LetterRecord.id))),
                replies=list(
                    session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
                ),
                poison_alerts=len(
                    session.scalars(select(Alert.id).where(Alert.kind == "poison_letter")).all()
                ),
                certificates=list(session.scalars(select(CertificateRecord))),
            )
    finally:
        engine.dispose()


def reply_arrived(scenario: Scenario, message_id: str) -> bool:
    """Whether the participant's INBOX holds a reply to *message_id* (IMAP SEARCH)."""
    with imaplib.IMAP4("127.0.0.1", scenario.dovecot.imap_port, timeout=10) as client:
        client.login(PARTICIPANT, MAIL_USERS[PARTICIPANT])
        client.select("INBOX", readonly=True)
        _status, data = client.uid("SEARCH", "HEADER", "In-Reply-To", message_id)
        return bool((data[0] or b"").split())


def message_id_of(raw: bytes) -> str:
    """The Message-ID a builder gave its letter (the first header of that name)."""
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("the letter has no Message-ID")


def parsed(raw: bytes) -> email.message.EmailMessage:
    """A queued reply, parsed."""
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


# ----------------------------------------------------------------------------- letters


def new_id(tag: str) -> str:
    return f"<hostile-{tag}-{next(_ids)}@{DOMAIN}>"


def with_from(raw: bytes, value: bytes) -> bytes:
    """*raw* with its From header replaced by the raw bytes *value* (any bytes at all)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    lines = [
        b"From: " + value if line.startswith(b"From:") else line for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + separator + body


def fund(world: World) -> str:
    return world.scenario.address(FUND)


def participant(world: World) -> str:
    return world.scenario.address(PARTICIPANT)


def certificate_letter(world: World, certificate: factory.Issued, tag: str) -> bytes:
    """An ADD_CERT letter of the participant with *certificate* zipped as Иванов.zip."""
    data = letters.certificate_zip("Иванов.cer", certificate.der)
    return letters.plain_zip_letter(
        "Иванов.zip", data, sender=participant(world), to=fund(world), message_id=new_id(tag)
    )


def issued_now(
    issuer: factory.Issued,
    crl_urls: tuple[str, ...] = (),
    serial: bytes | None = None,
    key: factory.KeyPair | None = None,
) -> factory.Issued:
    """A participant's certificate of *issuer*, valid now, with the participant's SNILS."""
    moment = now()
    return factory.make_end_entity(
        issuer, snils=PARTICIPANT_SNILS, crl_urls=crl_urls, serial=serial, key=key,
        not_before=moment - dt.timedelta(days=1), not_after=moment + dt.timedelta(days=365),
    )  # fmt: skip


def utf8_from_trusted(world: World) -> bytes:
    """ADD_CERT with a bare raw 8-bit ``From: иван@пример.рф`` (RFC 6532), a trusted address."""
    raw = certificate_letter(world, world.control_certificate, "utf8-from")
    return with_from(raw, UTF8_ADDRESS.encode())


def invalid_utf8_from_stranger(world: World) -> bytes:
    """A stranger's From with bytes that are not UTF-8 at all."""
    raw = letters.no_attachment_letter(
        sender=world.scenario.address(STRANGER), to=fund(world), message_id=new_id("bad-utf8")
    )
    return with_from(raw, b"\xd0\xb8\xff\xfe\xc3\x28\x80str@" + DOMAIN.encode())


def long_local_part(world: World) -> bytes:
    """A stranger's From whose local part is 80 KB long."""
    raw = letters.no_attachment_letter(
        sender=world.scenario.address(STRANGER), to=fund(world), message_id=new_id("long-from")
    )
    return with_from(raw, b"a" * 80_000 + b"@" + DOMAIN.encode())


HUGE_SUBJECT_WORDS = 100_000  # 10-character words: a 1 MB subject


def huge_subject(world: World) -> bytes:
    """A trusted sender's letter with a 1 MB subject (folded, so every line is short)."""
    folded = "\r\n ".join(f"w{i:08d}" for i in range(HUGE_SUBJECT_WORDS))
    return letters.no_attachment_letter(
        sender=participant(world), to=fund(world), subject=folded, message_id=new_id("subject")
    )


def long_serial(world: World) -> bytes:
    """A certificate of the registered CA with a 70-byte serial (RFC 5280 allows 20)."""
    certificate = issued_now(world.scenario.ca, serial=b"\x01" + bytes(range(2, 71)))
    return certificate_letter(world, certificate, "serial")


MIME_DEPTH = 1000


def deep_mime(world: World) -> bytes:
    """ADD_CERT whose ZIP sits at the bottom of 1,000 nested multiparts."""
    data = letters.certificate_zip("Иванов.cer", world.control_certificate.der)
    entity = letters.part(data, b'application/zip; name="a.zip"', b'attachment; filename="a.zip"')
    for level in range(MIME_DEPTH):
        entity = letters.multipart("mixed", [entity], f"deep{level}")
    return letters.letter(
        entity, sender=participant(world), to=fund(world), message_id=new_id("deep")
    )


def off_curve_key(world: World) -> bytes:
    """A GOST certificate, well signed by the registered CA, whose key is not a curve point."""
    certificate = issued_now(
        world.scenario.ca, key=factory.key_with_point(factory.GOST256, None, 12345, 67890)
    )
    return certificate_letter(world, certificate, "off-curve")


def apple_vacation(world: World) -> bytes:
    """An iCloud vacation answer: ``X-Apple-Action: VACATION``, no Auto-Submitted."""
    return letters.no_attachment_letter(
        sender=participant(world), to=fund(world), subject="Re: ADD_CERT",
        message_id=new_id("vacation"),
        headers=[("X-Apple-Action", "VACATION"), ("X-Apple-Vacation", "true")],
    )  # fmt: skip


def unnamed_zip(world: World) -> bytes:
    """ADD_CERT with a ZIP attachment that has no file name anywhere."""
    data = letters.certificate_zip("Иванов.cer", world.control_certificate.der)
    body = letters.multipart(
        "mixed",
        [letters.text_part("Сертификат."), letters.part(data, b"application/zip", b"attachment")],
        "nn",
    )
    return letters.letter(body, sender=participant(world), to=fund(world), message_id=new_id("zip"))


def trickling_crl(world: World) -> bytes:
    """ADD_CERT whose only CRL is behind a distribution point trickling one byte a second."""
    certificate = issued_now(world.slow_ca, crl_urls=(world.trickle.url("/slow.crl"),))
    return certificate_letter(world, certificate, "trickle")


# ----------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    """What the regulation says the letter gets."""

    #: Acceptable reply templates; empty: no reply at all.
    templates: frozenset[str] = frozenset()
    #: Where the reply goes (None: the participant).
    reply_to: str | None = None
    #: The journal state once decided.
    state: str = "done"
    #: How long the letter itself may take, from its delivery to its decision.
    budget: float = CONTROL_BUDGET
    #: Further checks of the row and its reply.
    check: Callable[[World, LetterRecord, list[OutboxMessage]], None] | None = None


def reply(*templates: str, **kwargs: object) -> Answer:
    return Answer(frozenset(templates), **kwargs)  # type: ignore[arg-type]


NO_REPLY = Answer()


def subject_capped(_world: World, _row: LetterRecord, replies: list[OutboxMessage]) -> None:
    (message,) = [parsed(r.raw) for r in replies]
    subject = str(message["Subject"])
    assert len(subject) < 1000, f"the reply's Subject has {len(subject)} characters"
    body = message.get_content()
    assert body.startswith("Тема полученного от Вас письма «"), body[:200]
    assert "не соответствует ни одному из известных шаблонов" in body, body[-200:]


def sender_and_message_id_journaled(
    world: World, row: LetterRecord, _r: list[OutboxMessage]
) -> None:
    assert row.sender == participant(world), f"journal sender {row.sender!r}"
    assert row.message_id is not None and row.message_id.startswith("<hostile-deep-")


def not_registered(world: World, row: LetterRecord, _r: list[OutboxMessage]) -> None:
    registered = [c for c in journal(world).certificates if c.letter_id == row.id]
    assert registered == [], "a certificate with an off-curve key was registered"
    assert row.certificate_id is None


def deferred_for_crl(world: World, row: LetterRecord, _r: list[OutboxMessage]) -> None:
    assert world.trickle.connections >= 1, "the trickling distribution point was never asked"
    assert (row.detail or {}).get("deferral"), row.detail
    assert row.filed_to is None, f"a waiting letter was filed to {row.filed_to}"


@dataclass(frozen=True)
class Case:
    """One line of the checklist."""

    name: str
    build: Callable[[World], bytes]
    answer: Answer

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("utf8-from-trusted", utf8_from_trusted, reply("success", reply_to=UTF8_ADDRESS)),
    Case("invalid-utf8-from-stranger", invalid_utf8_from_stranger, NO_REPLY),
    Case("80kb-from-local-part", long_local_part, NO_REPLY),
    Case("1mb-subject", huge_subject, reply("unknown_subject", check=subject_capped)),
    Case("serial-over-64-bytes", long_serial, reply(*ADD_CERT_TEMPLATES)),
    Case(
        "mime-1000-deep",
        deep_mime,
        reply("invalid_files", check=sender_and_message_id_journaled),
    ),
    Case("gost-key-off-curve", off_curve_key, reply("invalid_cert", check=not_registered)),
    Case("apple-vacation", apple_vacation, NO_REPLY),
    Case("zip-without-name", unnamed_zip, reply("invalid_files")),
    # Last: today a trickle holds the daemon forever ([crl] unavailable_policy = "defer").
    Case(
        "crl-trickle",
        trickling_crl,
        Answer(state="deferred", budget=DEFER_BUDGET, check=deferred_for_crl),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_letter(world: World, case: Case) -> None:
    world.settle()
    scenario = world.scenario
    before = journal(world)
    known = {r.id for r in before.letters}
    failed_before = scenario.dovecot.message_count(FUND, "Failed")
    log_mark = world.log_mark()
    raw = case.build(world)
    hostile_id = message_id_of(raw)
    control = certificate_letter(world, world.control_certificate, f"control-{case.name}")
    control_id = message_id_of(control)

    scenario.deliver(raw)
    hostile_at = time.monotonic()
    scenario.deliver(control)
    control_at = time.monotonic()
    answered = poll_until(lambda: reply_arrived(scenario, control_id), CONTROL_BUDGET, 0.1)
    control_latency = time.monotonic() - control_at

    def decided() -> bool:
        rows = [r for r in journal(world).letters if r.id not in known]
        return any(r.message_id != control_id and r.state != "claimed" for r in rows)

    poll_until(decided, max(0.0, hostile_at + case.answer.budget - time.monotonic()), 0.1)
    hostile_latency = time.monotonic() - hostile_at
    after = journal(world)
    fresh = [r for r in after.letters if r.id not in known and r.message_id != control_id]
    if any(r.state == "deferred" for r in fresh):
        world.waiting.add(hostile_id)  # it rightly stays in the INBOX
    context = (
        f"[{world.database}/{case.name}] control reply after {control_latency:.2f} s "
        f"(budget {CONTROL_BUDGET:.1f}), hostile letter decided by {hostile_latency:.2f} s; "
        f"rows: {[(r.id, r.state, r.outcome, (r.sender or '')[:40]) for r in fresh]}\n"
        f"daemon log:\n{world.log_since(log_mark)}"
    )
    print(context.splitlines()[0])

    assert world.process is not None and world.process.poll() is None, "daemon died\n" + context
    assert answered, f"the control letter was not answered in time\n{context}"
    assert len(fresh) == 1, f"expected exactly one journal row\n{context}"
    (row,) = fresh
    budget = case.answer.budget
    assert row.state != "claimed", f"the letter was not decided within {budget:.1f} s\n{context}"
    assert row.state != "failed", f"the letter went to the failed folder\n{context}"
    assert row.filed_to != scenario.config.imap.failed_folder, context
    assert scenario.dovecot.message_count(FUND, "Failed") == failed_before, context
    assert after.poison_alerts == before.poison_alerts, f"a failed-letter alert\n{context}"
    assert row.state == case.answer.state, f"state {row.state!r}\n{context}"
    replies = after.replies_to(row.id)
    if case.answer.templates:
        assert len(replies) == 1, f"{len(replies)} replies\n{context}"
        assert replies[0].template_key in case.answer.templates, (
            f"template {replies[0].template_key!r}\n{context}"
        )
        assert replies[0].recipients == [case.answer.reply_to or participant(world)], context
    else:
        assert replies == [], f"replies: {[r.template_key for r in replies]}\n{context}"
        if case.answer.state == "done":
            assert row.outcome == "no_reply", context
            assert row.filed_to == scenario.config.imap.rejected_folder, context
    if case.answer.check is not None:
        case.answer.check(world, row, replies)


def _walk(root: Path) -> Iterator[Path]:
    yield root
    for folder, folders, files in os.walk(root):
        for name in folders + files:
            yield Path(folder) / name


def test_state_is_private_after_a_run_under_umask_022(world: World) -> None:
    """Nothing the daemon wrote (database, archive, store, quarantine, CRL cache, lease) is
    open to other users, although it ran under umask 022; its log holds no SNILS."""
    world.settle()
    scenario = world.scenario
    # An unknown CA's certificate: the quarantine folder gets written too.
    stranger = factory.make_ca("Чужой УЦ", slot=4)
    raw = certificate_letter(world, issued_now(stranger), "quarantine")
    scenario.deliver(raw)
    assert poll_until(lambda: reply_arrived(scenario, message_id_of(raw)), 30, 0.1)
    world.trickle.stop()  # lets a daemon stuck on the trickle stop at all
    world.stop()
    config = scenario.config
    roots = {
        config.general.state_dir, config.certificate_store, config.quarantine_dir,
        config.archive_dir, config.crl_cache_dir, config.crl_drop_dir,
    }  # fmt: skip
    if config.database_url.startswith("sqlite:///"):
        roots.add(Path(config.database_url.removeprefix("sqlite:///")))
    for expected in (config.archive_dir, config.certificate_store, config.quarantine_dir):
        assert expected.is_dir(), f"{expected} was never written: the walk would prove nothing"
    written = {path for root in roots if root.exists() for path in _walk(root)}
    open_to_others = sorted(
        f"{stat.filemode(path.lstat().st_mode)} {path}"
        for path in written
        if path.lstat().st_mode & 0o007
    )
    assert open_to_others == [], "open to other users:\n" + "\n".join(open_to_others)
    assert not world.stderr_seen_snils, "the daemon logged the participant's SNILS"
