"""Integer golden model of the balanced-sparse MAC array (one sparse or dense layer).

A :class:`SparseLayer` is an integer matrix-vector layer whose weights may be mostly zero::

    acc[o] = b[o] + Σ_i x[i] · W[o, i]                 (acc_bits wide, signed)
    y[o]   = sat(relu((acc[o] · M + 2^(s−1)) >> s))     (requant with ReLU: unsigned out_bits)
    y[o]   = sat((acc[o] · M + 2^(s−1)) >> s)           (requant without ReLU: signed out_bits)
    y[o]   = acc[o]                                     (no requant: the logits)

Sparsity changes the schedule, never the arithmetic: the hardware skips zero weights, and the
sum it forms is the same integer (two's complement sums are exact as long as the final value
fits, and :attr:`SparseLayer.acc_bits` is the exact width of every partial sum that starts from
the bias). Unlike :class:`slimgen.sw.quant.QuantDense`, inputs may be signed (``in_signed``),
as the hidden state of an LSTM is.

Shapes: W (n_out, n_in), b (n_out,), inputs x (n, n_in) → outputs (n, n_out), all int64.
"""

from dataclasses import dataclass

import numpy as np

from .fixed import requantize, signed_bits, signed_range, symmetric_max
from .golden import dense_accumulate

__all__ = ["SparseLayer", "sparse_forward", "input_range", "random_sparse_layer"]


def input_range(in_bits, in_signed):
    """``(lo, hi)`` of an ``in_bits`` activation, two's complement when ``in_signed``."""
    if in_signed:
        return signed_range(in_bits)
    return 0, (1 << in_bits) - 1


def _range_acc_bits(W, b, lo, hi):
    """Exact signed width of every bias-first partial sum for inputs in [lo, hi]."""
    W = np.asarray(W, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    # Each product W·x lies in [min(W·lo, W·hi), max(W·lo, W·hi)].
    p_lo = np.minimum(W * lo, W * hi)
    p_hi = np.maximum(W * lo, W * hi)
    s_lo = b + p_lo.sum(axis=1)
    s_hi = b + p_hi.sum(axis=1)
    return signed_bits(min(s_lo.min(initial=0), b.min(initial=0), 0),
                       max(s_hi.max(initial=0), b.max(initial=0), 0))


@dataclass(frozen=True, eq=False)
class SparseLayer:
    """One integer layer for the sparse MAC array.

    Parameters
    ----------
    W : ndarray (n_out, n_in) int64
        Weights, symmetric ``weight_bits`` integers; zeros are skipped by the hardware.
    b : ndarray (n_out,) int64
        Biases at the accumulator's scale.
    in_bits, in_signed : int, bool
        Activation width and signedness.
    weight_bits : int
        2 to 16.
    requant, relu, multiplier, shift, out_bits :
        Requantization (see the module docstring); without ``requant`` the outputs are the
        ``acc_bits`` accumulators.
    """
    W: np.ndarray
    b: np.ndarray
    in_bits: int = 8
    in_signed: bool = False
    weight_bits: int = 8
    requant: bool = True
    relu: bool = True
    multiplier: int = 1
    shift: int = 1
    out_bits: int = 8

    def __post_init__(self):
        W = np.asarray(self.W)
        b = np.asarray(self.b)
        if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
            raise ValueError(f"W must be a non-empty matrix (n_out, n_in), not of shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},), not {b.shape}")
        if not np.issubdtype(W.dtype, np.integer) or not np.issubdtype(b.dtype, np.integer):
            raise TypeError("W and b must be integer arrays")
        if not isinstance(self.weight_bits, int) or not 2 <= self.weight_bits <= 16:
            raise ValueError(f"Weight bits must be an integer from 2 to 16, not "
                             f"{self.weight_bits!r}")
        if not isinstance(self.in_bits, int) or not 1 <= self.in_bits <= 16:
            raise ValueError(f"Input bits must be an integer from 1 to 16, not {self.in_bits!r}")
        qmax = symmetric_max(self.weight_bits)
        if np.abs(W).max() > qmax:
            raise ValueError(f"Weights must lie in [−{qmax}, {qmax}] for {self.weight_bits} "
                             f"bits, found {int(np.abs(W).max())}")
        if self.requant:
            if not isinstance(self.shift, int) or self.shift < 1:
                raise ValueError(f"Shift must be a positive integer, not {self.shift!r}")
            if not isinstance(self.multiplier, int) or self.multiplier < 1:
                raise ValueError(f"Multiplier must be a positive integer, not {self.multiplier!r}")
        object.__setattr__(self, "W", W.astype(np.int64))
        object.__setattr__(self, "b", b.astype(np.int64))

    @property
    def n_in(self):
        return self.W.shape[1]

    @property
    def n_out(self):
        return self.W.shape[0]

    @property
    def nnz(self):
        return int(np.count_nonzero(self.W))

    @property
    def acc_bits(self):
        """Exact accumulator width (every bias-first partial sum fits)."""
        return _range_acc_bits(self.W, self.b, *input_range(self.in_bits, self.in_signed))

    @property
    def out_signed(self):
        return not self.requant or not self.relu

    @property
    def out_width(self):
        """Width of one output transfer: out_bits after requantization, else acc_bits."""
        return self.out_bits if self.requant else self.acc_bits

    @classmethod
    def from_quant_dense(cls, layer):
        """The same layer as a :class:`slimgen.sw.quant.QuantDense` (unsigned inputs)."""
        return cls(layer.W, layer.b, in_bits=layer.in_bits, in_signed=False,
                   weight_bits=layer.weight_bits, requant=layer.requant, relu=layer.relu,
                   multiplier=layer.multiplier, shift=layer.shift,
                   out_bits=layer.out_bits if layer.requant else 8)

    def __call__(self, x):
        return sparse_forward(self, x)


def sparse_forward(layer, x):
    """Outputs of ``layer`` for integer inputs x (n, n_in) → (n, n_out) int64."""
    x = np.asarray(x, dtype=np.int64)
    lo, hi = input_range(layer.in_bits, layer.in_signed)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"Inputs must lie in [{lo}, {hi}], found [{x.min()}, {x.max()}]")
    acc = dense_accumulate(x, layer.W, layer.b)
    if not layer.requant:
        return acc
    return requantize(acc, layer.multiplier, layer.shift, relu=layer.relu,
                      out_bits=layer.out_bits)


def random_sparse_layer(rng, W_mask, *, weight_bits=8, in_bits=8, in_signed=False, requant=True,
                        relu=True, out_bits=8, extreme=None):
    """A random layer with non-zeros exactly where ``W_mask`` (n_out, n_in) is true.

    ``extreme``: ``"max"`` or ``"min"`` puts the largest positive or most negative weight at
    every non-zero, to exercise bit growth. The requantization maps about a quarter of the
    accumulator range onto the outputs, so outputs cover zero, the middle and saturation.
    """
    W_mask = np.asarray(W_mask, dtype=bool)
    qmax = symmetric_max(weight_bits)
    if extreme == "max":
        W = np.full(W_mask.shape, qmax, dtype=np.int64)
    elif extreme == "min":
        W = np.full(W_mask.shape, -qmax, dtype=np.int64)
    elif extreme is None:
        W = rng.integers(1, qmax + 1, W_mask.shape) * rng.choice([-1, 1], W_mask.shape)
    else:
        raise ValueError(f"extreme must be None, 'max' or 'min', not {extreme!r}")
    W = np.where(W_mask, W, 0)
    nb = in_bits + weight_bits
    b = rng.integers(-(1 << nb), 1 << nb, W_mask.shape[0])
    layer = SparseLayer(W, b, in_bits=in_bits, in_signed=in_signed, weight_bits=weight_bits,
                        requant=False)
    if not requant:
        return layer
    ratio = ((1 << out_bits) - 1) / (1 << max(layer.acc_bits - 3, 1))
    shift = 14 - int(np.floor(np.log2(ratio)))
    return SparseLayer(W, b, in_bits=in_bits, in_signed=in_signed, weight_bits=weight_bits,
                       requant=True, relu=relu, multiplier=int(round(ratio * 2 ** shift)),
                       shift=shift, out_bits=out_bits)
