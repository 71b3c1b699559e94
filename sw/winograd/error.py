"""Floating-point error of an algorithm against a float64 direct correlation.

Following the common literature (Lavin and Gray 2016; Barabasz et al. 2020), each trial draws an
input tile ``d`` and a filter ``g`` uniformly from ``[−1, 1]``, rounds both to the target format,
and computes

    e = ‖y_alg − y_ref‖₁ / ‖y_ref‖₁,

where ``y_ref`` is the direct correlation of the rounded data in float64 and ``y_alg`` is the
algorithm run entirely in the target format: the matrices are rounded to it and every
multiplication and addition is rounded (a matrix product is accumulated term by term, as a
simple datapath would). The reported figure is the mean of ``e`` over the trials. A float16
overflow gives ``inf``.
"""

from __future__ import annotations

import numpy as np

from .algorithm import Winograd1D
from .nesting import Winograd2D

__all__ = ["float_error", "direct_error", "error_report"]

_DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
           "fp16": np.float16, "fp32": np.float32, "fp64": np.float64}


def _dtype(dtype):
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of float16, float32, float64, not {dtype!r}")
        return np.dtype(_DTYPES[dtype])
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating-point type, not {dt}")
    return dt


def _mm(M, X):
    """``M @ X`` with rounding after every operation; M (p, q), X (..., q, k) → (..., p, k)."""
    acc = M[:, 0:1] * X[..., 0:1, :]
    for j in range(1, M.shape[1]):
        acc = acc + M[:, j:j + 1] * X[..., j:j + 1, :]
    return acc


def _mm_right(X, M):
    """``X @ M.T`` with rounding after every operation; X (..., k, q) → (..., k, p)."""
    return np.swapaxes(_mm(M, np.swapaxes(X, -1, -2)), -1, -2)


def _data(shape_d, shape_g, trials, dt, rng):
    d = rng.uniform(-1, 1, (trials,) + shape_d).astype(dt)
    g = rng.uniform(-1, 1, (trials,) + shape_g).astype(dt)
    return d, g


def _reference(d, g):
    """Direct correlation in float64 of (T, *N) tiles with (T, *r) filters → (T, *m)."""
    d = d.astype(np.float64)
    g = g.astype(np.float64)
    r = g.shape[1:]
    out = tuple(n - k + 1 for n, k in zip(d.shape[1:], r))
    y = np.zeros((d.shape[0],) + out)
    for offs in np.ndindex(*r):
        win = d[(slice(None),) + tuple(slice(o, o + n) for o, n in zip(offs, out))]
        y += g[(slice(None),) + offs].reshape((-1,) + (1,) * len(r)) * win
    return y


def _rel(y, ref):
    y = y.astype(np.float64).reshape(len(y), -1)
    ref = ref.reshape(len(ref), -1)
    with np.errstate(invalid="ignore", over="ignore"):
        num = np.abs(y - ref).sum(axis=1)
    den = np.abs(ref).sum(axis=1)
    keep = den > 0
    e = num[keep] / den[keep]
    if not np.all(np.isfinite(e)):
        return float("inf")
    return float(e.mean())


def _shapes(algorithm):
    if isinstance(algorithm, Winograd1D):
        return (algorithm.N,), (algorithm.r,)
    if isinstance(algorithm, Winograd2D):
        return tuple(algorithm.N), tuple(algorithm.r)
    raise TypeError(f"Algorithm must be a Winograd1D or Winograd2D, not {algorithm!r}")


def _run(algorithm, d, g, dt):
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(algorithm, Winograd1D):
            AT, G, BT = (M.astype(dt) for M in algorithm.arrays)
            U = _mm(G, g[..., None])[..., 0]                  # (T, α)
            V = _mm(BT, d[..., None])[..., 0]                 # (T, α)
            return _mm(AT, (U * V)[..., None])[..., 0]        # (T, m)
        ATr, Gr, BTr = (M.astype(dt) for M in algorithm.rows.arrays)
        ATc, Gc, BTc = (M.astype(dt) for M in algorithm.cols.arrays)
        U = _mm_right(_mm(Gr, g), Gc)                         # (T, αr, αc)
        V = _mm_right(_mm(BTr, d), BTc)                       # (T, αr, αc)
        return _mm_right(_mm(ATr, U * V), ATc)                # (T, m, n)


def float_error(algorithm, dtype="float16", *, trials: int = 1000, rng=None) -> float:
    """Mean relative L1 error of ``algorithm`` run in ``dtype`` (see the module docstring).

    ``rng`` is a :class:`numpy.random.Generator` (default: seeded with 0, so repeated calls on
    different algorithms use the same data).
    """
    dt = _dtype(dtype)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"trials must be a positive integer, not {trials!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    shape_d, shape_g = _shapes(algorithm)
    d, g = _data(shape_d, shape_g, trials, dt, rng)
    return _rel(_run(algorithm, d, g, dt), _reference(d, g))


def direct_error(algorithm, dtype="float16", *, trials: int = 1000, rng=None) -> float:
    """The same figure for direct correlation in ``dtype`` (taps accumulated in order)."""
    dt = _dtype(dtype)
    rng = np.random.default_rng(0) if rng is None else rng
    shape_d, shape_g = _shapes(algorithm)
    d, g = _data(shape_d, shape_g, trials, dt, rng)
    r = g.shape[1:]
    out = tuple(n - k + 1 for n, k in zip(d.shape[1:], r))
    y = None
    for offs in np.ndindex(*r):
        win = d[(slice(None),) + tuple(slice(o, o + n) for o, n in zip(offs, out))]
        term = g[(slice(None),) + offs].reshape((-1,) + (1,) * len(r)) * win
        y = term if y is None else y + term
    return _rel(y, _reference(d, g))


def error_report(algorithm, *, trials: int = 1000, seed: int = 0) -> dict:
    """``{"float32": e, "float16": e, "direct_float32": e, "direct_float16": e}``."""
    out = {}
    for name in ("float32", "float16"):
        out[name] = float_error(algorithm, name, trials=trials, rng=np.random.default_rng(seed))
        out["direct_" + name] = direct_error(algorithm, name, trials=trials,
                                             rng=np.random.default_rng(seed))
    return out
