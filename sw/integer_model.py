"""The integer model: what quantization makes of a network description and what the golden
model (:mod:`slimgen.sw.golden`) and the hardware compute. One record per integer operation,
each naming the description layer it comes from (``source``); batch normalization is folded
into the layer before it, dropout is gone, and a ReLU right after a requantizing layer is that
layer's ``relu``.

Number formats (DESIGN.md, Hardware):

- activations: ``bits``-bit integers, unsigned after a ReLU (and at the network input), signed
  otherwise; every tensor is channels-last, a sample (n, *spatial, channels);
- weights: symmetric ``weight_bits`` integers in ``[−(2^(b−1) − 1), 2^(b−1) − 1]``;
- accumulators: ``acc = b + Σ W·x``, exactly :attr:`IntDense.acc_bits` wide (every partial
  sum that starts from the bias fits);
- requantization ``y = sat(relu(round_half_up(acc · M, shift)))`` (:func:`slimgen.sw.fixed
  .requantize`), M one integer per layer or one per output channel with one shift;
- the last layer keeps its accumulators as the logits.

Records: :class:`IntDense`, :class:`IntConv` (1-D or 2-D), :class:`IntPool` (max, average,
global average), :class:`IntFlatten`, :class:`IntRelu`, :class:`IntRecurrent` (LSTM or GRU
cell with its fixed-point format), and :class:`IntNetwork` holding them with the description.
"""

from dataclasses import dataclass, field, fields

import numpy as np

from .fixed import signed_bits, signed_range, symmetric_max
from .network import RECURRENT_FORMAT

__all__ = ["IntDense", "IntConv", "IntPool", "IntFlatten", "IntRelu", "IntRecurrent",
           "IntNetwork", "RecurrentFormat", "GATES", "act_range", "range_acc_bits",
           "MAX_ACC_BITS", "gate_acc_bits"]

GATES = {"lstm": ("i", "f", "o", "c"), "gru": ("r", "z", "n")}

# Widest accumulator: |acc · M| < 2^39 · 2^24 keeps the golden model's int64 products exact.
MAX_ACC_BITS = 40


def _check_acc_bits(what, bits):
    if bits > MAX_ACC_BITS:
        raise ValueError(f"{what} needs {bits}-bit accumulators; at most {MAX_ACC_BITS} are "
                         f"supported")


def act_range(bits, signed):
    """``(lo, hi)`` of a ``bits``-bit activation, two's complement when ``signed``."""
    return signed_range(bits) if signed else (0, (1 << bits) - 1)


def range_acc_bits(W, b, lo, hi):
    """Exact signed width of every bias-first partial sum of ``b + W x`` for x in [lo, hi].

    W (n_out, k) int64 (rows: one output's weights), b (n_out,)."""
    W = np.asarray(W, dtype=np.int64).reshape(len(b), -1)
    b = np.asarray(b, dtype=np.int64)
    p_lo = np.minimum(W * lo, W * hi)
    p_hi = np.maximum(W * lo, W * hi)
    return signed_bits(min(int((b + p_lo.sum(axis=1)).min(initial=0)), int(b.min(initial=0)), 0),
                       max(int((b + p_hi.sum(axis=1)).max(initial=0)), int(b.max(initial=0)), 0))


def _check_weights(what, W, bits):
    qmax = symmetric_max(bits)
    if np.abs(W).max(initial=0) > qmax:
        raise ValueError(f"{what}: weights must lie in [−{qmax}, {qmax}] for {bits} bits, "
                         f"found {int(np.abs(W).max())}")


@dataclass(frozen=True, eq=False)
class _Weighted:
    """Shared by dense and convolution: integer weights, bias and requantization."""
    W: np.ndarray
    b: np.ndarray
    multiplier: object = 1       # int, or (n_out,) int64 per output channel
    shift: int = 1
    relu: bool = True
    requant: bool = True
    in_bits: int = 8
    in_signed: bool = False
    out_bits: int = 8
    weight_bits: int = 8
    source: int = -1             # the description layer
    in_scale: float = 1.0        # real value of one input, weight and output step
    w_scale: object = 1.0
    out_scale: float = 1.0

    def __post_init__(self):
        W, b = np.asarray(self.W), np.asarray(self.b)
        if not np.issubdtype(W.dtype, np.integer) or not np.issubdtype(b.dtype, np.integer):
            raise TypeError("W and b must be integer arrays")
        if b.shape != (W.shape[0],):
            raise ValueError(f"Bias must have shape ({W.shape[0]},), not {b.shape}")
        if not 2 <= self.weight_bits <= 16 or not 1 <= self.in_bits <= 32:
            raise ValueError(f"weight_bits must be 2 to 16 and in_bits 1 to 32, not "
                             f"{self.weight_bits} and {self.in_bits}")
        _check_weights(type(self).__name__, W, self.weight_bits)
        object.__setattr__(self, "W", W.astype(np.int64))
        object.__setattr__(self, "b", b.astype(np.int64))
        if self.requant:
            M = np.asarray(self.multiplier)
            if isinstance(self.shift, np.integer):
                object.__setattr__(self, "shift", int(self.shift))
            if not isinstance(self.shift, int) or self.shift < 1 or np.any(M < 1):
                raise ValueError(f"Multiplier must be positive and shift at least 1, not "
                                 f"{self.multiplier} and {self.shift}")
            if M.ndim:
                if M.shape != (W.shape[0],):
                    raise ValueError(f"Per-channel multipliers must have shape "
                                     f"({W.shape[0]},), not {M.shape}")
                object.__setattr__(self, "multiplier", M.astype(np.int64))
            else:
                object.__setattr__(self, "multiplier", int(M))
        _check_acc_bits(f"The {self.kind} layer", self.acc_bits)

    @property
    def c_out(self):
        return self.W.shape[0]

    n_out = c_out

    @property
    def acc_bits(self):
        """Exact accumulator width for inputs in their whole range (zero padding included)."""
        return range_acc_bits(self.W, self.b, *act_range(self.in_bits, self.in_signed))

    @property
    def out_signed(self):
        return not (self.requant and self.relu)

    @property
    def out_width(self):
        """Width of one output: out_bits after requantization, else acc_bits."""
        return self.out_bits if self.requant else self.acc_bits

    def meta(self):
        """Everything but the arrays, as JSON-able plain values."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("W", "b"):
                continue
            if isinstance(v, np.ndarray):
                v = v.reshape(-1).tolist()
            out[f.name] = v
        return out


@dataclass(frozen=True, eq=False)
class IntDense(_Weighted):
    """``y = requant(x Wᵀ + b)``: W (n_out, n_in), b (n_out,); x (n, n_in) → (n, n_out)."""
    kind = "dense"

    def __post_init__(self):
        if np.ndim(self.W) != 2:
            raise ValueError(f"W must be a matrix (n_out, n_in), not of shape "
                             f"{np.shape(self.W)}")
        super().__post_init__()

    @property
    def n_in(self):
        return self.W.shape[1]

    @property
    def nnz(self):
        return int(np.count_nonzero(self.W))


@dataclass(frozen=True, eq=False)
class IntConv(_Weighted):
    """A 1-D or 2-D convolution (cross-correlation) on channels-last activations.

    W (c_out, c_in, *kernel), b (c_out,); ``stride``; ``pad`` ((before, after) per spatial
    axis). x (n, *spatial, c_in) → (n, *out, c_out) with ``out = ⌊(size + before + after −
    k) / stride⌋ + 1``."""
    stride: int = 1
    pad: tuple = ((1, 1), (1, 1))

    kind = "conv"

    def __post_init__(self):
        if np.ndim(self.W) not in (3, 4):
            raise ValueError(f"W must have shape (c_out, c_in, k) or (c_out, c_in, k, k), not "
                             f"{np.shape(self.W)}")
        super().__post_init__()
        pad = tuple((int(a), int(b)) for a, b in self.pad)
        if len(pad) != self.dims or min(min(p) for p in pad) < 0:
            raise ValueError(f"Padding must be {self.dims} non-negative (before, after) pairs, "
                             f"not {self.pad}")
        object.__setattr__(self, "pad", pad)
        if self.stride not in (1, 2):
            raise ValueError(f"Stride must be 1 or 2, not {self.stride}")

    @property
    def dims(self):
        return self.W.ndim - 2

    @property
    def c_in(self):
        return self.W.shape[1]

    @property
    def kernel(self):
        return self.W.shape[2]

    @property
    def padding(self):
        """The padding when it is the same on every side (what the Winograd engine takes)."""
        sides = {v for p in self.pad for v in p}
        return sides.pop() if len(sides) == 1 else None

    def out_size(self, size, axis=0):
        before, after = self.pad[axis]
        return (size + before + after - self.W.shape[2 + axis]) // self.stride + 1


@dataclass(frozen=True, eq=False)
class IntPool:
    """Pooling on channels-last activations (x (n, *spatial, c) → (n, *out, c)).

    ``op`` ``"max"``: the largest value of each window; ``"avg"``: the window's sum requantized
    by ``M / 2^shift ≈ 1 / size^dims`` (round half up, no ReLU: the mean stays in the input's
    range); ``global``: one window over all positions (x → (n, c)). ``size``, ``stride`` per
    axis the same."""
    op: str
    dims: int
    size: int = 1
    stride: int = 1
    global_: bool = False
    bits: int = 8
    signed: bool = False
    multiplier: int = 1
    shift: int = 1
    source: int = -1

    kind = "pool"

    def __post_init__(self):
        if self.op not in ("max", "avg") or self.dims not in (1, 2):
            raise ValueError(f"Pool op must be max or avg on 1 or 2 dims, not {self.op} on "
                             f"{self.dims}")
        if self.op == "avg" and (self.multiplier < 1 or self.shift < 1):
            raise ValueError("An average pool needs a positive multiplier and shift")

    def meta(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class IntFlatten:
    """(n, *shape) → (n, prod(shape)), channels-last raster order."""
    source: int = -1
    kind = "flatten"

    def meta(self):
        return {"source": self.source}


@dataclass(frozen=True, eq=False)
class IntRelu:
    """``max(x, 0)`` where no requantizing layer could take the ReLU: ``bits``-bit signed
    values in, the same width out (non-negative, so unsigned from here on)."""
    bits: int = 8
    source: int = -1
    kind = "relu"

    def meta(self):
        return {"bits": self.bits, "source": self.source}


@dataclass(frozen=True)
class RecurrentFormat:
    """Fixed-point format of an integer LSTM or GRU cell (F = ``gate_frac``, A =
    ``table_bits``): hidden state h signed ``h_frac + 1`` bits at scale 2^−h_frac; gates and
    the cell's tables at scale 2^−F; table index A-bit signed in steps of 2^−sigmoid_frac
    (σ) or 2^−tanh_frac (tanh); LSTM cell state c signed ``c_bits`` at 2^−F."""
    h_frac: int = RECURRENT_FORMAT["h_frac"][0]        # defaults and ranges: the description's
    gate_frac: int = RECURRENT_FORMAT["gate_frac"][0]
    c_bits: int = RECURRENT_FORMAT["c_bits"][0]
    table_bits: int = RECURRENT_FORMAT["table_bits"][0]
    sigmoid_frac: int = RECURRENT_FORMAT["sigmoid_frac"][0]
    tanh_frac: int = RECURRENT_FORMAT["tanh_frac"][0]

    def __post_init__(self):
        for name, (_, lo, hi) in RECURRENT_FORMAT.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {v!r}")

    @property
    def h_bits(self):
        return self.h_frac + 1

    def to_dict(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}


def gate_acc_bits(cell, fmt, W, b, in_bits, in_signed, g):
    """Width of the value gate g of a recurrent cell requantizes (inputs x and h over their
    whole ranges; the GRU candidate's ``(W_n^x x + b_n) · 2^F + r · (W_n^h h + b_hn)``,
    r ≤ 2^F). W, b: the cell's per-gate arrays (W[g] (H, n_in + H))."""
    x_lo, x_hi = act_range(in_bits, in_signed)
    h_lo, h_hi = act_range(fmt.h_bits, True)
    if (cell, g) != ("gru", "n"):
        return range_acc_bits(W[g], b[g], min(x_lo, h_lo), max(x_hi, h_hi))
    n_in = W["n"].shape[1] - W["n"].shape[0]
    ax = range_acc_bits(W["n"][:, :n_in], b["n"], x_lo, x_hi)
    ah = range_acc_bits(W["n"][:, n_in:], b["hn"], h_lo, h_hi)
    return max(ax, ah + 1) + fmt.gate_frac + 1


@dataclass(frozen=True, eq=False)
class IntRecurrent:
    """An integer LSTM (gates i, f, o, c) or GRU (gates r, z, n) over the steps of a sequence.

    Every gate's products run over ``v = [x_t; h_{t−1}]``: ``W[g]`` (H, n_in + H), ``b[g]``
    (H,) int64, and ``multiplier[g]``, ``shift[g]`` map its accumulator onto the table index.
    The GRU's candidate gate keeps the recurrent part apart (``r ⊙ (U_n h + b_hn)``): its
    ``b["hn"]`` is at the same scale as ``b["n"]``. Inputs x: ``in_bits``, signed or not; the
    products' operands are stored as :attr:`act_bits`-bit signed numbers."""
    cell: str
    fmt: RecurrentFormat
    W: dict
    b: dict
    multiplier: dict
    shift: dict
    in_bits: int = 8
    in_signed: bool = False
    weight_bits: int = 8
    c_weight_bits: int = 8      # the LSTM's candidate gate
    sequences: bool = False
    source: int = -1
    in_scale: float = 1.0

    kind = "recurrent"

    def __post_init__(self):
        if self.cell not in GATES:
            raise ValueError(f"Cell must be lstm or gru, not {self.cell!r}")
        for g in self.gates:
            if g not in self.W or g not in self.b:
                raise ValueError(f"Gate {g!r} is missing; a {self.cell} needs {self.gates}")
            _check_weights(f"gate {g}", self.W[g], self.gate_bits(g))
        _check_acc_bits(f"The {self.cell} cell", self.acc_bits)

    def gate_acc_bits(self, g):
        """:func:`gate_acc_bits` of gate g."""
        return gate_acc_bits(self.cell, self.fmt, self.W, self.b, self.in_bits,
                             self.in_signed, g)

    @property
    def acc_bits(self):
        """The widest of :meth:`gate_acc_bits`."""
        return max(self.gate_acc_bits(g) for g in self.gates)

    @property
    def gates(self):
        return GATES[self.cell]

    def gate_bits(self, g):
        return self.c_weight_bits if (self.cell, g) == ("lstm", "c") else self.weight_bits

    @property
    def n_hidden(self):
        return self.W[self.gates[0]].shape[0]

    @property
    def n_in(self):
        return self.W[self.gates[0]].shape[1] - self.n_hidden

    @property
    def act_bits(self):
        """Width of one element of v = [x; h] as signed numbers."""
        return max(self.in_bits + (not self.in_signed), self.fmt.h_bits)

    def meta(self):
        return {"cell": self.cell, "fmt": self.fmt.to_dict(),
                "multiplier": {g: int(v) for g, v in self.multiplier.items()},
                "shift": {g: int(v) for g, v in self.shift.items()},
                "in_bits": self.in_bits, "in_signed": self.in_signed,
                "weight_bits": self.weight_bits, "c_weight_bits": self.c_weight_bits,
                "sequences": self.sequences, "source": self.source,
                "in_scale": self.in_scale}


@dataclass(frozen=True, eq=False)
class IntNetwork:
    """The integer model of a description: ``layers`` (the records above, in order), how float
    inputs become codes (``input_scale``, ``input_bits``: ``clip(round(x / scale), 0,
    2^bits − 1)``), the :class:`slimgen.sw.network.Network` and the quantization settings
    (``config``, a dict). Calling it runs the golden model: x_q (n, n_inputs) → logits."""
    network: object
    layers: tuple
    input_scale: float
    input_bits: int
    config: dict = field(default_factory=dict)
    input_order: tuple = None   # where balanced sparsity put the inputs in the input banks

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.input_order is not None:
            from .sparse_layout import check_order
            object.__setattr__(self, "input_order", check_order(self.input_order,
                                                                self.n_inputs))

    @property
    def n_inputs(self):
        return self.network.n_inputs

    @property
    def n_classes(self):
        return self.network.n_outputs

    @property
    def logit_bits(self):
        last = self.layers[-1]
        return last.out_width if hasattr(last, "out_width") else last.bits

    def of_kind(self, *kinds):
        """The records of the given kinds (``"dense"``, ``"conv"``, ``"pool"``, ...)."""
        return [layer for layer in self.layers if layer.kind in kinds]

    def __call__(self, x_q):
        from .golden import forward
        return forward(self, x_q)

    def trace(self, x_q):
        from .golden import forward
        return forward(self, x_q, trace=True)
