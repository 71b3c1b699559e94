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

The per-layer container of the earlier CNN software (:class:`QuantConv`, :func:`quantize_conv`,
:func:`random_conv_layer`, :func:`conv_accumulate`, :func:`conv_forward_int`, channels-first)
stays here only for :mod:`slimgen.sw.cnn_quant` and :mod:`slimgen.sw.cnn_artifact`, and goes
with them; nothing else uses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from .fixed import (multiplier_shift, quantize_symmetric, requantize, signed_bits,
                    symmetric_max)
from .quantize import check_finite_weights, check_scale
from .winograd import correlate_direct, integer_form

__all__ = ["QuantConv", "random_conv_layer", "quantize_conv", "conv_accumulate", "conv_forward_int",
           "transform_weights", "winograd_accumulate", "remove_scale", "scale_parts",
           "output_size", "correlation_range"]


def output_size(size: int, kernel: int, padding: int) -> int:
    """``size + 2·padding − kernel + 1`` (stride 1)."""
    return size + 2 * padding - kernel + 1


@dataclass(frozen=True, eq=False)
class QuantConv:
    """One integer convolution layer. ``W`` (Cout, Cin, K, K) int64, ``b`` (Cout,) int64.

    ``requant``: outputs are requantized ``out_bits`` activations (ReLU required in hardware);
    otherwise the layer outputs the raw accumulators.
    """
    W: np.ndarray
    b: np.ndarray
    multiplier: int = 1
    shift: int = 1
    relu: bool = True
    requant: bool = True
    in_bits: int = 8
    out_bits: int = 8
    weight_bits: int = 8
    padding: int = 1

    def __post_init__(self):
        W, b = np.asarray(self.W), np.asarray(self.b)
        if W.ndim != 4 or W.shape[2] != W.shape[3]:
            raise ValueError(f"Weights must have shape (Cout, Cin, K, K), not {W.shape}")
        if b.shape != (W.shape[0],):
            raise ValueError(f"Bias must have shape ({W.shape[0]},), not {b.shape}")
        qmax = symmetric_max(self.weight_bits)
        if np.abs(W).max(initial=0) > qmax:
            raise ValueError(f"Weights must fit {self.weight_bits} signed bits (|w| ≤ {qmax}), "
                             f"not {int(np.abs(W).max())}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"Padding must be a non-negative integer, not {self.padding!r}")
        if self.requant and self.shift < 1:
            raise ValueError(f"Shift must be at least 1, not {self.shift}")

    @property
    def c_in(self) -> int:
        return self.W.shape[1]

    @property
    def c_out(self) -> int:
        return self.W.shape[0]

    @property
    def kernel(self) -> int:
        return self.W.shape[2]

    def acc_range(self) -> tuple[int, int]:
        """Exact range of ``acc`` over all inputs in [0, 2^in_bits − 1] (per-filter sums)."""
        xmax = (1 << self.in_bits) - 1
        W = self.W.reshape(self.c_out, -1).astype(np.int64)
        lo = self.b + xmax * np.where(W < 0, W, 0).sum(axis=1)
        hi = self.b + xmax * np.where(W > 0, W, 0).sum(axis=1)
        return int(min(lo.min(), 0)), int(max(hi.max(), 0))

    @property
    def acc_bits(self) -> int:
        return signed_bits(*self.acc_range())

    def meta(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("W", "b")}


def correlation_range(c_in: int, kernel: int, in_bits: int, weight_bits: int) -> tuple[int, int]:
    """Range of ``Σ W·x`` (no bias) for any weights of ``weight_bits`` (symmetric) and unsigned
    ``in_bits`` inputs: the width the hardware sizes its datapath for, independent of weights."""
    n = c_in * kernel * kernel
    xmax, wmax = (1 << in_bits) - 1, symmetric_max(weight_bits)
    return -n * xmax * wmax, n * xmax * wmax


def random_conv_layer(rng, c_in, c_out, kernel=3, *, weight_bits=8, in_bits=8, out_bits=8,
                      padding=None, requant=True, bias=True, extreme=None) -> QuantConv:
    """A random integer layer for tests and benchmarks.

    ``extreme``: ``"max"`` (every weight +qmax) or ``"min"`` (every weight −qmax) to reach the
    bit growth bounds. The requantization maps about a quarter of the accumulator range onto
    the outputs, so outputs cover zero, the middle and saturation.
    """
    qmax = symmetric_max(weight_bits)
    shape = (c_out, c_in, kernel, kernel)
    if extreme == "max":
        W = np.full(shape, qmax, dtype=np.int64)
    elif extreme == "min":
        W = np.full(shape, -qmax, dtype=np.int64)
    elif extreme is None:
        W = rng.integers(-qmax, qmax + 1, shape)
    else:
        raise ValueError(f"extreme must be None, 'max' or 'min', not {extreme!r}")
    span = 1 << (in_bits + weight_bits)
    b = rng.integers(-span, span, c_out) if bias else np.zeros(c_out, dtype=np.int64)
    padding = kernel // 2 if padding is None else padding
    layer = QuantConv(W.astype(np.int64), b.astype(np.int64), requant=False, relu=False,
                      in_bits=in_bits, out_bits=out_bits, weight_bits=weight_bits,
                      padding=padding)
    if not requant:
        return layer
    ratio = ((1 << out_bits) - 1) / (1 << max(layer.acc_bits - 3, 1))
    M, s = multiplier_shift(ratio, 16)
    return QuantConv(layer.W, layer.b, M, s, True, True, in_bits, out_bits, weight_bits, padding)


def quantize_conv(W, b, *, in_scale, out_scale, weight_bits=8, in_bits=8, out_bits=8,
                  padding=1, relu=True, multiplier_bits=16) -> QuantConv:
    """A float convolution (``W`` (Cout, Cin, K, K), ``b``) as a :class:`QuantConv`.

    Symmetric per-layer weight scale ``w_scale = max|W| / qmax``
    (:func:`slimgen.sw.fixed.quantize_symmetric`); bias in accumulator units
    ``round(b / (in_scale · w_scale))``; requantization ``M / 2^s ≈ in_scale · w_scale /
    out_scale`` (:func:`slimgen.sw.fixed.multiplier_shift` with ``multiplier_bits``).
    Non-finite weights or scales are a ``ValueError``.
    """
    check_finite_weights("the convolution", W=W, b=b)
    in_scale, out_scale = check_scale("in_scale", in_scale), check_scale("out_scale", out_scale)
    Wq, w_scale = quantize_symmetric(np.asarray(W, dtype=np.float64), weight_bits)
    bq = np.rint(np.asarray(b, dtype=np.float64) / (in_scale * w_scale)).astype(np.int64)
    M, s = multiplier_shift(in_scale * w_scale / out_scale, multiplier_bits)
    return QuantConv(Wq, bq, M, s, relu, True, in_bits, out_bits, weight_bits, padding)


def conv_accumulate(x, layer: QuantConv):
    """``acc`` (Cout, O, O) int64 of the direct integer correlation plus bias. x (Cin, H, W)."""
    x = np.asarray(x, dtype=np.int64)
    y = correlate_direct(x, layer.W.astype(np.int64), padding=layer.padding)
    return y + layer.b[:, None, None]


def conv_forward_int(x, layer: QuantConv):
    """The layer's outputs: requantized activations, or ``acc`` when it does not requantize."""
    acc = conv_accumulate(x, layer)
    if not layer.requant:
        return acc
    return requantize(acc, layer.multiplier, layer.shift, relu=layer.relu,
                      out_bits=layer.out_bits)


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
