"""1,000 letters: search, sizes and moving all of them stay within aioimaplib's limits."""

from __future__ import annotations

import time

import pytest

from mailbot.mail.imap import MailboxClient
from testkit.dovecot import DovecotServer
from tests.mail.imap_support import USERS, letter, make_config, write_maildir

pytestmark = [pytest.mark.dovecot, pytest.mark.slow]

COUNT = 1000


@pytest.mark.parametrize("ignore", [(), ("MOVE",)], ids=["uid-move", "copy-store-expunge"])
async def test_a_thousand_letters(
    imap_server: DovecotServer, user: str, ignore: tuple[str, ...]
) -> None:
    # Plain IMAP on loopback: the server's answer arrives in large chunks, which is what
    # overflows aioimaplib's recursive parser (over TLS, 16 KB records hide it up to ~1,000).
    config = make_config(
        imap_server, user, tls="none", port=imap_server.imap_port, command_timeout_seconds=10
    )
    async with MailboxClient(config, password=USERS[user], ignore_capabilities=ignore) as client:
        await client.select()  # creates the Maildir
        letters = [letter(n) for n in range(COUNT)]
        write_maildir(imap_server, user, letters)
        start = time.monotonic()
        state = await client.select()
        assert state.exists == COUNT
        uids = await client.search_uids()
        assert len(uids) == COUNT
        sizes = await client.fetch_sizes(uids)
        assert sorted(sizes) == uids
        assert sorted(sizes.values()) == sorted(len(raw) for raw in letters)
        # A single 1,000-line answer would crash aioimaplib's parser and hang the call.
        await client.move(uids, "Processed")
        elapsed = time.monotonic() - start
        assert await client.search_uids() == []
    assert imap_server.message_count(user, "INBOX") == 0
    assert imap_server.message_count(user, "Processed") == COUNT
    assert elapsed < 15, f"took {elapsed:.1f} s"
