"""The convolution generator, 1-D: F(m, r) as ``y = Aᵀ [(G g) ⊙ (Bᵀ d)]``.

F(m, r) computes ``m`` outputs of the correlation of an ``r``-tap filter ``g`` with an input tile
``d`` of ``N = m + r − 1`` samples,

    y_i = Σ_{k<r} g_k · d_{i+k},   i = 0 … m − 1,

with ``α`` multiplications instead of ``m·r``. Build one with :func:`winograd_1d`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache

import numpy as np

from .matrices import correlation_matrices
from .moduli import (as_points, check_moduli, crt_moduli, default_points, parse_moduli,
                     point_sequence, toom_cook_moduli)

__all__ = ["Winograd1D", "winograd_1d", "check_size", "format_matrix"]


def check_size(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _frac_matrix(rows, shape, name):
    rows = tuple(tuple(Fraction(v) for v in row) for row in rows)
    if len(rows) != shape[0] or any(len(row) != shape[1] for row in rows):
        got = (len(rows), len(rows[0]) if rows else 0)
        raise ValueError(f"{name} must be {shape[0]} × {shape[1]}, not {got[0]} × {got[1]}")
    return rows


def format_matrix(rows) -> str:
    """Rows of Fractions as right-aligned text, one row per line."""
    cells = [[str(v) for v in row] for row in rows]
    width = max((len(c) for row in cells for c in row), default=1)
    return "\n".join(" ".join(c.rjust(width) for c in row) for row in cells)


@dataclass(frozen=True)
class Winograd1D:
    """A 1-D algorithm F(m, r): ``y = AT @ ((G @ g) * (BT @ d))``.

    Attributes
    ----------
    m, r : int
        Outputs per tile and filter taps; the tile holds ``N = m + r − 1`` inputs.
    moduli : tuple of Modulus
        The pairwise co-prime moduli it was built from (total degree ``N − 1``; the point at
        infinity is implied and is the last product).
    inner_points : tuple of Fraction
        Points of the small Toom-Cook algorithms used for moduli of degree > 1.
    AT : tuple of tuples of Fraction, shape (m, α)
        Output transform; a primitive integer matrix.
    G : tuple of tuples of Fraction, shape (α, r)
        Filter transform; holds every scale factor.
    BT : tuple of tuples of Fraction, shape (α, N)
        Input transform; a primitive integer matrix.
    """

    m: int
    r: int
    moduli: tuple
    inner_points: tuple
    AT: tuple
    G: tuple
    BT: tuple

    def __post_init__(self):
        check_size(self.m, "m")
        check_size(self.r, "r")
        alpha = len(self.G)
        object.__setattr__(self, "moduli", tuple(parse_moduli(self.moduli)))
        object.__setattr__(self, "inner_points", as_points(self.inner_points,
                                                           what="Inner points"))
        object.__setattr__(self, "AT", _frac_matrix(self.AT, (self.m, alpha), "AT"))
        object.__setattr__(self, "G", _frac_matrix(self.G, (alpha, self.r), "G"))
        object.__setattr__(self, "BT", _frac_matrix(self.BT, (alpha, self.N), "BT"))

    @property
    def N(self) -> int:
        """Input tile size ``m + r − 1``."""
        return self.m + self.r - 1

    @property
    def alpha(self) -> int:
        """Number of multiplications per tile."""
        return len(self.G)

    @property
    def name(self) -> str:
        return f"F({self.m}, {self.r})"

    @property
    def is_toom_cook(self) -> bool:
        return all(x.degree == 1 for x in self.moduli)

    @property
    def points(self):
        """The finite points of a Toom-Cook algorithm; ``None`` if a modulus has degree > 1."""
        return tuple(x.root for x in self.moduli) if self.is_toom_cook else None

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(AT, G, BT)`` as float64 arrays."""
        return tuple(np.array([[float(v) for v in row] for row in M], dtype=np.float64)
                     .reshape(len(M), -1) for M in (self.AT, self.G, self.BT))

    def apply(self, d, g) -> list:
        """Exact ``y`` (length m) for one tile ``d`` (length N) and filter ``g`` (length r).

        Uses rational arithmetic on any ints or Fractions.
        """
        d = [Fraction(v) for v in d]
        g = [Fraction(v) for v in g]
        if len(d) != self.N or len(g) != self.r:
            raise ValueError(f"{self.name} needs a tile of {self.N} and a filter of {self.r}, "
                             f"not {len(d)} and {len(g)}")
        U = [sum(a * b for a, b in zip(row, g)) for row in self.G]
        V = [sum(a * b for a, b in zip(row, d)) for row in self.BT]
        M = [u * v for u, v in zip(U, V)]
        return [sum(a * b for a, b in zip(row, M)) for row in self.AT]

    def is_exact(self) -> bool:
        """Whether ``Σ_t AT[i,t]·G[t,k]·BT[t,j] = [j = i + k]`` for all i, k, j.

        The algorithm is bilinear in (g, d), so this basis-vector identity is a proof that it
        equals direct correlation on every input; it does not depend on random data.
        """
        from .integer_form import integer_form
        form = integer_form(self)
        AT = np.array(form.AT.matrix, dtype=object).reshape(self.m, self.alpha)
        G = np.array(form.G.matrix, dtype=object).reshape(self.alpha, self.r)
        BT = np.array(form.BT.matrix, dtype=object).reshape(self.alpha, self.N)
        T = np.tensordot(AT[:, :, None] * G[None, :, :], BT, axes=([1], [0]))  # (m, r, N)
        s = form.scale
        for i in range(self.m):
            for k in range(self.r):
                for j in range(self.N):
                    want = 1 if j == i + k else 0
                    if T[i, k, j] * s != want:
                        return False
        return True

    def to_dict(self) -> dict:
        return {
            "m": self.m, "r": self.r, "alpha": self.alpha,
            "moduli": [str(x) for x in self.moduli],
            "inner_points": [str(p) for p in self.inner_points],
            "AT": [[str(v) for v in row] for row in self.AT],
            "G": [[str(v) for v in row] for row in self.G],
            "BT": [[str(v) for v in row] for row in self.BT],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Winograd1D":
        """Rebuild from :meth:`to_dict` output (the matrices are checked against a rebuild)."""
        alg = winograd_1d(data["m"], data["r"], moduli=data["moduli"],
                          inner_points=data.get("inner_points") or None)
        if "G" in data and alg.to_dict()["G"] != data["G"]:
            raise ValueError(f"Matrices in the dict do not match {alg.name} built from moduli "
                             f"{', '.join(data['moduli'])}")
        return alg

    def __str__(self) -> str:
        mods = ", ".join(str(x) for x in self.moduli)
        return (f"{self.name}, α = {self.alpha}, moduli {{{mods}}} + ∞\n"
                f"AT =\n{format_matrix(self.AT)}\nG =\n{format_matrix(self.G)}\n"
                f"BT =\n{format_matrix(self.BT)}")


def _resolve(m, r, moduli, points, inner_points):
    check_size(m, "m")
    check_size(r, "r")
    degree = m + r - 2
    if isinstance(moduli, str) and moduli.strip().lower() in ("toomcook", "toom-cook", "tc"):
        if points is None:
            pts = default_points(degree)
        else:
            pts = as_points(points)
            if len(pts) != degree:
                raise ValueError(f"F({m}, {r}) needs {degree} distinct finite points "
                                 f"(m + r - 2; the point at infinity is added), not {len(pts)}")
        mods = toom_cook_moduli(pts)
    else:
        if points is not None:
            raise ValueError("points apply only to moduli='toomcook'; give the moduli "
                             "themselves, or inner_points for the factors of degree > 1")
        if isinstance(moduli, str) and moduli.strip().lower() == "crt":
            mods = crt_moduli(degree)
        else:
            mods = parse_moduli(moduli)
    check_moduli(mods, m, r)
    top = max((x.degree for x in mods), default=1)
    need = 2 * top - 2
    if inner_points is None:
        seq = point_sequence()
        inner = tuple(next(seq) for _ in range(need))
    else:
        inner = as_points(inner_points, what="Inner points")
        if len(inner) < need:
            worst = next(x for x in mods if x.degree == top)
            raise ValueError(f"Modulus {worst} of degree {top} needs {need} distinct inner "
                             f"points, not {len(inner)}")
        inner = inner[:need]
    return mods, inner


def winograd_1d(m: int, r: int, moduli="toomcook", points=None, inner_points=None) -> Winograd1D:
    """Build F(m, r).

    Parameters
    ----------
    m, r : int
        Outputs per tile and filter taps (both ≥ 1).
    moduli : "toomcook", "crt", str or sequence
        ``"toomcook"``: linear moduli ``x − a`` at ``points``. ``"crt"``: the default CRT set
        (:func:`.moduli.crt_moduli`, e.g. ``{x, x−1, x+1, x²+1}`` for F(4, 3)). Otherwise a
        comma-separated string such as ``"x,x-1,x+1,x^2+1"`` or a sequence of strings and
        :class:`.Modulus`; they must be pairwise co-prime with total degree ``m + r − 2``.
    points : sequence of rationals, optional
        The ``m + r − 2`` finite Toom-Cook points (default 0, 1, −1, 2, −2, ½, −½, 3, ...).
    inner_points : sequence of rationals, optional
        Points of the small Toom-Cook algorithms for moduli of degree ``n > 1`` (the first
        ``2n − 2`` are used; same default sequence).

    Raises
    ------
    TypeError, ValueError
        Naming the bad value: sizes, points, unparsable or non-co-prime moduli, wrong degree.
    """
    mods, inner = _resolve(m, r, moduli, points, inner_points)
    return _build(m, r, mods, inner)


@lru_cache(maxsize=512)
def _build(m, r, mods, inner) -> Winograd1D:
    AT, G, BT = correlation_matrices(m, r, mods, inner)
    return Winograd1D(m=m, r=r, moduli=mods, inner_points=inner, AT=AT, G=G, BT=BT)


def clear_cache() -> None:
    """Forget every built algorithm (for timing generation from scratch)."""
    _build.cache_clear()
