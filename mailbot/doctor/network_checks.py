"""The doctor's checks of the servers mailbot talks to: IMAP, SMTP, the CAs' CRL URLs.

Each uses the daemon's own client code (:class:`~mailbot.mail.imap.MailboxClient`,
:class:`~mailbot.mail.smtp_link.SmtpLink`, the assembly's CRL fetcher), so
what works here works for the daemon, and runs under :data:`NETWORK_SECONDS`.
"""

from __future__ import annotations

import asyncio
import io
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from mailbot.app.assembly import crl_fetcher
from mailbot.config import Config
from mailbot.directory.models import CertificationAuthority
from mailbot.directory.session import session_factory
from mailbot.doctor.database import check_database, doctor_engine
from mailbot.doctor.finding import Finding, failed, passed
from mailbot.mail.imap import (
    MailboxClient,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxError,
)
from mailbot.mail.smtp_link import SmtpConnectError, SmtpLink
from mailbot.pki.errors import CrlFetchError

#: A network check gives up after this many seconds, whatever the configured timeouts.
NETWORK_SECONDS = 25.0
#: A CRL URL answers when this much of a body that looks like a CRL has arrived:
#: reachability is the question, not downloading a 40 MB list.
CRL_PROBE_BYTES = 64 * 1024
#: CRL URLs probed at once.
CRL_PARALLEL = 8


def _run_bounded(work: Callable[[], Awaitable[Finding]], what: str, remedy: str) -> Finding:
    """Run the coroutine *work* makes in a fresh event loop, under :data:`NETWORK_SECONDS`."""

    async def bounded() -> Finding:
        try:
            async with asyncio.timeout(NETWORK_SECONDS):
                return await work()
        except TimeoutError:
            return failed(f"{what}: no answer within {NETWORK_SECONDS:g} s", remedy)

    return asyncio.run(bounded())


# ---------------------------------------------------------------------------------- IMAP


def check_imap(config: Config) -> Finding:
    """Connect (TLS as configured), LOGIN, and find the mailbox and the filing folders."""
    imap = config.imap
    where = f"{imap.host}:{imap.port} (tls={imap.tls})"
    reach = "check [imap] host, port and tls, and that the server runs and is reachable"

    async def work() -> Finding:
        try:
            async with MailboxClient(imap) as client:
                if not await client.folder_exists(imap.mailbox):
                    return failed(
                        f"{where}: mailbox {imap.mailbox!r} not found",
                        "check imap.mailbox and imap.user",
                    )
                missing = [
                    name
                    for name in (imap.processed_folder, imap.rejected_folder, imap.failed_folder)
                    if not await client.folder_exists(name)
                ]
        except MailboxCommandError as exc:
            if exc.command == "LOGIN":
                return failed(
                    f"{where}: LOGIN as {imap.user!r} refused: {exc.result} {exc.text}".strip(),
                    "check imap.user and the password in imap.password_env/_file",
                )
            return failed(f"{where}: {exc}", reach)
        except MailboxConnectionError as exc:
            if isinstance(exc.__cause__, ssl.SSLError):
                return failed(f"{where}: {exc}", "check imap.ca_file and the server's certificate")
            return failed(f"{where}: {exc}", reach)
        except MailboxError as exc:  # the password could not be read
            return failed(f"{where}: {exc}", "fix imap.password_env/_file")
        except ValueError as exc:  # plain IMAP to a remote host
            return failed(f"{where}: {exc}", "use tls = 'implicit'")
        note = (
            f"; missing {', '.join(missing)} (the daemon creates them at start)" if missing else ""
        )
        return passed(f"{where}: LOGIN as {imap.user!r}, mailbox {imap.mailbox!r} found{note}")

    return _run_bounded(work, where, reach)


# ---------------------------------------------------------------------------------- SMTP


def check_smtp(config: Config) -> Finding:
    """Connect, EHLO (+ STARTTLS, AUTH as configured), QUIT: the outbox's own link."""
    smtp = config.smtp
    where = f"{smtp.host}:{smtp.port} (tls={smtp.tls})"
    reach = "check [smtp] host, port and tls, and that the server runs and is reachable"

    async def work() -> Finding:
        link = SmtpLink(smtp)
        try:
            await link.client()
        except SmtpConnectError as exc:
            if exc.auth:
                return failed(
                    str(exc), "check smtp.user and the password in smtp.password_env/_file"
                )
            return failed(str(exc), reach)
        await link.close()
        login = f"AUTH as {smtp.user!r}" if smtp.user else "no AUTH"
        return passed(f"{where}: EHLO, {login}, QUIT")

    return _run_bounded(work, where, reach)


# ---------------------------------------------------------------------------------- CRL URLs


class _Enough(Exception):
    """Raised by :class:`_ProbeSink` once the body has proved to be a CRL."""


class _ProbeSink(io.BytesIO):
    """Takes the start of a body, then stops the download."""

    def write(self, data: Any, /) -> int:
        written = super().write(data)
        # The fetcher refuses a body that is no CRL before writing on past its start.
        if self.tell() >= CRL_PROBE_BYTES:
            raise _Enough
        return written


def _active_cas(config: Config) -> list[tuple[str, list[str]]]:
    """Every active CA's name and CRL URLs, from the database."""
    engine = doctor_engine(config)
    try:
        with session_factory(engine)() as session:
            rows = session.scalars(
                select(CertificationAuthority)
                .where(CertificationAuthority.active.is_(True))
                .order_by(CertificationAuthority.name)
            ).all()
            return [(row.name, [str(url) for url in row.crl_urls]) for row in rows]
    finally:
        engine.dispose()


def _probe(config: Config, urls: list[str]) -> dict[str, str | None]:
    """Each URL mapped to None (answers with a CRL) or why not; all by one deadline."""
    fetcher = crl_fetcher(config)
    deadline = time.monotonic() + min(float(fetcher.timeout), NETWORK_SECONDS)

    def one(url: str) -> str | None:
        try:
            fetcher.fetch_into(_ProbeSink(), url, deadline=deadline)
        except _Enough:
            return None
        except CrlFetchError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(max_workers=CRL_PARALLEL, thread_name_prefix="doctor-crl") as pool:
        return dict(zip(urls, pool.map(one, urls), strict=True))


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def check_crl_urls(config: Config) -> Finding:
    """Every active CA has a CRL URL that answers with a CRL (through the daemon's fetcher).

    A CA fails when none of its HTTP(S) URLs answers; dead mirrors of a CA with a
    working URL are named in the ok line. A CA without HTTP URLs gets its CRLs
    from ``crl_drop_dir`` only: named, not failed.
    """
    database = check_database(config)
    if not database.ok:
        return failed(f"cannot read the registered CAs: {database.detail}", database.remedy)
    cas = _active_cas(config)
    if not cas:
        return passed("no CA registered (mailbot ca add)")
    urls = list(dict.fromkeys(url for _name, found in cas for url in found if _is_http(url)))
    problems = _probe(config, urls)
    unreachable, notes = [], []
    for name, found in cas:
        http = [url for url in found if _is_http(url)]
        dead = [problems[url] for url in http if problems[url] is not None]
        if not http:
            notes.append(f"{name}: no HTTP CRL URL, CRLs only from crl_drop_dir")
        elif len(dead) == len(http):
            unreachable.append(f"{name}: " + "; ".join(str(problem) for problem in dead))
        elif dead:
            notes.append(f"{name}: {len(http) - len(dead)} of {len(http)} URLs answer")
    if unreachable:
        return failed(
            "no CRL URL answers for " + " | ".join(unreachable),
            "check the network, proxy and firewall for these URLs; meanwhile place the CRL "
            f"in crl_drop_dir ({config.crl_drop_dir})",
        )
    answering = sum(1 for url in urls if problems[url] is None)
    summary = f"{len(cas)} CA(s), {answering} of {len(urls)} URL(s) answer with a CRL"
    return passed("; ".join([summary, *notes]))
