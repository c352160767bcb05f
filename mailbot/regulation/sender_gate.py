"""Step 2: only a trusted address of an active subscriber of an active organisation passes.

Exactly one From address is allowed. It is compared case-insensitively with
the trusted addresses the directory knows, by
:func:`mailbot.addresses.normalize_address` (internationalised addresses
and domains in Unicode or punycode included); ``Reply-To`` and ``Sender`` play
no part and never redirect a reply. Unknown or inactive senders get no reply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailbot.addresses import normalize_address
from mailbot.config.schema import SenderAuthConfig
from mailbot.mail.letter import Letter, Mailbox
from mailbot.regulation.decision import Outcome, RuleHit, Verdict, go_on, stop
from mailbot.regulation.sender_auth import check_authentication_results


@dataclass(frozen=True)
class SubscriberCandidate:
    """An active subscriber (of an active organisation) owning the sender's trusted address."""

    subscriber_id: str
    organisation: str
    display_name: str = ""
    #: Digits only; ``None`` when the directory has no SNILS for the subscriber (step 9).
    snils: str | None = None


class SenderDirectory(Protocol):
    """The subscriber directory as the gate needs it."""

    def active_subscribers(self, address: str) -> Sequence[SubscriberCandidate]:
        """Active subscribers of active organisations with trusted *address*.

        Addresses are compared by :func:`~mailbot.addresses.normalize_address`.
        """
        ...


@dataclass(frozen=True)
class DirectoryEntry:
    """One trusted address of the in-memory directory, with the flags the gate honours."""

    address: str
    subscriber: SubscriberCandidate
    subscriber_active: bool = True
    organisation_active: bool = True


class InMemorySenderDirectory:
    """A :class:`SenderDirectory` over a list, for tests and ``process --dry-run``."""

    def __init__(self, entries: Iterable[DirectoryEntry] = ()) -> None:
        self._entries = list(entries)

    @classmethod
    def trusting(cls, addresses: Iterable[str]) -> InMemorySenderDirectory:
        """One active subscriber per address."""
        return cls(
            DirectoryEntry(a, SubscriberCandidate(f"cli:{a.lower()}", "(command line)"))
            for a in addresses
        )

    def active_subscribers(self, address: str) -> list[SubscriberCandidate]:
        """Active subscribers whose trusted address is *address* (see :func:`normalize_address`)."""
        wanted = normalize_address(address)
        return [
            e.subscriber
            for e in self._entries
            if normalize_address(e.address) == wanted
            and e.subscriber_active
            and e.organisation_active
        ]


@dataclass(frozen=True)
class GateVerdict:
    """The gate's verdict plus, when it passed, the sender and the subscribers it may be."""

    verdict: Verdict
    sender: Mailbox | None
    candidates: tuple[SubscriberCandidate, ...]


def single_sender(letter: Letter) -> tuple[Mailbox | None, str]:
    """The one From mailbox, or ``None`` and why not."""
    if letter.from_header_count != 1:
        return None, f"{letter.from_header_count} From headers"
    if len(letter.from_mailboxes) != 1:
        return None, f"{len(letter.from_mailboxes)} From addresses"
    mailbox = letter.from_mailboxes[0]
    if not mailbox.is_well_formed:
        return None, "malformed From address"
    return mailbox, mailbox.normalized


def check_sender(
    letter: Letter,
    candidates: Sequence[SubscriberCandidate],
    auth: SenderAuthConfig,
) -> GateVerdict:
    """Decide step 2 given the directory's *candidates* for the From address."""
    sender, detail = single_sender(letter)
    one_from = RuleHit("single_from", sender is None, detail)
    if sender is None:
        return GateVerdict(stop(Outcome.NO_REPLY, f"sender: {detail}", one_from), None, ())
    if not candidates:
        hit = RuleHit("trusted_sender", True, f"{sender.normalized} is not trusted")
        reason = "sender is not a trusted address of an active subscriber"
        return GateVerdict(stop(Outcome.NO_REPLY, reason, one_from, hit), None, ())
    trusted = RuleHit("trusted_sender", False, f"{len(candidates)} subscriber(s)")
    hits = [one_from, trusted]
    if auth.require_authentication_results:
        result = check_authentication_results(
            letter.header_values("Authentication-Results"), auth.trusted_authserv_ids, sender.domain
        )
        hits.append(RuleHit("authentication_results", not result.passed, result.detail))
        if not result.passed:
            reason = f"sender not authenticated: {result.detail}"
            return GateVerdict(stop(Outcome.NO_REPLY, reason, *hits), None, ())
    return GateVerdict(go_on(*hits), sender, tuple(candidates))
