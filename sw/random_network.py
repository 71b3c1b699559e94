"""Random network descriptions and random integer models of them, for property tests of the
golden model and for the hardware fuzz bench.

- :func:`random_description`: a valid :class:`slimgen.sw.network.Network` of small shapes
  that, over many seeds, uses every layer kind: vectors → dense stacks; sequences → conv1d,
  pools, recurrent layers (every step or the last); images → conv2d with every padding,
  stride 1 or 2, pools; then flatten (or a global pool, or a recurrent layer's last state) and
  dense layers, ReLU, batch normalization and dropout here and there;
- :func:`random_int_network`: random integer records laid out as :mod:`slimgen.sw.quantize`
  lays them out (one record per layer, ReLU fused into the conv/dense before it, batchnorm and
  dropout gone, the last weight layer's accumulators as the logits, a ReLU after them an
  IntRelu), with random widths,
  sparsity, biases and requantization multipliers chosen so that outputs cover zero, the
  middle of their range and saturation;
- :func:`random_inputs`: input codes, the all-zero and all-max samples first.

Requantization: for inputs spread uniformly over their declared range, output o's accumulator
has mean ``μ_o = b_o + x̄ Σ_i W_oi`` and deviation ``σ_o = σ_x (Σ_i W_oi²)^½``; the ratio
``M / 2^s = r · y_max / (|μ_o| + 2σ_o)`` with ``r`` log-uniform in [½, 2] maps that spread
onto the output range ``y_max``, so some outputs clip, some are zero and most lie between.
Recurrent gates map the same spread onto half the table (the index range ±2^(A−1)).

Every function takes its randomness from an ``np.random.Generator``: same seed, same network.
"""

import math

import numpy as np

from .fixed import multiplier_shift, symmetric_max
from .integer_model import (GATES, IntConv, IntDense, IntFlatten, IntNetwork, IntPool,
                            IntRecurrent, IntRelu, RecurrentFormat, act_range)
from .network import LAYER_FIELDS, RECURRENT_FORMAT, check_network, padding_amounts

__all__ = ["random_description", "random_int_network", "random_inputs",
           "random_recurrent_format", "FAMILY_KINDS"]

MULTIPLIER_BITS = 16

# Which layer kinds each kind of input can use (input and the last dense are always there).
FAMILY_KINDS = {
    "vector": {"dense", "relu", "dropout", "batchnorm"},
    "sequence": {"conv1d", "maxpool", "avgpool", "global_avgpool", "lstm", "gru", "flatten",
                 "dense", "relu", "dropout", "batchnorm"},
    "image": {"conv2d", "maxpool", "avgpool", "global_avgpool", "flatten", "dense", "relu",
              "dropout", "batchnorm"},
}
_SPATIAL = {"sequence": ("conv1d", "maxpool", "avgpool", "global_avgpool", "lstm", "gru"),
            "image": ("conv2d", "maxpool", "avgpool", "global_avgpool")}


def _check_generator(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")


# ------------------------------------------------------------------ descriptions

def _families(kinds):
    """The input kinds that can use ``kinds``: the spatial ones using one of its spatial
    kinds, else vectors."""
    spatial = [f for f, ks in _SPATIAL.items() if kinds & set(ks)]
    return spatial or ["vector"]


def random_recurrent_format(rng):
    """Default half of the time, else a random format within RECURRENT_FORMAT's ranges and
    :func:`check_network`'s rules (h_frac, tanh_frac ≤ gate_frac ≤ c_bits − 2)."""
    if rng.random() < 0.5:
        return {}
    F = int(rng.integers(2, 16))
    return {"gate_frac": F,
            "h_frac": int(rng.integers(1, F + 1)),
            "tanh_frac": int(rng.integers(0, min(F, RECURRENT_FORMAT["tanh_frac"][2]) + 1)),
            "sigmoid_frac": int(rng.integers(0, RECURRENT_FORMAT["sigmoid_frac"][2] + 1)),
            "table_bits": int(rng.integers(3, RECURRENT_FORMAT["table_bits"][2] + 1)),
            "c_bits": int(rng.integers(F + 2, RECURRENT_FORMAT["c_bits"][2] + 1))}


def _conv_layer(rng, kind, shape):
    """A random convolution on ``shape`` (kernel 1 to 5, stride 1 or 2, every padding)."""
    spatial = shape[:-1]
    smallest = min(spatial)
    padding = rng.choice(["same", "valid", "number"])
    if padding == "same":
        k = int(rng.integers(1, 6))
    elif padding == "valid":
        k = int(rng.integers(1, min(5, smallest) + 1))
    else:
        k = int(rng.integers(1, 6))
        # zeros p ≤ k − 1 on each side, enough that the padded input holds the kernel
        padding = int(rng.integers(max(0, -(-(k - smallest) // 2)), k))
    layer = {"type": kind, "channels": int(rng.integers(1, 5)), "kernel": k,
             "stride": int(rng.integers(1, 3)), "padding": padding}
    if padding == "same" and rng.random() < 0.3:
        del layer["padding"]                              # the default
    if rng.random() < 0.3:
        layer["bias"] = False
    return layer


def _out_shape(layer, shape):
    """Output shape of a conv or pool layer (what :func:`check_network` will confirm)."""
    kind = layer["type"]
    if kind in ("conv1d", "conv2d"):
        k, s = layer["kernel"], layer.get("stride", 1)
        out = []
        for size in shape[:-1]:
            before, after = padding_amounts(size, k, s, layer.get("padding", "same"))
            out.append((size + before + after - k) // s + 1)
        return (*out, layer["channels"])
    size, stride = layer["size"], layer.get("stride", layer["size"])
    return (*((d - size) // stride + 1 for d in shape[:-1]), shape[-1])


def _followers(rng, kinds, weighted, slots, *, relu=0.5):
    """Batchnorm, dropout and ReLU after a layer, as many as ``slots`` allow."""
    out = []
    if weighted and "batchnorm" in kinds and slots > len(out) and rng.random() < 0.3:
        out.append({"type": "batchnorm"})
    if "dropout" in kinds and slots > len(out) and rng.random() < 0.2:
        out.append({"type": "dropout", "rate": round(float(rng.uniform(0, 0.5)), 2)})
    if "relu" in kinds and slots > len(out) and rng.random() < relu:
        out.append({"type": "relu"})
    return out


# how often each kind comes up on a sequence or an image
_WEIGHT = {"conv1d": 6, "conv2d": 6, "maxpool": 3, "avgpool": 3, "global_avgpool": 1,
           "lstm": 3, "gru": 3, "relu": 1, "dropout": 1}


def _spatial_layer(rng, family, kinds, shape):
    """One layer on a sequence or image, or None when none of ``kinds`` fits ``shape``."""
    options = [k for k in _SPATIAL[family] if k in kinds]
    if min(shape[:-1]) < 2:
        options = [k for k in options if k not in ("maxpool", "avgpool")]
    options += [k for k in ("relu", "dropout") if k in kinds]
    if not options:
        return None
    weights = np.array([_WEIGHT[k] for k in options])
    kind = str(rng.choice(options, p=weights / weights.sum()))
    if kind in ("conv1d", "conv2d"):
        return _conv_layer(rng, kind, shape)
    if kind in ("maxpool", "avgpool"):
        size = int(rng.integers(2, min(3, min(shape[:-1])) + 1))
        layer = {"type": kind, "size": size}
        if rng.random() < 0.7:
            layer["stride"] = int(rng.integers(1, size + 1))
        return layer
    if kind in ("lstm", "gru"):
        return {"type": kind, "hidden": int(rng.integers(1, 6)),
                "sequences": bool(rng.random() < 0.5), **random_recurrent_format(rng)}
    if kind == "dropout":
        return {"type": "dropout", "rate": round(float(rng.uniform(0, 0.5)), 2)}
    return {"type": kind}          # relu, global_avgpool


def random_description(rng, *, kinds=None, max_layers=8):
    """A random valid :class:`~slimgen.sw.network.Network` with small shapes.

    Parameters
    ----------
    rng : np.random.Generator
    kinds : iterable of str, optional
        The layer kinds it may use (default: all). The input and the last dense layer are
        always there, and a flatten where a sequence or image must become a vector.
    max_layers : int
        Most layers after the input (at least 2).
    """
    _check_generator(rng)
    if isinstance(max_layers, bool) or not isinstance(max_layers, int) or max_layers < 2:
        raise ValueError(f"max_layers must be an integer of at least 2, not {max_layers!r}")
    everything = kinds is None
    kinds = set(LAYER_FIELDS) - {"input"} if everything else set(kinds)
    unknown = sorted(kinds - set(LAYER_FIELDS))
    if unknown:
        raise ValueError(f"Layer kind {unknown[0]!r} is not known; use some of "
                         f"{', '.join(LAYER_FIELDS)}")
    kinds |= {"dense"}
    if everything:
        family = str(rng.choice(["vector", "sequence", "image"], p=[0.2, 0.4, 0.4]))
    else:
        family = str(rng.choice(_families(kinds)))
    bits = int(rng.integers(1, 9))
    if family == "vector":
        shape = (int(rng.integers(1, 25)),)
    elif family == "sequence":
        shape = (int(rng.integers(4, 17)), int(rng.integers(1, 5)))
    else:
        shape = (int(rng.integers(4, 11)), int(rng.integers(4, 11)), int(rng.integers(1, 4)))
    layers = [{"type": "input", "shape": list(shape), "bits": bits}]
    slots = int(rng.integers(min(3, max_layers), max_layers + 1))   # layers after the input
    # sequences and images: layers on them, leaving two slots to reach a vector and classify
    while len(shape) > 1 and len(layers) - 1 < slots - 2:
        layer = _spatial_layer(rng, family, kinds, shape)
        if layer is None:
            break
        layers.append(layer)
        kind = layer["type"]
        if kind in ("lstm", "gru"):
            shape = (shape[0], layer["hidden"]) if layer["sequences"] else (layer["hidden"],)
        elif kind == "global_avgpool":
            shape = (shape[-1],)
        elif kind not in ("relu", "dropout"):
            shape = _out_shape(layer, shape)
        if kind in ("conv1d", "conv2d", "lstm", "gru"):
            layers += _followers(rng, kinds, kind.startswith("conv"),
                                 slots - 2 - (len(layers) - 1))
    if len(shape) > 1:
        ends = [k for k in ("flatten", "global_avgpool") if k in kinds] or ["flatten"]
        if family == "sequence":
            ends += [k for k in ("lstm", "gru") if k in kinds]
        weights = np.array([3 if k == "flatten" else 1 for k in ends])
        kind = str(rng.choice(ends, p=weights / weights.sum()))
        if kind in ("lstm", "gru"):
            layer = _spatial_layer(rng, family, {kind}, shape)
            layer["sequences"] = False
            layers.append(layer)
            shape = (layer["hidden"],)
        else:
            layers.append({"type": kind})
            shape = (math.prod(shape),) if kind == "flatten" else (shape[-1],)
    # vectors: dense layers, then the classifier
    while len(layers) - 1 < slots - 1:
        options = [k for k in ("dense", "relu", "dropout") if k in kinds]
        kind = str(rng.choice(options, p=None if len(options) == 1 else
                              [0.6, *[0.4 / (len(options) - 1)] * (len(options) - 1)]))
        if kind == "dense":
            layers.append({"type": "dense", "units": int(rng.integers(1, 13))})
            layers += _followers(rng, kinds, True, slots - 1 - (len(layers) - 1), relu=0.7)
        elif kind == "relu":
            layers.append({"type": "relu"})
        else:
            layers.append({"type": "dropout", "rate": round(float(rng.uniform(0, 0.5)), 2)})
    layers.append({"type": "dense", "units": int(rng.integers(2, 11))})
    tail = [k for k in ("batchnorm", "dropout", "relu") if k in kinds]
    if tail and len(layers) - 1 < max_layers and rng.random() < 0.1:
        kind = str(rng.choice(tail))
        layers.append({"type": kind, **({"rate": 0.25} if kind == "dropout" else {})})
    return check_network({"name": f"random_{family}", "layers": layers})


# ------------------------------------------------------------------ integer models

def _pick(rng, value, lo, hi):
    return int(rng.integers(lo, hi + 1)) if value is None else int(value)


def _weights(rng, shape, bits, density):
    """Symmetric ``bits``-bit integers, each non-zero with probability ``density``; now and
    then every weight of a row at ±q, for bit growth."""
    q = symmetric_max(bits)
    W = rng.integers(-q, q + 1, shape) * (rng.random(shape) < density)
    if rng.random() < 0.1:
        W[int(rng.integers(shape[0]))] = q * int(rng.choice([-1, 1]))
    return W.astype(np.int64)


def _spread(W, b, lo, hi):
    """Per output, ``|μ| + 2σ`` of ``b + W x`` for x uniform over the integers in [lo, hi]."""
    W = W.reshape(len(W), -1).astype(np.float64)
    mean = (lo + hi) / 2
    var = ((hi - lo + 1) ** 2 - 1) / 12
    return np.maximum(np.abs(b + mean * W.sum(axis=1)) + 2 * np.sqrt(var * (W ** 2).sum(axis=1)),
                      1.0)


def _ratio(rng, target, spread):
    """``r · target / spread``, r log-uniform in [½, 2], kept where a shift can reach it."""
    r = target / spread * 2.0 ** rng.uniform(-1, 1)
    return np.clip(r, 2.0 ** -40, 2.0 ** 8)


def _requant(rng, ratio, per_channel):
    """``(M, shift)``: one M (the channels' mean ratio), or one M per channel with the shift
    of the largest ratio (as :mod:`slimgen.sw.quantize` does)."""
    if not per_channel:
        return multiplier_shift(float(np.exp(np.mean(np.log(ratio)))), MULTIPLIER_BITS)
    _, shift = multiplier_shift(float(ratio.max()), MULTIPLIER_BITS)
    return np.maximum(np.rint(ratio * 2.0 ** shift), 1).astype(np.int64), shift


def _block_end(layers, i):
    """``(end, relu)`` as :mod:`slimgen.sw.quantize` groups a weight layer with the batchnorm,
    dropout and ReLU after it."""
    end = i
    while end + 1 < len(layers) and layers[end + 1]["type"] in ("batchnorm", "dropout"):
        end += 1
    if end + 1 < len(layers) and layers[end + 1]["type"] == "relu":
        return end + 1, True
    return end, False


def _weighted(rng, net, i, state, wbits, abits, density):
    layer = net.layers[i]
    in_bits, in_signed = state
    lo, hi = act_range(in_bits, in_signed)
    dense = layer["type"] == "dense"
    c_in = net.shapes[i - 1][-1]
    if dense:
        shape = (layer["units"], net.shapes[i - 1][0])
    else:
        shape = (layer["channels"], c_in, *(layer["kernel"],) * (len(net.shapes[i - 1]) - 1))
    W = _weights(rng, shape, wbits, density)
    sigma = _spread(W, np.zeros(len(W)), lo, hi)
    folded = i + 1 < len(net.layers) and net.layers[i + 1]["type"] == "batchnorm"
    if dense or layer["bias"] or folded:
        b = np.rint(rng.uniform(-1.5, 1.5, len(W)) * sigma).astype(np.int64)
    else:
        b = np.zeros(len(W), dtype=np.int64)
    common = dict(in_bits=in_bits, in_signed=in_signed, weight_bits=wbits, source=i)
    if not dense:
        pad = tuple(padding_amounts(size, layer["kernel"], layer["stride"], layer["padding"])
                    for size in net.shapes[i - 1][:-1])
        common.update(stride=layer["stride"], pad=pad)
    cls = IntDense if dense else IntConv
    end, relu = _block_end(net.layers, i)
    if all(later["type"] == "dropout" for later in net.layers[end + 1:]):
        rec = cls(W, b, 1, 1, False, False, **common)
        rec = cls(W, b, 1, 1, False, False, out_bits=rec.acc_bits, **common)
        if relu:                              # a ReLU on the logits
            return [rec, IntRelu(rec.acc_bits, source=end)], (rec.acc_bits, False), end
        return rec, (rec.acc_bits, True), end
    y_max = (1 << abits) - 1 if relu else (1 << (abits - 1)) - 1
    ratio = _ratio(rng, y_max, _spread(W, b, lo, hi))
    M, shift = _requant(rng, ratio, rng.random() < 0.3)
    rec = cls(W, b, M, shift, relu, True, out_bits=abits, **common)
    return rec, (abits, not relu), end


def _recurrent(rng, net, i, state, wbits, density):
    layer = net.layers[i]
    cell = layer["type"]
    in_bits, in_signed = state
    fmt = RecurrentFormat(**{k: layer[k] for k in RECURRENT_FORMAT})
    A, F = fmt.table_bits, fmt.gate_frac
    n_in, H = net.shapes[i - 1][-1], layer["hidden"]
    lo, hi = act_range(in_bits, in_signed)
    h_lim = 1 << fmt.h_frac                    # |h| ≤ 2^h_frac: o ≤ 1, |tanh| ≤ 1
    W, b, M, S = {}, {}, {}, {}
    for g in GATES[cell]:
        W[g] = _weights(rng, (H, n_in + H), wbits, density)
        spread = (_spread(W[g][:, :n_in], np.zeros(H), lo, hi)
                  + _spread(W[g][:, n_in:], np.zeros(H), -h_lim, h_lim))
        b[g] = np.rint(rng.uniform(-1, 1, H) * spread).astype(np.int64)
        if (cell, g) == ("gru", "n"):
            b["hn"] = np.rint(rng.uniform(-1, 1, H) * spread).astype(np.int64)
            spread = spread * (1 << F)         # (W_x x + b) · 2^F + r · (W_h h + b_hn)
        ratio = _ratio(rng, 1 << (A - 1), spread.mean())
        M[g], S[g] = multiplier_shift(float(ratio), MULTIPLIER_BITS)
    rec = IntRecurrent(cell, fmt, W, b, M, S, in_bits=in_bits, in_signed=in_signed,
                       weight_bits=wbits, c_weight_bits=wbits, sequences=layer["sequences"],
                       source=i)
    return rec, (fmt.h_bits, True)


def _narrowed(make, wbits):
    """``make(bits)`` with ``wbits`` weight bits, or fewer where the record refuses its
    accumulators (wider than :data:`~slimgen.sw.integer_model.MAX_ACC_BITS`)."""
    for bits in range(wbits, 1, -1):
        try:
            return make(bits)
        except ValueError as e:
            if "-bit accumulators" not in str(e) or bits == 2:
                raise


def random_int_network(rng, net, *, density=1.0, weight_bits=None, act_bits=None):
    """Random integer records for the description ``net``, laid out as
    :func:`slimgen.sw.quantize.quantize_network` lays them out.

    Parameters
    ----------
    rng : np.random.Generator
    net : Network or description
    density : float or None
        Fraction of non-zero weights (None: random from 0.2 to 1 per layer).
    weight_bits, act_bits : int or None
        Widths of every layer's weights and requantized outputs (None: random 2 to 8 per
        layer). A layer whose accumulators would be wider than ``MAX_ACC_BITS`` gets
        fewer weight bits.

    Returns
    -------
    IntNetwork
        With ``input_scale`` 1 and the description's input bits; ``config`` records the
        arguments.
    """
    _check_generator(rng)
    net = check_network(net)
    if density is not None and not (isinstance(density, (int, float))
                                    and not isinstance(density, bool) and 0 <= density <= 1):
        raise ValueError(f"density must be a number from 0 to 1 or None, not {density!r}")
    for name, v in (("weight_bits", weight_bits), ("act_bits", act_bits)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or
                              not 2 <= v <= 16):
            raise ValueError(f"{name} must be an integer from 2 to 16 or None, not {v!r}")
    state = (net.input_bits, False)          # bits, signed
    records, skip_to = [], 0
    for i, layer in enumerate(net.layers[1:], 1):
        kind = layer["type"]
        if i <= skip_to or kind in ("dropout", "batchnorm"):
            continue
        wbits = _pick(rng, weight_bits, 2, 8)
        d = float(rng.uniform(0.2, 1.0)) if density is None else density
        if kind in ("conv1d", "conv2d", "dense"):
            abits = _pick(rng, act_bits, 2, 8)
            rec, state, skip_to = _narrowed(
                lambda bits: _weighted(rng, net, i, state, bits, abits, d), wbits)
        elif kind in ("lstm", "gru"):
            rec, state = _narrowed(lambda bits: _recurrent(rng, net, i, state, bits, d), wbits)
        elif kind == "relu":
            if not state[1]:
                continue                      # unsigned already
            rec, state = IntRelu(state[0], source=i), (state[0], False)
        elif kind == "maxpool":
            rec = IntPool("max", len(net.shapes[i - 1]) - 1, layer["size"], layer["stride"],
                          bits=state[0], signed=state[1], source=i)
        elif kind in ("avgpool", "global_avgpool"):
            shape = net.shapes[i - 1]
            glob = kind == "global_avgpool"
            count = math.prod(shape[:-1]) if glob else layer["size"] ** (len(shape) - 1)
            M, shift = multiplier_shift(1.0 / count, MULTIPLIER_BITS)
            rec = IntPool("avg", len(shape) - 1, 1 if glob else layer["size"],
                          1 if glob else layer["stride"], glob, state[0], state[1], M, shift,
                          source=i)
        else:                                 # flatten
            rec = IntFlatten(source=i)
        records += rec if isinstance(rec, list) else [rec]
    config = {"random": True, "density": density, "weight_bits": weight_bits,
              "act_bits": act_bits, "multiplier_bits": MULTIPLIER_BITS}
    return IntNetwork(net, tuple(records), 1.0, net.input_bits, config)


def random_inputs(rng, int_net, n):
    """Input codes (n, n_inputs) int64 in [0, 2^input_bits − 1]: the all-zero sample, the
    all-max sample, then uniform random codes (some samples sparse)."""
    _check_generator(rng)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"Sample count must be a non-negative integer, not {n!r}")
    hi = (1 << int_net.input_bits) - 1
    x = rng.integers(0, hi + 1, (n, int_net.n_inputs))
    sparse = rng.random(n) < 0.25
    x[sparse] *= rng.random((int(sparse.sum()), int_net.n_inputs)) < 0.3
    x[:1] = 0
    x[1:2] = hi
    return x.astype(np.int64)
