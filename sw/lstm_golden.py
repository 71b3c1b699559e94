"""Integer golden model of the pruned-gate LSTM cell and its classifier, and the quantizer that
turns a trained float LSTM (:class:`slimgen.sw.nn.LSTM` followed by a Dense layer) into it.

Number formats (:class:`LstmFormat`; F = ``gate_frac``, A = ``table_bits``):

- input codes x: unsigned ``in_bits`` (the digits' 0..16), real value ``x · input_scale``;
- hidden state h: signed ``h_frac + 1`` bits, real value ``h · 2^−h_frac``, saturated;
- the input of every gate product is the vector ``v = [x_t; h_{t−1}]`` (n_in + H);
- gate accumulators ``z_g = W_g v + b_g`` (g ∈ i, f, o, c; W_g (H, n_in + H) integers of
  ``weight_bits``, or ``c_weight_bits`` for g = c), real value ``z_g · s_g``;
- table index ``u_g = sat_A(round_half_up(z_g · M_g / 2^shift_g))``, an A-bit signed integer
  that approximates ``z_g`` in steps of ``2^−sigmoid_frac`` (i, f, o) or ``2^−tanh_frac`` (c);
- tables (:func:`sigmoid_table`, :func:`tanh_table`, 2^A entries indexed by ``u + 2^(A−1)``):
  ``S[u] = floor(σ(u · 2^−sigmoid_frac) · 2^F + ½)`` in [0, 2^F],
  ``T[u] = floor(tanh(u · 2^−tanh_frac) · 2^F + ½)`` in [−2^F, 2^F];
- gates ``i = S[u_i]``, ``f = S[u_f]``, ``o = S[u_o]``, ``g = T[u_c]`` (scale 2^−F);
- cell ``c_t = sat_c(round_half_up(f · c_{t−1} + i · g, F))``, signed ``c_bits``, scale 2^−F;
- ``h_t = sat_h(round_half_up(o · T[sat_A(round_half_up(c_t, F − tanh_frac))], 2F − h_frac))``
  (no rounding shift when F = tanh_frac);
- h_0 = c_0 = 0; the state is kept over the T steps of one sequence;
- the classifier head is a :class:`slimgen.sw.sparse_golden.SparseLayer` on h_T with signed
  inputs and no requantization: its accumulators are the logits.

``round_half_up(v, s) = (v + 2^(s−1)) >> s``; ``sat`` clips to the signed range of the width.
The hardware (:mod:`slimgen.hw.lstm_engine`, :mod:`slimgen.hw.lstm_cell`) computes these very
integers; the tables are built here once and stored in its ROMs.
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from .fixed import (multiplier_shift, quantize_symmetric, requantize, round_half_up_shift,
                    saturate, symmetric_max)
from .golden import argmax_first
from .quant import check_finite_weights, check_scale
from .sparse_golden import SparseLayer

__all__ = ["LstmFormat", "IntLSTM", "IntLSTMClassifier", "GATES", "sigmoid_table",
           "tanh_table", "lstm_forward_int", "quantize_lstm_classifier", "prune_gates_qstd",
           "random_int_lstm", "random_int_lstm_classifier"]

GATES = ("i", "f", "o", "c")


@dataclass(frozen=True)
class LstmFormat:
    """Bit widths and fixed-point positions of the integer LSTM; validated where built."""
    in_bits: int = 5
    h_frac: int = 7
    gate_frac: int = 8
    c_bits: int = 13
    table_bits: int = 8
    sigmoid_frac: int = 4
    tanh_frac: int = 5
    weight_bits: int = 8
    c_weight_bits: int = 8
    head_weight_bits: int = 8
    multiplier_bits: int = 16

    def __post_init__(self):
        for name, lo, hi in (("in_bits", 1, 16), ("h_frac", 1, 15), ("gate_frac", 2, 15),
                             ("table_bits", 3, 12), ("sigmoid_frac", 0, 12),
                             ("tanh_frac", 0, 12), ("weight_bits", 2, 16),
                             ("c_weight_bits", 2, 16), ("head_weight_bits", 2, 16),
                             ("multiplier_bits", 4, 24)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {v!r}")
        if self.tanh_frac > self.gate_frac:
            raise ValueError(f"tanh_frac ({self.tanh_frac}) must be at most gate_frac "
                             f"({self.gate_frac})")
        if 2 * self.gate_frac - self.h_frac < 1:
            raise ValueError(f"h_frac ({self.h_frac}) must be less than twice gate_frac "
                             f"({self.gate_frac})")
        if not isinstance(self.c_bits, int) or not self.gate_frac + 2 <= self.c_bits <= 32:
            raise ValueError(f"c_bits must be an integer from gate_frac + 2 = "
                             f"{self.gate_frac + 2} to 32, not {self.c_bits!r}")

    @property
    def h_bits(self):
        return self.h_frac + 1

    @property
    def act_bits(self):
        """Width of one element of v = [x; h] as the hardware stores it (signed)."""
        return max(self.in_bits + 1, self.h_bits)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def _table(fn, frac, fmt):
    A, F = fmt.table_bits, fmt.gate_frac
    u = np.arange(-(1 << (A - 1)), 1 << (A - 1), dtype=np.int64)
    return np.floor(fn(u * 2.0 ** -frac) * 2.0 ** F + 0.5).astype(np.int64)


def sigmoid_table(fmt):
    """``S`` (2^A,) int64: entry ``u + 2^(A−1)`` is ``floor(σ(u · 2^−sigmoid_frac) · 2^F + ½)``."""
    return _table(lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)), fmt.sigmoid_frac, fmt)


def tanh_table(fmt):
    """``T`` (2^A,) int64: entry ``u + 2^(A−1)`` is ``floor(tanh(u · 2^−tanh_frac) · 2^F + ½)``."""
    return _table(np.tanh, fmt.tanh_frac, fmt)


@dataclass(frozen=True, eq=False)
class IntLSTM:
    """The integer LSTM layer. ``W[g]`` (H, n_in + H) and ``b[g]`` (H,) int64 per gate g;
    ``multiplier[g]``, ``shift[g]`` map ``z_g`` onto the table index."""
    fmt: LstmFormat
    W: dict
    b: dict
    multiplier: dict
    shift: dict

    def __post_init__(self):
        for g in GATES:
            if g not in self.W or g not in self.b:
                raise ValueError(f"Gate {g!r} is missing; IntLSTM needs gates {GATES}")
            bits = self.fmt.c_weight_bits if g == "c" else self.fmt.weight_bits
            qmax = symmetric_max(bits)
            if np.abs(self.W[g]).max() > qmax:
                raise ValueError(f"Gate {g!r} weights must lie in [−{qmax}, {qmax}]")

    @property
    def n_hidden(self):
        return self.W["i"].shape[0]

    @property
    def n_in(self):
        return self.W["i"].shape[1] - self.n_hidden

    def gate_layer(self, gates):
        """The gates' products as one :class:`SparseLayer` over v (rows gate-major:
        ``k·H + j`` is unit j of ``gates[k]``), signed act_bits inputs, no requantization."""
        bits = self.fmt.c_weight_bits if gates == ("c",) else self.fmt.weight_bits
        return SparseLayer(np.concatenate([self.W[g] for g in gates]),
                           np.concatenate([self.b[g] for g in gates]),
                           in_bits=self.fmt.act_bits, in_signed=True, weight_bits=bits,
                           requant=False)

    def step(self, x, h, c):
        """One step: x (n, n_in), h (n, H), c (n, H) → (h, c), all int64."""
        fmt = self.fmt
        A, F = fmt.table_bits, fmt.gate_frac
        S, T = sigmoid_table(fmt), tanh_table(fmt)
        off = 1 << (A - 1)
        v = np.concatenate([x, h], axis=1)                                # (n, n_in + H)
        u = {g: requantize(v @ self.W[g].T + self.b[g], self.multiplier[g], self.shift[g],
                           relu=False, out_bits=A) for g in GATES}       # (n, H) each
        i, f, o = S[u["i"] + off], S[u["f"] + off], S[u["o"] + off]
        g = T[u["c"] + off]
        c = saturate(round_half_up_shift(f * c + i * g, F), fmt.c_bits)
        k = F - fmt.tanh_frac
        uc = saturate(round_half_up_shift(c, k) if k else c, A)
        h = saturate(round_half_up_shift(o * T[uc + off], 2 * F - fmt.h_frac), fmt.h_bits)
        return h, c

    def __call__(self, x_seq):
        """x_seq (n, T, n_in) integer codes → h_T (n, H)."""
        return lstm_forward_int(self, x_seq)


def lstm_forward_int(lstm, x_seq, *, return_sequences=False):
    """Run ``lstm`` over x_seq (n, T, n_in) from h = c = 0 → h_T (n, H), or every h (n, T, H)."""
    x_seq = np.asarray(x_seq, dtype=np.int64)
    n, steps, n_in = x_seq.shape
    if n_in != lstm.n_in:
        raise ValueError(f"Inputs must have {lstm.n_in} features per step, not {n_in}")
    if x_seq.size and (x_seq.min() < 0 or x_seq.max() >= 1 << lstm.fmt.in_bits):
        raise ValueError(f"Input codes must lie in [0, {(1 << lstm.fmt.in_bits) - 1}]")
    H = lstm.n_hidden
    h = np.zeros((n, H), dtype=np.int64)
    c = np.zeros((n, H), dtype=np.int64)
    hs = []
    for t in range(steps):
        h, c = lstm.step(x_seq[:, t], h, c)
        hs.append(h)
    return np.stack(hs, axis=1) if return_sequences else h


@dataclass(frozen=True, eq=False)
class IntLSTMClassifier:
    """LSTM over ``steps`` steps, then a dense head on h_T giving the logits.

    Takes integer inputs of shape (n, steps · n_in) (a sequence's steps one after the other:
    the digits' vector view) so that it stands where a :class:`slimgen.sw.quant.QuantizedModel`
    does for the network benches.
    """
    lstm: IntLSTM
    head: SparseLayer
    steps: int
    input_scale: float = 1.0 / 16
    extra: dict = field(default_factory=dict)

    @property
    def input_bits(self):
        return self.lstm.fmt.in_bits

    @property
    def n_inputs(self):
        return self.steps * self.lstm.n_in

    @property
    def n_classes(self):
        return self.head.n_out

    @property
    def logit_bits(self):
        return self.head.acc_bits

    def __call__(self, x_q):
        x_q = np.asarray(x_q, dtype=np.int64)
        if x_q.ndim != 2 or x_q.shape[1] != self.n_inputs:
            raise ValueError(f"Inputs must have shape (n, {self.n_inputs}), not {x_q.shape}")
        h = self.lstm(x_q.reshape(len(x_q), self.steps, self.lstm.n_in))
        return self.head(h)

    def predict(self, x_q):
        return argmax_first(self(x_q))


def quantize_lstm_classifier(model, *, steps=8, input_scale=1.0 / 16, fmt=LstmFormat()):
    """A trained float ``Sequential([LSTM, Dense])`` → :class:`IntLSTMClassifier`, with no
    calibration data needed (every scale is fixed by the format):

    - gate g: the real contribution of one input code is ``K_g = [W_g · input_scale;
      U_g · 2^−h_frac]ᵀ`` (H, n_in + H); ``s_g = max|K_g| / (2^(bits−1) − 1)``,
      ``W_g = round(K_g / s_g)``, ``b_g = round(b_g / s_g)`` (zeros, pruned weights, stay zero);
      ``M_g / 2^shift_g ≈ s_g · 2^sigmoid_frac`` (i, f, o) or ``s_g · 2^tanh_frac`` (c);
    - head: ``W = round(W_d / s_d)``, ``s_d = max|W_d| / qmax``, bias at the scale
      ``s_d · 2^−h_frac`` of the logits.
    """
    from .nn import LSTM, Dense
    layers = getattr(model, "layers", None)
    if (not layers or len(layers) != 2 or not isinstance(layers[0], LSTM)
            or not isinstance(layers[1], Dense)):
        raise ValueError("The model must be exactly an LSTM layer followed by a Dense layer")
    lstm, dense = layers
    if lstm.return_sequences:
        raise ValueError("The LSTM must give its last hidden state (return_sequences=False)")
    check_finite_weights("the LSTM (model layer 0)", **lstm.params)
    check_finite_weights("the head (model layer 1)", **dense.params)
    input_scale = check_scale("input_scale", input_scale)
    s_h = 2.0 ** -fmt.h_frac
    W, b, M, S = {}, {}, {}, {}
    for g in GATES:
        bits = fmt.c_weight_bits if g == "c" else fmt.weight_bits
        K = np.concatenate([lstm.params[f"W_{g}"] * input_scale,
                            lstm.params[f"U_{g}"] * s_h], axis=0).T        # (H, n_in + H)
        W[g], s_g = quantize_symmetric(K, bits)
        b[g] = np.rint(lstm.params[f"b_{g}"] / s_g).astype(np.int64)
        frac = fmt.tanh_frac if g == "c" else fmt.sigmoid_frac
        M[g], S[g] = multiplier_shift(s_g * 2.0 ** frac, fmt.multiplier_bits)
    Wd, bd = dense.params["W"], dense.params["b"]                          # (H, C), (C,)
    Wd_q, s_d = quantize_symmetric(Wd, fmt.head_weight_bits)
    head = SparseLayer(Wd_q.T,
                       np.rint(bd / (s_d * s_h)).astype(np.int64), in_bits=fmt.h_bits,
                       in_signed=True, weight_bits=fmt.head_weight_bits, requant=False)
    return IntLSTMClassifier(IntLSTM(fmt, W, b, M, S), head, steps=steps,
                             input_scale=input_scale)


def prune_gates_qstd(lstm, *, gates=("i", "f", "o"), q=1.0):
    """Zero the weights of ``gates`` (W_* and U_*) of a float LSTM layer whose magnitude is below
    ``q · std`` of that gate's matrix (method 2's criterion; a stand-in until
    ``slimgen.sw.compress`` provides the method with retraining). Changes ``lstm.params`` in
    place; returns the masks ``{name: bool array}`` of kept weights."""
    masks = {}
    for g in gates:
        if g not in GATES:
            raise ValueError(f"Gate must be one of {GATES}, not {g!r}")
        for kind in ("W", "U"):
            name = f"{kind}_{g}"
            w = lstm.params[name]
            masks[name] = np.abs(w) >= q * np.std(w)
            lstm.params[name] = np.where(masks[name], w, 0.0)
    return masks


def random_int_lstm(rng, n_in, n_hidden, *, density=0.3, fmt=LstmFormat(), spread=4.0):
    """A random :class:`IntLSTM` for tests: gates i, f, o with about ``density`` non-zeros, c
    dense; the multipliers put the typical accumulator at about ``spread`` table steps · 16, so
    the tables are used over their whole range (saturation included)."""
    H = n_hidden
    W, b, M, S = {}, {}, {}, {}
    for g in GATES:
        bits = fmt.c_weight_bits if g == "c" else fmt.weight_bits
        qmax = symmetric_max(bits)
        w = rng.integers(-qmax, qmax + 1, (H, n_in + H))
        if g != "c":
            w = w * (rng.random((H, n_in + H)) < density)
        W[g] = w.astype(np.int64)
        b[g] = rng.integers(-qmax * 16, qmax * 16 + 1, H).astype(np.int64)
        # Typical |z|: weights ~ qmax/2 times activations ~ 2^(act_bits−2) over the non-zeros.
        typical = max(1.0, qmax / 2 * 2 ** (fmt.act_bits - 2) * np.sqrt(max(1, np.count_nonzero(w) / H)))
        M[g], S[g] = multiplier_shift(spread * 16 / typical, fmt.multiplier_bits)
    return IntLSTM(fmt, W, b, M, S)


def random_int_lstm_classifier(rng, n_in, n_hidden, n_classes, *, steps, density=0.3,
                               fmt=LstmFormat(), spread=8.0):
    """A random :class:`IntLSTMClassifier` for tests: :func:`random_int_lstm` (tables used over
    their whole range) and a head with about a fifth of its weights zero."""
    qmax = symmetric_max(fmt.head_weight_bits)
    lstm = random_int_lstm(rng, n_in, n_hidden, density=density, fmt=fmt, spread=spread)
    W = rng.integers(-qmax, qmax + 1, (n_classes, n_hidden)) * \
        (rng.random((n_classes, n_hidden)) < 0.8)
    head = SparseLayer(W, rng.integers(-50 * qmax, 50 * qmax, n_classes), in_bits=fmt.h_bits,
                       in_signed=True, weight_bits=fmt.head_weight_bits, requant=False)
    return IntLSTMClassifier(lstm, head, steps=steps)
