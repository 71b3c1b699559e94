"""The integer golden model: pure functions over integer arrays that the hardware must match bit
for bit, and :func:`forward`, which walks an :class:`slimgen.sw.integer_model.IntNetwork`
layer by layer.

Number formats (DESIGN.md, Hardware; :mod:`slimgen.sw.integer_model`):

- activations: ``bits``-bit integers, unsigned after a ReLU and at the input, else signed;
  channels-last, one sample (*spatial, channels);
- weights: signed ``weight_bits`` integers, symmetric (−(2^(b−1) − 1)..2^(b−1) − 1);
- biases and accumulators: signed, exactly as wide as the layer's ``acc_bits``;
- requantization: ``y = sat(relu((acc · M + 2^(s−1)) >> s))`` — an integer multiplier M, an
  arithmetic right shift s ≥ 1 that rounds half up (toward +∞), ReLU, then saturation to the
  activation range (:func:`slimgen.sw.fixed.requantize`, M and s by
  :func:`slimgen.sw.fixed.multiplier_shift`);
- the last layer keeps its raw accumulators as the logits; the class is the first index of
  the largest logit.

Recurrent cells (F = gate_frac, A = table_bits, :class:`slimgen.sw.integer_model
.RecurrentFormat`): table index ``u_g = sat_A(round_half_up(z_g · M_g, shift_g))``; tables
``S[u] = floor(σ(u · 2^−sigmoid_frac) · 2^F + ½)``, ``T[u] = floor(tanh(u · 2^−tanh_frac) · 2^F
+ ½)`` indexed by ``u + 2^(A−1)``;

- LSTM: ``c_t = sat_c(rhu(f · c_{t−1} + i · g, F))``, ``h_t = sat_h(rhu(o ·
  T[sat_A(rhu(c_t, F − tanh_frac))], 2F − h_frac))`` (no rounding shift when F = tanh_frac);
- GRU: ``r = S[u_r]``, ``z = S[u_z]``, ``n = T[sat_A(rhu(((W_n^x x + b_n) · 2^F + r · (W_n^h h
  + b_hn)) · M_n, shift_n))]``, ``h_t = sat_h(rhu((2^F − z) · n + z · h_{t−1} · 2^(F −
  h_frac), 2F − h_frac))``;

with ``rhu(v, s) = (v + 2^(s−1)) >> s`` and h_0 = c_0 = 0.

Shapes: a dense layer has W (n_out, n_in), one row per output neuron (the order the hardware
stores them in), b (n_out,); inputs x (n, n_in); accumulators (n, n_out). All int64.
"""

import numpy as np

from .fixed import requantize, round_half_up_shift, saturate

__all__ = ["dense_accumulate", "argmax_first", "forward",
           "dense", "conv", "pool", "recurrent", "sigmoid_table", "tanh_table", "apply"]


def dense_accumulate(x, W, b):
    """``acc[n, o] = Σ_i x[n, i] · W[o, i] + b[o]`` in int64. x (n, n_in), W (n_out, n_in)."""
    x = np.asarray(x, dtype=np.int64)
    return x @ np.asarray(W, dtype=np.int64).T + np.asarray(b, dtype=np.int64)


def argmax_first(logits):
    """Index of the largest logit per row; ties go to the lowest index (as the hardware does)."""
    return np.argmax(np.asarray(logits), axis=1)


def _requant(acc, layer):
    if not layer.requant:
        return acc
    return requantize(acc, layer.multiplier, layer.shift, relu=layer.relu,
                      out_bits=layer.out_bits)


def dense(x, layer):
    """An :class:`~slimgen.sw.integer_model.IntDense`: x (n, n_in) → (n, n_out)."""
    return _requant(dense_accumulate(x, layer.W, layer.b), layer)


def conv(x, layer):
    """An :class:`~slimgen.sw.integer_model.IntConv` on channels-last x (n, *spatial, c_in) →
    (n, *out, c_out): ``acc[o] = b + Σ_{c, u} W[o, c, u] · x_p[s·o + u, c]`` with x_p zero-padded
    by ``pad``, then requantized."""
    x = np.asarray(x, dtype=np.int64)
    d, s = layer.dims, layer.stride
    xp = np.pad(x, ((0, 0), *layer.pad, (0, 0)))
    out = [layer.out_size(x.shape[1 + a], a) for a in range(d)]
    acc = np.zeros((len(x), *out, layer.c_out), dtype=np.int64) + layer.b
    W = layer.W                                                   # (c_out, c_in, *k)
    for offset in np.ndindex(*W.shape[2:]):
        window = tuple(slice(u, u + s * (o - 1) + 1, s) for u, o in zip(offset, out))
        acc += xp[(slice(None), *window)] @ W[(slice(None), slice(None), *offset)].T
    return _requant(acc, layer)


def pool(x, layer):
    """An :class:`~slimgen.sw.integer_model.IntPool` on channels-last x (n, *spatial, c):
    each window's largest value, or its sum requantized by M / 2^shift ≈ 1 / window size;
    a global pool gives (n, c)."""
    x = np.asarray(x, dtype=np.int64)
    if layer.global_:
        windows = x.reshape(len(x), -1, x.shape[-1])[:, :, None]      # (n, positions, 1, c)
        windows = np.moveaxis(windows, 1, 2)                          # (n, 1, positions, c)
        reduce_axes, keep = (2,), (len(x), x.shape[-1])
    else:
        k, s, d = layer.size, layer.stride, layer.dims
        out = [(x.shape[1 + a] - k) // s + 1 for a in range(d)]
        parts = [x[(slice(None), *(slice(u, u + s * (o - 1) + 1, s)
                                   for u, o in zip(offset, out)))]
                 for offset in np.ndindex(*(k,) * d)]
        windows = np.stack(parts, axis=-2)                            # (n, *out, k^d, c)
        reduce_axes, keep = (-2,), (len(x), *out, x.shape[-1])
    if layer.op == "max":
        return windows.max(axis=reduce_axes).reshape(keep)
    total = windows.sum(axis=reduce_axes).reshape(keep)
    return requantize(total, layer.multiplier, layer.shift, relu=not layer.signed,
                      out_bits=layer.bits)


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


def _index(z, layer, g):
    """Table index of gate g's accumulator z."""
    return requantize(z, layer.multiplier[g], layer.shift[g], relu=False,
                      out_bits=layer.fmt.table_bits)


def lstm_step(layer, x, h, c):
    """One LSTM step: x (n, n_in), h (n, H), c (n, H) → (h, c), all int64."""
    fmt = layer.fmt
    A, F = fmt.table_bits, fmt.gate_frac
    S, T, off = sigmoid_table(fmt), tanh_table(fmt), 1 << (A - 1)
    v = np.concatenate([x, h], axis=1)                                # (n, n_in + H)
    u = {g: _index(v @ layer.W[g].T + layer.b[g], layer, g) for g in "ifoc"}
    i, f, o, g = S[u["i"] + off], S[u["f"] + off], S[u["o"] + off], T[u["c"] + off]
    c = saturate(round_half_up_shift(f * c + i * g, F), fmt.c_bits)
    k = F - fmt.tanh_frac
    uc = saturate(round_half_up_shift(c, k) if k else c, A)
    h = saturate(round_half_up_shift(o * T[uc + off], 2 * F - fmt.h_frac), fmt.h_bits)
    return h, c


def gru_step(layer, x, h):
    """One GRU step: x (n, n_in), h (n, H) → h, int64."""
    fmt = layer.fmt
    A, F = fmt.table_bits, fmt.gate_frac
    S, T, off = sigmoid_table(fmt), tanh_table(fmt), 1 << (A - 1)
    v = np.concatenate([x, h], axis=1)
    r = S[_index(v @ layer.W["r"].T + layer.b["r"], layer, "r") + off]
    z = S[_index(v @ layer.W["z"].T + layer.b["z"], layer, "z") + off]
    n_in = x.shape[1]
    Wn = layer.W["n"]
    ax = x @ Wn[:, :n_in].T + layer.b["n"]
    ah = h @ Wn[:, n_in:].T + layer.b["hn"]
    n = T[_index((ax << F) + r * ah, layer, "n") + off]
    return saturate(round_half_up_shift((((1 << F) - z) * n) + ((z * h) << (F - fmt.h_frac)),
                                        2 * F - fmt.h_frac), fmt.h_bits)


def recurrent(x, layer):
    """An :class:`~slimgen.sw.integer_model.IntRecurrent` over x (n, T, n_in) from h = c = 0:
    the last h (n, H), or every step's (n, T, H) with ``sequences``."""
    x = np.asarray(x, dtype=np.int64)
    n, H = len(x), layer.n_hidden
    h = np.zeros((n, H), dtype=np.int64)
    c = np.zeros((n, H), dtype=np.int64)
    hs = []
    for t in range(x.shape[1]):
        if layer.cell == "lstm":
            h, c = lstm_step(layer, x[:, t], h, c)
        else:
            h = gru_step(layer, x[:, t], h)
        hs.append(h)
    return np.stack(hs, axis=1) if layer.sequences else h


def apply(layer, x):
    """One record of an integer model on its input."""
    kind = layer.kind
    if kind == "dense":
        return dense(x, layer)
    if kind == "conv":
        return conv(x, layer)
    if kind == "pool":
        return pool(x, layer)
    if kind == "recurrent":
        return recurrent(x, layer)
    if kind == "flatten":
        return x.reshape(len(x), -1)
    if kind == "relu":
        return np.maximum(x, 0)
    raise ValueError(f"No integer operation {kind!r}")


def forward(net, x_q, *, trace=False):
    """Run an :class:`~slimgen.sw.integer_model.IntNetwork` on input codes x_q (n, n_inputs)
    (channels-last raster order, in [0, 2^input_bits − 1]) → the logits (n, n_classes), or with
    ``trace`` the list of every record's output."""
    x = np.asarray(x_q)
    if x.ndim != 2 or x.shape[1] != net.n_inputs:
        raise ValueError(f"Inputs must have shape (n, {net.n_inputs}), not {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"Inputs must be integer codes, not {x.dtype}")
    hi = (1 << net.input_bits) - 1
    if x.size and (x.min() < 0 or x.max() > hi):
        raise ValueError(f"Input codes must lie in [0, {hi}], found [{x.min()}, {x.max()}]")
    a = x.astype(np.int64).reshape(len(x), *net.network.input_shape)
    outputs = []
    for layer in net.layers:
        a = apply(layer, a)
        outputs.append(a)
    return outputs if trace else a.reshape(len(a), -1)
