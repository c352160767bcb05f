"""Selecting, searching, fetching exact bytes, moving, keywords and folders on a real Dovecot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mailbot.mail.imap import MailboxClient, MailboxCommandError
from testkit.dovecot import DovecotServer
from tests.mail.imap_support import USERS, letter, make_config

pytestmark = pytest.mark.dovecot

#: Bytes that would confuse a line-based parser if they were not read as a literal.
TRICKY = (
    b"From: =?utf-8?b?0JjQstCw0L0=?= <sender@example.org>\r\n"
    b"Subject: tricky\r\n"
    b"\r\n"
    b"a line ending in a literal marker {12}\r\n"
    b")\r\n"
    b"A001 OK pretend completion\r\n"
    b"* 5 EXISTS\r\n"
    b"trailing spaces   \r\n"
    b"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 8-bit UTF-8\r\n"
)


@pytest.fixture
async def client(imap_server: DovecotServer, user: str) -> AsyncIterator[MailboxClient]:
    """A connected client with INBOX selected."""
    async with MailboxClient(make_config(imap_server, user), password=USERS[user]) as client:
        await client.select()
        yield client


async def test_select_reports_what_the_server_holds(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    for number in range(3):
        await client.append(letter(number))
    state = await client.select()
    assert state.name == "INBOX"
    assert state.exists == imap_server.message_count(user) == 3
    assert state.uidnext == 4
    status = imap_server.doveadm("mailbox", "status", "-u", user, "guid uidvalidity", "INBOX")
    assert f"uidvalidity={state.uidvalidity}" in status
    assert client.selected == state


async def test_selecting_a_missing_mailbox_is_refused_and_deselects(client: MailboxClient) -> None:
    with pytest.raises(MailboxCommandError, match="SELECT"):
        await client.select("No Such Folder")
    assert client.selected is None
    with pytest.raises(RuntimeError, match="select"):
        await client.search_uids()
    await client.noop()  # a refusal does not break the connection
    assert (await client.select()).name == "INBOX"


async def test_append_then_fetch_returns_the_exact_bytes(client: MailboxClient) -> None:
    uid = await client.append(TRICKY)
    assert uid is not None
    assert await client.search_uids() == [uid]
    assert await client.fetch_message(uid) == TRICKY
    assert await client.fetch_sizes([uid]) == {uid: len(TRICKY)}
    headers = await client.fetch_headers(uid)
    assert headers is not None
    assert TRICKY.startswith(headers)
    assert headers.endswith(b"\r\n\r\n")


async def test_fetching_does_not_mark_letters_seen(client: MailboxClient) -> None:
    uid = await client.append(letter(1))
    await client.fetch_message(uid or 0)
    await client.fetch_headers(uid or 0)
    assert await client.search_uids("UNSEEN") == [uid]


async def test_a_delivered_letter_round_trips(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    original = letter(42, body="Вложение будет позже.\r\n")
    imap_server.deliver(user, original)
    (uid,) = await client.search_uids()
    fetched = await client.fetch_message(uid)
    # LMTP prepends trace headers (Return-Path, Delivered-To, Received); the rest is untouched.
    assert fetched is not None
    assert fetched.endswith(original)
    assert fetched != original


async def test_missing_uids_give_none_and_are_left_out_of_sizes(client: MailboxClient) -> None:
    uid = await client.append(letter(1))
    assert await client.fetch_message(999) is None
    assert await client.fetch_headers(999) is None
    sizes = await client.fetch_sizes([uid or 0, 998, 999])
    assert list(sizes) == [uid]


async def test_search_criteria_and_keywords(client: MailboxClient) -> None:
    uids = [await client.append(letter(n, subject=f"S{n}")) for n in range(4)]
    assert await client.search_uids() == uids
    assert await client.search_uids('SUBJECT "S2"') == [uids[2]]
    await client.add_keyword([uids[0], uids[3]], "$MailbotDone")
    assert await client.search_uids_without_keyword("$MailbotDone") == [uids[1], uids[2]]
    assert await client.search_uids("KEYWORD $MailbotDone") == [uids[0], uids[3]]
    with pytest.raises(ValueError):
        await client.add_keyword(uids, "two words")
    with pytest.raises(ValueError):
        await client.search_uids('SUBJECT "Проверка"')
    # Empty UID lists are a no-op, not a protocol error.
    await client.add_keyword([], "$MailbotDone")
    await client.move([], "Processed")
    assert await client.fetch_sizes([]) == {}


@pytest.mark.parametrize(
    "ignore",
    [(), ("MOVE",), ("MOVE", "UIDPLUS")],
    ids=["uid-move", "copy-store-uid-expunge", "copy-store-expunge"],
)
async def test_move_to_processed(
    imap_server: DovecotServer, user: str, ignore: tuple[str, ...]
) -> None:
    config = make_config(imap_server, user)
    async with MailboxClient(config, password=USERS[user], ignore_capabilities=ignore) as client:
        assert not set(ignore) & client.capabilities
        await client.select()
        uids = [await client.append(letter(n)) for n in range(5)]
        originals = [await client.fetch_message(uid or 0) for uid in uids]
        await client.move([uids[1], uids[3]], "Processed")
        assert await client.search_uids() == [uids[0], uids[2], uids[4]]
        # Nothing lingers flagged \Deleted: the fallback expunged what it copied.
        assert await client.search_uids("DELETED") == []
        assert imap_server.message_count(user, "INBOX") == 3
        assert imap_server.message_count(user, "Processed") == 2
        await client.select("Processed")
        moved = [await client.fetch_message(uid) for uid in await client.search_uids()]
        assert moved == [originals[1], originals[3]]


async def test_moving_to_a_missing_folder_is_refused_and_keeps_the_letter(
    client: MailboxClient,
) -> None:
    uid = await client.append(letter(1))
    with pytest.raises(MailboxCommandError, match="UID MOVE") as caught:
        await client.move([uid or 0], "Nowhere")
    assert caught.value.result == "NO"
    assert await client.search_uids() == [uid]


async def test_ensure_folders_quotes_and_encodes_names(
    imap_server: DovecotServer, user: str, client: MailboxClient
) -> None:
    names = ["My Folder", "Обработано 2024", "Tom & Jerry", "Processed"]
    created = await client.ensure_folders(names)
    assert created == names[:3]  # Processed exists already (auto-created)
    listed = imap_server.doveadm("mailbox", "list", "-u", user).splitlines()
    assert set(names) <= set(listed)
    assert "My" not in listed  # an unquoted CREATE would have made "My"
    subscribed = imap_server.doveadm("mailbox", "list", "-s", "-u", user).splitlines()
    assert set(names) <= set(subscribed)
    assert await client.ensure_folders(names) == []  # idempotent
    uid = await client.append(letter(1))
    await client.move([uid or 0], "Обработано 2024")
    assert imap_server.message_count(user, "Обработано 2024") == 1
    assert await client.folder_exists("Обработано 2024")
    assert not await client.folder_exists("Обработано")
    with pytest.raises(ValueError, match="wildcard"):
        await client.ensure_folders(["Bad*"])
