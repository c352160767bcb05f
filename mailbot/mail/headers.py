"""The one way mailbot writes a ``Subject``: on one line, folded without losing a space.

Every letter mailbot writes (a reply, a follow-up, a reminder, an alert) sets
its subject here, so a fix to folding reaches all of them.
"""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage


def set_subject(message: EmailMessage, subject: str) -> None:
    """Set *message*'s ``Subject`` to *subject* with whitespace runs made one space.

    A non-ASCII subject is encoded and folded by :class:`email.header.Header`:
    Python 3.11's policy folder drops a space that falls on an encoded-word
    boundary ("отозван удостоверяющим" arrives as "отозванудостоверяющим"),
    while ``Header`` keeps spaces inside the words; the raw, pre-folded value is
    not folded again.
    """
    line = " ".join(subject.split())
    if line.isascii():
        message["Subject"] = line
    else:
        message.set_raw("Subject", Header(line, "utf-8", header_name="Subject").encode())
