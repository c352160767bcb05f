"""Files that are not a readable list: one TrustListError with a plain message, never more.

DTDs are refused before any entity is declared (billion laughs, external
entities); truncated, non-XML and oversized files say what is wrong.
"""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.trustlist import (
    Limits,
    ProblemScope,
    TrustList,
    TrustListError,
    load_trust_list,
    read_trust_list,
)
from mailbot.trustlist.safe_xml import DEFAULT_LIMITS
from testkit import trust_list as tl


def load(data: bytes, limits: Limits = DEFAULT_LIMITS) -> TrustList:
    return load_trust_list(io.BytesIO(data), limits=limits)


def refused(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    with pytest.raises(TrustListError) as caught:
        load(data, limits)
    return str(caught.value)


GOOD = tl.trust_list_xml([tl.make_authority(1), tl.make_authority(2)])


# --------------------------------------------------------------------------- DTDs and entities


def test_billion_laughs_is_refused_not_expanded() -> None:
    doctype, entity = tl.billion_laughs(levels=10)
    data = tl.trust_list_xml(
        [tl.make_authority(1)], style=tl.TslStyle(doctype=doctype, entity_reference=entity)
    )
    started = time.monotonic()
    message = refused(data)
    assert time.monotonic() - started < 5  # expanded, it would be 3 GB of "lol"
    assert "DTD" in message
    assert "line 2" in message


def test_an_external_entity_is_refused_and_the_file_stays_unread(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD-42")
    doctype, entity = tl.external_entity(secret)
    data = tl.trust_list_xml(
        [tl.make_authority(1)], style=tl.TslStyle(doctype=doctype, entity_reference=entity)
    )
    with pytest.raises(TrustListError) as caught:
        load(data)
    assert "DTD" in str(caught.value)
    assert "TOP-SECRET" not in str(caught.value)
    assert caught.value.__suppress_context__
    assert "TOP-SECRET" not in repr(caught.value.__context__)


def test_a_dtd_without_entities_is_refused_too() -> None:
    doctype = f"<!DOCTYPE {tl.ROOT}>"
    assert "DTD" in refused(tl.trust_list_xml([], style=tl.TslStyle(doctype=doctype)))


def test_a_parameter_entity_to_a_remote_dtd_is_refused() -> None:
    doctype = f'<!DOCTYPE {tl.ROOT} SYSTEM "http://127.0.0.1:9/evil.dtd">'
    assert "DTD" in refused(tl.trust_list_xml([], style=tl.TslStyle(doctype=doctype)))


def test_an_undeclared_entity_is_not_well_formed() -> None:
    data = tl.trust_list_xml([tl.make_authority(1)], style=tl.TslStyle(entity_reference="x"))
    assert "undefined entity" in refused(data)


# --------------------------------------------------------------------------- not a list


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "the file is empty"),
        (
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
            "starts with <!DOCTYPE html>: it is not the list",
        ),
        (b"<html><body>Service unavailable</body></html>", "the root element is <html>"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "not well-formed XML"),
        (gzip.compress(GOOD), "not well-formed XML"),
        (b"\x00" * 100, "not well-formed XML"),
        ("Версия;Дата\n1;2".encode(), "not well-formed XML"),
        (GOOD + b"<junk/>", "not well-formed XML"),
        (
            f"<{tl.ROOT}><Дата>2026-01-01T00:00:00</Дата></{tl.ROOT}>".encode(),
            "no <Версия>",
        ),
        (
            f"<{tl.ROOT}><Версия>1</Версия></{tl.ROOT}>".encode(),
            "no <Дата>",
        ),
        (
            f"<{tl.ROOT}><Версия>12a</Версия><Дата>2026-01-01</Дата></{tl.ROOT}>".encode(),
            "not a whole number",
        ),
        (
            f"<{tl.ROOT}><Версия>1</Версия><Дата>вчера</Дата></{tl.ROOT}>".encode(),
            "<Дата> is unreadable",
        ),
        (
            f"<{tl.ROOT}><Версия>1</Версия><Версия>2</Версия><Дата>2026-01-01</Дата>"
            f"</{tl.ROOT}>".encode(),
            "<Версия> appears twice",
        ),
    ],
)
def test_files_that_are_not_a_list(data: bytes, says: str) -> None:
    assert says in refused(data)


def test_a_header_after_the_first_authority_is_refused() -> None:
    text = GOOD.decode()
    start = text.index("  <Версия>")
    end = text.index("  <УдостоверяющийЦентр>")
    header = text[start:end]
    moved = text[:start] + text[end:].replace(f"</{tl.ROOT}>", header + f"</{tl.ROOT}>")
    message = refused(moved.encode())
    # Which check speaks depends on where a chunk ends; both name the misplaced element.
    assert "<Версия>" in message
    assert "first <УдостоверяющийЦентр>" in message


@pytest.mark.parametrize("fraction", [0.0001, 0.3, 0.5, 0.9, 0.9999])
def test_a_truncated_file_says_so(fraction: float) -> None:
    cut = GOOD[: int(len(GOOD) * fraction)]
    message = refused(cut)
    assert "truncated" in message or "not well-formed" in message
    if fraction > 0.01:
        assert "truncated" in message
        assert f"after {len(cut)} bytes" in message


def test_a_truncated_file_fails_while_streaming_after_good_entries() -> None:
    data = tl.trust_list_xml([tl.make_authority(i) for i in range(1, 40)])
    stream = read_trust_list(io.BytesIO(data[: len(data) - 5000]))
    seen = 0
    with pytest.raises(TrustListError, match="truncated"):
        for _ in stream:
            seen += 1
    assert seen >= 30


# --------------------------------------------------------------------------- limits


def test_deep_nesting_is_refused() -> None:
    depth = 40
    bomb = "<a>" * depth + "</a>" * depth
    data = GOOD.decode().replace("<Название>", bomb + "<Название>", 1).encode()
    assert "nest deeper than 32" in refused(data)


def test_an_oversized_text_is_refused_without_being_held() -> None:
    data = GOOD.decode().replace("<Название>", "<Название>" + "я" * 5_000_000, 1).encode()
    assert "more than 4194304 characters" in refused(data)


def test_an_oversized_text_in_an_unknown_root_element_is_not_held() -> None:
    # Outside the authorities unknown text streams past; only the record limits apply inside.
    version = "<Версия>".encode()
    data = GOOD.replace(version, b"<x>" + b"z" * 6_000_000 + b"</x>" + version, 1)
    assert len(load(data).authorities) == 2


def test_an_oversized_authority_is_refused() -> None:
    big = tl.trust_list_xml([tl.make_authority(1, keys=4, certificates_per_key=4)])
    assert "holds more than 20000 characters" in refused(big, Limits(max_record_chars=20_000))
    assert len(load(big, Limits(max_record_chars=200_000)).authorities) == 1


# --------------------------------------------------------------------------- fuzz


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=len(GOOD) - 1),
    junk=st.binary(min_size=0, max_size=8),
    cut=st.booleans(),
)
def test_damaged_files_give_a_list_or_a_trust_list_error(
    position: int, junk: bytes, cut: bool
) -> None:
    data = GOOD[:position] + junk + (b"" if cut else GOOD[position + len(junk) :])
    try:
        result = load(data)
    except TrustListError as exc:
        assert str(exc)
        return
    rejected = [p for p in result.problems if p.scope is ProblemScope.AUTHORITY]
    assert len(result.authorities) + len(rejected) <= 2
