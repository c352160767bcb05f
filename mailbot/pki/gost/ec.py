"""GOST R 34.10 signature math in pure Python, fast enough for a daemon.

gostcrypto takes ≈61 ms per 256-bit verification (affine coordinates, one
modular inversion per point operation). Here:

* points are kept in Jacobian coordinates (no inversion until the end);
* the base point's multiples are precomputed once per curve as a fixed-window
  table (4-bit digits), so ``z1·P`` is only additions;
* ``z2·Q`` uses a width-4 sliding window over Jacobian points.

Integers here are the mathematical values; the byte-order conventions of
certificates (little-endian key halves, s‖r) live in :mod:`mailbot.pki.gost.keys`.
"""

from __future__ import annotations

import secrets
from functools import cache, lru_cache

from mailbot.pki.gost.curves import Curve

#: A point in Jacobian coordinates (X, Y, Z): x = X/Z², y = Y/Z³; Z == 0 is infinity.
Jacobian = tuple[int, int, int]
Affine = tuple[int, int]

INFINITY: Jacobian = (1, 1, 0)
WINDOW = 4


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


def _batch_affine(points: list[Jacobian], p: int) -> list[Affine]:
    """Montgomery's trick: one inversion for the whole list (no point may be infinity)."""
    prefix: list[int] = []
    acc = 1
    for _, _, z in points:
        prefix.append(acc)
        acc = acc * z % p
    inv = pow(acc, -1, p)
    out: list[Affine] = [(0, 0)] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        zi = inv * prefix[i] % p
        inv = inv * z % p
        zi2 = zi * zi % p
        out[i] = (x * zi2 % p, y * zi2 * zi % p)
    return out


@cache
def _base_table(curve: Curve) -> tuple[tuple[Affine, ...], ...]:
    """table[i][j-1] = j·16^i·P for j in 1..15, in affine form (built once per curve)."""
    p, a = curve.p, curve.a
    windows = (curve.q.bit_length() + WINDOW - 1) // WINDOW
    flat: list[Jacobian] = []
    base: Jacobian = (curve.x, curve.y, 1)
    for _ in range(windows):
        acc = base
        for _ in range(1, 1 << WINDOW):
            flat.append(acc)
            acc = _add(acc, base, a, p)
        base = acc  # 16·base
    affine = _batch_affine(flat, p)
    step = (1 << WINDOW) - 1
    return tuple(tuple(affine[i * step : (i + 1) * step]) for i in range(windows))


def base_multiply(curve: Curve, k: int) -> Jacobian:
    """k·P for the curve's base point: table look-ups and mixed additions only."""
    table = _base_table(curve)
    p, a = curve.p, curve.a
    acc = INFINITY
    i = 0
    while k:
        digit = k & 0xF
        if digit:
            acc = _add_affine(acc, table[i][digit - 1], a, p)
        k >>= WINDOW
        i += 1
    return acc


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
    c = _add(base_multiply(curve, z1), point_multiply(curve, z2, public), curve.a, curve.p)
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
