"""Post-training quantization of a trained float model of a network description into its
integer model (:class:`slimgen.sw.integer_model.IntNetwork`): one rule for every layer.

Walking the description, with the input at scale ``s_x = input_scale`` (codes
``clip(round(x / s_x), 0, 2^input_bits − 1)``):

- convolution and dense (a batch normalization right after is folded in first): symmetric
  weights ``W_q = round(W / s_w)``, ``s_w = max|W| / (2^(b−1) − 1)`` per layer or per output
  channel (:func:`slimgen.sw.fixed.quantize_symmetric`), b bits per layer
  (``layer_weight_bits``, e.g. from joint pruning and quantization); bias at the accumulator's
  scale ``round(b / (s_x · s_w))``; output scale ``s_y = peak / (2^act_bits − 1)`` after a
  ReLU (fused into the layer), ``peak / (2^(act_bits−1) − 1)`` without (signed outputs), with
  ``peak`` a percentile of the float activations (|a| when signed) on the calibration inputs;
  requantization ``M / 2^shift ≈ s_x · s_w / s_y`` (:func:`slimgen.sw.fixed.multiplier_shift`;
  per channel: one shift, from the largest ratio, and one M per channel). The last layer keeps
  its accumulators as the logits;
- max pooling: the same codes; average pooling: the window's sum times ``M / 2^shift ≈
  1 / window``, same scale; a ReLU no layer could take: ``max(x, 0)``;
- flatten: the float model flattens channels-first, the integer model channels-last: the next
  dense layer's input columns are permuted (:func:`flatten_permutation`);
- LSTM and GRU: every scale fixed by the cell's format, no calibration: gate g's real
  contribution of one input step ``K_g = [W_g · s_x; U_g · 2^−h_frac]ᵀ``, ``W_g =
  round(K_g / s_g)`` with one symmetric scale per gate, bias ``round(b_g / s_g)``, ``M_g /
  2^shift_g ≈ s_g · 2^sigmoid_frac`` (σ gates) or ``s_g · 2^tanh_frac`` (tanh; the GRU's
  candidate ``s_n · 2^(tanh_frac − F)``, its sum carries 2^F); outputs at 2^−h_frac, signed.

Weights that are exactly zero (pruned) stay zero. Non-finite weights, calibration inputs or
scales are refused with a message naming the layer.
"""

from dataclasses import asdict, dataclass

import numpy as np

from .fixed import multiplier_shift, quantize_symmetric
from .integer_model import (IntConv, IntDense, IntFlatten, IntNetwork, IntPool, IntRecurrent,
                            IntRelu, RecurrentFormat)
from .network import RECURRENT_FORMAT, check_network, float_layout, float_spec, \
    padding_amounts, to_float_input

__all__ = ["QuantConfig", "quantize_network", "quantize_inputs", "flatten_permutation",
           "check_finite_weights", "check_scale", "first_index"]


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize; validated where built."""
    weight_bits: int = 8
    act_bits: int = 8
    multiplier_bits: int = 16
    calibration_percentile: float = 100.0  # of the activations, for the output scale
    per_channel: bool = False              # one weight scale per output channel

    def __post_init__(self):
        for name, lo, hi in (("weight_bits", 2, 16), ("act_bits", 2, 16),
                             ("multiplier_bits", 4, 24)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {v!r}")
        p = self.calibration_percentile
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 50.0 <= p <= 100.0:
            raise ValueError(f"calibration_percentile must be in [50, 100], not {p!r}")
        if not isinstance(self.per_channel, bool):
            raise ValueError(f"per_channel must be true or false, not {self.per_channel!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def first_index(mask):
    """Index of the first true entry of ``mask``: an int for a vector, else a tuple."""
    index = tuple(int(i) for i in np.unravel_index(np.argmax(mask), np.shape(mask)))
    return index[0] if len(index) == 1 else index


def check_finite_weights(layer, **arrays):
    """``ValueError`` naming ``layer``, the array and its first value that is not finite."""
    for name, a in arrays.items():
        a = np.asarray(a, dtype=np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            i = first_index(bad)
            raise ValueError(f"Cannot quantize {layer}: its {name} holds {a[i]} at index {i}; "
                             f"float weights must be finite numbers; retrain the model")


def check_scale(name, value):
    """``value`` as a float, or ``ValueError`` unless it is positive and finite."""
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                                np.floating))
    if not number or not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, not "
                         f"{value if number else repr(value)}")
    return float(value)


def quantize_inputs(x, input_scale, input_bits):
    """Float inputs to integer codes: ``clip(round(x / input_scale), 0, 2^bits − 1)``."""
    return np.clip(np.rint(np.asarray(x) / input_scale), 0, (1 << input_bits) - 1).astype(np.int64)


def flatten_permutation(shape):
    """``perm`` with ``channels_last_vector = channels_first_vector[perm]`` for a channels-last
    ``shape`` (*spatial, c): the channels-first flatten index of each raster position."""
    *spatial, c = shape
    grid = np.indices((*spatial, c)).reshape(len(shape), -1)      # (rank, positions)
    index = grid[-1]                                                # channel
    for axis, size in enumerate(spatial):
        index = index * size + grid[axis]
    return index


def _float_outputs(net, model, x):
    """Every description layer's float output on the calibration inputs x (n, n_inputs)."""
    _, origin = float_spec(net)
    a = to_float_input(net, np.asarray(x, dtype=np.float64))
    out = {0: a}
    for layer, i in zip(model.layers, origin):
        a = layer.forward(a)
        if i is not None:
            out[i] = a
    return out


def _folded_params(net, model, i):
    """Float ``(W, b)`` of description layer i, a batch normalization after it folded in."""
    _, origin = float_spec(net)
    j = origin.index(i)
    layer = model.layers[j]
    W = layer.params["W"]
    b = layer.params.get("b")
    if b is None:
        b = np.zeros(W.shape[-1] if layer.kind == "dense" else W.shape[0])
    if i + 1 < len(net.layers) and net.layers[i + 1]["type"] == "batchnorm":
        s, t = model.layers[origin.index(i + 1)].scale_shift()
        if layer.kind == "dense":
            W, b = W * s, b * s + t
        else:
            W, b = W * s.reshape(-1, *(1,) * (W.ndim - 1)), b * s + t
    return np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)


def _block_end(net, i):
    """``(end, relu)``: the last description layer of layer i's block (batchnorm, dropout and
    a ReLU after it) and whether the block ends in that ReLU."""
    end = i
    while end + 1 < len(net.layers) and net.layers[end + 1]["type"] in ("batchnorm", "dropout"):
        end += 1
    if end + 1 < len(net.layers) and net.layers[end + 1]["type"] == "relu":
        return end + 1, True
    return end, False


def _is_last(net, end):
    """Whether nothing but dropout follows description layer ``end``."""
    return all(layer["type"] == "dropout" for layer in net.layers[end + 1:])


def _requant(ratio, multiplier_bits):
    """``(M, shift)`` for a scalar ratio, or per-channel multipliers and one shift."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if ratio.ndim == 0:
        return multiplier_shift(float(ratio), multiplier_bits)
    _, shift = multiplier_shift(float(ratio.max()), multiplier_bits)
    return np.maximum(np.rint(ratio * 2.0 ** shift), 1).astype(np.int64), shift


def _weighted(net, model, i, acts, state, config, bits, perm):
    """The IntDense or IntConv of description layer i, and the state after its block."""
    layer = net.layers[i]
    kind = layer["type"]
    where = f"layer {i} ({kind})"
    W, b = _folded_params(net, model, i)
    check_finite_weights(where, W=W, b=b)
    s_x, in_bits, in_signed = state
    dense = kind == "dense"
    axis = (1 if dense else 0) if config.per_channel else None
    end, relu = _block_end(net, i)
    last = _is_last(net, end)
    if last:
        axis = None       # the logits need one scale
    Wq, s_w = quantize_symmetric(W, bits, channel_axis=axis)
    if dense:
        Wq = Wq.T                                                   # (n_out, n_in)
        if perm is not None:
            Wq = Wq[:, perm]
    s_w_out = np.reshape(s_w, -1) if axis is not None else float(s_w)
    bq = np.rint(b / (s_x * s_w_out)).astype(np.int64)
    common = dict(in_bits=in_bits, in_signed=in_signed, weight_bits=bits, source=i,
                  in_scale=s_x, w_scale=s_w_out)
    if not dense:
        shape_in = net.shapes[i - 1]
        pad = tuple(padding_amounts(size, layer["kernel"], layer["stride"], layer["padding"])
                    for size in shape_in[:-1])
        common.update(stride=layer["stride"], pad=pad)
    cls = IntDense if dense else IntConv
    if last:
        rec = cls(Wq, bq, 1, 1, False, False, **common)
        rec = cls(Wq, bq, 1, 1, False, False, out_bits=rec.acc_bits, out_scale=s_x * s_w_out,
                  **common)
        return rec, (s_x * s_w_out, rec.acc_bits, True)
    a = acts[end]
    peak = float(np.percentile(a if relu else np.abs(a), config.calibration_percentile)) or 1.0
    act = config.act_bits
    s_y = peak / ((1 << act) - 1 if relu else (1 << (act - 1)) - 1)
    check_scale(f"{where}: the output scale", s_y)
    M, shift = _requant(s_x * s_w_out / s_y, config.multiplier_bits)
    rec = cls(Wq, bq, M, shift, relu, True, out_bits=act, out_scale=s_y, **common)
    return rec, (s_y, act, not relu)


def _recurrent(net, model, i, state, config, bits):
    layer = net.layers[i]
    cell = layer["type"]
    where = f"layer {i} ({cell})"
    _, origin = float_spec(net)
    p = model.layers[origin.index(i)].params
    check_finite_weights(where, **p)
    s_x, in_bits, in_signed = state
    fmt = RecurrentFormat(**{k: layer[k] for k in RECURRENT_FORMAT})
    s_h = 2.0 ** -fmt.h_frac
    W, b, M, S = {}, {}, {}, {}
    gates = ("i", "f", "o", "c") if cell == "lstm" else ("r", "z", "n")
    for g in gates:
        K = np.concatenate([p[f"W_{g}"] * s_x, p[f"U_{g}"] * s_h], axis=0).T  # (H, n_in + H)
        W[g], s_g = quantize_symmetric(K, bits)
        b[g] = np.rint(p[f"b_{g}"] / s_g).astype(np.int64)
        if (cell, g) == ("gru", "n"):
            b["hn"] = np.rint(p["b_hn"] / s_g).astype(np.int64)
            ratio = s_g * 2.0 ** (fmt.tanh_frac - fmt.gate_frac)
        else:
            tanh = (cell, g) == ("lstm", "c")
            ratio = s_g * 2.0 ** (fmt.tanh_frac if tanh else fmt.sigmoid_frac)
        M[g], S[g] = multiplier_shift(ratio, config.multiplier_bits)
    rec = IntRecurrent(cell, fmt, W, b, M, S, in_bits=in_bits, in_signed=in_signed,
                       weight_bits=bits, c_weight_bits=bits, sequences=layer["sequences"],
                       source=i, in_scale=s_x)
    return rec, (s_h, fmt.h_bits, True)


def quantize_network(net, model, x_calib, *, input_scale, config=QuantConfig(),
                     layer_weight_bits=None, input_order=None):
    """The :class:`IntNetwork` of a trained float ``model`` (built from ``float_spec(net)``).

    ``x_calib`` (n, n_inputs) float, channels-last raster order: calibration inputs (the
    training split). ``layer_weight_bits``: one width per weight layer
    (:meth:`Network.weight_layers`), default ``config.weight_bits``.
    """
    net = check_network(net)
    weight_layers = net.weight_layers()
    if layer_weight_bits is None:
        layer_weight_bits = [config.weight_bits] * len(weight_layers)
    layer_weight_bits = [int(v) for v in layer_weight_bits]
    if len(layer_weight_bits) != len(weight_layers) or \
            not all(2 <= v <= 16 for v in layer_weight_bits):
        raise ValueError(f"layer_weight_bits must give one width from 2 to 16 for each of the "
                         f"{len(weight_layers)} weight layers, not {layer_weight_bits}")
    bits_of = dict(zip(weight_layers, layer_weight_bits))
    input_scale = check_scale("input_scale", input_scale)
    x = np.asarray(x_calib, dtype=np.float64).reshape(len(x_calib), -1)
    if x.shape[1] != net.n_inputs:
        raise ValueError(f"Calibration inputs must have {net.n_inputs} values each, not "
                         f"{x.shape[1]}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"Cannot quantize: the calibration inputs hold {x[i]} at index {i}; "
                         f"they must be finite numbers")
    for j, i in enumerate(float_spec(net)[1]):       # before the calibration pass uses them
        if i is not None:
            check_finite_weights(f"layer {i} ({net.layers[i]['type']})",
                                 **model.layers[j].params)
    acts = _float_outputs(net, model, x)
    layouts = float_layout(net)
    state = (input_scale, net.input_bits, False)       # scale, bits, signed
    records, perm, skip_to = [], None, 0
    for i, layer in enumerate(net.layers[1:], 1):
        kind = layer["type"]
        if i <= skip_to or kind in ("dropout", "batchnorm"):
            continue
        if kind in ("conv1d", "conv2d", "dense", "lstm", "gru"):
            try:
                if kind in ("lstm", "gru"):
                    rec, state = _recurrent(net, model, i, state, config, bits_of[i])
                else:
                    rec, state = _weighted(net, model, i, acts, state, config, bits_of[i],
                                           perm if kind == "dense" else None)
            except ValueError as e:
                text = str(e)
                raise ValueError(text if text.startswith(("Cannot quantize", "layer ")) else
                                 f"layer {i} ({kind}): {text}") from None
            if kind not in ("lstm", "gru"):
                perm = None
                end, relu = _block_end(net, i)
                skip_to = end
                if relu and not rec.requant:         # a ReLU on the logits
                    records.append(rec)
                    rec = IntRelu(rec.acc_bits, source=end)
                    state = (state[0], state[1], False)
        elif kind == "relu":
            if not state[2]:
                continue                                 # unsigned already
            rec = IntRelu(state[1], source=i)
            state = (state[0], state[1], False)
        elif kind == "maxpool":
            rec = IntPool("max", len(net.shapes[i - 1]) - 1, layer["size"], layer["stride"],
                          bits=state[1], signed=state[2], source=i)
        elif kind in ("avgpool", "global_avgpool"):
            shape = net.shapes[i - 1]
            dims = len(shape) - 1
            glob = kind == "global_avgpool"
            count = int(np.prod(shape[:-1])) if glob else layer["size"] ** dims
            M, shift = multiplier_shift(1.0 / count, config.multiplier_bits)
            rec = IntPool("avg", dims, 1 if glob else layer["size"],
                          1 if glob else layer["stride"], glob, state[1], state[2], M, shift,
                          source=i)
        elif kind == "flatten":
            shape = net.shapes[i - 1]
            if len(shape) > 1 and layouts[i - 1] == "channels":
                perm = flatten_permutation(shape)
            rec = IntFlatten(source=i)
        else:
            raise ValueError(f"layer {i} ({kind}): no integer form")
        records.append(rec)
    return IntNetwork(net, tuple(records), input_scale, net.input_bits, config.to_dict(),
                      input_order=None if input_order is None else tuple(input_order))
