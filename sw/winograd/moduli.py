"""The polynomial generator: moduli for the Chinese-remainder construction of F(m, r).

A fast algorithm for the linear convolution ``s = h * x`` (``h`` of length ``r``, ``x`` of length
``m``, ``s`` of length ``N = m + r - 1``) computes ``s mod M_k`` for pairwise co-prime moduli
``M_1 … M_K`` whose degrees add up to ``N - 1``, rebuilds ``s mod M`` (``M = ∏ M_k``) by the Chinese
remainder theorem, and adds the top coefficient ``s_{N-1} · M`` (the point at infinity). Each
modulus of degree ``n`` costs one multiplication if ``n = 1`` and ``2n - 1`` (a small linear
convolution at ``2n - 2`` inner points plus infinity) otherwise, so

    α = Σ_k α_k + 1,   α_k = 1 if deg M_k = 1 else 2·deg M_k − 1.

Toom-Cook is the case where every modulus is linear, ``x − a`` at a point ``a``. The patent's CRT
construction (US10997272B2) uses ``x`` and ``x^n ± 1``, whose residues need only additions. Any
non-constant polynomial with rational coefficients is accepted here; the generator checks the
set is pairwise co-prime and of the right total degree.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd as int_gcd
from numbers import Rational

from . import polynomials as P

__all__ = [
    "Modulus", "as_point", "as_points", "as_modulus", "parse_moduli", "point_sequence",
    "default_points", "toom_cook_moduli", "crt_moduli", "check_moduli", "multiplications",
]


@dataclass(frozen=True)
class Modulus:
    """A monic polynomial modulus, ``coeffs`` lowest degree first (``x^2 + 1`` → ``(1, 0, 1)``).

    Build one with :meth:`parse` (``"x^2+1"``, ``"2x-1"``), :meth:`linear` (the point ``a`` gives
    ``x − a``) or :meth:`cyclic` (``x^n ± 1``).
    """

    coeffs: tuple

    def __post_init__(self):
        coeffs = P.trim(self.coeffs)
        if len(coeffs) < 2:
            raise ValueError(f"Modulus {P.format_poly(coeffs)!r} has degree {len(coeffs) - 1}, "
                             f"expected degree 1 or more")
        if coeffs[-1] != 1:
            coeffs = P.scale(coeffs, 1 / coeffs[-1])
        object.__setattr__(self, "coeffs", coeffs)

    @classmethod
    def parse(cls, text: str) -> "Modulus":
        return cls(P.parse_poly(text))

    @classmethod
    def linear(cls, point) -> "Modulus":
        return cls((-as_point(point), Fraction(1)))

    @classmethod
    def cyclic(cls, n: int, sign: int) -> "Modulus":
        """``x^n + 1`` for ``sign = +1`` and ``x^n − 1`` for ``sign = −1``."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"Exponent must be a positive integer, not {n!r}")
        if sign not in (1, -1):
            raise ValueError(f"Sign must be +1 or -1, not {sign!r}")
        return cls((Fraction(sign),) + (Fraction(0),) * (n - 1) + (Fraction(1),))

    @property
    def degree(self) -> int:
        return len(self.coeffs) - 1

    @property
    def root(self):
        """The point ``a`` of a linear modulus ``x − a``; ``None`` for higher degrees."""
        return -self.coeffs[0] if self.degree == 1 else None

    @property
    def kind(self) -> str:
        """``"linear"``, ``"x^n+1"``, ``"x^n-1"`` or ``"other"``."""
        if self.degree == 1:
            return "linear"
        if all(c == 0 for c in self.coeffs[1:-1]) and self.coeffs[0] in (1, -1):
            return "x^n+1" if self.coeffs[0] == 1 else "x^n-1"
        return "other"

    @property
    def multiplications(self) -> int:
        """Products needed for a residue product modulo this polynomial: 1 or ``2n − 1``."""
        return 1 if self.degree == 1 else 2 * self.degree - 1

    def __str__(self) -> str:
        return P.format_poly(self.coeffs)

    def __repr__(self) -> str:
        return f"Modulus({str(self)!r})"


def as_point(value) -> Fraction:
    """An exact rational point from an int, a Fraction or a string such as ``"1/2"``."""
    if isinstance(value, bool):
        raise TypeError(f"Point must be an int, a Fraction or a string such as '1/2', "
                        f"not {value!r}")
    if isinstance(value, Rational):
        return Fraction(value)
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"Point must be a rational number such as '2' or '-1/2', "
                             f"not {value!r}") from None
    raise TypeError(f"Point must be an int, a Fraction or a string such as '1/2', "
                    f"not {value!r}")


def as_points(values, *, what: str = "Points") -> tuple[Fraction, ...]:
    """Distinct exact points from a sequence or a comma-separated string."""
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of rational numbers, not {values!r}") from None
    points = tuple(as_point(v) for v in values)
    seen = set()
    for p in points:
        if p in seen:
            raise ValueError(f"{what} must be distinct, but {p} appears more than once")
        seen.add(p)
    return points


def as_modulus(value) -> Modulus:
    if isinstance(value, Modulus):
        return value
    if isinstance(value, str):
        return Modulus.parse(value)
    raise TypeError(f"Modulus must be a Modulus or a string such as 'x^2+1', not {value!r}")


def parse_moduli(value) -> tuple[Modulus, ...]:
    """Moduli from ``"x,x-1,x+1,x^2+1"`` or a sequence of strings and :class:`Modulus`."""
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"Moduli must be 'toomcook', 'crt', a comma-separated string or a "
                        f"sequence of moduli, not {value!r}") from None
    return tuple(as_modulus(v) for v in items)


def point_sequence():
    """The default Toom-Cook points in order: 0, 1, −1, 2, −2, ½, −½, 3, −3, ⅓, −⅓, 3/2, ...

    Magnitudes ``c`` are taken by increasing ``max(p, q)`` for ``c = p/q``, each as ``n/1, 1/n``
    then ``n/k, k/n``; every ``c`` comes with ``−c``.
    """
    yield Fraction(0)
    n = 1
    while True:
        mags = [Fraction(n)] if n == 1 else [Fraction(n), Fraction(1, n)]
        for k in range(2, n):
            if int_gcd(n, k) == 1:
                mags += [Fraction(n, k), Fraction(k, n)]
        for c in mags:
            yield c
            yield -c
        n += 1


def default_points(count: int) -> tuple[Fraction, ...]:
    """The first ``count`` points of :func:`point_sequence` (F(6, 3): 0, ±1, ±2, ±½)."""
    seq = point_sequence()
    return tuple(next(seq) for _ in range(count))


def toom_cook_moduli(points) -> tuple[Modulus, ...]:
    return tuple(Modulus.linear(p) for p in points)


def crt_moduli(total_degree: int) -> tuple[Modulus, ...]:
    """The default CRT set of the given total degree.

    ``x, x − 1, x + 1`` (as many as fit), then ``x^2 + 1`` when the degree is 5 or more, then
    linear factors at the next default points (±2, ±½, ...). F(4, 3) gets ``{x, x−1, x+1, x²+1}``.
    """
    out = [Modulus.parse(s) for s in ("x", "x-1", "x+1")][:total_degree]
    left = total_degree - len(out)
    if total_degree >= 5:
        out.append(Modulus.cyclic(2, 1))
        left -= 2
    seq = point_sequence()
    for _ in range(3):
        next(seq)
    while left > 0:
        out.append(Modulus.linear(next(seq)))
        left -= 1
    return tuple(out)


def _common_factor(a: Modulus, b: Modulus):
    if a.degree == 1 and b.degree == 1:
        return a.coeffs if a.root == b.root else None
    if a.degree == 1 or b.degree == 1:
        lin, other = (a, b) if a.degree == 1 else (b, a)
        return lin.coeffs if P.evaluate(other.coeffs, lin.root) == 0 else None
    g = P.gcd(a.coeffs, b.coeffs)
    return g if len(g) > 1 else None


def check_moduli(moduli, m: int, r: int) -> None:
    """Raise ``ValueError`` unless ``moduli`` is a valid set for F(m, r).

    Valid: pairwise co-prime, total degree ``N − 1 = m + r − 2`` (the point at infinity supplies
    the last one).
    """
    names = ", ".join(str(x) for x in moduli) or "(none)"
    need = m + r - 2
    for i, a in enumerate(moduli):
        for b in moduli[i + 1:]:
            common = _common_factor(a, b)
            if common is not None:
                raise ValueError(f"Moduli {a} and {b} are not co-prime: both are divisible by "
                                 f"{P.format_poly(common)}")
    total = sum(x.degree for x in moduli)
    if total != need:
        raise ValueError(f"Moduli {names} have total degree {total}, but F({m}, {r}) needs "
                         f"{need} (m + r - 2; the point at infinity is added)")


def multiplications(moduli) -> int:
    """``α = Σ α_k + 1`` (the ``+ 1`` is the point at infinity)."""
    return sum(x.multiplications for x in moduli) + 1
