"""The integer arithmetic of the Winograd convolution hardware, for a 2-D
:class:`slimgen.sw.integer_model.IntConv` (stride 1, zero padding ``p`` on every side).

The layer's accumulators (channels-last, as :func:`slimgen.sw.golden.conv` gives them before
requantization) are

    acc[i, j, k] = b[k] + Σ_c Σ_{u,v} W[k, c, u, v] · x_pad[i + u, j + v, c]     (O, O, Cout)

with ``O = H + 2p − K + 1`` (correlation, as in every CNN framework). The Winograd path computes
the same ``acc`` the way the hardware does, tile by tile for F(m×m, r×r) in integer form (``s``
is the output scale of :func:`slimgen.sw.winograd.integer_form`)::

    V = BT d B          (α × α per input tile and channel, exact integers)
    U = G g Gᵀ          (α × α per filter, offline: :func:`transform_weights`)
    M = Σ_c U ⊙ V       (transform domain, summed over input channels)
    P = AT M A          (m × m)
    y = s · P           (exact: :func:`remove_scale` — a shift for the power-of-two part of the
                         denominator, and multiplication by the modular inverse of the odd part)

All arithmetic after the products is linear, so it may wrap modulo ``2^w`` as long as the true
``s · P`` fits ``w − k`` bits (``k`` the shift): :func:`remove_scale` with ``width`` models
exactly the truncated arithmetic of the hardware.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .integer_form import integer_form

__all__ = ["transform_weights", "winograd_accumulate", "remove_scale", "scale_parts",
           "output_size"]


def output_size(size: int, kernel: int, padding: int) -> int:
    """``size + 2·padding − kernel + 1`` (stride 1)."""
    return size + 2 * padding - kernel + 1


def transform_weights(W, algorithm):
    """``U = G_int g G_intᵀ`` for every filter: (Cout, Cin, α, α) int64 (what block RAM holds).

    ``algorithm`` is a :class:`slimgen.sw.winograd.Winograd2D` (rows and columns may differ).
    """
    form = integer_form(algorithm)
    Gr = np.array(form.rows.G.matrix, dtype=np.int64)      # (α_r, r)
    Gc = np.array(form.cols.G.matrix, dtype=np.int64)      # (α_c, s)
    W = np.asarray(W, dtype=np.int64)                       # (Cout, Cin, r, s)
    return np.einsum("ar,kcrs,bs->kcab", Gr, W, Gc)


def scale_parts(scale: Fraction) -> tuple[int, int, int]:
    """``(p, k, q_odd)`` with ``scale = p / (2^k · q_odd)``, ``q_odd`` odd."""
    p, q = scale.numerator, scale.denominator
    k = (q & -q).bit_length() - 1
    return p, k, q >> k


def remove_scale(P, scale: Fraction, width=None):
    """``y = scale · P`` exactly, the way the hardware does it.

    With ``width = None``: exact rational arithmetic (``P · p / q`` checked to divide). With
    ``width = w_y``: ``P`` is taken modulo ``2^(w_y + k)``, multiplied by ``p``, shifted right by
    ``k`` and multiplied by the inverse of ``q_odd`` modulo ``2^w_y``; the result is read as a
    signed ``w_y``-bit number. Both agree whenever the true ``y`` fits ``w_y`` signed bits.
    """
    P = np.asarray(P, dtype=object)
    p, k, q = scale_parts(Fraction(scale))
    if width is None:
        num = P * p
        if np.any(num % (q << k)):
            raise ArithmeticError("Scale removal is not exact: P is not a multiple of the "
                                  "denominator")
        return (num // (q << k)).astype(np.int64)
    w = int(width)
    inv = pow(q, -1, 1 << w)
    t = ((P * p) % (1 << (w + k))) >> k
    y = (t * inv) % (1 << w)
    y = np.where(y >= (1 << (w - 1)), y - (1 << w), y)
    return y.astype(np.int64)


def winograd_accumulate(x, layer, algorithm, width=None):
    """``acc`` (O, O, Cout) of a 2-D :class:`~slimgen.sw.integer_model.IntConv` (stride 1, the
    same padding on every side) on one channels-last image x (H, W, Cin), computed tile by tile
    with the integer Winograd form (see module docstring), edge tiles zero-padded and cropped;
    ``width`` as in :func:`remove_scale`."""
    if layer.W.ndim != 4 or layer.stride != 1 or layer.padding is None:
        raise ValueError(f"The Winograd form takes a 2-D convolution with stride 1 and the same "
                         f"padding on every side, not stride {layer.stride} and padding "
                         f"{getattr(layer, 'pad', layer.padding)}")
    form = integer_form(algorithm)
    R, C = form.rows, form.cols
    if (R.r, C.r) != (layer.kernel, layer.kernel):
        raise ValueError(f"Algorithm {algorithm.name} is for {R.r}×{C.r} kernels, the layer has "
                         f"{layer.kernel}×{layer.kernel}")
    m, n = R.m, C.m
    BTr, BTc = (np.array(f.BT.matrix, dtype=object) for f in (R, C))
    ATr, ATc = (np.array(f.AT.matrix, dtype=object) for f in (R, C))
    U = transform_weights(layer.W, algorithm).astype(object)       # (Cout, Cin, αr, αc)
    x = np.asarray(x, dtype=np.int64).transpose(2, 0, 1)            # (Cin, H, W)
    cin, H, Wd = x.shape
    p = layer.padding
    Oh, Ow = output_size(H, layer.kernel, p), output_size(Wd, layer.kernel, p)
    th, tw = -(-Oh // m), -(-Ow // n)
    xp = np.zeros((cin, th * m + R.N - 1, tw * n + C.N - 1), dtype=object)
    xp[:, p:p + H, p:p + Wd] = x
    acc = np.zeros((layer.c_out, th * m, tw * n), dtype=np.int64)
    for ti in range(th):
        for tj in range(tw):
            d = xp[:, ti * m:ti * m + R.N, tj * n:tj * n + C.N]            # (Cin, Nr, Nc)
            V = np.einsum("an,cnv,bv->cab", BTr, d, BTc)                 # (Cin, αr, αc)
            M = np.einsum("kcab,cab->kab", U, V)                         # (Cout, αr, αc)
            P = np.einsum("ia,kab,jb->kij", ATr, M, ATc)                 # (Cout, m, n)
            acc[:, ti * m:(ti + 1) * m, tj * n:(tj + 1) * n] = remove_scale(P, form.scale, width)
    return (acc[:, :Oh, :Ow] + layer.b[:, None, None]).transpose(1, 2, 0)
