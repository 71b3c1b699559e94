"""Whole-input convolution (correlation) by tiling a Winograd algorithm, and the direct reference.

Shapes (``dims`` = 1 for :class:`.Winograd1D`, 2 for :class:`.Winograd2D`):

* single channel: ``x`` of shape ``(*S)`` and ``w`` of shape ``(*K)`` give ``y`` of shape
  ``(*O)`` with ``O = S + 2·padding − K + 1`` ("valid" correlation after zero padding);
* layers: ``w`` of shape ``(Cout, Cin, *K)``, ``x`` of shape ``(Cin, *S)`` or
  ``(B, Cin, *S)`` give ``(Cout, *O)`` or ``(B, Cout, *O)``,
  ``y[b, k, i] = Σ_c Σ_j w[k, c, j] · x[b, c, i + j]``.

Tiling: output tile ``t`` covers outputs ``t·m … t·m + m − 1`` and reads inputs
``t·m … t·m + N − 1`` (consecutive tiles overlap by ``r − 1``); the input is zero-padded at the end
so the last (edge) tile is whole, and the surplus outputs are cropped. Channels are summed in the
transform domain (one output transform per output channel and tile, as in Lavin and Gray).

Arithmetic follows the inputs' dtype: integers go through the integer form (int64 when the exact
bound fits, Python ints otherwise) and come back as exact integers after removing the scale;
object arrays (ints or Fractions) are computed with the rational matrices, exactly; floats are
computed in their own precision.
"""

from __future__ import annotations

import numpy as np

from .algorithm import Winograd1D
from .integer_form import integer_form
from .nesting import Winograd2D

__all__ = ["correlate_tiled", "correlate_direct"]


def _dims_of(algorithm) -> int:
    if isinstance(algorithm, Winograd1D):
        return 1
    if isinstance(algorithm, Winograd2D):
        return 2
    raise TypeError(f"Algorithm must be a Winograd1D or Winograd2D, not {algorithm!r}")


def _padding(padding, dims):
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        padding = (int(padding),) * dims
    padding = tuple(padding)
    if len(padding) != dims or any(not isinstance(p, (int, np.integer)) or p < 0
                                   for p in padding):
        raise ValueError(f"Padding must be a non-negative integer or {dims} of them, "
                         f"not {padding!r}")
    return padding


def _prepare(x, w, dims, padding):
    """``x`` as (B, C, *S) zero-padded, ``w`` as (K, C, *K), and a function restoring y's shape."""
    x = np.asarray(x)
    w = np.asarray(w)
    if w.ndim == dims:
        if x.ndim != dims:
            raise ValueError(f"A single-channel filter of shape {w.shape} needs an input with "
                             f"{dims} dimension(s), not shape {x.shape}")
        xb, wb = x[None, None], w[None, None]

        def restore(y):
            return y[0, 0]
    elif w.ndim == dims + 2:
        if x.ndim == dims + 1:
            xb = x[None]

            def restore(y):
                return y[0]
        elif x.ndim == dims + 2:
            xb = x

            def restore(y):
                return y
        else:
            raise ValueError(f"A filter of shape {w.shape} (Cout, Cin, kernel) needs an input "
                             f"of shape (Cin, ...) or (B, Cin, ...), not {x.shape}")
        wb = w
        if xb.shape[1] != wb.shape[1]:
            raise ValueError(f"Input has {xb.shape[1]} channels but the filter expects "
                             f"{wb.shape[1]}")
    else:
        raise ValueError(f"Filter must have {dims} or {dims + 2} dimensions, not shape {w.shape}")
    pad = _padding(padding, dims)
    if any(pad):
        xb = np.pad(xb, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    kernel = wb.shape[2:]
    if any(s < k for s, k in zip(xb.shape[2:], kernel)):
        raise ValueError(f"Input of spatial shape {xb.shape[2:]} (after padding) is smaller "
                         f"than the filter {kernel}")
    return xb, wb, restore


def correlate_direct(x, w, padding=0):
    """Direct correlation, the reference; any dtype (object arrays stay exact).

    Shapes as in the module docstring; the number of spatial dimensions is ``w.ndim`` for a
    single channel and ``w.ndim − 2`` for a layer (ambiguous only if ``w.ndim`` is 3 or 4; then
    the layer form is taken when ``x.ndim`` is smaller than ``w.ndim``).
    """
    w_arr = np.asarray(w)
    x_arr = np.asarray(x)
    dims = w_arr.ndim if x_arr.ndim == w_arr.ndim and w_arr.ndim <= 2 else w_arr.ndim - 2
    if dims not in (1, 2):
        raise ValueError(f"Filter must have 1, 2, 3 or 4 dimensions, not shape {w_arr.shape}")
    xb, wb, restore = _prepare(x_arr, w_arr, dims, padding)
    kernel = wb.shape[2:]
    out = tuple(s - k + 1 for s, k in zip(xb.shape[2:], kernel))
    y = None
    for offs in np.ndindex(*kernel):
        window = xb[(slice(None), slice(None)) + tuple(slice(o, o + n) for o, n in zip(offs, out))]
        tap = wb[(slice(None), slice(None)) + offs]                   # (K, C)
        term = np.tensordot(window, tap, axes=([1], [1]))              # (B, *O, K)
        y = term if y is None else y + term
    return restore(np.moveaxis(y, -1, 1))


def _matrices(algorithm, mode):
    """Row and column (AT, G, BT) arrays for the arithmetic mode, plus the output scale."""
    parts = (algorithm,) if isinstance(algorithm, Winograd1D) else (algorithm.rows,
                                                                     algorithm.cols)
    if mode == "float":
        return [alg.arrays for alg in parts], None
    if mode == "object":
        return [tuple(np.array(M, dtype=object).reshape(len(M), -1)
                      for M in (alg.AT, alg.G, alg.BT)) for alg in parts], None
    form = integer_form(algorithm)
    forms = (form,) if isinstance(algorithm, Winograd1D) else (form.rows, form.cols)
    return [tuple(np.array(S.matrix, dtype=object).reshape(len(S.matrix), -1)
                  for S in (f.AT, f.G, f.BT)) for f in forms], form


def _bound(mats, xmax, wmax, channels):
    """Upper bound on every |intermediate| of the integer path (Python int)."""
    b = channels
    for AT, G, BT in mats:
        b *= (max(sum(abs(v) for v in row) for row in AT)
              * max(sum(abs(v) for v in row) for row in G)
              * max(sum(abs(v) for v in row) for row in BT))
    return b * xmax * wmax


def correlate_tiled(x, w, algorithm, padding=0):
    """Correlate a whole input with a filter (or a layer's filters) by tiling ``algorithm``.

    Parameters
    ----------
    x, w : array_like
        Input and filter, shapes as in the module docstring. The filter's kernel must be the
        algorithm's ``r`` (1-D) or ``(r, s)`` (2-D).
    algorithm : Winograd1D or Winograd2D
    padding : int or tuple of int
        Zeros added on both sides of each spatial axis before the "valid" correlation.

    Returns
    -------
    numpy.ndarray
        Equal to :func:`correlate_direct` exactly for integer and object inputs.
    """
    dims = _dims_of(algorithm)
    xb, wb, restore = _prepare(x, w, dims, padding)
    kernel = tuple(algorithm.r) if dims == 2 else (algorithm.r,)
    if wb.shape[2:] != kernel:
        raise ValueError(f"{algorithm.name} needs a filter of shape {kernel}, not "
                         f"{wb.shape[2:]}")
    kinds = {xb.dtype.kind, wb.dtype.kind}
    if "O" in kinds:
        mode = "object"
    elif kinds <= {"i", "u", "b"}:
        mode = "int"
    elif kinds <= {"i", "u", "b", "f"}:
        mode = "float"
    else:
        raise TypeError(f"Input and filter must be integer, float or object arrays, not "
                        f"{xb.dtype} and {wb.dtype}")
    mats, form = _matrices(algorithm, mode)
    if mode == "float":
        dtype = np.result_type(xb.dtype, wb.dtype, np.float16)
        mats = [tuple(M.astype(dtype) for M in trio) for trio in mats]
        xb, wb = xb.astype(dtype), wb.astype(dtype)
    elif mode == "int":
        xmax = int(np.abs(xb.astype(object)).max(initial=0))
        wmax = int(np.abs(wb.astype(object)).max(initial=0))
        if _bound(mats, xmax, wmax, xb.shape[1]) < 2 ** 62:
            mats = [tuple(M.astype(np.int64) for M in trio) for trio in mats]
            xb, wb = xb.astype(np.int64), wb.astype(np.int64)
        else:
            xb, wb = xb.astype(object), wb.astype(object)
    out = tuple(s - k + 1 for s, k in zip(xb.shape[2:], kernel))
    algs = (algorithm,) if dims == 1 else (algorithm.rows, algorithm.cols)
    tiles = tuple(-(-o // a.m) for o, a in zip(out, algs))
    need = tuple(t * a.m + a.r - 1 for t, a in zip(tiles, algs))
    extra = [(0, n - s) for n, s in zip(need, xb.shape[2:])]
    xb = np.pad(xb, [(0, 0), (0, 0)] + extra)
    if dims == 1:
        (AT, G, BT), = mats
        a = algorithm
        idx = np.arange(tiles[0])[:, None] * a.m + np.arange(a.N)        # (T, N)
        V = xb[..., idx] @ BT.T                                           # (B, C, T, α)
        U = wb @ G.T                                                      # (K, C, α)
        M = np.einsum("bcta,kca->bkta", V, U)                            # (B, K, T, α)
        Y = M @ AT.T                                                      # (B, K, T, m)
        Y = Y.reshape(Y.shape[:2] + (-1,))[..., :out[0]]
    else:
        (ATr, Gr, BTr), (ATc, Gc, BTc) = mats
        R, C = algorithm.rows, algorithm.cols
        ih = np.arange(tiles[0])[:, None] * R.m + np.arange(R.N)          # (Th, Nr)
        iw = np.arange(tiles[1])[:, None] * C.m + np.arange(C.N)          # (Tw, Nc)
        T = xb[:, :, ih[:, None, :, None], iw[None, :, None, :]]          # (B, C, Th, Tw, Nr, Nc)
        V = BTr @ T @ BTc.T                                               # (..., αr, αc)
        U = Gr @ wb @ Gc.T                                                # (K, C, αr, αc)
        M = np.einsum("bcijxy,kcxy->bkijxy", V, U)                       # (B, K, Th, Tw, αr, αc)
        Y = ATr @ M @ ATc.T                                               # (B, K, Th, Tw, m, n)
        Y = Y.transpose(0, 1, 2, 4, 3, 5)                                 # (B, K, Th, m, Tw, n)
        Y = Y.reshape(Y.shape[0], Y.shape[1], tiles[0] * R.m, tiles[1] * C.m)
        Y = Y[..., :out[0], :out[1]]
    if mode == "int":
        Y = form.remove_scale(Y)
    return restore(Y)
