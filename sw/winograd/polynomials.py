"""Exact polynomial arithmetic over the rationals.

A polynomial is a tuple of :class:`fractions.Fraction` coefficients, lowest degree first, with no
trailing zeros: ``x^2 + 1`` is ``(1, 0, 1)`` and the zero polynomial is ``()``. Every function here
is pure and exact; none uses floating point. The sizes involved in convolution algorithms are
small (degree below about 20), so the schoolbook algorithms are the right ones.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "Poly", "trim", "degree", "add", "sub", "mul", "scale", "divmod_poly", "exact_div",
    "mod", "gcd", "inverse_mod", "evaluate", "product", "x_power_residues", "format_poly",
    "parse_poly",
]

Poly = tuple  # tuple[Fraction, ...], lowest degree first, no trailing zeros

_ZERO = Fraction(0)
_ONE = Fraction(1)


def trim(p) -> Poly:
    """Return ``p`` as a tuple of Fractions without trailing zeros."""
    p = [Fraction(c) for c in p]
    while p and p[-1] == 0:
        p.pop()
    return tuple(p)


def degree(p: Poly) -> int:
    """Degree of ``p``; -1 for the zero polynomial."""
    return len(p) - 1


def add(p: Poly, q: Poly) -> Poly:
    if len(p) < len(q):
        p, q = q, p
    out = list(p)
    for i, c in enumerate(q):
        out[i] += c
    return trim(out)


def sub(p: Poly, q: Poly) -> Poly:
    return add(p, scale(q, -1))


def scale(p: Poly, c) -> Poly:
    if c == 0:
        return ()
    return tuple(a * c for a in p)


def mul(p: Poly, q: Poly) -> Poly:
    if not p or not q:
        return ()
    out = [_ZERO] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        if a:
            for j, b in enumerate(q):
                if b:
                    out[i + j] += a * b
    return trim(out)


def product(polys) -> Poly:
    """Product of an iterable of polynomials (``(1,)`` for an empty one)."""
    out: Poly = (_ONE,)
    for p in polys:
        out = mul(out, p)
    return out


def divmod_poly(p: Poly, q: Poly) -> tuple[Poly, Poly]:
    """Quotient and remainder of ``p / q`` (``q`` non-zero)."""
    if not q:
        raise ZeroDivisionError("polynomial division by zero")
    rem = list(p)
    dq = len(q) - 1
    lead = q[-1]
    if len(rem) <= dq:
        return (), trim(rem)
    quot = [_ZERO] * (len(rem) - dq)
    for k in range(len(rem) - 1, dq - 1, -1):
        c = rem[k]
        if c:
            c = c / lead if lead != 1 else c
            quot[k - dq] = c
            for j in range(dq + 1):
                if q[j]:
                    rem[k - dq + j] -= c * q[j]
    return trim(quot), trim(rem[:dq])


def exact_div(p: Poly, q: Poly) -> Poly:
    quot, rem = divmod_poly(p, q)
    assert not rem, "exact_div: remainder is not zero"
    return quot


def mod(p: Poly, q: Poly) -> Poly:
    return divmod_poly(p, q)[1]


def _monic(p: Poly) -> Poly:
    return scale(p, 1 / p[-1]) if p else p


def gcd(p: Poly, q: Poly) -> Poly:
    """Monic greatest common divisor (``(1,)`` when co-prime, ``()`` when both are zero)."""
    while q:
        p, q = q, mod(p, q)
    return _monic(p)


def inverse_mod(p: Poly, m: Poly) -> Poly:
    """The ``s`` with ``deg s < deg m`` and ``s·p ≡ 1 (mod m)``; ``p`` and ``m`` co-prime."""
    r0, r1 = m, mod(p, m)
    s0, s1 = (), (_ONE,)
    while r1:
        quot, rem = divmod_poly(r0, r1)
        r0, r1 = r1, rem
        s0, s1 = s1, sub(s0, mul(quot, s1))
    if len(r0) != 1:
        raise ValueError("polynomials are not co-prime")
    return mod(scale(s0, 1 / r0[0]), m)


def evaluate(p: Poly, x) -> Fraction:
    """``p(x)`` by Horner's rule."""
    acc = _ZERO
    for c in reversed(p):
        acc = acc * x + c
    return acc


def x_power_residues(m: Poly, count: int) -> list[Poly]:
    """``[x^j mod m for j in range(count)]``, each padded to ``deg m`` coefficients.

    Built by the recurrence ``x^(j+1) = x · x^j (mod m)``, O(count · deg m).
    """
    n = len(m) - 1
    lead = m[-1]
    out = []
    cur = [_ZERO] * n
    if n > 0:
        cur[0] = _ONE
    else:
        return [()] * count
    for _ in range(count):
        out.append(tuple(cur))
        top = cur[-1]
        cur = [_ZERO] + cur[:-1]
        if top:
            c = top / lead
            for i in range(n):
                if m[i]:
                    cur[i] -= c * m[i]
    return out


def format_poly(p: Poly) -> str:
    """``(−1, 0, 1)`` → ``"x^2-1"``; highest degree first, fractions as ``p/q``."""
    if not p:
        return "0"
    parts = []
    for k in range(len(p) - 1, -1, -1):
        c = p[k]
        if c == 0:
            continue
        sign = "-" if c < 0 else "+"
        a = abs(c)
        mono = "" if k == 0 else ("x" if k == 1 else f"x^{k}")
        if k == 0:
            body = str(a)
        elif a == 1:
            body = mono
        else:
            body = f"{a}*{mono}" if a.denominator != 1 else f"{a}{mono}"
        parts.append((sign, body))
    first_sign, first = parts[0]
    out = ("-" if first_sign == "-" else "") + first
    for sign, body in parts[1:]:
        out += sign + body
    return out


_TERM = re.compile(r"^(\d+(?:/\d+)?)?\*?(x(?:(?:\^|\*\*)(\d+))?)?$")


def parse_poly(text: str) -> Poly:
    """Parse ``"x^2+1"``, ``"x - 1/2"``, ``"2x-1"``, ``"x**3 - 1"``, ``"3/2"`` into a polynomial.

    Raises ``ValueError`` naming the text when it is not a polynomial in ``x`` with rational
    coefficients.
    """
    if not isinstance(text, str):
        raise TypeError(f"Polynomial must be a string, not {text!r}")
    s = text.replace(" ", "").replace("X", "x")
    bad = ValueError(f"Cannot parse polynomial {text!r}: expected a polynomial in x such as "
                     f"'x', 'x-1', 'x^2+1' or '2x-1'")
    if not s:
        raise bad
    terms = re.findall(r"[+-]?[^+-]+", s)
    if "".join(terms) != s:
        raise bad
    coeffs: dict[int, Fraction] = {}
    for term in terms:
        sign = -1 if term[0] == "-" else 1
        body = term.lstrip("+-")
        if len(term) - len(body) > 1:
            raise bad
        match = _TERM.match(body)
        if not match or not body or (match.group(1) is None and match.group(2) is None):
            raise bad
        num, var, exp = match.groups()
        try:
            c = Fraction(num) if num is not None else _ONE
        except ZeroDivisionError:
            raise bad from None
        k = 0 if var is None else (int(exp) if exp is not None else 1)
        coeffs[k] = coeffs.get(k, _ZERO) + sign * c
    top = max(coeffs)
    return trim([coeffs.get(k, _ZERO) for k in range(top + 1)])
