"""The IMAP mailbox client: talk to the reestrin@ mailbox safely, nothing more.

Built on aioimaplib 2.0.3, whose traps shape this module (see
``docs/decisions.md``, "IMAP client"):

* a lost connection raises nothing and pending calls hang, so every call runs
  under a deadline *and* races a "connection lost" event set by ``conn_lost_cb``;
  after any loss or timeout the client is broken and every later call raises
  :class:`MailboxConnectionError` at once (callers reconnect with a new client);
* NO/BAD answers do not raise, so every answer is checked here;
* responses of ~700+ lines crash its recursive parser, so FETCH/STORE/COPY/MOVE
  name at most :data:`MAX_UIDS_PER_COMMAND` UIDs;
* arguments are sent verbatim, so mailbox names are encoded and quoted here.

IDLE is only a wake-up hint: after :meth:`MailboxClient.wait_for_change`
returns, callers search again whatever it returned. A daemon loop::

    backoff = Backoff(base=1, cap=300)
    while True:
        try:
            async with MailboxClient(config.imap) as client:
                await client.ensure_folders([...])
                state = await client.select()
                backoff.reset()
                while True:
                    for uid in await client.search_uids():
                        ...  # key letters on (state.name, state.uidvalidity, uid)
                    await client.wait_for_change()
        except MailboxError:
            await backoff.sleep()
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Collection, Iterable
from types import TracebackType
from typing import Any, TypeVar

import aioimaplib

from mailbot.config.schema import ImapConfig
from mailbot.config.secrets import SecretError
from mailbot.log import get_logger
from mailbot.mail.imap_codec import (
    MAX_UIDS_PER_COMMAND,
    MailboxState,
    batches,
    check_keyword,
    check_uids,
    is_bye,
    mailbox_argument,
    parse_fetch,
    parse_search,
    parse_select,
    quote,
    uid_set,
)

__all__ = [
    "MAX_UIDS_PER_COMMAND",
    "MailboxClient",
    "MailboxCommandError",
    "MailboxConnectionError",
    "MailboxError",
    "MailboxState",
]

log = get_logger(__name__)
T = TypeVar("T")

#: LOGOUT is a courtesy; never wait long for it.
_LOGOUT_TIMEOUT = 5.0
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


class MailboxError(Exception):
    """Any failure talking to the mailbox. Callers drop the client and reconnect."""


class MailboxConnectionError(MailboxError):
    """The connection failed, was lost, or a command timed out; the client is unusable."""


class MailboxCommandError(MailboxError):
    """The server refused a command (NO/BAD) or answered something unusable."""

    def __init__(self, command: str, result: str, text: str) -> None:
        super().__init__(f"{command} refused: {result} {text}".strip())
        self.command = command
        self.result = result
        self.text = text


def _is_loopback(host: str) -> bool:
    return host in {"localhost", "::1"} or host.startswith("127.")


def make_ssl_context(config: ImapConfig) -> ssl.SSLContext:
    """TLS settings for IMAPS: the configured CA file (else the system CAs), TLS 1.2+."""
    cafile = str(config.ca_file) if config.ca_file is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not config.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _response_text(response: Any) -> str:
    lines = getattr(response, "lines", None) or [b""]
    last = lines[-1]
    return bytes(last).decode("utf-8", "replace") if isinstance(last, bytes | bytearray) else ""


def _consume(task: asyncio.Future[Any]) -> None:
    # Abandoned tasks must not log "exception was never retrieved".
    if not task.cancelled():
        task.exception()


class MailboxClient:
    """One IMAP connection to the configured mailbox.

    Use as ``async with MailboxClient(config) as client:``. Every method raises
    :class:`MailboxError` on failure; after a :class:`MailboxConnectionError`
    the client stays broken and a new one must be made.

    *password* overrides ``config.password`` (tests). *ignore_capabilities*
    makes the client behave as if the server lacked them (e.g. ``{"MOVE"}`` to
    use the COPY/STORE/EXPUNGE path, ``{"IDLE"}`` to poll).
    """

    def __init__(
        self,
        config: ImapConfig,
        *,
        password: str | None = None,
        ignore_capabilities: Collection[str] = (),
    ) -> None:
        if config.tls == "none" and not _is_loopback(config.host):
            raise ValueError("plain IMAP (tls = 'none') is allowed only on the loopback address")
        self.config = config
        self._password = password
        self._ignored = frozenset(c.upper() for c in ignore_capabilities)
        self._timeout = float(config.command_timeout_seconds)
        self._imap: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()
        self._broken: str | None = None
        self._closing = False
        self._capabilities: frozenset[str] = frozenset()
        self._selected: MailboxState | None = None

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> MailboxClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.logout()

    @property
    def capabilities(self) -> frozenset[str]:
        """The server's capabilities after login (upper case), minus ignored ones."""
        return self._capabilities

    @property
    def selected(self) -> MailboxState | None:
        """The state of the selected mailbox, if one is selected."""
        return self._selected

    @property
    def usable(self) -> bool:
        """True while connected and not broken."""
        return self._imap is not None and self._broken is None

    async def connect(self) -> None:
        """Open the connection (IMAPS or loopback plain), LOGIN and read CAPABILITY."""
        if self._imap is not None or self._broken is not None:
            # Single use: the lost-connection state must never leak into a new connection.
            raise RuntimeError("a MailboxClient connects once; make a new one to reconnect")
        try:
            password = (
                self._password
                if self._password is not None
                else self.config.password.resolve().reveal()
            )
        except SecretError as exc:
            raise MailboxError(f"cannot read the mailbox password: {exc}") from None
        context = make_ssl_context(self.config) if self.config.tls == "implicit" else None
        self._imap = aioimaplib.IMAP4(
            host=self.config.host,
            port=self.config.port,
            timeout=self._timeout,
            conn_lost_cb=self._on_connection_lost,
            ssl_context=context,
        )
        try:
            await self._call("connect", self._imap.wait_hello_from_server())
            response = await self._call(
                "LOGIN", self._imap.login(quote(self.config.user), password)
            )
            if response.result != "OK":
                raise MailboxCommandError("LOGIN", response.result, _response_text(response))
            await self._call("CAPABILITY", self._imap.protocol.capability())
        except BaseException:
            await self._close()
            raise
        offered = {c.upper() for c in self._imap.protocol.capabilities} - {"CAPABILITY"}
        self._capabilities = frozenset(offered - self._ignored)
        log.info(
            "imap_connected",
            host=self.config.host,
            port=self.config.port,
            tls=self.config.tls,
            user=self.config.user,
        )

    async def logout(self) -> None:
        """LOGOUT (best effort, bounded) and close the connection. Never raises."""
        if self._imap is None:
            return
        self._closing = True
        try:
            if self._broken is None:
                with contextlib.suppress(MailboxError):
                    await self._call(
                        "LOGOUT", self._imap.logout(), timeout=min(_LOGOUT_TIMEOUT, self._timeout)
                    )
        finally:
            await self._close()  # also when cancelled at shutdown

    async def _close(self) -> None:
        imap, self._imap = self._imap, None
        self._selected = None
        if imap is None:
            return
        self._closing = True
        if self._broken is None:
            self._broken = "closed"
        waiter = getattr(imap, "_idle_waiter", None)
        if waiter is not None:
            waiter.cancel()
        transport = imap.protocol.transport
        if transport is not None:
            transport.abort()
        # aioimaplib keeps background tasks (connect, welcome, IDLE) that may never end.
        tasks = [imap._client_task, *imap.tasks, *imap.protocol.tasks]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1.0)

    def _on_connection_lost(self, exc: Exception | None) -> None:
        if self._broken is None:
            self._broken = f"connection lost ({exc or 'closed by the server'})"
        self._lost.set()
        if not self._closing:
            log.warning("imap_connection_lost", reason=self._broken)

    def _mark_broken(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        self._lost.set()
        if self._imap is not None and self._imap.protocol.transport is not None:
            self._imap.protocol.transport.abort()

    # -- the one way every network call is made ------------------------------

    async def _race(
        self, what: str, awaitable: Awaitable[T], timeout: float
    ) -> tuple[bool, T | None]:
        """Await *awaitable* against the lost-connection event and *timeout*.

        Returns ``(True, result)`` or ``(False, None)`` on timeout (the
        awaitable is cancelled). Raises MailboxConnectionError when the
        connection is lost, and maps library/socket errors to MailboxError.
        """
        if self._imap is None or self._broken is not None:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: avoid "never awaited" warnings
            if self._imap is None:
                raise RuntimeError(f"{what}: not connected")
            raise MailboxConnectionError(f"{what}: {self._broken}")
        task: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
        lost: asyncio.Future[Any] = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            # Cancelled by our caller mid-command: the protocol state is unknown.
            task.cancel()
            task.add_done_callback(_consume)
            self._mark_broken(f"{what} interrupted")
            raise
        finally:
            lost.cancel()
        if task in done:
            try:
                return True, task.result()
            except (aioimaplib.CommandTimeout, TimeoutError) as exc:
                self._mark_broken(f"{what} timed out")
                raise MailboxConnectionError(f"{what} timed out") from exc
            except (aioimaplib.AioImapException, OSError, EOFError) as exc:
                # Includes TLS certificate failures and refused connections.
                self._mark_broken(f"{what} failed: {exc}")
                raise MailboxConnectionError(f"{what} failed: {exc}") from exc
        task.cancel()
        task.add_done_callback(_consume)
        if lost in done:
            raise MailboxConnectionError(f"{what}: {self._broken or 'connection lost'}")
        return False, None

    async def _call(self, what: str, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await one network call under the command deadline; a timeout breaks the client."""
        limit = self._timeout if timeout is None else timeout
        finished, result = await self._race(what, awaitable, limit)
        if not finished:
            self._mark_broken(f"{what} timed out after {limit:g} s")
            raise MailboxConnectionError(f"{what} timed out after {limit:g} s")
        return result  # type: ignore[return-value]  # finished implies a result

    async def _command(
        self, what: str, awaitable: Awaitable[Any], timeout: float | None = None
    ) -> Any:
        """:meth:`_call` plus the check that the server answered OK."""
        response = await self._call(what, awaitable, timeout)
        if response.result != "OK":
            raise MailboxCommandError(what, response.result, _response_text(response))
        return response

    def _require_selected(self) -> aioimaplib.IMAP4:
        if self._imap is None:
            raise RuntimeError("not connected")
        if self._selected is None:
            raise RuntimeError("select a mailbox first")
        return self._imap

    def _require_connected(self) -> aioimaplib.IMAP4:
        if self._imap is None:
            raise RuntimeError("not connected")
        return self._imap

    # -- mailboxes ----------------------------------------------------------

    async def select(self, mailbox: str | None = None) -> MailboxState:
        """SELECT *mailbox* (default: the configured one) and report UIDVALIDITY/UIDNEXT/EXISTS."""
        imap = self._require_connected()
        name = mailbox or self.config.mailbox
        # A failed SELECT closes the previous mailbox on the server (RFC 3501 §6.3.1).
        self._selected = None
        response = await self._command("SELECT", imap.select(mailbox_argument(name)))
        try:
            state = parse_select(name, response.lines)
        except ValueError as exc:
            raise MailboxCommandError("SELECT", "OK", str(exc)) from None
        self._selected = state
        return state

    async def folder_exists(self, name: str) -> bool:
        """True when LIST finds a mailbox named exactly *name*."""
        imap = self._require_connected()
        response = await self._command("LIST", imap.list('""', mailbox_argument(name)))
        return any(bytes(line).strip() for line in response.lines[:-1])

    async def ensure_folders(self, names: Iterable[str]) -> list[str]:
        """CREATE the folders that are missing, SUBSCRIBE to all; return the created ones."""
        created: list[str] = []
        imap = self._require_connected()
        for name in names:
            if any(ch in name for ch in "*%"):
                raise ValueError(f"wildcards are not allowed in a folder name: {name!r}")
            if not await self.folder_exists(name):
                response = await self._call("CREATE", imap.create(mailbox_argument(name)))
                # Another instance may have created it meanwhile ([ALREADYEXISTS]).
                if response.result != "OK" and not await self.folder_exists(name):
                    raise MailboxCommandError("CREATE", response.result, _response_text(response))
                if response.result == "OK":
                    created.append(name)
                    log.info("imap_folder_created", folder=name)
            await self._command("SUBSCRIBE", imap.subscribe(mailbox_argument(name)))
        return created

    # -- searching and fetching -----------------------------------------------

    async def search_uids(self, criteria: str = "ALL") -> list[int]:
        """UID SEARCH in the selected mailbox; sorted UIDs. *criteria* is ASCII IMAP syntax.

        Every letter delivered before the call is included (a NOOP syncs first).
        """
        imap = self._require_selected()
        if not criteria.isascii() or any(ch in criteria for ch in "\r\n\0"):
            raise ValueError("search criteria must be one line of ASCII")
        # A server answers SEARCH from its view of the mailbox as of the last sync and
        # announces new letters with EXISTS only afterwards (which aioimaplib drops):
        # NOOP first, so a letter delivered before this call is always found.
        await self._command("NOOP", imap.noop())
        # charset=None: no "CHARSET utf-8", which some servers reject for ASCII criteria.
        response = await self._command("UID SEARCH", imap.uid_search(criteria, charset=None))
        return parse_search(response.lines)

    async def search_uids_without_keyword(self, keyword: str) -> list[int]:
        """UIDs of the letters that do not carry *keyword* (e.g. ``$MailbotDone``)."""
        return await self.search_uids(f"UNKEYWORD {check_keyword(keyword)}")

    async def fetch_sizes(self, uids: Iterable[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID that still exists (missing UIDs are left out)."""
        imap = self._require_selected()
        wanted = check_uids(uids)
        sizes: dict[int, int] = {}
        for batch in batches(wanted):
            response = await self._command(
                "UID FETCH", imap.uid("fetch", uid_set(batch), "(UID RFC822.SIZE)")
            )
            for record in parse_fetch(response.lines):
                uid, size = record.uid, record.size
                if uid is not None and size is not None and uid in batch:
                    sizes[uid] = size
        return sizes

    async def _fetch_literal(
        self, uid: int, item: str, literal: str, timeout: float | None
    ) -> bytes | None:
        imap = self._require_selected()
        (uid,) = check_uids([uid])
        response = await self._command(
            "UID FETCH", imap.uid("fetch", str(uid), f"(UID {item})"), timeout
        )
        for record in parse_fetch(response.lines):
            if record.uid == uid and literal in record.literals:
                return record.literals[literal]
        return None

    async def fetch_message(self, uid: int, timeout: float | None = None) -> bytes | None:
        """The letter's exact bytes (``BODY.PEEK[]``: \\Seen is not set), or None if it is gone.

        Check :meth:`fetch_sizes` first to refuse oversized letters. *timeout*
        overrides the command deadline for very large letters.
        """
        return await self._fetch_literal(uid, "BODY.PEEK[]", "BODY[]", timeout)

    async def fetch_headers(self, uid: int) -> bytes | None:
        """The letter's header block (``BODY.PEEK[HEADER]``), or None if it is gone."""
        return await self._fetch_literal(uid, "BODY.PEEK[HEADER]", "BODY[HEADER]", None)

    # -- changing the mailbox -------------------------------------------------

    async def move(self, uids: Iterable[int], folder: str) -> None:
        """Move letters to *folder*: UID MOVE, or COPY + STORE \\Deleted + EXPUNGE without MOVE.

        Batched; if it fails half-way, some letters have moved and the rest not
        (callers re-search). Without UIDPLUS the fallback's plain EXPUNGE also
        removes other letters already flagged \\Deleted.
        """
        imap = self._require_selected()
        target = mailbox_argument(folder)
        for batch in batches(check_uids(uids)):
            members = uid_set(batch)
            if "MOVE" in self._capabilities:
                await self._command("UID MOVE", imap.uid("move", members, target))
                continue
            await self._command("UID COPY", imap.uid("copy", members, target))
            await self._command(
                "UID STORE", imap.uid("store", members, "+FLAGS.SILENT", r"(\Deleted)")
            )
            if "UIDPLUS" in self._capabilities:
                await self._command("UID EXPUNGE", imap.uid("expunge", members))
            else:
                await self._command("EXPUNGE", imap.expunge())

    async def add_keyword(self, uids: Iterable[int], keyword: str) -> None:
        """Set a keyword (``+FLAGS.SILENT``) on letters, for servers where moving is unwanted."""
        imap = self._require_selected()
        flag = f"({check_keyword(keyword)})"
        for batch in batches(check_uids(uids)):
            await self._command(
                "UID STORE", imap.uid("store", uid_set(batch), "+FLAGS.SILENT", flag)
            )

    async def append(self, raw: bytes, folder: str | None = None) -> int | None:
        """APPEND a letter to *folder* (default: the configured mailbox); its UID via UIDPLUS."""
        imap = self._require_connected()
        name = folder or self.config.mailbox
        response = await self._command("APPEND", imap.append(raw, mailbox=mailbox_argument(name)))
        for line in response.lines:
            if m := _APPENDUID.search(bytes(line)):
                return int(m.group(1))
        return None

    # -- waiting for mail -----------------------------------------------------

    async def noop(self) -> None:
        """NOOP: keeps the connection alive and proves it still works."""
        imap = self._require_connected()
        await self._command("NOOP", imap.noop())

    async def wait_for_change(self, timeout: float | None = None) -> bool:
        """Wait until the selected mailbox may have changed; True if the server said so.

        With IDLE: IDLE (re-issued every ``idle_seconds``) until a push or
        *timeout* (default ``idle_seconds``). Without IDLE: sleep
        ``poll_seconds`` (at most *timeout*), NOOP, return False. Either way the
        caller must search again afterwards; a push is only a hint.
        """
        self._require_selected()
        if "IDLE" not in self._capabilities:
            pause = float(self.config.poll_seconds)
            if timeout is not None:
                pause = min(pause, timeout)
            await self._race("poll sleep", asyncio.sleep(pause), pause + 1.0)
            await self.noop()
            return False
        loop = asyncio.get_running_loop()
        total = float(self.config.idle_seconds) if timeout is None else timeout
        deadline = loop.time() + total
        while (remaining := deadline - loop.time()) > 0:
            if await self._idle_once(min(remaining, float(self.config.idle_seconds))):
                return True
        return False

    async def _idle_once(self, seconds: float) -> bool:
        imap = self._require_selected()
        queue = imap.protocol.idle_queue
        self._drain(queue)  # leftovers of an earlier burst would wake us at once
        # idle_start's own stop timer is set beyond ours: we end IDLE ourselves.
        idle_task = await self._call("IDLE", imap.idle_start(timeout=seconds + self._timeout))
        try:
            got, push = await self._race("IDLE", queue.get(), seconds)
            changed = got and push != aioimaplib.STOP_WAIT_SERVER_PUSH
            if got and push is not None and is_bye(push):
                self._mark_broken("the server said BYE")
                raise MailboxConnectionError("IDLE: the server said BYE")
            imap.idle_done()
            await self._command("IDLE done", idle_task)
        except BaseException:
            idle_task.cancel()
            idle_task.add_done_callback(_consume)
            self._mark_broken("IDLE interrupted")
            raise
        # Pushes that arrived between the wait and DONE's answer count too.
        return self._drain(queue) or changed

    def _drain(self, queue: asyncio.Queue[Any]) -> bool:
        """Empty the IDLE queue; True if it held a real push. Raises on BYE."""
        changed = False
        while not queue.empty():
            item = queue.get_nowait()
            if item == aioimaplib.STOP_WAIT_SERVER_PUSH:
                continue
            if is_bye(item):
                self._mark_broken("the server said BYE")
                raise MailboxConnectionError("IDLE: the server said BYE")
            changed = True
        return changed
