"""GOST R 34.10 signature math in pure Python, fast enough for a daemon.

gostcrypto takes ≈61 ms per 256-bit verification (affine coordinates, one
modular inversion per point operation). Here:

* points are kept in Jacobian coordinates (no inversion until the end);
* ``z1·P + z2·Q`` needs no doublings: each scalar is split into signed
  fixed-width digits, and each digit picks a ±multiple from a precomputed
  table of the point (:class:`FixedTable`), added into one accumulator;
* the generator's table (width 6) is built once per curve; a public key's
  (width 4) is built on its first verification, after the key passed
  :func:`public_point_problem`, and kept in a small LRU: the few CA keys verify
  almost every signature. Building one (a chain of doublings, then affine
  additions sharing one inversion per column) costs ≈2.6 ms at 256 bits and
  ≈12 ms at 512, under two generic verifications; each verification with it
  costs a third of a generic one (≈0.5 ms, ≈2.3 ms), so it pays for itself by
  the third;
* :func:`point_multiply` (width-4 sliding window) stays for one-off points:
  the subgroup check.

Memory: a table holds (bits(q)//width + 1)·2^(width-1) affine points, ≈0.2 KB
each at 256 bits and ≈0.3 KB at 512: a width-4 public-key table is ≈95 KB
(256) or ≈260 KB (512), so the LRU of 64 stays under ≈17 MB; the generator
tables are ≈250 KB (256) or ≈700 KB (512) per curve in use.

Integers here are the mathematical values; the byte-order conventions of
certificates (little-endian key halves, s‖r) live in :mod:`mailbot.pki.gost.keys`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache, lru_cache

from mailbot.pki.gost.curves import Curve

#: A point in Jacobian coordinates (X, Y, Z): x = X/Z², y = Y/Z³; Z == 0 is infinity.
Jacobian = tuple[int, int, int]
Affine = tuple[int, int]

INFINITY: Jacobian = (1, 1, 0)
WINDOW = 4  # sliding window of the generic point_multiply
BASE_WIDTH = 6  # signed fixed window of the generator's table (one per curve)
PUBLIC_WIDTH = 4  # signed fixed window of a public key's table
PUBLIC_TABLES = 64  # public-key tables kept (least recently used dropped)


def _double(pt: Jacobian, a: int, p: int) -> Jacobian:
    x1, y1, z1 = pt
    if z1 == 0 or y1 == 0:
        return INFINITY
    yy = y1 * y1 % p
    s = 4 * x1 * yy % p
    zz = z1 * z1 % p
    m = (3 * x1 * x1 + a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    z3 = 2 * y1 * z1 % p
    return (x3, y3, z3)


def _add(p1: Jacobian, p2: Jacobian, a: int, p: int) -> Jacobian:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    u2 = x2 * z1z1 % p
    s1 = y1 * z2 * z2z2 % p
    s2 = y2 * z1 * z1z1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if h == 0:
        return _double(p1, a, p) if r == 0 else INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    z3 = z1 * z2 * h % p
    return (x3, y3, z3)


def _add_affine(p1: Jacobian, q: Affine, a: int, p: int) -> Jacobian:
    """Jacobian + affine ("mixed") addition: the cheapest kind."""
    x1, y1, z1 = p1
    x2, y2 = q
    if z1 == 0:
        return (x2, y2, 1)
    z1z1 = z1 * z1 % p
    u2 = x2 * z1z1 % p
    s2 = y2 * z1 * z1z1 % p
    h = (u2 - x1) % p
    r = (s2 - y1) % p
    if h == 0:
        return _double(p1, a, p) if r == 0 else INFINITY
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    z3 = z1 * h % p
    return (x3, y3, z3)


def to_affine(pt: Jacobian, p: int) -> Affine | None:
    """Affine coordinates, or None for the point at infinity."""
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, p)
    zi2 = zi * zi % p
    return (x * zi2 % p, y * zi2 * zi % p)


def _batch_inverse(values: list[int], p: int) -> list[int]:
    """Montgomery's trick: the inverses of all values (none ≡ 0) with one inversion."""
    prefix: list[int] = []
    acc = 1
    for v in values:
        prefix.append(acc)
        acc = acc * v % p
    inv = pow(acc, -1, p)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % p
        inv = inv * values[i] % p
    return out


def _batch_affine(points: list[Jacobian], p: int) -> list[Affine]:
    """Affine forms of the points with one inversion (no point may be infinity)."""
    out: list[Affine] = []
    for (x, y, _), zi in zip(points, _batch_inverse([z for _, _, z in points], p), strict=True):
        zi2 = zi * zi % p
        out.append((x * zi2 % p, y * zi2 * zi % p))
    return out


def _batch_sums(ps: list[Affine], qs: list[Affine], a: int, p: int) -> list[Affine]:
    """ps[i] + qs[i] in affine form with one inversion for all: the cheapest additions.

    A pair may be equal (a doubling) but not opposite (the inversion raises), nor
    contain infinity: the caller adds multiples of a point of large prime order.
    """
    # slope = num/den: (y2 - y1)/(x2 - x1), or (3x² + a)/2y for a doubling
    slopes = [
        (x2 - x1, y2 - y1) if (x1, y1) != (x2, y2) else (2 * y1, 3 * x1 * x1 + a)
        for (x1, y1), (x2, y2) in zip(ps, qs, strict=True)
    ]
    inverses = _batch_inverse([den for den, _ in slopes], p)
    out: list[Affine] = []
    for (x1, y1), (x2, _), (_, num), inv in zip(ps, qs, slopes, inverses, strict=True):
        lam = num * inv % p
        x3 = (lam * lam - x1 - x2) % p
        out.append((x3, (lam * (x1 - x3) - y1) % p))
    return out


@dataclass(frozen=True)
class FixedTable:
    """Multiples of one point B of order q for signed fixed-window multiplication.

    ``windows[i][j - 1]`` = j·2^(width·i)·B in affine form, j in 1..2^(width-1);
    a scalar is then a sum of one ±entry per window: mixed additions, no doublings.
    """

    width: int
    windows: tuple[tuple[Affine, ...], ...]


def _fixed_table(curve: Curve, point: Affine, width: int) -> FixedTable:
    """Build the table for ``point``, which must have order q (so no entry is infinity)."""
    p, a = curve.p, curve.a
    # one window more than the scalar's bits need: the signed recoding may carry out of the top
    count = curve.q.bit_length() // width + 1
    chain: list[Jacobian] = [(point[0], point[1], 1)]
    for _ in range(count - 1):
        base = chain[-1]
        for _ in range(width):
            base = _double(base, a, p)
        chain.append(base)
    # columns[j - 1][i] = j·B_i for the window bases B_i = 2^(width·i)·B, a column at a time
    columns = [_batch_affine(chain, p)]
    for _ in range((1 << (width - 1)) - 1):
        columns.append(_batch_sums(columns[-1], columns[0], a, p))
    return FixedTable(width, tuple(zip(*columns, strict=True)))


def _add_multiple(curve: Curve, acc: Jacobian, table: FixedTable, k: int) -> Jacobian:
    """acc + k·B for the table's point B, 0 ≤ k < q: digits of k in (-2^(w-1), 2^(w-1)]."""
    p, a, width = curve.p, curve.a, table.width
    full = 1 << width
    half, mask = full >> 1, full - 1
    for window in table.windows:
        if not k:
            break
        digit = k & mask
        k >>= width
        if digit > half:  # digit - 2^w, carried into the next window; -(x, y) = (x, p - y)
            k += 1
            x, y = window[full - digit - 1]
            acc = _add_affine(acc, (x, p - y), a, p)
        elif digit:
            acc = _add_affine(acc, window[digit - 1], a, p)
    if k:
        raise ValueError("scalar too large for the table")  # callers reduce it mod q
    return acc


@cache
def _base_table(curve: Curve) -> FixedTable:
    """The generator's table, built once per curve on first use."""
    return _fixed_table(curve, (curve.x, curve.y), BASE_WIDTH)


def base_multiply(curve: Curve, k: int) -> Jacobian:
    """k·P for the curve's base point: table look-ups and mixed additions only."""
    return _add_multiple(curve, INFINITY, _base_table(curve), k % curve.q)


@lru_cache(maxsize=PUBLIC_TABLES)
def _public_table(curve: Curve, x: int, y: int) -> FixedTable:
    """A verifying key's table, kept for the few CA keys that verify most signatures.

    Refuses a point that :func:`public_point_problem` rejects: table building is
    point arithmetic, which must never run on an unchecked point.
    """
    problem = public_point_problem(curve, (x, y))
    if problem is not None:
        raise ValueError(f"no table for a point that {problem}")
    return _fixed_table(curve, (x, y), PUBLIC_WIDTH)


def point_multiply(curve: Curve, k: int, point: Affine) -> Jacobian:
    """k·Q for an arbitrary point: width-4 sliding window over odd multiples."""
    p, a = curve.p, curve.a
    q1: Jacobian = (point[0], point[1], 1)
    q2 = _double(q1, a, p)
    odd = [q1]
    for _ in range(7):  # 1Q, 3Q, ..., 15Q
        odd.append(_add(odd[-1], q2, a, p))
    if all(pt[2] != 0 for pt in odd):
        odd_affine = _batch_affine(odd, p)
    else:  # points of tiny order: only the subgroup check of public_point_problem gets here
        return _slow_multiply(curve, k, q1)
    acc = INFINITY
    bits = k.bit_length()
    i = bits - 1
    while i >= 0:
        if not (k >> i) & 1:
            acc = _double(acc, a, p)
            i -= 1
            continue
        # the longest window of at most 4 bits ending in a 1
        j = max(i - WINDOW + 1, 0)
        while not (k >> j) & 1:
            j += 1
        value = (k >> j) & ((1 << (i - j + 1)) - 1)
        for _ in range(i - j + 1):
            acc = _double(acc, a, p)
        acc = _add_affine(acc, odd_affine[value >> 1], a, p)
        i = j - 1
    return acc


def _slow_multiply(curve: Curve, k: int, pt: Jacobian) -> Jacobian:
    acc = INFINITY
    for bit in bin(k)[2:]:
        acc = _double(acc, curve.a, curve.p)
        if bit == "1":
            acc = _add(acc, pt, curve.a, curve.p)
    return acc


def is_on_curve(curve: Curve, point: Affine) -> bool:
    """Whether the point satisfies the curve equation (rejects forged/garbage keys)."""
    x, y = point
    p = curve.p
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


def public_point_problem(curve: Curve, point: Affine) -> str | None:
    """Why ``point`` is not a valid public key on ``curve``; None when it is.

    Valid means: coordinates in [0, p), on the curve, not the point at infinity
    (it has no affine form; (0, 0), its usual stand-in, is on no GOST curve) and
    in the subgroup of order q. On a cofactor-1 curve every affine curve point is
    in it; on the twisted Edwards sets (cofactor 4) q·Q = O costs one scalar
    multiplication, ≈1 ms (256 bits) or ≈5 ms (512), so the answer is cached:
    a CA key is checked again for every signature it verifies.
    """
    x, y = point
    p = curve.p
    if x == 0 and y == 0:
        return "is the point at infinity (0, 0)"
    if not (0 <= x < p and 0 <= y < p):
        return "has a coordinate outside [0, p)"
    if not is_on_curve(curve, point):
        return "is not a point on the curve"
    if curve.cofactor != 1 and not _in_subgroup(curve, x, y):
        return "is not in the subgroup of order q"
    return None


@lru_cache(maxsize=256)
def _in_subgroup(curve: Curve, x: int, y: int) -> bool:
    return point_multiply(curve, curve.q, (x, y))[2] == 0


def verify_digest(curve: Curve, public: Affine, e_int: int, r: int, s: int) -> bool:
    """GOST R 34.10 verification with the digest already read as an integer (§6.2).

    An invalid public point (see :func:`public_point_problem`) never verifies:
    no point arithmetic runs on it (invalid-curve and small-subgroup inputs).
    """
    q = curve.q
    if not (0 < r < q and 0 < s < q):
        return False
    if public_point_problem(curve, public) is not None:
        return False
    e = e_int % q or 1
    v = pow(e, -1, q)
    z1 = s * v % q
    z2 = (q - r) * v % q
    # both scalars' digits go into one accumulator (no doublings at all)
    c = _add_multiple(curve, INFINITY, _base_table(curve), z1)
    c = _add_multiple(curve, c, _public_table(curve, *public), z2)
    affine = to_affine(c, curve.p)
    return affine is not None and affine[0] % q == r


def sign_digest(curve: Curve, private: int, e_int: int, k: int | None = None) -> tuple[int, int]:
    """GOST R 34.10 signing (§6.1); used by the test PKI factory. Returns (r, s)."""
    q = curve.q
    e = e_int % q or 1
    while True:
        kk = k if k is not None else secrets.randbelow(q - 1) + 1
        affine = to_affine(base_multiply(curve, kk), curve.p)
        if affine is None:
            continue
        r = affine[0] % q
        s = (r * private + kk * e) % q
        if r and s:
            return r, s
        if k is not None:
            raise ValueError("the given k yields r == 0 or s == 0")


def public_from_private(curve: Curve, private: int) -> Affine:
    """Q = d·P."""
    affine = to_affine(base_multiply(curve, private), curve.p)
    if affine is None:
        raise ValueError("private key is a multiple of the group order")
    return affine
