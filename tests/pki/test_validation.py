"""Issuer resolution, CRL acceptance, the revocation index and the combined verdict."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mailbot.pki.crl import parse_crl
from mailbot.pki.crl_fetch import StaticCrlSource
from mailbot.pki.crl_store import CrlStore
from mailbot.pki.errors import CrlError
from mailbot.pki.issuer import InMemoryCaDirectory, IssuerStatus, resolve_issuer
from mailbot.pki.load import load_certificate
from mailbot.pki.revocation_index import RevocationIndex
from mailbot.pki.validation import (
    Reason,
    Step,
    ValidationVerdict,
    check_validity_period,
    run_validation,
    validate,
)
from testkit import pki
from testkit.pki import NOW, CertSpec, Revoked, oid, seq

from .conftest import DATA


@pytest.fixture
def store(tmp_path: Path) -> CrlStore:
    return CrlStore(tmp_path / "crl-cache")


def _directory(*cas: pki.Issued) -> InMemoryCaDirectory:
    d = InMemoryCaDirectory()
    for ca in cas:
        d.add(ca.cert)
    return d


def test_valid_revoked_and_evidence(gost_ca: pki.Issued, store: CrlStore) -> None:
    good = pki.make_end_entity(gost_ca, serial=0x2001)
    bad = pki.make_end_entity(gost_ca, serial=0x2002)
    store.ingest(
        pki.make_crl(gost_ca, [Revoked(0x2002, reason=1)], number=7),
        gost_ca.cert,
        source_url="http://cdp.example.ru/cdp/test.crl",
    )
    directory = _directory(gost_ca)
    source = StaticCrlSource(store)
    ok = validate(good.cert, directory, source, NOW)
    assert (ok.verdict, ok.reason) == (ValidationVerdict.VALID, Reason.OK)
    assert ok.evidence.ca_thumbprint_sha1 == gost_ca.cert.thumbprint_sha1
    assert ok.evidence.crl_number == 7
    assert ok.evidence.crl_url == "http://cdp.example.ru/cdp/test.crl"
    assert ok.evidence.crl_this_update and ok.evidence.crl_next_update
    no = validate(bad.cert, directory, source, NOW)
    assert (no.verdict, no.reason) == (ValidationVerdict.INVALID, Reason.REVOKED)
    assert no.evidence.revocation_reason_code == 1
    assert no.evidence.revocation_reason == "keyCompromise"
    assert no.evidence.revoked_at == NOW - timedelta(days=3)


def test_validity_period_comes_first(gost_ca: pki.Issued, store: CrlStore) -> None:
    ee = pki.make_end_entity(gost_ca)
    later = NOW + timedelta(days=400)
    late = validate(ee.cert, InMemoryCaDirectory(), StaticCrlSource(store), later)
    assert (late.verdict, late.reason) == (ValidationVerdict.INVALID, Reason.EXPIRED)
    early = check_validity_period(ee.cert, NOW - timedelta(days=40))
    assert early is not None and early.reason is Reason.NOT_YET_VALID
    assert check_validity_period(ee.cert, NOW) is None


def test_the_chain_reports_the_deciding_step(gost_ca: pki.Issued, store: CrlStore) -> None:
    ee = pki.make_end_entity(gost_ca)
    source = StaticCrlSource(store)
    late = run_validation(ee.cert, _directory(gost_ca), source, NOW + timedelta(days=400))
    assert (late.step, late.passed, late.ca) == (Step.VALIDITY_PERIOD, (), None)
    unknown = run_validation(ee.cert, InMemoryCaDirectory(), source, NOW)
    assert (unknown.step, unknown.ca) == (Step.ISSUER, None)
    assert unknown.passed == (Step.VALIDITY_PERIOD, Step.PUBLIC_KEY)
    assert unknown.result.verdict is ValidationVerdict.UNKNOWN_CA
    # No CRL for the CA: the chain ran to its last step, which cannot decide for sure.
    last = run_validation(ee.cert, _directory(gost_ca), source, NOW)
    assert (last.step, last.result.verdict) == (Step.REVOCATION, ValidationVerdict.INDETERMINATE)
    assert last.passed == (
        Step.VALIDITY_PERIOD, Step.PUBLIC_KEY, Step.ISSUER, Step.ACCREDITATION,
    )  # fmt: skip
    assert last.ca is not None and last.ca.thumbprint_sha1 == gost_ca.cert.thumbprint_sha1
    assert validate(ee.cert, _directory(gost_ca), source, NOW) == last.result


def test_unknown_ca_and_unregistered_rekey(gost_ca: pki.Issued, store: CrlStore) -> None:
    ee = pki.make_end_entity(gost_ca)
    assert (
        validate(ee.cert, InMemoryCaDirectory(), StaticCrlSource(store), NOW).verdict
        is ValidationVerdict.UNKNOWN_CA
    )
    # same CA name, new key not registered: the AKI decides → unknown CA, not "bad signature"
    rekey = pki.make_ca(slot=11)
    ee_new = pki.make_end_entity(rekey)
    result = validate(ee_new.cert, _directory(gost_ca), StaticCrlSource(store), NOW)
    assert result.verdict is ValidationVerdict.UNKNOWN_CA


def test_same_dn_rekeys_without_aki_pick_the_verifying_key(store: CrlStore) -> None:
    old, new = pki.make_ca(slot=21), pki.make_ca(slot=22)
    spec = CertSpec(subject=[("CN", "Без AKI")], include_aki=False)
    ee = pki.issue(spec, pki.make_key(slot=1), new)
    assert ee.cert.authority_key_identifier is None
    resolution = resolve_issuer(ee.cert, _directory(old, new))
    assert resolution.status is IssuerStatus.FOUND
    assert resolution.ca is not None and resolution.ca.der == new.der
    assert len(resolution.candidates) == 2


def test_forgery_is_a_bad_signature(gost_ca: pki.Issued, store: CrlStore) -> None:
    forger = pki.make_key(slot=31)
    forged = pki.issue(
        CertSpec(subject=[("CN", "Подделка")]), pki.make_key(slot=1), gost_ca, signing_key=forger
    )
    result = validate(forged.cert, _directory(gost_ca), StaticCrlSource(store), NOW)
    assert (result.verdict, result.reason) == (ValidationVerdict.INVALID, Reason.BAD_CA_SIGNATURE)
    assert result.evidence.ca_thumbprint_sha1 == gost_ca.cert.thumbprint_sha1


def test_issuer_must_be_a_valid_ca(store: CrlStore) -> None:
    expired_ca = pki.make_ca(
        slot=41, not_before=NOW - timedelta(days=900), not_after=NOW - timedelta(days=1)
    )
    ee = pki.make_end_entity(expired_ca)
    r = validate(ee.cert, _directory(expired_ca), StaticCrlSource(store), NOW)
    assert (r.verdict, r.reason) == (ValidationVerdict.INVALID, Reason.CA_NOT_USABLE)
    not_ca_parent = pki.issue(CertSpec(subject=[("CN", "Не УЦ")]), pki.make_key(slot=42))
    child = pki.issue(CertSpec(subject=[("CN", "Ребёнок")]), pki.make_key(slot=1), not_ca_parent)
    r2 = validate(child.cert, _directory(not_ca_parent), StaticCrlSource(store), NOW)
    assert r2.reason is Reason.CA_NOT_USABLE and "not a CA" in r2.detail


def test_indeterminate_without_crl_and_when_stale(gost_ca: pki.Issued, store: CrlStore) -> None:
    ee = pki.make_end_entity(gost_ca, crl_urls=())
    r = validate(ee.cert, _directory(gost_ca), StaticCrlSource(store), NOW)
    assert (r.verdict, r.reason) == (ValidationVerdict.INDETERMINATE, Reason.NO_USABLE_CRL)
    store.ingest(
        pki.make_crl(
            gost_ca, this_update=NOW - timedelta(days=10), next_update=NOW - timedelta(days=3)
        ),
        gost_ca.cert,
    )
    r2 = validate(ee.cert, _directory(gost_ca), StaticCrlSource(store), NOW)
    assert (r2.verdict, r2.reason) == (ValidationVerdict.INDETERMINATE, Reason.CRL_STALE)
    assert r2.evidence.crl_next_update is not None


def test_grace_window(gost_ca: pki.Issued, store: CrlStore) -> None:
    ee = pki.make_end_entity(gost_ca)
    store.ingest(pki.make_crl(gost_ca, this_update=NOW + timedelta(seconds=60)), gost_ca.cert)
    directory = _directory(gost_ca)
    assert (
        validate(ee.cert, directory, StaticCrlSource(store), NOW).verdict is ValidationVerdict.VALID
    )
    strict = StaticCrlSource(store, grace=timedelta(0))
    assert validate(ee.cert, directory, strict, NOW).verdict is ValidationVerdict.INDETERMINATE


def test_crl_acceptance_rules(gost_ca: pki.Issued, store: CrlStore) -> None:
    ca = gost_ca.cert
    with pytest.raises(CrlError, match="signature"):
        store.ingest(pki.make_crl(gost_ca, bad_signature=True), ca)
    with pytest.raises(CrlError, match="signature"):  # signed by another key of the same name
        store.ingest(pki.make_crl(gost_ca, signing_key=pki.make_key(slot=51)), ca)
    store.ingest(pki.make_crl(gost_ca, number=10), ca)
    with pytest.raises(CrlError, match="older"):
        store.ingest(pki.make_crl(gost_ca, number=9), ca)
    critical = seq(oid("1.2.3.4.99"), b"\x01\x01\xff", b"\x04\x02\x05\x00")
    with pytest.raises(CrlError, match="unknown critical"):
        store.ingest(pki.make_crl(gost_ca, number=11, extra_extensions=(critical,)), ca)
    delta = seq(oid("2.5.29.27"), b"\x01\x01\xff", b"\x04\x03\x02\x01\x0a")
    with pytest.raises(CrlError, match="delta CRL ignored"):
        store.ingest(pki.make_crl(gost_ca, number=12, extra_extensions=(delta,)), ca)
    current = store.current(ca)
    assert current is not None and current.meta.crl_number == 10  # last good CRL kept
    # the same number with other content is refused; the identical CRL is fine
    first = pki.make_crl(gost_ca, number=13)
    store.ingest(first, ca)
    store.ingest(first, ca)
    with pytest.raises(CrlError, match="different content"):
        store.ingest(pki.make_crl(gost_ca, number=13, revoked=[Revoked(5)]), ca)


def test_index_survives_restart_and_slow_path_entries(gost_ca: pki.Issued, tmp_path: Path) -> None:
    from mailbot.pki.der import encode_tlv
    from testkit.pki import _ext, _int, der_time

    odd = [  # forms the fast path does not take: GeneralizedTime, invalidityDate, long serial
        seq(_int(0x77), encode_tlv(0x18, b"20260101000000Z")),
        seq(
            _int(0x78),
            der_time(NOW),
            seq(
                _ext("2.5.29.24", encode_tlv(0x18, b"20251231000000Z")),
                _ext("2.5.29.21", b"\x0a\x01\x04"),
            ),
        ),
        seq(encode_tlv(0x02, b"\x01" + b"\xaa" * 21), der_time(NOW)),
    ]
    bulk = pki.bulk_entries(20000)
    crl = pki.make_crl(gost_ca, raw_entries=bulk + b"".join(odd), number=3)
    store = CrlStore(tmp_path / "c")
    store.ingest(crl, gost_ca.cert)
    reopened = CrlStore(tmp_path / "c").current(gost_ca.cert)
    assert isinstance(reopened, RevocationIndex) and len(reopened) == 20003
    for i in (0, 1, 2, 9999, 19999):
        hit = reopened.lookup(pki.bulk_serial(i))
        assert hit is not None and hit.reason_code == (1 if i % 3 == 0 else None)
    assert reopened.lookup(b"\x77") is not None
    hit = reopened.lookup(b"\x78")
    assert hit is not None and hit.reason == "superseded"
    assert reopened.lookup(b"\x01" + b"\xaa" * 21) is not None
    assert reopened.lookup(b"\x79") is None
    assert reopened.lookup(b"\x01" * 40) is None
    assert parse_crl(crl).entry_count == 20003


def test_indirect_crl_entries_are_refused(gost_ca: pki.Issued) -> None:
    from mailbot.pki.der import encode_tlv
    from testkit.pki import _ext, _int, der_time

    issuer = seq(encode_tlv(0xA4, gost_ca.name_der))
    entry = seq(_int(5), der_time(NOW), seq(_ext("2.5.29.29", issuer, critical=True)))
    with pytest.raises(CrlError, match="indirect"):
        parse_crl(pki.make_crl(gost_ca, raw_entries=entry))


def test_drop_directory(gost_ca: pki.Issued, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "junk.txt").write_text("not a CRL")
    (drop / "ca.crl").write_bytes(pki.make_crl(gost_ca, [Revoked(0x3003)], number=4))
    store = CrlStore(tmp_path / "cache")
    from mailbot.pki.crl_fetch import CachingCrlSource

    source = CachingCrlSource(store, None, None, drop)
    ee = pki.make_end_entity(gost_ca, serial=0x3003)
    r = validate(ee.cert, _directory(gost_ca), source, NOW)
    assert (r.verdict, r.reason) == (ValidationVerdict.INVALID, Reason.REVOKED)
    assert r.evidence.crl_url == "file:ca.crl"


def test_real_certificates_through_the_whole_call(tmp_path: Path) -> None:
    root = load_certificate((DATA / "mincifry_root_2022.cer").read_bytes())
    sub = load_certificate((DATA / "sertum_pro_2024_by_mincifry.cer").read_bytes())
    directory = InMemoryCaDirectory()
    directory.add(root)
    r = validate(sub, directory, StaticCrlSource(CrlStore(tmp_path)), NOW)
    # signature and issuer fine; no guc2022.crl on file and no network → indeterminate
    assert r.verdict is ValidationVerdict.INDETERMINATE
    assert r.evidence.ca_thumbprint_sha1 == root.thumbprint_sha1
