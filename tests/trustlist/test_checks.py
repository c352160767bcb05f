"""The chain's questions to the list of accredited CAs, without a database.

An unregistered key the list shows accredited stands in for a registered CA
only with ``trust_listed`` and only once a listed certificate verifies the
signature; step 7a (accreditation on notBefore) comes after the signature.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from mailbot.pki.crl_fetch import StaticCrlSource
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.issuer import InMemoryCaDirectory
from mailbot.pki.validation import Reason, Step, ValidationVerdict, run_validation
from mailbot.trustlist import load_trust_list
from mailbot.trustlist.checks import accreditation_problem
from mailbot.trustlist.register import InMemoryRegister
from testkit import pki
from testkit import trust_list as tl

ENDED = pki.NOW - timedelta(days=10)


def register_of(*authorities: tl.TslAuthority, version: int = 42) -> InMemoryRegister:
    data = tl.trust_list_xml(authorities, version=version)
    return InMemoryRegister.from_trust_list(load_trust_list(io.BytesIO(data)))


def ended_authority(index: int) -> tl.TslAuthority:
    """Accredited until ten days ago, terminated since."""
    authority = tl.make_authority(index, keys=1, status=tl.TslStatus("Прекращена", ENDED))
    since = pki.NOW - timedelta(days=1000)
    return replace(authority, history=(tl.TslStatus("Действует", since, ENDED),))


def ca_of(authority: tl.TslAuthority) -> pki.Issued:
    return authority.keys[0].certificates[0].issued


def participant(ca: pki.Issued, days_ago: int = 30) -> pki.Issued:
    start = pki.NOW - timedelta(days=days_ago)
    return pki.make_end_entity(
        ca, crl_urls=(), not_before=start, not_after=start + timedelta(days=365)
    )


def forged(ca: pki.Issued) -> pki.Issued:
    """Names *ca* as issuer (name and AKI) but is signed by another key."""
    other = pki.make_ca("Поддельный УЦ", slot=7)
    spec = pki.CertSpec(subject=[("CN", "Иванов Иван Иванович")])
    return pki.issue(spec, pki.make_key(slot=8), ca, signing_key=other.key)


@pytest.fixture
def crls(tmp_path: Path) -> StaticCrlSource:
    store = CrlStore(tmp_path / "crl-cache")
    for authority in (tl.make_authority(1, keys=1), ended_authority(2)):
        ca = ca_of(authority)
        store.ingest(pki.make_crl(ca), ca.cert, source_url="http://uc.example.ru/x.crl")
    return StaticCrlSource(store)


def test_an_accredited_listed_key_stands_in_only_when_asked_and_verified(
    crls: StaticCrlSource,
) -> None:
    authority = tl.make_authority(1, keys=1)
    ca = ca_of(authority)
    register = register_of(authority)
    cert = participant(ca).cert
    empty = InMemoryCaDirectory()

    asked = run_validation(cert, empty, crls, pki.NOW, register, trust_listed=True)
    assert (asked.step, asked.result.verdict) == (Step.REVOCATION, ValidationVerdict.VALID)
    assert asked.ca_from_list and asked.ca is not None
    assert asked.ca.thumbprint_sha1 == ca.cert.thumbprint_sha1
    assert asked.listed is not None and asked.listed.registry_number == "901"

    not_asked = run_validation(cert, empty, crls, pki.NOW, register)
    assert not_asked.result.verdict is ValidationVerdict.UNKNOWN_CA
    assert not not_asked.ca_from_list and not_asked.listed is not None

    fake = run_validation(forged(ca).cert, empty, crls, pki.NOW, register, trust_listed=True)
    assert (fake.step, fake.result.verdict) == (Step.ISSUER, ValidationVerdict.UNKNOWN_CA)
    assert "signature does not verify with listed CA" in fake.result.detail

    retired = InMemoryCaDirectory(retired_keys={ca.ski})
    refused = run_validation(cert, retired, crls, pki.NOW, register, trust_listed=True)
    assert refused.result.verdict is ValidationVerdict.UNKNOWN_CA
    assert "deactivated by an administrator" in refused.result.detail


def test_a_listed_key_whose_ca_lost_its_accreditation_is_not_trusted(
    crls: StaticCrlSource,
) -> None:
    authority = ended_authority(2)
    run = run_validation(
        participant(ca_of(authority)).cert, InMemoryCaDirectory(), crls, pki.NOW,
        register_of(authority), trust_listed=True,
    )  # fmt: skip
    assert run.result.verdict is ValidationVerdict.UNKNOWN_CA
    assert not run.ca_from_list


def test_issued_after_the_accreditation_ended_is_invalid_after_the_signature_check(
    crls: StaticCrlSource,
) -> None:
    authority = ended_authority(2)
    ca = ca_of(authority)
    register = register_of(authority)
    directory = InMemoryCaDirectory()
    directory.add(ca.cert)

    late = run_validation(participant(ca, days_ago=5).cert, directory, crls, pki.NOW, register)
    assert (late.step, late.result.reason) == (Step.ACCREDITATION, Reason.CA_NOT_ACCREDITED)
    assert late.result.verdict is ValidationVerdict.INVALID
    assert "was not accredited on" in late.result.detail

    # Issued while accredited: the later loss does not touch it.
    early = run_validation(participant(ca, days_ago=30).cert, directory, crls, pki.NOW, register)
    assert (early.step, early.result.verdict) == (Step.REVOCATION, ValidationVerdict.VALID)

    # A forgery dated after the end is a bad signature first.
    fake = run_validation(forged(ca).cert, directory, crls, pki.NOW, register)
    assert fake.result.reason is Reason.BAD_CA_SIGNATURE

    # Without the list nothing is held against it.
    plain = run_validation(participant(ca, days_ago=5).cert, directory, crls, pki.NOW)
    assert plain.result.verdict is ValidationVerdict.VALID


def test_a_list_that_says_nothing_about_the_date_does_not_reject() -> None:
    authority = replace(ended_authority(3), history=())  # only «Прекращена» since ENDED
    listed = register_of(authority).key(ca_of(authority).ski)
    assert listed is not None
    before = participant(ca_of(authority), days_ago=30).cert  # no status covers its notBefore
    assert listed.accredited_on(before.not_before) is None
    assert accreditation_problem(before, listed) is None
    after = participant(ca_of(authority), days_ago=5).cert
    assert accreditation_problem(after, listed) is not None
    assert accreditation_problem(after, None) is None
