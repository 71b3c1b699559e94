"""The integer golden model: pure functions over integer arrays that the hardware must match bit
for bit.

Number formats (DESIGN.md, Hardware):

- activations: unsigned ``act_bits`` integers (0..2^act_bits − 1), the network input included;
- weights: signed ``weight_bits`` integers, symmetric (−(2^(b−1) − 1)..2^(b−1) − 1);
- biases and accumulators: signed, exactly as wide as :func:`accumulator_bits` says;
- requantization: ``y = sat(relu((acc · M + 2^(s−1)) >> s))`` — an integer multiplier M, an
  arithmetic right shift s ≥ 1 that rounds half up (toward +∞), ReLU, then saturation to the
  activation range (:func:`slimgen.sw.fixed.requantize`, M and s by
  :func:`slimgen.sw.fixed.multiplier_shift`);
- the last layer keeps its raw accumulators as the logits; the class is the first index of
  the largest logit.

Shapes: a dense layer has W (n_out, n_in), one row per output neuron (the order the hardware
stores them in), b (n_out,); inputs x (n, n_in); accumulators (n, n_out). All int64.
"""

import numpy as np

from .fixed import requantize, signed_bits

__all__ = ["dense_accumulate", "argmax_first", "forward_int", "accumulator_bits"]


def dense_accumulate(x, W, b):
    """``acc[n, o] = Σ_i x[n, i] · W[o, i] + b[o]`` in int64. x (n, n_in), W (n_out, n_in)."""
    x = np.asarray(x, dtype=np.int64)
    return x @ np.asarray(W, dtype=np.int64).T + np.asarray(b, dtype=np.int64)


def argmax_first(logits):
    """Index of the largest logit per row; ties go to the lowest index (as the hardware does)."""
    return np.argmax(np.asarray(logits), axis=1)


def forward_int(qmodel, x_q):
    """Run a :class:`slimgen.sw.quant.QuantizedModel` on integer inputs x_q (n, n_in).

    Returns the last layer's accumulators (n, n_classes), int64.
    """
    a = np.asarray(x_q, dtype=np.int64)
    for layer in qmodel.layers:
        acc = dense_accumulate(a, layer.W, layer.b)
        if layer.requant:
            a = requantize(acc, layer.multiplier, layer.shift, relu=layer.relu,
                           out_bits=layer.out_bits)
        else:
            a = acc
    return a


def accumulator_bits(W, b, in_max):
    """Exact accumulator width of a dense layer for inputs in [0, in_max].

    Per neuron o the sum lies in ``[b_o + in_max · Σ_{W<0} W_oi, b_o + in_max · Σ_{W>0} W_oi]``,
    and so do all partial sums that start from the bias (the bias is added first); the width is
    the largest over neurons.
    """
    W = np.asarray(W, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    lo = b + in_max * np.where(W < 0, W, 0).sum(axis=1)
    hi = b + in_max * np.where(W > 0, W, 0).sum(axis=1)
    return signed_bits(min(lo.min(), b.min(), 0), max(hi.max(), b.max(), 0))
