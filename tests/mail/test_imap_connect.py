"""Connecting: IMAPS with CA verification, plain on loopback, refusals, dead and silent servers."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator

import pytest

from mailbot.config.schema import ImapConfig
from mailbot.config.secrets import SecretSource
from mailbot.mail.imap import (
    MailboxClient,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxError,
    make_ssl_context,
)
from testkit.dovecot import DovecotServer
from testkit.ports import free_port
from tests.mail.imap_support import USERS, make_config

pytestmark = pytest.mark.dovecot


async def test_imaps_with_the_ca_file_logs_in_and_reads_capabilities(
    imap_server: DovecotServer, user: str
) -> None:
    async with MailboxClient(make_config(imap_server, user), password=USERS[user]) as client:
        assert client.usable
        assert {"IMAP4REV1", "IDLE", "MOVE", "UIDPLUS"} <= client.capabilities
        # Post-login capabilities, not the greeting's (which offers STARTTLS/AUTH=).
        assert not any(c.startswith("AUTH=") for c in client.capabilities)
        state = await client.select()
        assert state.uidvalidity > 0
    assert not client.usable


async def test_password_comes_from_the_configured_source(
    imap_server: DovecotServer, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PW", USERS[user])
    config = make_config(imap_server, user, password=SecretSource(env="MAILBOT_TEST_IMAP_PW"))
    async with MailboxClient(config) as client:
        await client.noop()


async def test_missing_password_source_is_a_mailbox_error(
    imap_server: DovecotServer, user: str
) -> None:
    with pytest.raises(MailboxError, match="password"):
        await MailboxClient(make_config(imap_server, user)).connect()


async def test_unverifiable_certificate_is_refused(imap_server: DovecotServer, user: str) -> None:
    # No CA file: the system CAs do not know the self-signed test certificate.
    config = make_config(imap_server, user, ca_file=None)
    client = MailboxClient(config, password=USERS[user])
    with pytest.raises(MailboxConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await client.connect()
    assert not client.usable


def test_tls_context_checks_the_host_name_when_verifying(imap_server: DovecotServer) -> None:
    context = make_ssl_context(make_config(imap_server, "box1"))
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_verification_off_accepts_any_certificate(
    imap_server: DovecotServer, user: str
) -> None:
    config = make_config(imap_server, user, ca_file=None, verify_certificate=False)
    async with MailboxClient(config, password=USERS[user]) as client:
        await client.noop()


async def test_plain_imap_on_loopback(imap_server: DovecotServer, user: str) -> None:
    config = make_config(imap_server, user, tls="none", port=imap_server.imap_port)
    async with MailboxClient(config, password=USERS[user]) as client:
        assert (await client.select()).uidvalidity > 0


def test_plain_imap_elsewhere_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        MailboxClient(ImapConfig(host="imap.example.org", tls="none"), password="x")


async def test_wrong_password_is_a_refused_command(imap_server: DovecotServer, user: str) -> None:
    client = MailboxClient(make_config(imap_server, user), password="wrong")
    with pytest.raises(MailboxCommandError, match="LOGIN") as caught:
        await client.connect()
    assert isinstance(caught.value, MailboxError)
    assert caught.value.result == "NO"
    assert not client.usable
    await client.logout()  # harmless after a failed connect
    with pytest.raises(RuntimeError, match="once"):
        await client.connect()


async def test_nothing_listening_is_a_connection_error() -> None:
    config = ImapConfig(host="127.0.0.1", port=free_port(), tls="none")
    start = time.monotonic()
    with pytest.raises(MailboxConnectionError):
        await MailboxClient(config, password="x").connect()
    assert time.monotonic() - start < 2


async def test_stopped_server_is_a_connection_error() -> None:
    server = DovecotServer.start({"solo": "solo-pw"})
    try:
        config = make_config(server, "solo")
        async with MailboxClient(config, password="solo-pw") as client:
            await client.select()
        server.stop()
        start = time.monotonic()
        with pytest.raises(MailboxConnectionError):
            await MailboxClient(config, password="solo-pw").connect()
        assert time.monotonic() - start < 2
    finally:
        server.remove()


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A fake IMAP server that logs anyone in, then never answers again."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1] silent\r\n")
        try:
            while line := await reader.readline():
                tag, _, rest = line.decode().partition(" ")
                seen.append(rest.split(" ")[0].upper())
                if rest.upper().startswith("CAPABILITY"):
                    writer.write(f"* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n".encode())
                elif rest.upper().startswith("LOGIN"):
                    writer.write(f"{tag} OK logged in\r\n".encode())
                # Anything else: silence, as from a hung server or a dead NAT entry.
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, seen
    server.close()
    await server.wait_closed()


async def test_a_silent_server_times_out_instead_of_hanging(
    silent_server: tuple[int, list[str]],
) -> None:
    port, seen = silent_server
    config = ImapConfig(host="127.0.0.1", port=port, tls="none", command_timeout_seconds=1)
    client = MailboxClient(config, password="x")
    await client.connect()
    start = time.monotonic()
    with pytest.raises(MailboxConnectionError, match="timed out"):
        await client.select()
    assert 0.9 < time.monotonic() - start < 2.5
    assert "SELECT" in seen
    # Broken for good: the next call fails at once without touching the network.
    start = time.monotonic()
    with pytest.raises(MailboxConnectionError):
        await client.noop()
    assert time.monotonic() - start < 0.1
    await client.logout()


async def test_a_server_that_never_greets_times_out() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = ImapConfig(host="127.0.0.1", port=port, tls="none", command_timeout_seconds=1)
        start = time.monotonic()
        with pytest.raises(MailboxConnectionError, match="timed out"):
            await MailboxClient(config, password="x").connect()
        assert time.monotonic() - start < 2.5
    finally:
        server.close()
        await server.wait_closed()
