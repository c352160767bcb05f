"""The fixed-window tables of GOST verification: same answers as the generic
multiplication on every curve, a table only for checked points, bounded cache,
and the GOST R 34.10-2012 examples (Appendix A) through both paths."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest

from mailbot.pki.gost import curves, ec

from .test_public_key import _add, _torsion_point

ALL_CURVES = sorted(set(curves.CURVES_BY_OID.values()), key=lambda c: c.name)

#: GOST R 34.10-2012 Appendix A, examples 1 (256 bits) and 2 (512 bits): curve, d, Q, e, k, r, s.
EXAMPLE_1 = (
    curves.Curve(
        name="GOST R 34.10-2012 example 1",
        size=32,
        p=0x8000000000000000000000000000000000000000000000000000000000000431,
        a=7,
        b=0x5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E,
        q=0x8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3,
        x=2,
        y=0x08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8,
    ),
    0x7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28,
    (
        0x7F2B49E270DB6D90D8595BEC458B50C58585BA1D4E9B788F6689DBD8E56FD80B,
        0x26F1B489D6701DD185C8413A977B3CBBAF64D1C593D26627DFFB101A87FF77DA,
    ),
    0x2DFBC1B372D89A1188C09C52E0EEC61FCE52032AB1022E8E67ECE6672B043EE5,
    0x77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3,
    0x41AA28D2F1AB148280CD9ED56FEDA41974053554A42767B83AD043FD39DC0493,
    0x01456C64BA4642A1653C235A98A60249BCD6D3F746B631DF928014F6C5BF9C40,
)
EXAMPLE_2 = (
    curves.Curve(
        name="GOST R 34.10-2012 example 2",
        size=64,
        p=int(
            "4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15D"
            "F1D852741AF4704A0458047E80E4546D35B8336FAC224DD81664BBF528BE6373",
            16,
        ),
        a=7,
        b=int(
            "1CFF0806A31116DA29D8CFA54E57EB748BC5F377E49400FDD788B649ECA1AC43"
            "61834013B2AD7322480A89CA58E0CF74BC9E540C2ADD6897FAD0A3084F302ADC",
            16,
        ),
        q=int(
            "4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15D"
            "A82F2D7ECB1DBAC719905C5EECC423F1D86E25EDBE23C595D644AAF187E6E6DF",
            16,
        ),
        x=int(
            "24D19CC64572EE30F396BF6EBBFD7A6C5213B3B3D7057CC825F91093A68CD762"
            "FD60611262CD838DC6B60AA7EEE804E28BC849977FAC33B4B530F1B120248A9A",
            16,
        ),
        y=int(
            "2BB312A43BD2CE6E0D020613C857ACDDCFBF061E91E5F2C3F32447C259F39B2C"
            "83AB156D77F1496BF7EB3351E1EE4E43DC1A18B91B24640B6DBB92CB1ADD371E",
            16,
        ),
    ),
    int(
        "0BA6048AADAE241BA40936D47756D7C93091A0E8514669700EE7508E508B1020"
        "72E8123B2200A0563322DAD2827E2714A2636B7BFD18AADFC62967821FA18DD4",
        16,
    ),
    (
        int(
            "115DC5BC96760C7B48598D8AB9E740D4C4A85A65BE33C1815B5C320C854621DD"
            "5A515856D13314AF69BC5B924C8B4DDFF75C45415C1D9DD9DD33612CD530EFE1",
            16,
        ),
        int(
            "37C7C90CD40B0F5621DC3AC1B751CFA0E2634FA0503B3D52639F5D7FB72AFD61"
            "EA199441D943FFE7F0C70A2759A3CDB84C114E1F9339FDF27F35ECA93677BEEC",
            16,
        ),
    ),
    int(
        "3754F3CFACC9E0615C4F4A7C4D8DAB531B09B6F9C170C533A71D147035B0C591"
        "7184EE536593F4414339976C647C5D5A407ADEDB1D560C4FC6777D2972075B8C",
        16,
    ),
    int(
        "0359E7F4B1410FEACC570456C6801496946312120B39D019D455986E364F3658"
        "86748ED7A44B3E794434006011842286212273A6D14CF70EA3AF71BB1AE679F1",
        16,
    ),
    int(
        "2F86FA60A081091A23DD795E1E3C689EE512A3C82EE0DCC2643C78EEA8FCACD3"
        "5492558486B20F1C9EC197C90699850260C93BCBCD9C5C3317E19344E173AE36",
        16,
    ),
    int(
        "1081B394696FFE8E6585E7A9362D26B6325F56778AADBC081C0BFBE933D52FF5"
        "823CE288E8C4F362526080DF7F70CE406A6EEB1F56919CB92A9853BDE73E5B4A",
        16,
    ),
)


def _generic_verify(curve: curves.Curve, public: ec.Affine, e: int, r: int, s: int) -> bool:
    """§6.2 with the generic sliding-window multiplication only (no tables)."""
    q = curve.q
    if not (0 < r < q and 0 < s < q) or ec.public_point_problem(curve, public) is not None:
        return False
    v = pow(e % q or 1, -1, q)
    c = ec._add(
        ec.point_multiply(curve, s * v % q, (curve.x, curve.y)),
        ec.point_multiply(curve, (q - r) * v % q, public),
        curve.a,
        curve.p,
    )
    affine = ec.to_affine(c, curve.p)
    return affine is not None and affine[0] % q == r


def _scalars(curve: curves.Curve) -> list[int]:
    """Edge scalars for the signed digits (carries, the top window) and random ones."""
    q, w = curve.q, ec.PUBLIC_WIDTH
    half, full = 1 << (w - 1), 1 << w
    # every digit just above half: a carry out of every window, up to the top one
    carries = sum((half + 1) << (w * i) for i in range(q.bit_length() // w + 1)) % q
    edges = [1, 2, half - 1, half, half + 1, full - 1, full, full + half + 1, carries]
    edges += [q - 1, q - 2, q // 2, 1 << (q.bit_length() - 1)]
    return edges + [secrets.randbelow(q - 1) + 1 for _ in range(8)]


def _valid_public_point(curve: curves.Curve) -> ec.Affine:
    return ec.public_from_private(curve, secrets.randbelow(curve.q - 1) + 1)


@pytest.mark.parametrize("curve", ALL_CURVES, ids=lambda c: c.name)
def test_tables_give_the_generic_multiples(curve: curves.Curve) -> None:
    public = _valid_public_point(curve)
    generator = (curve.x, curve.y)
    public_table = ec._public_table(curve, *public)
    base_table = ec._base_table(curve)
    assert public_table.width == ec.PUBLIC_WIDTH and base_table.width == ec.BASE_WIDTH
    for k in _scalars(curve):
        want = ec.to_affine(ec.point_multiply(curve, k, public), curve.p)
        got = ec.to_affine(ec._add_multiple(curve, ec.INFINITY, public_table, k), curve.p)
        assert got == want, hex(k)
        want = ec.to_affine(ec.point_multiply(curve, k, generator), curve.p)
        assert ec.to_affine(ec.base_multiply(curve, k), curve.p) == want, hex(k)
    assert ec.base_multiply(curve, curve.q)[2] == 0  # q·P = O: the scalar is reduced mod q
    with pytest.raises(ValueError, match="too large"):
        ec._add_multiple(curve, ec.INFINITY, public_table, 1 << (curve.q.bit_length() + 8))


@pytest.mark.parametrize("curve", ALL_CURVES, ids=lambda c: c.name)
def test_table_verification_agrees_with_the_generic_one(curve: curves.Curve) -> None:
    d = secrets.randbelow(curve.q - 1) + 1
    public = ec.public_from_private(curve, d)
    before = ec._public_table.cache_info()
    for _ in range(3):
        e = secrets.randbits(8 * curve.size)
        r, s = ec.sign_digest(curve, d, e)
        assert ec.verify_digest(curve, public, e, r, s)
        assert _generic_verify(curve, public, e, r, s)
        q = curve.q
        for wrong in ((e ^ 1, r, s), (e, r % (q - 1) + 1, s), (e, r, s % (q - 1) + 1), (e, s, r)):
            assert not ec.verify_digest(curve, public, *wrong), wrong
            assert not _generic_verify(curve, public, *wrong), wrong
    after = ec._public_table.cache_info()
    assert after.misses == before.misses + 1  # one table, built on first use, then reused
    assert after.hits >= before.hits + 14


def _invalid_points(curve: curves.Curve) -> list[ec.Affine]:
    qx, qy = _valid_public_point(curve)
    points = [(qx, (qy + 1) % curve.p), (0, 0), (qx + curve.p, qy), (12345, 67890)]
    if curve.cofactor != 1:
        points.append(_add(curve, (qx, qy), _torsion_point(curve)))  # on the curve, wrong subgroup
    return points


@pytest.mark.parametrize("curve", ALL_CURVES, ids=lambda c: c.name)
def test_an_invalid_point_never_gets_a_table(curve: curves.Curve) -> None:
    for point in _invalid_points(curve):
        assert ec.public_point_problem(curve, point) is not None
        before = ec._public_table.cache_info()
        # any signature: the point is refused before any arithmetic, tables included
        assert not ec.verify_digest(curve, point, 5, 7, 11)
        after = ec._public_table.cache_info()
        assert (after.hits, after.misses) == (before.hits, before.misses), point
        with pytest.raises(ValueError, match="no table for a point that"):
            ec._public_table(curve, *point)
        assert ec._public_table.cache_info().currsize == before.currsize


def test_the_table_cache_is_bounded() -> None:
    curve = curves.CRYPTOPRO_A
    for _ in range(ec.PUBLIC_TABLES + 3):
        ec._public_table(curve, *_valid_public_point(curve))
    assert ec._public_table.cache_info().currsize == ec.PUBLIC_TABLES


def _cpu_seconds(fn: Callable[[], bool]) -> float:
    started = time.process_time()
    assert fn()
    return time.process_time() - started


@pytest.mark.parametrize("curve", [curves.CRYPTOPRO_A, curves.TC26_512_A], ids=lambda c: c.name)
def test_a_known_key_verifies_faster_than_the_generic_path(curve: curves.Curve) -> None:
    """≈0.5 ms against ≈1.4 ms at 256 bits, ≈2.3 against ≈7 ms at 512 (CPU time)."""
    d = secrets.randbelow(curve.q - 1) + 1
    public = ec.public_from_private(curve, d)
    e = secrets.randbits(8 * curve.size)
    r, s = ec.sign_digest(curve, d, e)
    ec.verify_digest(curve, public, e, r, s)  # builds the table
    fast = min(_cpu_seconds(lambda: ec.verify_digest(curve, public, e, r, s)) for _ in range(15))
    slow = min(_cpu_seconds(lambda: _generic_verify(curve, public, e, r, s)) for _ in range(5))
    assert fast * 2 < slow, (fast, slow)


@pytest.mark.parametrize("example", [EXAMPLE_1, EXAMPLE_2], ids=["256", "512"])
def test_the_standards_examples(
    example: tuple[curves.Curve, int, ec.Affine, int, int, int, int],
) -> None:
    curve, d, public, e, k, r, s = example
    assert ec.public_point_problem(curve, public) is None
    assert ec.public_from_private(curve, d) == public
    assert ec.sign_digest(curve, d, e, k) == (r, s)
    assert ec.verify_digest(curve, public, e, r, s)  # builds the table
    assert ec.verify_digest(curve, public, e, r, s)  # uses it
    assert _generic_verify(curve, public, e, r, s)
    assert not ec.verify_digest(curve, public, e, r, s ^ 1)
