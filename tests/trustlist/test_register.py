"""What the register answers about a key: accreditation at a date, presence, lookups."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mailbot.trustlist import AccreditationStatus, load_trust_list
from mailbot.trustlist.register import InMemoryRegister, accredited_on
from testkit import pki
from testkit import trust_list as tl

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def period(text: str, start_days: int, end_days: int | None) -> AccreditationStatus:
    end = None if end_days is None else T0 + timedelta(days=end_days)
    return AccreditationStatus(text, T0 + timedelta(days=start_days), end)


HISTORY = (
    period("Действует", 0, 100),
    period("Приостановлена", 100, 200),
    period("Действует", 200, 300),
    period("Прекращена", 300, None),
)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_accredited_on_follows_the_periods_with_exclusive_ends() -> None:
    assert accredited_on(HISTORY, at(0)) is True
    assert accredited_on(HISTORY, at(99.9)) is True
    assert accredited_on(HISTORY, at(100)) is False  # the suspension starts
    assert accredited_on(HISTORY, at(150)) is False
    assert accredited_on(HISTORY, at(200)) is True
    assert accredited_on(HISTORY, at(300)) is False  # terminated, open-ended
    assert accredited_on(HISTORY, at(5000)) is False


def test_before_the_history_or_an_unknown_status_says_nothing() -> None:
    assert accredited_on(HISTORY, at(-1)) is None
    assert accredited_on((period("Неведомый статус", 0, None),), at(10)) is None
    assert accredited_on((), at(10)) is None


def test_overlapping_periods_the_later_start_decides() -> None:
    overlapping = (period("Действует", 0, None), period("Приостановлена", 50, 60))
    assert accredited_on(overlapping, at(55)) is False
    assert accredited_on(overlapping, at(65)) is True


def test_in_memory_register_finds_keys_with_their_authority() -> None:
    active = tl.make_authority(1)
    end = pki.NOW - timedelta(days=10)
    ended = tl.make_authority(2, keys=1, status=tl.TslStatus("Прекращена", end))
    ended = replace(
        ended, history=(*ended.history, tl.TslStatus("Действует", end - timedelta(days=300), end))
    )
    data = tl.trust_list_xml([active, ended], version=77)
    register = InMemoryRegister.from_trust_list(load_trust_list(io.BytesIO(data)))

    edition = register.edition()
    assert edition is not None and edition.version == 77
    first = register.key(active.keys[1].certificates[0].issued.ski)
    assert first is not None
    assert first.authority_name == active.name
    assert first.registry_number == "901"
    assert first.crl_urls == active.keys[1].crl_urls
    assert first.certificates_der == (active.keys[1].certificates[0].issued.der,)
    assert first.present and first.accredited
    assert first.accredited_on(pki.NOW) is True

    second = register.key(ended.keys[0].certificates[0].issued.ski)
    assert second is not None and second.present and not second.accredited
    assert second.accredited_on(pki.NOW) is False
    assert second.accredited_on(pki.NOW - timedelta(days=20)) is True

    assert register.key(b"\x01\x02") is None
    assert InMemoryRegister.empty().edition() is None
