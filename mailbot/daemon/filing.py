"""Filing decided letters on the server in batches: one UID MOVE per folder, one commit.

A letter's journal row (its decision) is committed before the letter joins a
batch, and the batch's folders are recorded (``filed_to``) before the MOVE: a
crash anywhere in between leaves letters in the mailbox that the journal knows,
and the next pass files them. Batching changes when a letter leaves the
mailbox, never whether it is answered once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mailbot.app.states import Filing
from mailbot.mail.imap import MailboxClient

#: Records where letters were filed: ``(letter_id, folder)`` pairs, one transaction.
MarkFiled = Callable[[Sequence[tuple[int, str]]], None]


@dataclass(frozen=True)
class _Decided:
    uid: int
    letter_id: int
    folder: str


class PendingFilings:
    """Letters of the current pass that are decided but still in the mailbox."""

    def __init__(self, folders: Mapping[Filing, str]) -> None:
        self._folders = dict(folders)
        self._pending: list[_Decided] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, uid: int, letter_id: int | None, filing: Filing) -> None:
        """Queue a letter for its folder; "leave" and deferred letters stay put."""
        folder = self._folders.get(filing)
        if folder is not None and letter_id is not None:
            self._pending.append(_Decided(uid, letter_id, folder))

    async def file(self, client: MailboxClient, mark_filed: MarkFiled) -> None:
        """Record where the queued letters go (one commit), then move them (a command a folder)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        by_folder: dict[str, list[int]] = {}
        for decided in pending:
            by_folder.setdefault(decided.folder, []).append(decided.uid)
        await asyncio.to_thread(mark_filed, [(d.letter_id, d.folder) for d in pending])
        for folder, uids in by_folder.items():
            await client.move(uids, folder)
