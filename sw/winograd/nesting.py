"""The convolution generator, 2-D: F(m×n, r×s) by nesting two 1-D algorithms.

With ``rows`` = F(m, r) along the first axis and ``cols`` = F(n, s) along the second, an input
tile ``d`` (``N_r × N_c``, ``N_r = m + r − 1``, ``N_c = n + s − 1``) and a filter ``g`` (``r × s``)
give the ``m × n`` output tile

    Y = ATr [(Gr g Gcᵀ) ⊙ (BTr d BTcᵀ)] ATcᵀ,   Y_ij = Σ_{k,l} g_kl · d_{i+k, j+l},

with ``α_r · α_c`` multiplications. Only the two 1-D algorithms are built; the Kronecker forms
(``AT = ATr ⊗ ATc`` acting on row-major flattened tiles) are computed on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from .algorithm import Winograd1D, winograd_1d

__all__ = ["Winograd2D", "winograd_2d"]


_ZERO = Fraction(0)


def _kron(X, Y):
    """Kronecker product of Fraction matrices; zeros and ones skip the multiplication."""
    out = []
    for xr in X:
        for yr in Y:
            row = []
            for a in xr:
                if not a:
                    row.extend([_ZERO] * len(yr))
                elif a == 1:
                    row.extend(yr)
                else:
                    row.extend([a * b if b else _ZERO for b in yr])
            out.append(tuple(row))
    return tuple(out)


@dataclass(frozen=True)
class Winograd2D:
    """F(m×n, r×s): ``Y = rows.AT @ ((rows.G @ g @ cols.G.T) * (rows.BT @ d @ cols.BT.T)) @ cols.AT.T``.

    Attributes
    ----------
    rows : Winograd1D
        F(m, r) along axis 0 (height).
    cols : Winograd1D
        F(n, s) along axis 1 (width).
    """

    rows: Winograd1D
    cols: Winograd1D

    def __post_init__(self):
        for name in ("rows", "cols"):
            if not isinstance(getattr(self, name), Winograd1D):
                raise TypeError(f"{name} must be a Winograd1D, not {getattr(self, name)!r}")

    @property
    def m(self) -> tuple[int, int]:
        """Output tile shape ``(m, n)``."""
        return (self.rows.m, self.cols.m)

    @property
    def r(self) -> tuple[int, int]:
        """Filter shape ``(r, s)``."""
        return (self.rows.r, self.cols.r)

    @property
    def N(self) -> tuple[int, int]:
        """Input tile shape ``(m + r − 1, n + s − 1)``."""
        return (self.rows.N, self.cols.N)

    @property
    def alpha(self) -> int:
        """Multiplications per tile, ``α_rows · α_cols``."""
        return self.rows.alpha * self.cols.alpha

    @property
    def name(self) -> str:
        (m, n), (r, s) = self.m, self.r
        return f"F({m}×{n}, {r}×{s})"

    @cached_property
    def AT(self):
        """Kronecker output transform, ``(m·n) × α`` (row-major tiles)."""
        return _kron(self.rows.AT, self.cols.AT)

    @cached_property
    def G(self):
        """Kronecker filter transform, ``α × (r·s)``."""
        return _kron(self.rows.G, self.cols.G)

    @cached_property
    def BT(self):
        """Kronecker input transform, ``α × (N_r·N_c)``."""
        return _kron(self.rows.BT, self.cols.BT)

    def apply(self, d, g):
        """Exact ``Y`` (m × n list of Fractions) for one tile, by rows then columns."""
        d = [[Fraction(v) for v in row] for row in d]
        g = [[Fraction(v) for v in row] for row in g]
        if (len(d), len(d[0]) if d else 0) != self.N or (len(g), len(g[0]) if g else 0) != self.r:
            raise ValueError(f"{self.name} needs a {self.N[0]}×{self.N[1]} tile and a "
                             f"{self.r[0]}×{self.r[1]} filter")
        R, C = self.rows, self.cols

        def left(Mx, X):   # Mx @ X
            return [[sum(a * X[k][j] for k, a in enumerate(row) if a) for j in range(len(X[0]))]
                    for row in Mx]

        def right(X, Mx):  # X @ Mx.T
            return [[sum(a * b for a, b in zip(xr, mr) if b) for mr in Mx] for xr in X]

        U = right(left(R.G, g), C.G)
        V = right(left(R.BT, d), C.BT)
        M = [[u * v for u, v in zip(ur, vr)] for ur, vr in zip(U, V)]
        return right(left(R.AT, M), C.AT)

    def is_exact(self) -> bool:
        """Exact because both 1-D factors are (the identity factors over the two axes)."""
        return self.rows.is_exact() and self.cols.is_exact()

    def to_dict(self) -> dict:
        return {"rows": self.rows.to_dict(), "cols": self.cols.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "Winograd2D":
        return cls(rows=Winograd1D.from_dict(data["rows"]), cols=Winograd1D.from_dict(data["cols"]))

    def __str__(self) -> str:
        return f"{self.name}, α = {self.alpha}\nrows: {self.rows}\ncols: {self.cols}"


def winograd_2d(m, r, moduli="toomcook", points=None, inner_points=None, *, n=None, s=None,
                col_moduli=None, col_points=None, col_inner_points=None) -> Winograd2D:
    """Build F(m×n, r×s) by nesting; F(m×m, r×r) when ``n`` and ``s`` are omitted.

    ``moduli``, ``points`` and ``inner_points`` are as for :func:`.winograd_1d` and apply to the
    rows. The ``col_*`` arguments apply to the columns; each defaults to the row choice when the
    columns have the same size. For a different column size, ``"toomcook"`` and ``"crt"`` carry
    over (with default points), while explicit moduli or points must be given for the columns.
    """
    n = m if n is None else n
    s = r if s is None else s
    rows = winograd_1d(m, r, moduli=moduli, points=points, inner_points=inner_points)
    same = (n, s) == (m, r)
    named = isinstance(moduli, str) and moduli.strip().lower() in (
        "toomcook", "toom-cook", "tc", "crt")
    if col_moduli is None:
        if not (same or named):
            raise ValueError(f"F({m}×{n}, {r}×{s}) needs col_moduli when the row moduli are "
                             f"given explicitly and the columns have another size")
        col_moduli = moduli
    if col_points is None and points is not None:
        if not same:
            raise ValueError(f"F({m}×{n}, {r}×{s}) needs col_points when the row points are "
                             f"given explicitly and the columns have another size")
        col_points = points
    if col_inner_points is None:
        col_inner_points = inner_points
    cols = winograd_1d(n, s, moduli=col_moduli, points=col_points, inner_points=col_inner_points)
    return Winograd2D(rows=rows, cols=cols)
