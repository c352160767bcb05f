"""The daemon: watch the mailbox, process each letter exactly once, send replies, file letters.

One pass over the mailbox (:meth:`Daemon.sync`):

1. ``UID SEARCH ALL`` after every (re)connect and every wake-up (IDLE is only a hint);
2. letters already journaled are only filed (a crash may have come between the
   commit and the MOVE); ``leave`` letters and deferred ones stay put;
3. a new letter is claimed in the journal (attempt counter), processed in one
   transaction, then moved to the processed/rejected folder; a letter whose
   processing started ``daemon.max_attempts`` times goes to the failed folder
   and administrators are alerted;
4. the outbox is flushed.

Scheduled jobs: the outbox, the CRL refresh (followed by the revocation watch,
:mod:`mailbot.app.revocation_watch`), deferred letters' retries
(:mod:`mailbot.app.deferral`, every ``crl.retry_minutes``), housekeeping,
expiry reminders, the administrators' periodic report (:mod:`mailbot.app.report`) and,
when ``trust_list.url`` is set, the refresh of the list of accredited CAs
(:mod:`mailbot.app.trust_list_refresh`, every ``trust_list.refresh_hours``).

Any IMAP error closes the connection and reconnects with backoff. Only the
holder of the database lease works; a standby waits and takes over.

systemd (``Type=notify``) hears the truth: ``READY=1`` as soon as the daemon is
up, holding the lease or not, so a standby is "active (running)" with the
status ``standby, waiting for the lease`` instead of timing out in
"activating"; the status turns ``active: ...`` when the lease is ours, back to
standby when it is lost, and after each pass that processed letters tells how
many were processed since start and the outbox backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailbot.app import deferral, housekeeping, reminders, report
from mailbot.app.assembly import crl_store, load_rules_and_templates, make_processor
from mailbot.app.crl_refresh import refresh_crls
from mailbot.app.crl_status import crl_ages
from mailbot.app.letter_turns import Turn, TurnResult, Verdict
from mailbot.app.letters import Following, LetterProcessor, LetterSource
from mailbot.app.outbox_status import outbox_backlog
from mailbot.app.revocation_watch import RevocationWatch
from mailbot.app.states import Filing, NoVerdict
from mailbot.app.trust_list_refresh import refresh_trust_list
from mailbot.backoff import Backoff
from mailbot.config import Config
from mailbot.daemon.decider import Decider, DecisionsUnavailable, make_decider
from mailbot.daemon.filing import PendingFilings
from mailbot.daemon.metrics import CRASHED, MailbotMetrics
from mailbot.daemon.metrics_server import start_metrics_server
from mailbot.daemon.metrics_textfile import carry_over, write_textfile
from mailbot.daemon.prefetch import Prefetch
from mailbot.daemon.systemd import (
    notify_ready,
    notify_reloading,
    notify_status,
    notify_stopping,
    notify_watchdog,
    watchdog_interval,
)
from mailbot.directory.engine import engine_from_config
from mailbot.directory.lease import Lease, acquire, lease_for
from mailbot.directory.session import ensure_current, session_factory
from mailbot.folders import prepare_folders
from mailbot.log import bind_letter, get_logger
from mailbot.mail.imap import MailboxClient, MailboxError
from mailbot.mail.outbox import OutboxSender
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS

log = get_logger(__name__)

#: Decided letters are moved out of the mailbox in batches of this many (and at a pass's end).
FILE_EVERY_LETTERS = 25
#: During a pass, replies gather this long before they are sent together.
SEND_GATHER_SECONDS = 0.2
#: The systemd status of a daemon that waits for another mailbot's lease.
STANDBY_STATUS = "standby, waiting for the lease"


@dataclass(frozen=True)
class _Fetched:
    """A new letter as fetched: all of it, or only its header when it is too large."""

    uid: int
    raw: bytes
    #: The server's size when *raw* is only the header, else None.
    declared_size: int | None
    #: Its archive copy (None when writing it failed: the decision writes it then).
    archived: Path | None


@dataclass(frozen=True)
class _Parts:
    """What a running daemon works with, built once its database is known to be current."""

    engine: Engine
    #: The daemon's own processor: the jobs' (and the letters' with ``decide_in = "thread"``).
    processor: LetterProcessor
    decider: Decider
    outbox: OutboxSender
    watch: RevocationWatch
    lease: Lease


class Daemon:
    """``mailbot run``: the around-the-clock process (or one pass with ``once``)."""

    def __init__(
        self,
        config: Config,
        once: bool = False,
        metrics: MailbotMetrics | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.config = config
        self.once = once
        #: "Now" for the jobs that work by the calendar (reminders, the report) and for the
        #: outbox that sends their letters (tests pin it; letters are processed by real time).
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        #: This process's metrics (served over HTTP, or written to the textfile with ``once``).
        self.metrics = metrics or MailbotMetrics()
        self.stop = asyncio.Event()
        self._parts: _Parts | None = None
        self._flush_lock = asyncio.Lock()
        #: The background sending task of a pass (see :meth:`_send_soon`).
        self._sender: asyncio.Task[None] | None = None
        self._send_again = False
        #: Set by jobs that decided letters: the mailbox loop stops waiting and files them.
        self.wake = asyncio.Event()
        #: How often deferred letters are retried (tests shorten it below a minute).
        self.deferred_retry_every = dt.timedelta(minutes=config.crl.retry_minutes)
        #: For the systemd status: letters processed since start, the last outbox backlog.
        self._processed = 0
        self._outbox_backlog = 0
        self._ready_sent = False
        self._folders = {
            Filing.PROCESSED: config.imap.processed_folder,
            Filing.REJECTED: config.imap.rejected_folder,
            Filing.FAILED: config.imap.failed_folder,
        }

    @property
    def processor(self) -> LetterProcessor | None:
        """The letter processor once the daemon has started (None before)."""
        return self._parts.processor if self._parts is not None else None

    @property
    def watch(self) -> RevocationWatch | None:
        """The revocation watch once the daemon has started (None before)."""
        return self._parts.watch if self._parts is not None else None

    @property
    def _running(self) -> _Parts:
        # Jobs and the mailbox loop run only inside run(), after the parts are built.
        if self._parts is None:
            raise RuntimeError("the daemon has not started")
        return self._parts

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT) or, with ``once``, for one pass. Returns 0."""
        config = self.config
        # Before anything writes (the SQLite file, the lease): every folder with its mode.
        prepare_folders(config)
        engine = engine_from_config(config)
        ensure_current(engine)
        sessions = session_factory(engine)
        processor = make_processor(config, sessions)
        parts = self._parts = _Parts(
            engine=engine,
            processor=processor,
            decider=make_decider(config, processor),
            # Each "sent" mark commits right after its 250: a daemon killed again and
            # again (OOM, a crash loop) must never send a reply a third time, and a
            # batch of unrecorded marks left by one kill is resent by the next life,
            # each resend a fresh window for the next kill (docs/decisions.md, Outbox).
            outbox=OutboxSender(config, sessions, OUTBOX_ALERTS, self.clock, marks_max_rows=1),
            watch=RevocationWatch(config, sessions, processor.templates),
            lease=lease_for(engine, config.general.instance_name, config.general.state_dir),
        )
        self._install_signal_handlers()
        metrics_server = await start_metrics_server(config.metrics, self.metrics)
        textfile = config.metrics.textfile if self.once else None
        worked = False  # only a run that held the lease writes the textfile
        scheduler: AsyncIOScheduler | None = None
        # Fed from the start: READY=1 comes before the lease, and systemd's
        # watchdog runs from READY on, so a standby must ping too.
        watchdog = None if self.once else self._start_watchdog()
        try:
            if self.once:
                if not parts.lease.try_acquire():
                    log.info("run.once.skipped", reason="another mailbot holds the mailbox")
                    return 0
                if textfile is not None:
                    carry_over(self.metrics, textfile)
            elif not await acquire(
                parts.lease, self.stop, config.daemon.lease_poll_seconds, self._report_standby
            ):
                return 0
            worked = True
            self._set_working(True)
            await self._resume_outbox()
            # Started now, not at the first letter: it gets ready while we log in to IMAP.
            await parts.decider.start()
            self._report_active()
            if self.once:
                await self._one_pass()
            else:
                scheduler = self._start_scheduler()
                await self._serve()
        finally:
            notify_stopping()
            if watchdog is not None:
                watchdog.cancel()
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await self._sending_done()
            with contextlib.suppress(Exception):
                await parts.decider.close()
            # Only the lease holder sends: a standby stopped before it ever held the
            # lease (or after losing it) would claim rows the active daemon is sending.
            with contextlib.suppress(Exception):
                if parts.lease.still_held():
                    await self.flush_outbox()
            with contextlib.suppress(Exception):
                await parts.outbox.close()  # QUIT on the kept SMTP connection
            if metrics_server is not None:
                await metrics_server.close()
            if worked and textfile is not None:
                await asyncio.to_thread(self._write_textfile, textfile)
            parts.lease.release()
            parts.engine.dispose()
            self._set_working(False)
            log.info("daemon.stopped")
        return 0

    async def _resume_outbox(self) -> None:
        """We are the only flusher now: claims of a flusher that died are void.

        What it left waiting (perhaps a reply on the wire, unrecorded) is sent at
        once, each row recorded right after its 250, before the decision process
        starts and the first pass: a daemon killed again during that resend would
        send a row a third time, and the process's start (a second of CPU) beside
        the resend made that window wider (the random-SIGKILL test saw it on
        PostgreSQL).
        """
        if await asyncio.to_thread(self._running.outbox.resume):
            await self._guarded(self.flush_outbox)()

    def _set_working(self, working: bool) -> None:
        """The lease is ours (or no longer): ``mailbot_up`` and the CRL ages follow.

        A standby reports no CRL age: its cache is not refreshed (only the lease
        holder's jobs run) and would raise false alarms.
        """
        self.metrics.up.set(1 if working else 0)
        if not working:
            self.metrics.crl_age.watch(None)
            return
        sessions, store = self._running.processor.sessions, crl_store(self.config)
        self.metrics.crl_age.watch(lambda: crl_ages(sessions, store))

    def _write_textfile(self, path: Path) -> None:
        """Timer mode: the run's metrics for node_exporter; a failure is logged, not raised."""
        try:
            write_textfile(self.metrics, path)
        except OSError as exc:  # the letters are done; the stale file's mtime tells the rest
            log.error("metrics.textfile_failed", path=str(path), error=str(exc))

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _request_stop(self, signum: int) -> None:
        # The letter in hand is finished; the loops check the flag between letters.
        log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.stop.set()

    def reload(self) -> None:
        """SIGHUP: load rules and templates again; keep the old ones if the new are invalid."""
        processor = self._running.processor
        notify_reloading()
        try:
            routes, templates = load_rules_and_templates(self.config)
        except Exception as exc:  # RulesError, TemplateError, OSError: report and keep going
            log.error("reload.failed", error=str(exc))
            notify_ready("reload failed; old rules and templates kept")
            return
        processor.routes, processor.templates = routes, templates
        self._running.decider.reload(routes, templates)
        log.info("reload.done", rules=str(self.config.rules_dir))
        notify_ready("rules and templates reloaded")

    # -- the mailbox loop ----------------------------------------------------------------

    async def _one_pass(self) -> None:
        try:
            async with MailboxClient(self.config.imap) as client:
                self.metrics.imap_connected.set(1)
                await client.ensure_folders(list(self._folders.values()))
                await self.sync(client)
        except MailboxError:
            self.metrics.imap_connected.set(0)
            raise
        # Left at 1 after a good pass: the timer's textfile, written at the run's end,
        # says whether this run reached the mailbox (0 would alert after every run).
        # A systemd timer runs only --once: without this its reminders and reports never go.
        await self._guarded(self.send_reminders)()
        await self._guarded(self.send_report)()
        await self.flush_outbox()

    async def _serve(self) -> None:
        backoff = Backoff()
        lease = self._running.lease
        while not self.stop.is_set():
            if not lease.still_held():
                log.warning("lease.lost", detail="standing by until the lease is ours again")
                self._set_working(False)
                self._report_standby()
                if not await acquire(lease, self.stop, self.config.daemon.lease_poll_seconds):
                    return
                self._set_working(True)
                await self._resume_outbox()
                self._report_active()
            try:
                async with MailboxClient(self.config.imap) as client:
                    self.metrics.imap_connected.set(1)
                    self._report_active()
                    await client.ensure_folders(list(self._folders.values()))
                    backoff.reset()
                    while not self.stop.is_set() and lease.still_held():
                        # Until a pass finds nothing new: a letter that arrived during
                        # a pass may already have been announced (and that unsolicited
                        # EXISTS dropped by aioimaplib), so IDLE would not report it.
                        while (processed := await self.sync(client)) and not self.stop.is_set():
                            self._processed += processed
                            await self.flush_outbox()
                            self._report_active()
                        await self.flush_outbox()
                        await self._wait_for_mail(client)
            except MailboxError as exc:
                self.metrics.imap_connected.set(0)
                delay = backoff.next_delay()
                log.warning("imap.reconnect", error=str(exc), retry_in=round(delay, 1))
                notify_status(f"IMAP unavailable: {exc}")
                await self._sleep(delay)
            except SQLAlchemyError as exc:
                self.metrics.imap_connected.set(0)
                delay = backoff.next_delay()
                log.warning("database.unavailable", error=str(exc).splitlines()[0], retry_in=delay)
                await self._sleep(delay)
            except DecisionsUnavailable as exc:
                self.metrics.imap_connected.set(0)
                delay = backoff.next_delay()
                log.error("decider.unavailable", error=str(exc), retry_in=round(delay, 1))
                await self._sleep(delay)
        self.metrics.imap_connected.set(0)

    # -- what systemd is told ------------------------------------------------------------

    def _report_standby(self) -> None:
        """Another mailbot holds the lease: up (``READY=1``), but standing by."""
        self._report(STANDBY_STATUS)

    def _report_active(self) -> None:
        """The lease is ours: the status says what was done since start (no extra query)."""
        self._report(
            f"active: {self._processed} letter(s) processed since start, "
            f"outbox backlog {self._outbox_backlog}"
        )

    def _report(self, status: str) -> None:
        # READY=1 once: a repeated one is harmless, but would read as a reload's end.
        if self._ready_sent:
            notify_status(status)
        else:
            notify_ready(status)
            self._ready_sent = True

    async def _wait_for_mail(self, client: MailboxClient) -> None:
        """IDLE (or poll) until new mail, the IDLE period ends, or a stop is requested."""
        # IDLE is a hint: never wait longer than the safety resync interval.
        imap = self.config.imap
        idle = asyncio.create_task(
            client.wait_for_change(min(imap.idle_seconds, imap.poll_seconds))
        )
        stopped = asyncio.create_task(self.stop.wait())
        woken = asyncio.create_task(self.wake.wait())
        done, _pending = await asyncio.wait(
            {idle, stopped, woken}, return_when=asyncio.FIRST_COMPLETED
        )
        self.wake.clear()
        woken.cancel()
        if idle in done:
            stopped.cancel()
            idle.result()  # re-raises MailboxError
            return
        stopped.cancel()
        idle.cancel()
        with contextlib.suppress(asyncio.CancelledError, MailboxError):
            await idle

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def sync(self, client: MailboxClient) -> int:
        """One pass over the mailbox; returns how many new letters went to be decided.

        Letters journaled already are only filed. New ones go to the decider in
        order (:mod:`mailbot.daemon.decider`), each with the next one, which its
        decision claims (one commit a letter); while one is decided the letter
        after the next is fetched (:mod:`mailbot.daemon.prefetch`). Replies leave
        while the pass goes on (:meth:`_send_soon`); decided letters are moved in
        batches of :data:`FILE_EVERY_LETTERS` (one UID MOVE per folder).
        """
        mailbox = self.config.imap.mailbox
        processor = self._running.processor
        state = await client.select(mailbox)
        uids = await client.search_uids("ALL")
        known = await asyncio.to_thread(processor.journal_entries, mailbox, state.uidvalidity, uids)
        pending = PendingFilings(self._folders)
        for uid, entry in known.items():
            # Journaled already (a crash came between the commit and the MOVE).
            pending.add(uid, entry.letter_id, entry.filing)
        fresh = [uid for uid in uids if uid not in known]
        sizes = await client.fetch_sizes(fresh) if fresh else {}
        prefetch = Prefetch(lambda uid: self._fetch(client, uid, sizes), fresh)
        decider = self._running.decider
        # Submitted and not yet accounted, oldest first: never more than the decider's depth.
        in_flight: deque[tuple[int, asyncio.Future[TurnResult]]] = deque()
        handled = 0
        try:
            for index, uid in enumerate(fresh):
                if self.stop.is_set():
                    break  # a letter claimed ahead is claimed again next time (one attempt more)
                letter = await prefetch.take(index)  # a fetch's MailboxError surfaces here
                if letter is None:
                    continue  # gone meanwhile
                following = await self._following(prefetch, index + 1, state.uidvalidity)
                prefetch.ahead(index + 2)  # fetched while this one is decided
                source = LetterSource(mailbox, state.uidvalidity, uid)
                turn = Turn(letter.raw, source, letter.declared_size, following, letter.archived)
                in_flight.append((uid, await decider.submit(turn)))
                handled += 1
                while len(in_flight) >= decider.depth:
                    await self._account(*in_flight.popleft(), state.uidvalidity, pending)
                if len(pending) >= FILE_EVERY_LETTERS:
                    await prefetch.quiet()  # IMAP commands never overlap
                    await pending.file(client, processor.mark_filed)
        except asyncio.CancelledError:
            await prefetch.close()
            raise
        except BaseException:
            # Leaving on an error: the letters given to the decider are decided first.
            try:
                while in_flight:
                    await self._account(*in_flight.popleft(), state.uidvalidity, pending)
            finally:
                await prefetch.close()
            raise
        while in_flight:
            await self._account(*in_flight.popleft(), state.uidvalidity, pending)
        await prefetch.close()
        await pending.file(client, processor.mark_filed)
        return handled

    async def _following(
        self, prefetch: Prefetch[_Fetched], index: int, uidvalidity: int
    ) -> Following | None:
        """The letter after this one, if fetched (its claim rides on this letter's decision)."""
        if index >= len(prefetch):
            return None  # this letter is the pass's last
        try:
            letter = await prefetch.get(index)
        except MailboxError:
            return None  # raised at its own turn, after this letter is decided
        if letter is None:
            return None
        source = LetterSource(self.config.imap.mailbox, uidvalidity, letter.uid)
        return Following.of(letter.raw, source)

    async def _fetch(
        self, client: MailboxClient, uid: int, sizes: dict[int, int]
    ) -> _Fetched | None:
        """A new letter's bytes (only its header when it is too large), archived; None if
        it is gone."""
        size = sizes.get(uid)
        too_big = size is not None and size > self.config.limits.max_letter_bytes
        raw = await (client.fetch_headers(uid) if too_big else client.fetch_message(uid))
        if raw is None:
            return None
        # Here, not in the decision: its disk writes wait beside the decisions, not in them.
        archived: Path | None = None
        with contextlib.suppress(OSError):
            archived = await asyncio.to_thread(self._running.processor.archive, raw)
        return _Fetched(uid, raw, size if too_big else None, archived)

    async def _account(
        self,
        uid: int,
        decision: asyncio.Future[TurnResult],
        uidvalidity: int,
        pending: PendingFilings,
    ) -> None:
        """A decided letter's metrics and log line; it joins the batch to file.

        Raises SQLAlchemyError when the database failed while it was decided.
        """
        result = await decision
        with bind_letter(uid=uid, uidvalidity=uidvalidity):
            if result.verdict is Verdict.CRASHED:
                # Logged where it crashed; counted by its claim (max_attempts: poison).
                self.metrics.letters.labels(outcome=CRASHED).inc()
                return
            if result.verdict is Verdict.POISON:
                log.error("letter.poison", letter_id=result.letter_id, detail=result.detail)
                self.metrics.letters.labels(outcome=NoVerdict.FAILED).inc()
            elif result.verdict is Verdict.DECIDED:
                self.metrics.letters.labels(outcome=result.outcome or "").inc()
                log.info(
                    "letter.done",
                    letter_id=result.letter_id,
                    outcome=result.outcome,
                    route=result.route,
                    duration_ms=round(result.seconds * 1000, 1),
                )
        if result.letter_id is not None and result.filing is not None:
            pending.add(uid, result.letter_id, result.filing)
            self._send_soon()

    # -- outbox and scheduled jobs -----------------------------------------------------------

    def _send_soon(self) -> None:
        """Send queued replies in the background while the pass goes on.

        One sending task at a time; a request that comes while it runs makes it
        flush once more, so a reply queued meanwhile does not wait for the next tick.
        """
        if self._sender is not None and not self._sender.done():
            self._send_again = True
            return
        self._sender = asyncio.create_task(self._send_until_done())

    async def _send_until_done(self) -> None:
        gathered = 0.0  # replies queued during the last flush waited this long already
        while True:
            self._send_again = False
            # A burst's replies leave together: one claim and one batch of marks for
            # many letters. A pass's end flushes at once, so a lone letter never waits.
            # A flush that took the whole gathering time gathered enough: a sender
            # that is behind the decisions goes on at once instead of idling.
            await self._sleep(SEND_GATHER_SECONDS - gathered)
            started = time.monotonic()
            try:
                await self.flush_outbox()
            except Exception:  # the scheduled flush retries; the pass must go on
                log.exception("job.failed", job="flush_outbox")
                return
            if not self._send_again:
                return
            gathered = min(time.monotonic() - started, SEND_GATHER_SECONDS)

    async def _sending_done(self) -> None:
        """Wait for the background sending task, if one runs."""
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await self._sender

    async def flush_outbox(self) -> None:
        """Send what is due; one flush at a time."""
        if self._parts is None:
            return
        async with self._flush_lock:
            report = await self._parts.outbox.flush()
        self._outbox_backlog = await asyncio.to_thread(
            outbox_backlog, self._parts.processor.sessions
        )
        self.metrics.outbox_backlog.set(self._outbox_backlog)
        self.metrics.outbox_failed.inc(report.failed)
        if report.sent or report.failed:
            log.info(
                "outbox.flushed", sent=report.sent, failed=report.failed, retried=report.retried
            )

    def _start_scheduler(self) -> AsyncIOScheduler:
        daemon = self.config.daemon
        scheduler = AsyncIOScheduler(timezone=dt.UTC)
        minutes = dt.timedelta(minutes=1)
        outbox_every = dt.timedelta(seconds=daemon.outbox_interval_seconds)
        self._every(scheduler, "outbox", self.flush_outbox, outbox_every, first_in=5)
        crl_every = daemon.crl_refresh_minutes * minutes
        self._every(scheduler, "crl-refresh", self.refresh_crls, crl_every, first_in=5)
        retry_every = self.deferred_retry_every
        self._every(scheduler, "deferred-retry", self.retry_deferred, retry_every, first_in=30)
        daily = dt.timedelta(days=1)
        self._every(scheduler, "housekeeping", self.housekeeping, daily, first_in=60)
        reminders_every = self.config.reminders.interval_minutes * minutes
        self._every(scheduler, "reminders", self.send_reminders, reminders_every, first_in=5)
        report_every = self.config.report.interval_minutes * minutes
        self._every(scheduler, "report", self.send_report, report_every, first_in=10)
        if self.config.trust_list.url:
            tsl_every = dt.timedelta(hours=self.config.trust_list.refresh_hours)
            self._every(scheduler, "trust-list", self.refresh_trust_list, tsl_every, first_in=30)
        scheduler.start()
        return scheduler

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        """Ping systemd's watchdog from the event loop (a hung loop stops the pings)."""
        interval = watchdog_interval()
        if not interval:
            return None

        async def feed() -> None:
            while True:
                notify_watchdog()
                await asyncio.sleep(interval)

        return asyncio.create_task(feed(), name="watchdog")

    def _every(
        self,
        scheduler: AsyncIOScheduler,
        name: str,
        job: Callable[[], Awaitable[Any]],
        interval: dt.timedelta,
        first_in: float,
    ) -> None:
        """Add *job* (lease-guarded, never overlapping itself) every *interval*.

        *name* is the job's id and name, so a line APScheduler logs names the job
        rather than ``Daemon._guarded.<locals>.run``.
        """
        scheduler.add_job(
            self._guarded(job), "interval", seconds=interval.total_seconds(), id=name, name=name,
            max_instances=1, coalesce=True,
            next_run_time=dt.datetime.now(dt.UTC)
            + min(dt.timedelta(seconds=first_in), interval),
        )  # fmt: skip

    def _guarded(self, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if not (self._parts and self._parts.lease.still_held()):
                return
            try:
                await job()
            except Exception:
                log.exception("job.failed", job=job.__name__)

        run.__name__ = job.__name__
        return run

    async def refresh_crls(self) -> None:
        """Refresh CRLs (due ones, and newer ones), then run the revocation watch."""
        revoked = await asyncio.to_thread(self._refresh_crls)
        if revoked:
            await self.flush_outbox()  # notices and the alert go out now, not at the next tick

    def _refresh_crls(self) -> int:
        parts = self._running
        horizon = dt.datetime.now(dt.UTC) + dt.timedelta(
            minutes=self.config.daemon.crl_refresh_minutes * 2
        )
        processor = parts.processor
        # The ages themselves are read from the cache at scrape time (crl_status).
        for crl in refresh_crls(processor.sessions, processor.crl_source_for, horizon):
            if crl.problem is not None:
                log.warning("crl.refresh_failed", ca=crl.ca_name, detail=crl.problem)
        # New CRLs (fetched here, by a letter, or dropped by hand) against registered certificates.
        return len(parts.watch.run().revoked)

    async def refresh_trust_list(self) -> None:
        """Download and import the list of accredited CAs if it changed (failures alerted)."""
        result = await asyncio.to_thread(
            refresh_trust_list, self.config, self._running.processor.sessions
        )
        if result.error is not None or (result.report is not None and result.report.alert_queued):
            await self.flush_outbox()

    async def retry_deferred(self) -> None:
        """Decide letters waiting for a CRL again; file what got decided right away."""
        report = await asyncio.to_thread(deferral.retry_and_alert, self._running.processor)
        for _letter_id, outcome in report.decided:
            self.metrics.letters.labels(outcome=outcome).inc()
        await self.flush_outbox()
        if report.decided:
            self.wake.set()

    async def housekeeping(self) -> None:
        """Retention of the raw-letter archive and the journal."""
        await asyncio.to_thread(housekeeping.run, self.config, self._running.processor.sessions)

    async def send_reminders(self) -> None:
        """Expiry reminders that are due: mark expired certificates, queue and send letters."""
        if not self.config.reminders.enabled:
            return
        processor = self._running.processor
        report = await asyncio.to_thread(
            reminders.send_due_reminders,
            self.config,
            processor.sessions,
            processor.templates,  # reloaded on SIGHUP like the replies
            self.clock(),
        )
        if report.sent:
            await self.flush_outbox()

    async def send_report(self) -> None:
        """The administrators' periodic report, once its period is due and if not yet sent."""
        config = self.config
        if not (config.report.enabled and config.admin.alert_addresses):
            return
        now = self.clock()
        result = await asyncio.to_thread(
            report.send_report,
            config,
            self._running.processor.sessions,
            report.current_period(config, now),
            now,
        )
        if result.sent:
            await self.flush_outbox()
