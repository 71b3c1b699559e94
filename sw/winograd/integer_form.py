"""Integer form for hardware: integer matrices, scales, exact bit growth and operation counts.

Each transform is factored as ``M = scale · M_int`` with ``M_int`` a primitive integer matrix and
``scale > 0`` rational, so for F(m, r)

    y = s · P,   P = AT_int [(G_int g) ⊙ (BT_int d)],   s = s_AT · s_G · s_BT,

and ``P`` is an exact integer for integer ``d`` and ``g``. A power-of-two ``s = 2^-k`` is a right
shift by ``k`` (flagged); any other ``s`` is an exact division by a constant, or folds into the
requantization multiplier. In 2-D, ``s = s_rows · s_cols``.

Bit growth is tracked stage by stage with exact integer interval arithmetic, for signed
``data_bits``-bit inputs and ``weight_bits``-bit weights. The linear input and filter transforms
reach their bounds (each output is a signed sum of independent inputs), as does each product. The
output stage is given twice: the interval bound of ``AT_int M`` (what a naive adder tree would
size for) and the exact range ``y/s`` of the correlation itself; since two's complement addition
wraps, an accumulator of the exact width gives the right result even if partial sums overflow.

Operation counts apply each integer matrix to a vector as a shift-add network: every entry in
canonical signed digit (non-adjacent) form contributes one term per non-zero digit, each row
costs ``terms − 1`` additions and one shift per term with a non-zero shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from ..fixed import signed_bits, signed_range
from .matrices import content

__all__ = ["ScaledMatrix", "IntegerForm", "IntegerForm2D", "BitGrowth", "OpCounts",
           "integer_form", "csd_digits"]


def csd_digits(c: int) -> list[tuple[int, int]]:
    """Non-adjacent form of ``c``: ``[(position, ±1), ...]`` with ``c = Σ d·2^position``."""
    sign = -1 if c < 0 else 1
    c = abs(c)
    out, pos = [], 0
    while c:
        if c & 1:
            d = 2 - (c & 3)
            c -= d
            out.append((pos, sign * d))
        c >>= 1
        pos += 1
    return out


def _power_of_two_exponent(s: Fraction):
    """``k`` with ``s = 2^k``, or ``None``."""
    p, q = s.numerator, s.denominator
    if p == 1 and q & (q - 1) == 0:
        return -(q.bit_length() - 1)
    if q == 1 and p & (p - 1) == 0:
        return p.bit_length() - 1
    return None


@dataclass(frozen=True)
class ScaledMatrix:
    """``scale · matrix``: a primitive integer matrix and a positive rational scale."""

    matrix: tuple
    scale: Fraction

    @classmethod
    def of(cls, rows) -> "ScaledMatrix":
        c = content([v for row in rows for v in row])
        return cls(tuple(tuple(int(v / c) for v in row) for row in rows), c)

    @property
    def power_of_two(self) -> bool:
        return _power_of_two_exponent(self.scale) is not None

    @property
    def shift(self):
        """``k`` with ``scale = 2^k`` (negative: right shift), or ``None``."""
        return _power_of_two_exponent(self.scale)

    @property
    def kind(self) -> str:
        """``"adds"`` (0, ±1 only), ``"shifts"`` (0, ±2^k) or ``"constants"``."""
        mags = {abs(v) for row in self.matrix for v in row} - {0}
        if mags <= {1}:
            return "adds"
        if all(v & (v - 1) == 0 for v in mags):
            return "shifts"
        return "constants"

    def ops(self) -> tuple[int, int]:
        """``(additions, shifts)`` to apply the matrix to one vector as a shift-add network."""
        adds = shifts = 0
        for row in self.matrix:
            terms = [pos for v in row if v for pos, _ in csd_digits(v)]
            adds += max(len(terms) - 1, 0)
            shifts += sum(1 for pos in terms if pos)
        return adds, shifts

    def to_dict(self) -> dict:
        return {"matrix": [list(row) for row in self.matrix], "scale": str(self.scale),
                "power_of_two": self.power_of_two, "kind": self.kind}


def _lin_range(rows, lo, hi):
    """Per-row ``(lo, hi)`` of ``rows @ v`` for independent ``v_j`` in ``[lo_j, hi_j]``."""
    out = []
    for row in rows:
        a = b = 0
        for c, l, h in zip(row, lo, hi):
            if c > 0:
                a += c * l
                b += c * h
            elif c < 0:
                a += c * h
                b += c * l
        out.append((a, b))
    return out


def _prod_range(u, v):
    corners = (u[0] * v[0], u[0] * v[1], u[1] * v[0], u[1] * v[1])
    return (min(corners), max(corners))


@dataclass(frozen=True)
class BitGrowth:
    """Exact ranges per stage: ``stages`` is a tuple of ``(name, lo, hi, bits)``."""

    data_bits: int
    weight_bits: int
    stages: tuple

    def bits(self, name: str) -> int:
        return next(b for n, _, _, b in self.stages if n == name)

    @property
    def accumulator_bits(self) -> int:
        """Width of the output accumulator (the exact range of ``P``; wrap-around is safe)."""
        return self.bits("P exact")

    def to_dict(self) -> dict:
        return {"data_bits": self.data_bits, "weight_bits": self.weight_bits,
                "stages": [{"stage": n, "min": lo, "max": hi, "bits": b}
                           for n, lo, hi, b in self.stages]}


@dataclass(frozen=True)
class OpCounts:
    """Operations per output (transforms as shift-add networks) against direct correlation.

    ``filter_adds`` and ``filter_shifts`` are per filter and happen offline (``G g`` is applied to
    the constant weights once). ``scale_op`` says how ``s`` is removed: ``"none"``, ``"shift"`` or
    ``"constant"``.
    """

    multiplications: float
    additions: float
    shifts: float
    direct_multiplications: int
    direct_additions: int
    filter_adds: int
    filter_shifts: int
    scale_op: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _ranged(name, ranges):
    lo = min(a for a, _ in ranges)
    hi = max(b for _, b in ranges)
    return (name, lo, hi, signed_bits(lo, hi))


def _exact_output(taps, dr, gr, scale):
    prods = _prod_range(dr, gr)
    ylo, yhi = taps * prods[0], taps * prods[1]
    plo, phi = Fraction(ylo) / scale, Fraction(yhi) / scale
    plo, phi = int(plo), int(phi)   # exact for attainable y; bounds are integers in practice
    return [("P exact", plo, phi, signed_bits(plo, phi)),
            ("y", ylo, yhi, signed_bits(ylo, yhi))]


def _scale_op(s: Fraction) -> str:
    if s == 1:
        return "none"
    return "shift" if _power_of_two_exponent(s) is not None else "constant"


def _remove(P, s: Fraction):
    """``s · P`` for integer ``P`` (int, or NumPy int/object array), checked to be exact."""
    p, q = s.numerator, s.denominator
    if isinstance(P, (list, tuple)):
        return [_remove(v, s) for v in P]
    if isinstance(P, np.ndarray):
        num = P * p
        assert not np.any(num % q), "scale removal is not exact"
        return num // q
    num = P * p
    assert num % q == 0, "scale removal is not exact"
    return num // q


@dataclass(frozen=True)
class IntegerForm:
    """F(m, r) as integer matrices and scales: ``y = scale · AT_int[(G_int g) ⊙ (BT_int d)]``."""

    m: int
    r: int
    AT: ScaledMatrix
    G: ScaledMatrix
    BT: ScaledMatrix

    @property
    def alpha(self) -> int:
        return len(self.G.matrix)

    @property
    def N(self) -> int:
        return self.m + self.r - 1

    @property
    def scale(self) -> Fraction:
        """Output scale ``s = s_AT · s_G · s_BT``."""
        return self.AT.scale * self.G.scale * self.BT.scale

    @property
    def power_of_two(self) -> bool:
        return _power_of_two_exponent(self.scale) is not None

    @property
    def shift(self):
        return _power_of_two_exponent(self.scale)

    def apply(self, d, g) -> list[int]:
        """The integer ``P`` (length m) for one tile of ints."""
        U = [sum(a * b for a, b in zip(row, g)) for row in self.G.matrix]
        V = [sum(a * b for a, b in zip(row, d)) for row in self.BT.matrix]
        M = [u * v for u, v in zip(U, V)]
        return [sum(a * b for a, b in zip(row, M)) for row in self.AT.matrix]

    def remove_scale(self, P):
        """``y = s · P`` exactly (ints or integer NumPy arrays)."""
        return _remove(P, self.scale)

    def bit_growth(self, data_bits: int = 8, weight_bits: int = 8) -> BitGrowth:
        dr, gr = signed_range(data_bits), signed_range(weight_bits)
        V = _lin_range(self.BT.matrix, [dr[0]] * self.N, [dr[1]] * self.N)
        U = _lin_range(self.G.matrix, [gr[0]] * self.r, [gr[1]] * self.r)
        M = [_prod_range(u, v) for u, v in zip(U, V)]
        P = _lin_range(self.AT.matrix, [a for a, _ in M], [b for _, b in M])
        stages = [("d", *dr, data_bits), ("g", *gr, weight_bits),
                  _ranged("BT d", V), _ranged("G g", U), _ranged("product", M),
                  _ranged("P interval", P)] + _exact_output(self.r, dr, gr, self.scale)
        return BitGrowth(data_bits, weight_bits, tuple(stages))

    def op_counts(self) -> OpCounts:
        a_at, s_at = self.AT.ops()
        a_bt, s_bt = self.BT.ops()
        a_g, s_g = self.G.ops()
        return OpCounts(self.alpha / self.m, (a_at + a_bt) / self.m, (s_at + s_bt) / self.m,
                        self.r, self.r - 1, a_g, s_g, _scale_op(self.scale))

    def to_dict(self) -> dict:
        return {"AT": self.AT.to_dict(), "G": self.G.to_dict(), "BT": self.BT.to_dict(),
                "scale": str(self.scale), "power_of_two": self.power_of_two,
                "shift": self.shift}


@dataclass(frozen=True)
class IntegerForm2D:
    """F(m×n, r×s) as two 1-D integer forms; output scale ``rows.scale · cols.scale``."""

    rows: IntegerForm
    cols: IntegerForm

    @property
    def scale(self) -> Fraction:
        return self.rows.scale * self.cols.scale

    @property
    def power_of_two(self) -> bool:
        return _power_of_two_exponent(self.scale) is not None

    @property
    def shift(self):
        return _power_of_two_exponent(self.scale)

    def remove_scale(self, P):
        return _remove(P, self.scale)

    def bit_growth(self, data_bits: int = 8, weight_bits: int = 8) -> BitGrowth:
        R, C = self.rows, self.cols
        dr, gr = signed_range(data_bits), signed_range(weight_bits)

        def two_pass(Mr, Mc, rng, rows_in, cols_in):
            first = _lin_range(Mr, [rng[0]] * rows_in, [rng[1]] * rows_in)   # per row t
            second = [rc for lo_hi in first
                      for rc in _lin_range(Mc, [lo_hi[0]] * cols_in, [lo_hi[1]] * cols_in)]
            return first, second                  # second is row-major (t, u)

        Vr, V = two_pass(R.BT.matrix, C.BT.matrix, dr, R.N, C.N)
        Ur, U = two_pass(R.G.matrix, C.G.matrix, gr, R.r, C.r)
        M = [_prod_range(u, v) for u, v in zip(U, V)]
        ac = C.alpha
        # AT_r pass: for each column u, rows i: Σ_t ATr[i,t] M[t,u]
        X = {}
        for u in range(ac):
            col = [M[t * ac + u] for t in range(R.alpha)]
            for i, rng in enumerate(_lin_range(R.AT.matrix, [a for a, _ in col],
                                               [b for _, b in col])):
                X[i, u] = rng
        P = []
        for i in range(R.m):
            row = [X[i, u] for u in range(ac)]
            P += _lin_range(C.AT.matrix, [a for a, _ in row], [b for _, b in row])
        stages = [("d", *dr, data_bits), ("g", *gr, weight_bits),
                  _ranged("BT d (rows)", Vr), _ranged("BT d B", V),
                  _ranged("G g (rows)", Ur), _ranged("G g Gt", U), _ranged("product", M),
                  _ranged("AT M (rows)", list(X.values())), _ranged("P interval", P)]
        stages += _exact_output(R.r * C.r, dr, gr, self.scale)
        return BitGrowth(data_bits, weight_bits, tuple(stages))

    def op_counts(self) -> OpCounts:
        R, C = self.rows, self.cols
        a_btr, s_btr = R.BT.ops()
        a_btc, s_btc = C.BT.ops()
        a_atr, s_atr = R.AT.ops()
        a_atc, s_atc = C.AT.ops()
        a_gr, s_gr = R.G.ops()
        a_gc, s_gc = C.G.ops()
        outs = R.m * C.m
        adds = C.N * a_btr + R.alpha * a_btc + C.alpha * a_atr + R.m * a_atc
        shifts = C.N * s_btr + R.alpha * s_btc + C.alpha * s_atr + R.m * s_atc
        return OpCounts(R.alpha * C.alpha / outs, adds / outs, shifts / outs, R.r * C.r,
                        R.r * C.r - 1, C.r * a_gr + R.alpha * a_gc, C.r * s_gr + R.alpha * s_gc,
                        _scale_op(self.scale))

    def to_dict(self) -> dict:
        return {"rows": self.rows.to_dict(), "cols": self.cols.to_dict(),
                "scale": str(self.scale), "power_of_two": self.power_of_two,
                "shift": self.shift}


@lru_cache(maxsize=256)
def _form_1d(alg) -> IntegerForm:
    return IntegerForm(alg.m, alg.r, ScaledMatrix.of(alg.AT), ScaledMatrix.of(alg.G),
                       ScaledMatrix.of(alg.BT))


def integer_form(algorithm):
    """The :class:`IntegerForm` of a :class:`.Winograd1D`, or :class:`IntegerForm2D` of a
    :class:`.Winograd2D`."""
    from .algorithm import Winograd1D
    from .nesting import Winograd2D
    if isinstance(algorithm, Winograd1D):
        return _form_1d(algorithm)
    if isinstance(algorithm, Winograd2D):
        return IntegerForm2D(_form_1d(algorithm.rows), _form_1d(algorithm.cols))
    raise TypeError(f"Algorithm must be a Winograd1D or Winograd2D, not {algorithm!r}")
