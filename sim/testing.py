"""Test support.

- :func:`require_simulator`: simulator benches skip with a clear reason when their simulator is
  missing, except in CI (``CI`` set), where every tool must be installed and a missing one fails;
- small random integer layers and models for the hardware tests, as the records of
  :mod:`slimgen.sw.integer_model` (:func:`random_dense_layer`, :func:`random_sparse_layer`,
  :func:`random_conv_layer`, :func:`random_recurrent_cell`, and the networks :func:`random_mlp`,
  :func:`random_cnn`, :func:`random_recurrent_classifier`, :func:`dense_network`): weights over
  their whole range or at one extreme, requantizations that map about a quarter of the
  accumulator range onto the outputs (so outputs cover zero, the middle and saturation);
- a preset's integer model quantized the way the flow does it, untrained in a run folder
  (:func:`untrained_int_run`) or trained on the digits (:func:`trained_int_network`).
"""

import os

import numpy as np

from slimgen.sim.runner import SimulatorNotFound, check_simulator
from slimgen.sw.fixed import multiplier_shift, symmetric_max
from slimgen.sw.integer_model import (GATES, IntConv, IntDense, IntFlatten, IntNetwork, IntPool,
                                      IntRecurrent, RecurrentFormat)
from slimgen.sw.network import check_network

__all__ = ["require_simulator", "random_dense_layer", "random_sparse_layer",
           "random_conv_layer", "random_recurrent_cell", "balanced_mask", "magnitude_mask",
           "dense_network", "random_mlp", "random_cnn", "random_recurrent_classifier",
           "untrained_int_run", "trained_int_network", "prune_gates"]


def require_simulator(sim):
    import pytest
    try:
        check_simulator(sim)
    except SimulatorNotFound as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


# ------------------------------------------------------------------ random layers

def _extreme_weights(rng, shape, qmax, extreme):
    if extreme == "max":
        return np.full(shape, qmax, dtype=np.int64)
    if extreme == "min":
        return np.full(shape, -qmax, dtype=np.int64)
    raise ValueError(f"extreme must be None, 'max' or 'min', not {extreme!r}")


def _quarter(acc_bits, out_bits):
    """The ratio that maps about a quarter of the accumulator range onto the outputs."""
    return ((1 << out_bits) - 1) / (1 << max(acc_bits - 3, 1))


def random_dense_layer(rng, n_in, n_out, *, weight_bits=8, in_bits=8, out_bits=8, requant=True,
                       density=1.0, extreme=None):
    """A random :class:`IntDense` (n_out, n_in) on unsigned inputs: about ``density`` of the
    weights non-zero, or every weight at ``extreme`` (``"max"``: +q, ``"min"``: −q); hidden
    (requantizing with ReLU) or giving its accumulators (``requant=False``)."""
    qmax = symmetric_max(weight_bits)
    if extreme is None:
        W = rng.integers(-qmax, qmax + 1, (n_out, n_in))
        W = W * (rng.random((n_out, n_in)) < density)
    else:
        W = _extreme_weights(rng, (n_out, n_in), qmax, extreme)
    b = rng.integers(-(1 << (in_bits + weight_bits)), 1 << (in_bits + weight_bits), n_out)
    raw = IntDense(W, b, requant=False, relu=False, in_bits=in_bits, weight_bits=weight_bits)
    if not requant:
        return IntDense(W, b, requant=False, relu=False, in_bits=in_bits,
                        weight_bits=weight_bits, out_bits=raw.acc_bits)
    M, shift = multiplier_shift(_quarter(raw.acc_bits, out_bits), 16)
    return IntDense(W, b, M, shift, True, True, in_bits=in_bits, out_bits=out_bits,
                    weight_bits=weight_bits)


def random_sparse_layer(rng, W_mask, *, weight_bits=8, in_bits=8, in_signed=False,
                        requant=True, relu=True, out_bits=8, extreme=None):
    """A random :class:`IntDense` with non-zero weights exactly where ``W_mask`` (n_out, n_in)
    is true (``extreme`` as in :func:`random_dense_layer`), inputs signed or not; requantizing
    with or without ReLU, or giving its accumulators."""
    W_mask = np.asarray(W_mask, dtype=bool)
    qmax = symmetric_max(weight_bits)
    if extreme is None:
        W = rng.integers(1, qmax + 1, W_mask.shape) * rng.choice([-1, 1], W_mask.shape)
    else:
        W = _extreme_weights(rng, W_mask.shape, qmax, extreme)
    W = np.where(W_mask, W, 0)
    nb = in_bits + weight_bits
    b = rng.integers(-(1 << nb), 1 << nb, W_mask.shape[0])
    common = dict(in_bits=in_bits, in_signed=in_signed, weight_bits=weight_bits)
    raw = IntDense(W, b, requant=False, relu=False, **common)
    if not requant:
        return IntDense(W, b, requant=False, relu=False, out_bits=raw.acc_bits, **common)
    ratio = _quarter(raw.acc_bits, out_bits)
    shift = 14 - int(np.floor(np.log2(ratio)))
    return IntDense(W, b, int(round(ratio * 2 ** shift)), shift, relu, True, out_bits=out_bits,
                    **common)


def random_conv_layer(rng, c_in, c_out, kernel=3, *, weight_bits=8, in_bits=8, out_bits=8,
                      padding=None, requant=True, bias=True, extreme=None):
    """A random 2-D :class:`IntConv` (c_out, c_in, k, k), stride 1, ``padding`` zeros on every
    side (default ``kernel // 2``); ``extreme`` as in :func:`random_dense_layer`; requantizing
    with ReLU, or giving its accumulators (``requant=False``)."""
    qmax = symmetric_max(weight_bits)
    shape = (c_out, c_in, kernel, kernel)
    W = rng.integers(-qmax, qmax + 1, shape) if extreme is None else \
        _extreme_weights(rng, shape, qmax, extreme)
    span = 1 << (in_bits + weight_bits)
    b = rng.integers(-span, span, c_out) if bias else np.zeros(c_out, dtype=np.int64)
    p = kernel // 2 if padding is None else padding
    common = dict(in_bits=in_bits, weight_bits=weight_bits, pad=((p, p), (p, p)))
    raw = IntConv(W, b, requant=False, relu=False, out_bits=out_bits, **common)
    if not requant:
        return raw
    M, shift = multiplier_shift(_quarter(raw.acc_bits, out_bits), 16)
    return IntConv(W, b, M, shift, True, True, out_bits=out_bits, **common)


def random_recurrent_cell(rng, n_in, n_hidden, *, cell="lstm", density=0.3,
                          fmt=RecurrentFormat(), in_bits=5, weight_bits=8, c_weight_bits=8,
                          spread=4.0):
    """A random LSTM or GRU :class:`IntRecurrent` on unsigned ``in_bits`` inputs: gates with
    about ``density`` non-zeros (the LSTM's c dense); the multipliers put the typical
    accumulator at about ``spread`` table steps · 16, so the tables are used over their whole
    range (saturation included). The GRU's candidate sum is ``nx · 2^F + r · nh`` (r up to
    2^F), its multiplier 2^F times smaller."""
    H = n_hidden
    act_bits = max(in_bits + 1, fmt.h_bits)
    W, b, M, S = {}, {}, {}, {}
    for g in GATES[cell]:
        qmax = symmetric_max(c_weight_bits if (cell, g) == ("lstm", "c") else weight_bits)
        w = rng.integers(-qmax, qmax + 1, (H, n_in + H))
        if (cell, g) != ("lstm", "c"):
            w = w * (rng.random((H, n_in + H)) < density)
        W[g] = w.astype(np.int64)
        b[g] = rng.integers(-qmax * 16, qmax * 16 + 1, H).astype(np.int64)
        # typical |z|: weights ~ qmax/2 times activations ~ 2^(act_bits−2) over the non-zeros
        typical = max(1.0, qmax / 2 * 2 ** (act_bits - 2)
                      * np.sqrt(max(1, np.count_nonzero(w) / H)))
        if (cell, g) == ("gru", "n"):
            b["hn"] = rng.integers(-qmax * 16, qmax * 16 + 1, H).astype(np.int64)
            typical *= 2 ** fmt.gate_frac
        M[g], S[g] = multiplier_shift(spread * 16 / typical, 16)
    return IntRecurrent(cell, fmt, W, b, M, S, in_bits=in_bits, weight_bits=weight_bits,
                        c_weight_bits=c_weight_bits if cell == "lstm" else weight_bits)


# ------------------------------------------------------------------ random networks

def dense_network(layers, *, input_bits=8, input_order=None):
    """An :class:`IntNetwork` of the :class:`IntDense` ``layers`` (a ReLU after every hidden
    layer in its description)."""
    desc = [{"type": "input", "shape": [layers[0].n_in], "bits": input_bits}]
    for k, layer in enumerate(layers):
        desc.append({"type": "dense", "units": layer.n_out})
        if k < len(layers) - 1:
            desc.append({"type": "relu"})
    return IntNetwork(check_network(desc, name="mlp"), tuple(layers), 1.0, input_bits,
                      input_order=input_order)


def random_mlp(rng, sizes, *, input_order=None, **options):
    """An :class:`IntNetwork` of :func:`random_dense_layer` layers of ``sizes`` (n_in, ...,
    n_classes), the last giving its accumulators; ``options`` go to every layer."""
    layers = [random_dense_layer(rng, a, b, requant=k < len(sizes) - 2, **options)
              for k, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    return dense_network(layers, input_order=input_order)


def random_cnn(rng, in_shape=(6, 6, 1), channels=(2, 3), pool=2, n_classes=3, *, weight_bits=6,
               act_bits=8, density=1.0, conv_bias=True):
    """A small random CNN :class:`IntNetwork` on ``in_shape`` (h, w, c) images: 3×3
    convolutions (padding 1, requantized with ReLU; without bias when not ``conv_bias``, so
    that most activations of every layer lie between zero and saturation), a max-pool of
    ``pool``, and a dense layer (about ``density`` non-zeros) giving the logits."""
    h, w, c = in_shape
    desc = [{"type": "input", "shape": list(in_shape), "bits": act_bits}]
    layers = []
    for k in channels:
        layers.append(random_conv_layer(rng, c, k, weight_bits=weight_bits, in_bits=act_bits,
                                        out_bits=act_bits, bias=conv_bias))
        desc += [{"type": "conv2d", "channels": k, "kernel": 3}, {"type": "relu"}]
        c = k
    n_features = c * (h // pool) * (w // pool)
    layers += [IntPool("max", 2, pool, pool, bits=act_bits), IntFlatten(),
               random_dense_layer(rng, n_features, n_classes, weight_bits=weight_bits,
                                  in_bits=act_bits, requant=False, density=density)]
    desc += [{"type": "maxpool", "size": pool}, {"type": "flatten"},
             {"type": "dense", "units": n_classes}]
    return IntNetwork(check_network(desc, name="cnn"), tuple(layers), 1.0, act_bits)


def random_recurrent_classifier(rng, n_in, n_hidden, n_classes, *, steps, cell="lstm",
                                density=0.3, fmt=RecurrentFormat(), in_bits=5, weight_bits=8,
                                c_weight_bits=8, head_weight_bits=8, spread=8.0):
    """An LSTM or GRU classifier :class:`IntNetwork` over ``steps`` steps of ``n_in``
    features: :func:`random_recurrent_cell` (tables used over their whole range) and a dense
    head on the signed hidden state with about a fifth of its weights zero, giving the
    logits."""
    kind = cell
    cell = random_recurrent_cell(rng, n_in, n_hidden, cell=kind, density=density, fmt=fmt,
                                 in_bits=in_bits, weight_bits=weight_bits,
                                 c_weight_bits=c_weight_bits, spread=spread)
    qmax = symmetric_max(head_weight_bits)
    W = rng.integers(-qmax, qmax + 1, (n_classes, n_hidden)) * \
        (rng.random((n_classes, n_hidden)) < 0.8)
    b = rng.integers(-50 * qmax, 50 * qmax, n_classes)
    head = IntDense(W, b, requant=False, relu=False, in_bits=fmt.h_bits, in_signed=True,
                    weight_bits=head_weight_bits)
    head = IntDense(W, b, requant=False, relu=False, in_bits=fmt.h_bits, in_signed=True,
                    weight_bits=head_weight_bits, out_bits=head.acc_bits)
    desc = [{"type": "input", "shape": [steps, n_in], "bits": in_bits},
            {"type": kind, "hidden": n_hidden, **fmt.to_dict()},
            {"type": "dense", "units": n_classes}]
    return IntNetwork(check_network(desc, name=kind), (cell, head), 1.0, in_bits)


# ------------------------------------------------------------------ quantized presets

def _quantize(network, model, data, weight_bits, act_bits):
    from slimgen.sw.quantize import QuantConfig, quantize_network
    return quantize_network(network, model, data.part("train")[0],
                            input_scale=1.0 / data.pixel_max,
                            config=QuantConfig(weight_bits=weight_bits, act_bits=act_bits))


def untrained_int_run(kind_name, root):
    """``root`` made a run folder holding the ``model.npz`` of model kind ``kind_name`` (an
    untrained float model with the kind's default settings, quantized the way the flow does it);
    returns the integer model and the run's settings."""
    from slimgen.models import get_model_kind
    from slimgen.settings import RunConfig
    from slimgen.sw.artifact import save_int_network
    from slimgen.sw.data import load_dataset
    from slimgen.sw.nn import build_model
    kind, config = get_model_kind(kind_name), RunConfig(model=kind_name)
    data = load_dataset("digits", view="vector", seed=0)
    network = kind.network(config, pixel_max=data.pixel_max)
    model = build_model(network.float_spec()[0], np.random.default_rng(0))
    int_model = _quantize(network, model, data, config.weight_bits, config.act_bits)
    save_int_network(root / "model.npz", int_model, dataset="digits", split_seed=0,
                     extra={"model": kind_name})
    return int_model, config


def trained_int_network(name, *, view, seed=0, weight_bits=8, act_bits=8, prune=None,
                        train_options=None, **options):
    """The preset ``name`` (``options`` as :func:`slimgen.sw.network.preset` takes them)
    trained on the digits in ``view`` (``TrainConfig(seed=seed, **train_options)``),
    ``prune(model)`` applied to the float model, quantized the way the flow does it. Returns
    the :class:`IntNetwork`, the test split as its input codes (n, n_inputs) and the labels."""
    from slimgen.sw.data import load_digits
    from slimgen.sw.network import preset
    from slimgen.sw.nn import TrainConfig, build_model, train
    from slimgen.sw.quantize import quantize_inputs
    network = preset(name, **options)
    model = build_model(network.float_spec()[0], np.random.default_rng(seed))
    train(model, load_digits(view=view, seed=seed),
          TrainConfig(seed=seed, **(train_options or {})), progress=False)
    if prune is not None:
        prune(model)
    data = load_digits(view="vector", seed=seed)
    int_model = _quantize(network, model, data, weight_bits, act_bits)
    x, y = data.part("test")
    return int_model, quantize_inputs(x, int_model.input_scale, int_model.input_bits), y


def prune_gates(model, *, gates="ifo", q=1.0):
    """Zero the weights (``W_*``, ``U_*``) of ``gates`` of the float model's LSTM layer below
    method 2's threshold ``q · std`` (:func:`slimgen.sw.compress.lstm_gate_prune.gate_masks`),
    without its retraining."""
    from slimgen.sw.compress.lstm_gate_prune import gate_keys, gate_masks
    arrays = {k: model.layers[k[0]].params[k[1]] for k in gate_keys(model, gates)}
    for k, m in gate_masks(arrays, q=q).items():
        arrays[k][...] *= m


def balanced_mask(W, *, lanes, layout, density, order=None):
    """Method 5's exactly balanced mask (:func:`slimgen.sw.compress.balanced.balance_masks`)
    of the magnitudes of W (n_out, n_in): ``round(density · size)`` weights, the same number in
    every lane (rows: output rows ``o mod lanes``; banks: inputs by their position in
    ``order``)."""
    from slimgen.sw.compress.balanced import balance_masks
    from slimgen.sw.compress.magnitude import magnitude_masks
    from slimgen.sw.sparse_layout import lane_of
    key = (0, "W")
    scores = {key: np.abs(np.asarray(W, dtype=np.float64)).T}      # (n_in, n_out), as Dense
    banks = {key: lane_of(np.shape(W), lanes, "banks", order)[0]} if layout == "banks" else None
    return balance_masks(scores, magnitude_masks(scores, 1.0 - density), {key: "dense"}, lanes,
                         layout, input_banks=banks)[key].T


def magnitude_mask(W, *, nnz):
    """Method 4's magnitude mask (:func:`slimgen.sw.compress.magnitude.magnitude_masks`): the
    ``nnz`` largest magnitudes of W."""
    from slimgen.sw.compress.magnitude import magnitude_masks
    W = np.asarray(W, dtype=np.float64)
    return magnitude_masks({0: W}, 1.0 - nnz / W.size)[0]