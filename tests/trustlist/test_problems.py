"""Entries that fail a check are problems; the good entries around them still come through."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from mailbot.trustlist import Problem, ProblemScope, TrustList, load_trust_list, read_trust_list
from testkit import trust_list as tl


def load(data: bytes) -> TrustList:
    return load_trust_list(io.BytesIO(data))


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (tl.CertFault.WRONG_THUMBPRINT, "is not the certificate's SHA-1"),
        (tl.CertFault.WRONG_SKI, "belongs to another key"),
        (tl.CertFault.BROKEN_BASE64, "not valid base64"),
        (tl.CertFault.NOT_A_CERTIFICATE, "does not hold a readable certificate"),
        (tl.CertFault.NO_DATA, "Данные is missing"),
    ],
)
def test_a_bad_certificate_is_left_out_and_its_neighbours_stay(
    fault: tl.CertFault, says: str
) -> None:
    base = tl.make_authority(1, keys=2, certificates_per_key=3)
    first, second = base.keys
    bad = first.certificates[1]
    key = replace(
        first,
        certificates=(first.certificates[0], replace(bad, fault=fault), first.certificates[2]),
    )
    source = [tl.make_authority(2), replace(base, keys=(key, second)), tl.make_authority(3)]
    result = load(tl.trust_list_xml(source))

    (problem,) = result.problems
    assert problem.scope is ProblemScope.CERTIFICATE
    assert says in problem.message
    assert problem.authority_index == 2
    assert problem.authority_name == base.name
    assert problem.registry_number == base.registry_number
    assert problem.key_identifier == first.identifier_text()
    assert problem.certificate_index == 2
    if fault is not tl.CertFault.NO_DATA:
        assert problem.thumbprint is not None
    assert len(result.authorities) == 3
    authority = result.authorities[1]
    assert authority.name == base.name
    kept = [c.der for c in authority.keys[0].certificates]
    assert kept == [first.certificates[0].issued.der, first.certificates[2].issued.der]
    assert bad.issued.der not in [c.der for c in authority.certificates]
    assert len(authority.keys[1].certificates) == 3
    assert "certificate #2" in str(problem) and f"«{base.name}»" in str(problem)


def test_a_key_whose_certificates_all_fail_keeps_its_crl_urls() -> None:
    base = tl.make_authority(1, keys=1, certificates_per_key=2)
    (key,) = base.keys
    broken = replace(
        key, certificates=tuple(replace(c, fault=tl.CertFault.WRONG_SKI) for c in key.certificates)
    )
    result = load(tl.trust_list_xml([replace(base, keys=(broken,))]))
    assert [p.certificate_index for p in result.problems] == [1, 2]
    (read,) = result.authorities[0].keys
    assert read.certificates == ()
    assert read.crl_urls == key.crl_urls


@pytest.mark.parametrize(
    ("identifier", "says"),
    [("", "has no ИдентификаторКлюча"), ("XYZ-not-hex", "is not hex"), ("ABC", "is not hex")],
)
def test_a_key_without_a_usable_identifier_is_left_out(identifier: str, says: str) -> None:
    base = tl.make_authority(1, keys=2)
    first, second = base.keys
    result = load(
        tl.trust_list_xml([replace(base, keys=(replace(first, identifier=identifier), second))])
    )
    (problem,) = result.problems
    assert problem.scope is ProblemScope.KEY
    assert says in problem.message
    assert problem.key_identifier == (identifier or None)
    (key,) = result.authorities[0].keys
    assert key.key_identifier == second.certificates[0].issued.ski


def test_a_key_identifier_that_is_not_the_certificates_ski_rejects_them() -> None:
    base = tl.make_authority(1, keys=1)
    (key,) = base.keys
    other = tl.ca_certificate(5).ski.hex().upper()
    result = load(tl.trust_list_xml([replace(base, keys=(replace(key, identifier=other),))]))
    (problem,) = result.problems
    assert problem.scope is ProblemScope.CERTIFICATE
    assert "belongs to another key" in problem.message
    assert result.authorities[0].keys[0].certificates == ()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"name": ""}, "has no Название"),
        ({"omit": frozenset({"СтатусАккредитации"})}, "has no СтатусАккредитации"),
        ({"status": tl.TslStatus("")}, "has no Статус"),
        ({"omit": frozenset({"ДействуетС"})}, "has no ДействуетС"),
    ],
)
def test_an_authority_without_a_name_or_readable_status_is_rejected(
    change: dict[str, object], says: str
) -> None:
    bad = replace(tl.make_authority(2), **change)  # type: ignore[arg-type]
    result = load(tl.trust_list_xml([tl.make_authority(1), bad, tl.make_authority(3)]))
    (problem,) = result.problems
    assert problem.scope is ProblemScope.AUTHORITY
    assert says in problem.message
    assert problem.authority_index == 2
    assert problem.registry_number == bad.registry_number
    assert [a.registry_number for a in result.authorities] == ["901", "903"]


def test_a_bad_date_in_the_current_status_rejects_the_authority() -> None:
    authority = tl.make_authority(1)
    since = tl.format_datetime(authority.status.since, tl.DateStyle.OFFSET)
    element = f"<ДействуетС>{since}</ДействуетС>".encode()
    data = tl.trust_list_xml([authority])
    assert data.count(element) == 1
    result = load(data.replace(element, "<ДействуетС>31.12.2025</ДействуетС>".encode()))
    (problem,) = result.problems
    assert problem.scope is ProblemScope.AUTHORITY
    assert "'31.12.2025' is not an xs:dateTime" in problem.message
    assert result.authorities == ()


def test_a_bad_history_entry_is_left_out_and_the_authority_stays() -> None:
    base = tl.make_authority(1)
    history = (tl.TslStatus(""), *base.history)
    result = load(tl.trust_list_xml([replace(base, history=history)]))
    (problem,) = result.problems
    assert problem.scope is ProblemScope.STATUS
    assert problem.certificate_index is None
    (authority,) = result.authorities
    assert len(authority.history) == len(base.history)


def test_problems_arrive_with_their_authority_and_are_plain_values() -> None:
    base = tl.make_authority(1, keys=1)
    (key,) = base.keys
    bad = replace(
        base,
        keys=(
            replace(
                key,
                certificates=(replace(key.certificates[0], fault=tl.CertFault.WRONG_THUMBPRINT),),
            ),
        ),
    )
    entries = list(read_trust_list(io.BytesIO(tl.trust_list_xml([tl.make_authority(2), bad]))))
    assert entries[0].problems == ()
    (problem,) = entries[1].problems
    assert isinstance(problem, Problem)
    assert entries[1].authority is not None
    with pytest.raises(AttributeError):
        problem.message = "changed"  # type: ignore[misc]
