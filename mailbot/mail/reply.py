"""The reply letter: to the trusted From address only, threaded, marked as automatic.

Headers (docs/regulation.md "Replies", RFC 3834): ``To`` the trusted sender, ``Subject:
Re: <original>``, ``In-Reply-To``/``References`` (RFC 5322 section 3.6.4,
trimmed like RT: the first 4 and the last 6 ids), ``Auto-Submitted:
auto-replied``, ``X-Auto-Response-Suppress: All`` (stops Exchange out-of-office
answers), our loop marker, a ``Message-ID`` in our own domain and a ``Date``;
the body is UTF-8 ``text/plain``.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from mailbot.config import Config
from mailbot.mail import policies
from mailbot.mail.headers import set_subject
from mailbot.mail.letter import LOOP_HEADER, Letter

#: References longer than this keep the first and the last ids (RT keeps 4 + 6).
MAX_REFERENCES = 10
_KEEP_FIRST = 4
#: How much of a letter's subject a reply's ``Subject`` echoes. A stranger
#: controls the subject: echoing a megabyte would make a megabyte header (and
#: folding it costs time that grows faster than its length).
MAX_ECHOED_SUBJECT_CHARS = 250
_CUT_MARK = "…"
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ReplySettings:
    """Who we are when we answer."""

    from_address: str
    instance: str

    @classmethod
    def from_config(cls, config: Config) -> ReplySettings:
        """Our address and instance name from the configuration."""
        return cls(config.smtp.from_address, config.general.instance_name)


def thread_references(
    parent_references: Sequence[str],
    parent_in_reply_to: Sequence[str],
    parent_message_id: str | None,
) -> list[str]:
    """The References of a reply: the parent's (or its single In-Reply-To) plus its Message-ID."""
    chain = list(parent_references)
    if not chain and len(parent_in_reply_to) == 1:
        chain = list(parent_in_reply_to)
    if parent_message_id:
        chain.append(parent_message_id)
    if len(chain) > MAX_REFERENCES:
        chain = chain[:_KEEP_FIRST] + chain[-(MAX_REFERENCES - _KEEP_FIRST) :]
    return chain


def reply_subject(original: str) -> str:
    """``Re: <original>`` on one line, the original cut to :data:`MAX_ECHOED_SUBJECT_CHARS`."""
    return "Re: " + echo_text(original, MAX_ECHOED_SUBJECT_CHARS)


def echo_text(text: str, limit: int) -> str:
    """*text* on one line (whitespace runs made one space), cut to *limit* characters.

    Linear in the part of *text* it reads: words are taken one at a time until
    the limit is reached, so a huge subject costs no more than a short one.
    """
    words: list[str] = []
    length = -1
    for match in _WORD.finditer(text):
        length += 1 + match.end() - match.start()
        if length > limit:
            room = limit - len(_CUT_MARK) - (length - (match.end() - match.start()))
            words.append(match.group()[: max(room, 0)])
            return " ".join(words).rstrip() + _CUT_MARK
        words.append(match.group())
    return " ".join(words)


def build_reply(
    letter: Letter, recipient: str, body: str, settings: ReplySettings, now: datetime
) -> EmailMessage:
    """The reply to *letter*, addressed to *recipient* (the trusted From address)."""
    references = thread_references(letter.references, letter.in_reply_to, letter.message_id)
    return build_notice(
        recipient,
        reply_subject(letter.subject),
        body,
        settings,
        now,
        in_reply_to=letter.message_id,
        references=references,
    )


def build_notice(
    recipient: str,
    subject: str,
    body: str,
    settings: ReplySettings,
    now: datetime,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    auto_submitted: str = "auto-replied",
) -> EmailMessage:
    """A letter of mailbot's to *recipient*: a reply, a follow-up or a reminder.

    Every letter mailbot sends is marked automatic (RFC 3834) and carries our
    loop marker, so that no robot answers it and our own intake ignores it.
    """
    # An internationalised recipient (RFC 6532) is written as it is, in UTF-8 headers.
    message = EmailMessage(policy=policies.SMTP if recipient.isascii() else policies.SMTPUTF8)
    message["From"] = settings.from_address
    message["To"] = recipient
    set_subject(message, subject)
    # A datetime is formatted as format_datetime does, and not parsed back.
    message["Date"] = policies.HEADER_FACTORY("Date", now)
    domain = settings.from_address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    # RFC 3834: "auto-replied" answers a letter, "auto-generated" starts on its own.
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message[LOOP_HEADER] = settings.instance
    message.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8")
    return message
