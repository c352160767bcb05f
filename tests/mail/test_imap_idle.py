"""Waiting for mail: IDLE wake-ups, re-issued IDLE, polling, and dropped connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mailbot.mail.imap import MailboxClient, MailboxConnectionError
from testkit.dovecot import DovecotServer
from tests.mail.imap_support import USERS, letter, make_config

pytestmark = pytest.mark.dovecot


async def _later(delay: float, function: Any, *args: Any) -> None:
    await asyncio.sleep(delay)
    await asyncio.to_thread(function, *args)


async def _open(server: DovecotServer, user: str, **config: Any) -> MailboxClient:
    ignore = config.pop("ignore", ())
    client = MailboxClient(
        make_config(server, user, **config), password=USERS[user], ignore_capabilities=ignore
    )
    await client.connect()
    await client.select()
    return client


@pytest.fixture
async def client(imap_server: DovecotServer, user: str) -> AsyncIterator[MailboxClient]:
    """A connected client with INBOX selected, IDLE re-issued every 60 s."""
    client = await _open(imap_server, user)
    yield client
    await client.logout()


async def test_idle_wakes_up_soon_after_a_delivery(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    delivery = asyncio.create_task(_later(0.3, imap_server.deliver, user, letter(1)))
    start = time.monotonic()
    assert await client.wait_for_change(timeout=10) is True
    elapsed = time.monotonic() - start
    await delivery
    # Dovecot holds IDLE pushes for 500 ms; anything near the 10 s timeout means no push.
    assert elapsed < 2.0
    assert len(await client.search_uids()) == 1


async def test_without_mail_it_times_out_and_says_false(client: MailboxClient) -> None:
    start = time.monotonic()
    assert await client.wait_for_change(timeout=1.0) is False
    assert 0.9 < time.monotonic() - start < 2.0
    await client.noop()  # IDLE ended cleanly: the connection still works


async def test_a_burst_wakes_once_and_leaves_no_stale_wake_up(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    async def burst() -> None:
        await asyncio.sleep(0.2)
        for number in range(3):
            await asyncio.to_thread(imap_server.deliver, user, letter(number))

    delivery = asyncio.create_task(burst())
    assert await client.wait_for_change(timeout=10) is True
    await delivery
    await asyncio.sleep(0.8)  # let every push of the burst arrive
    assert len(await client.search_uids()) == 3
    # Leftover pushes of the burst must not end the next wait at once.
    start = time.monotonic()
    assert await client.wait_for_change(timeout=1.5) is False
    assert time.monotonic() - start > 1.4


async def test_mail_delivered_between_waits_is_not_missed(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    assert await client.search_uids() == []
    imap_server.deliver(user, letter(1))  # arrives while nobody is idling
    start = time.monotonic()
    assert await client.wait_for_change(timeout=5) is True
    assert time.monotonic() - start < 2.0


async def test_idle_is_reissued_and_still_hears_mail(imap_server: DovecotServer, user: str) -> None:
    client = await _open(imap_server, user, idle_seconds=1)
    try:
        # The letter arrives during the third IDLE of this wait.
        delivery = asyncio.create_task(_later(2.3, imap_server.deliver, user, letter(1)))
        start = time.monotonic()
        assert await client.wait_for_change(timeout=8) is True
        assert 2.3 < time.monotonic() - start < 4.0
        await delivery
        # Without a timeout one wait lasts idle_seconds.
        start = time.monotonic()
        assert await client.wait_for_change() is False
        assert 0.9 < time.monotonic() - start < 2.0
    finally:
        await client.logout()


async def test_without_idle_it_polls(imap_server: DovecotServer, user: str) -> None:
    client = await _open(imap_server, user, ignore=("IDLE",), poll_seconds=1)
    try:
        assert "IDLE" not in client.capabilities
        imap_server.deliver(user, letter(1))
        start = time.monotonic()
        assert await client.wait_for_change(timeout=30) is False
        assert 0.9 < time.monotonic() - start < 2.0
        assert len(await client.search_uids()) == 1
        start = time.monotonic()
        assert await client.wait_for_change(timeout=0.2) is False  # timeout shortens the poll
        assert time.monotonic() - start < 1.0
    finally:
        await client.logout()


async def test_kick_during_idle_raises_quickly(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    kick = asyncio.create_task(_later(0.5, imap_server.kick, user))
    start = time.monotonic()
    with pytest.raises(MailboxConnectionError):
        await client.wait_for_change(timeout=30)
    assert time.monotonic() - start < 3.0
    await kick
    assert not client.usable
    start = time.monotonic()
    with pytest.raises(MailboxConnectionError):
        await client.noop()
    assert time.monotonic() - start < 0.1


async def test_kick_between_commands_fails_the_next_one_at_once(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    await asyncio.to_thread(imap_server.kick, user)
    await asyncio.sleep(0.5)
    start = time.monotonic()
    with pytest.raises(MailboxConnectionError, match="connection lost"):
        await client.search_uids()
    assert time.monotonic() - start < 0.5  # not the 5 s command deadline


async def test_kick_while_polling_raises(imap_server: DovecotServer, user: str) -> None:
    client = await _open(imap_server, user, ignore=("IDLE",), poll_seconds=20)
    try:
        kick = asyncio.create_task(_later(0.3, imap_server.kick, user))
        start = time.monotonic()
        with pytest.raises(MailboxConnectionError):
            await client.wait_for_change()
        assert time.monotonic() - start < 3.0
        await kick
    finally:
        await client.logout()


async def test_cancelling_a_wait_leaves_a_broken_client_that_closes_cleanly(
    client: MailboxClient,
) -> None:
    waiting = asyncio.create_task(client.wait_for_change(timeout=30))
    await asyncio.sleep(0.3)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not client.usable
    start = time.monotonic()
    await client.logout()
    assert time.monotonic() - start < 2.0


async def test_a_letter_arriving_as_the_wait_ends_is_found_and_wakes_nothing_later(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    # Delivered 0.4 s before the wait ends, so Dovecot's delayed push is not out when
    # DONE goes: the wait may say False, but the search that follows every wait finds
    # the letter (its NOOP syncs), and the next wait is not woken by that old letter.
    delivery = asyncio.create_task(_later(0.6, imap_server.deliver, user, letter(1)))
    await client.wait_for_change(timeout=1.0)
    await delivery
    assert len(await client.search_uids()) == 1
    start = time.monotonic()
    assert await client.wait_for_change(timeout=1.0) is False
    assert time.monotonic() - start > 0.9
