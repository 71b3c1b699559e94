"""Search: the most accurate Toom-Cook points and the cheapest integer CRT construction.

:func:`search_points` scores Toom-Cook point sets for F(m, r) by their float error
(:func:`.error.float_error`, same data for every candidate) over a family of candidates
``0, ±c`` (``c`` in 1, 2, ½, 3, ⅓, 3/2, ⅔, 4, ¼, 4/3, ¾, 5/2, 2/5 by default). It enumerates the
symmetric sets (``0`` when the count is odd, then pairs ``±c``; for an even count, pairs only or
``0`` plus pairs plus one more point), then improves the best by hill climbing: replace one point
by any other candidate while the error drops. The winner and the default are scored again on
fresh data, so the reported gain is not a selection artefact.

:func:`search_crt` enumerates the pairwise co-prime sets of total degree ``m + r − 2`` drawn from
``x, x ± 1, x ± 2, x ± ½`` and ``x^n ± 1`` (``n ≥ 2``) that hold a factor ``x^n ± 1`` with
``n ≥ 2`` or only ``x, x ± 1`` (other all-linear sets are Toom-Cook, the other search), builds them in order of multiplication count and
ranks them by hardware cost, lexicographically:

1. the worst transform kind in ``AT`` and ``BT``: only 0, ±1 (additions) < powers of two
   (shifts) < other constants;
2. the multiplications ``α``;
3. additions plus shifts per output of the 1-D transforms;
4. a non-power-of-two output scale.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .algorithm import check_size, winograd_1d
from .error import float_error
from .integer_form import integer_form
from .moduli import Modulus, _common_factor, as_points, default_points, multiplications

__all__ = ["PointSearch", "CrtSearch", "search_points", "search_crt", "DEFAULT_MAGNITUDES",
           "crt_cost"]

DEFAULT_MAGNITUDES = tuple(Fraction(v) for v in
                           ("1", "2", "1/2", "3", "1/3", "3/2", "2/3", "4", "1/4", "4/3", "3/4",
                            "5/2", "2/5"))
_KIND_RANK = {"adds": 0, "shifts": 1, "constants": 2}


@dataclass(frozen=True)
class PointSearch:
    """Result of :func:`search_points`; errors are mean relative L1 errors in ``dtype``."""

    m: int
    r: int
    dtype: str
    points: tuple
    error: float
    default_points: tuple
    default_error: float
    evaluated: int
    ranking: tuple          # ((error on the search data, points), ...) best first, top 10

    @property
    def gain(self) -> float:
        """``default_error / error`` (> 1: the search found better points)."""
        return self.default_error / self.error if self.error else float("inf")

    def to_dict(self) -> dict:
        return {"m": self.m, "r": self.r, "dtype": self.dtype,
                "points": [str(p) for p in self.points], "error": self.error,
                "default_points": [str(p) for p in self.default_points],
                "default_error": self.default_error, "gain": self.gain,
                "evaluated": self.evaluated}


@dataclass(frozen=True)
class CrtSearch:
    """Result of :func:`search_crt`: the cheapest set and the ranking ``((cost, moduli), ...)``."""

    m: int
    r: int
    moduli: tuple
    cost: tuple
    evaluated: int
    ranking: tuple

    @property
    def algorithm(self):
        return winograd_1d(self.m, self.r, moduli=self.moduli)

    def to_dict(self) -> dict:
        return {"m": self.m, "r": self.r, "moduli": [str(x) for x in self.moduli],
                "alpha": multiplications(self.moduli), "cost": list(self.cost),
                "evaluated": self.evaluated}


def _family(family):
    if family is None:
        mags = DEFAULT_MAGNITUDES
    else:
        pts = as_points(family, what="Family")
        mags = tuple(dict.fromkeys(abs(p) for p in pts if p != 0))
    return mags


def search_points(m: int, r: int, *, dtype="float16", family=None, trials: int = 1000,
                  seed: int = 0, max_evaluations: int = 600) -> PointSearch:
    """Most accurate Toom-Cook points for F(m, r) in ``dtype`` (see the module docstring).

    ``family`` lists candidate points (their magnitudes are used, with both signs, plus 0);
    ``max_evaluations`` bounds the number of algorithms scored.
    """
    check_size(m, "m")
    check_size(r, "r")
    count = m + r - 2
    mags = _family(family)
    if 2 * len(mags) + 1 < count:
        raise ValueError(f"F({m}, {r}) needs {count} points but the family has only "
                         f"{2 * len(mags) + 1}")
    cands = (Fraction(0),) + tuple(s * c for c in mags for s in (1, -1))
    scores: dict = {}

    def score(pts):
        key = tuple(sorted(pts))
        if key not in scores:
            alg = winograd_1d(m, r, points=pts)
            scores[key] = (float_error(alg, dtype, trials=trials, rng=np.random.default_rng(seed)),
                           tuple(pts))
        return scores[key][0]

    default = default_points(count)
    score(default)
    k = count // 2
    starts = []
    if count % 2:
        starts += [(Fraction(0),) + tuple(s * c for c in pair for s in (1, -1))
                   for pair in itertools.combinations(mags, k)]
    else:
        starts += [tuple(s * c for c in pair for s in (1, -1))
                   for pair in itertools.combinations(mags, k)]
        if k >= 1:
            starts += [(Fraction(0), extra) + tuple(s * c for c in pair for s in (1, -1))
                       for pair in itertools.combinations(mags, k - 1)
                       for extra in cands[1:] if abs(extra) not in pair]
    budget = max_evaluations // 2
    for pts in starts[:budget]:
        score(pts)
    best_err, best = min(scores.values())
    improved = True
    while improved and len(scores) < max_evaluations:
        improved = False
        for i, c in itertools.product(range(count), cands):
            if c in best or len(scores) >= max_evaluations:
                continue
            pts = best[:i] + (c,) + best[i + 1:]
            e = score(pts)
            if e < best_err * (1 - 1e-3):
                best_err, best, improved = e, pts, True
    fresh = np.random.default_rng(seed + 1)
    state = fresh.bit_generator.state
    err = float_error(winograd_1d(m, r, points=best), dtype, trials=4 * trials, rng=fresh)
    fresh.bit_generator.state = state
    derr = float_error(winograd_1d(m, r, points=default), dtype, trials=4 * trials, rng=fresh)
    ranking = tuple(sorted(scores.values())[:10])
    return PointSearch(m, r, str(np.dtype(dtype) if not isinstance(dtype, str) else dtype),
                       best, err, default, derr, len(scores), ranking)


def crt_family(total_degree: int) -> tuple[Modulus, ...]:
    lin = [Modulus.parse(s) for s in ("x", "x-1", "x+1", "x-2", "x+2", "x-1/2", "x+1/2")]
    cyc = [Modulus.cyclic(n, s) for n in range(2, total_degree + 1) for s in (1, -1)]
    return tuple(lin + cyc)


def _sets(family, total):
    n = len(family)
    ok = [[_common_factor(a, b) is None for b in family] for a in family]

    def rec(start, left, chosen):
        if left == 0:
            yield tuple(family[i] for i in chosen)
            return
        for i in range(start, n):
            if family[i].degree <= left and all(ok[i][j] for j in chosen):
                yield from rec(i + 1, left - family[i].degree, chosen + [i])

    yield from rec(0, total, [])


_PATENT_LINEAR = {Fraction(0), Fraction(1), Fraction(-1)}


def _is_crt(mods) -> bool:
    """A factor ``x^n ± 1`` with ``n ≥ 2``, or only ``x`` and ``x ± 1`` (else it is Toom-Cook)."""
    return (any(x.degree > 1 for x in mods)
            or all(x.root in _PATENT_LINEAR for x in mods))


def crt_cost(algorithm) -> tuple:
    """``(worst AT/BT kind rank, α, adds + shifts per output, scale not a power of two)``."""
    form = integer_form(algorithm)
    ops = form.op_counts()
    rank = max(_KIND_RANK[form.AT.kind], _KIND_RANK[form.BT.kind])
    return (rank, algorithm.alpha, round(ops.additions + ops.shifts, 6),
            0 if form.power_of_two else 1)


def search_crt(m: int, r: int, *, max_builds: int = 400) -> CrtSearch:
    """Cheapest integer CRT construction for F(m, r) (see the module docstring)."""
    check_size(m, "m")
    check_size(r, "r")
    total = m + r - 2
    sets = [s for s in _sets(crt_family(total), total) if _is_crt(s)]
    sets.sort(key=lambda s: (multiplications(s), len(s)))
    ranked = []
    for mods in sets[:max_builds]:
        alg = winograd_1d(m, r, moduli=mods)
        ranked.append((crt_cost(alg), mods))
    ranked.sort(key=lambda item: item[0])
    cost, best = ranked[0]
    return CrtSearch(m, r, best, cost, len(ranked), tuple(ranked[:10]))
