"""The integer CNN golden model and post-training quantization of a float CNN into it.

An :class:`IntCNN` is what the CNN top of :mod:`slimgen.hw.cnn` computes, bit for bit::

    x (H, W, C) codes ─> conv 0 ─> … ─> conv L−1 ─> max-pool k ─> dense 0 ─> … ─> logits
                         (QuantConv: requant + ReLU)              (QuantDense; last one raw)

Layouts. The input of one sample arrives as ``n_inputs = H·W·C`` codes in raster order with
the channel fastest, ``(y, x, c)``: the digits' ``"vector"`` view for C = 1. Every layer keeps
that order; after the max-pool the feature map ``(Hp, Wp, C)`` is flattened in raster order,
so the first dense layer's input columns are those of the float model (whose
:class:`slimgen.sw.nn.Flatten` flattens ``(c, y, x)``) permuted by :func:`flatten_permutation`::

    W_hw[:, (y·Wp + x)·C + c] = W_float[:, c·Hp·Wp + y·Wp + x]

Max-pool in integers: ``p[c, i, j] = max_{u,v < k} a[c, k·i + u, k·j + v]`` over non-overlapping
windows (rows and columns that do not fill a window are dropped). Requantization is monotone,
so pooling the requantized activations is pooling the float ones up to rounding.

Quantization (as :func:`slimgen.sw.quant.quantize_mlp`, layer by layer): symmetric per-layer
weight scale ``s_w = max|W| / (2^(b−1) − 1)``; bias at the accumulator's scale
``round(b / (s_x · s_w))``; output scale ``s_y = peak / (2^act_bits − 1)`` with ``peak`` a
percentile of the float activations on the calibration images; ``M / 2^s ≈ s_x · s_w / s_y``
(:mod:`slimgen.sw.fixed`: one quantizer and one multiplier/shift rule for every layer).
Pruned weights (exactly 0) stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conv_golden import QuantConv, output_size, quantize_conv
from .fixed import multiplier_shift, quantize_symmetric, requantize
from .golden import accumulator_bits
from .quant import QuantConfig, QuantDense, check_calibration, check_finite_weights, check_scale
from .winograd import correlate_direct

__all__ = ["IntCNN", "quantize_cnn", "flatten_permutation", "maxpool_int", "conv_forward_batch",
           "random_int_cnn"]


def flatten_permutation(c, h, w):
    """``perm`` (c·h·w,) with ``hw_vector = float_vector[perm]``: the (c, y, x) flatten index
    of each (y, x, c) raster position."""
    y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")  # (h, w, c)
    return (ch * h * w + y * w + x).reshape(-1)


def maxpool_int(a, k):
    """``(n, C, H, W) → (n, C, H//k, W//k)``: the largest value of each k×k window."""
    n, c, h, w = a.shape
    oh, ow = h // k, w // k
    return a[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k).max(axis=(3, 5))


def conv_forward_batch(x, layer: QuantConv):
    """:func:`slimgen.sw.conv_golden.conv_forward_int` on a batch: x (n, Cin, H, W) int64 →
    (n, Cout, O, O) int64 (requantized, or the accumulators when the layer does not requantize)."""
    x = np.asarray(x, dtype=np.int64)
    acc = correlate_direct(x, layer.W.astype(np.int64), padding=layer.padding)
    acc = acc + layer.b[None, :, None, None]
    if not layer.requant:
        return acc
    return requantize(acc, layer.multiplier, layer.shift, relu=layer.relu,
                      out_bits=layer.out_bits)


@dataclass(frozen=True, eq=False)
class IntCNN:
    """An integer CNN: convolutions, one max-pool, dense layers.

    ``in_shape`` is ``(C, H, W)`` of the input image; ``pool`` the max-pool window (1: none).
    """
    convs: tuple
    pool: int
    dense: tuple
    in_shape: tuple
    input_scale: float
    input_bits: int
    config: QuantConfig = field(default_factory=QuantConfig)

    def __post_init__(self):
        object.__setattr__(self, "convs", tuple(self.convs))
        object.__setattr__(self, "dense", tuple(self.dense))
        object.__setattr__(self, "in_shape", tuple(int(v) for v in self.in_shape))
        if not self.convs or not all(isinstance(c, QuantConv) for c in self.convs):
            raise ValueError("An IntCNN needs one or more QuantConv layers")
        if not self.dense or not all(isinstance(d, QuantDense) for d in self.dense):
            raise ValueError("An IntCNN needs one or more QuantDense layers")
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ValueError(f"Pool must be a positive integer, not {self.pool!r}")
        if len(self.in_shape) != 3:
            raise ValueError(f"Input shape must be (C, H, W), not {self.in_shape}")
        c, h, w = self.in_shape
        bits = self.input_bits
        for i, conv in enumerate(self.convs):
            if conv.c_in != c:
                raise ValueError(f"Convolution {i} takes {conv.c_in} channels, its input has {c}")
            if conv.in_bits != bits:
                raise ValueError(f"Convolution {i} takes {conv.in_bits}-bit inputs, its input "
                                 f"is {bits} bits wide")
            if not (conv.requant and conv.relu):
                raise ValueError(f"Convolution {i} must requantize with ReLU")
            c, h, w = conv.c_out, output_size(h, conv.kernel, conv.padding), \
                output_size(w, conv.kernel, conv.padding)
            bits = conv.out_bits
        if h // self.pool < 1 or w // self.pool < 1:
            raise ValueError(f"Pool {self.pool} is larger than the {h}×{w} feature map")
        n = c * (h // self.pool) * (w // self.pool)
        for i, d in enumerate(self.dense):
            if d.n_in != n:
                raise ValueError(f"Dense layer {i} takes {d.n_in} inputs, not the {n} it gets")
            last = i == len(self.dense) - 1
            if last == d.requant:
                raise ValueError("Every dense layer but the last must requantize, and the last "
                                 "must give raw logits")
            n = d.n_out

    @property
    def layers(self):
        """Every weight layer in order: the convolutions, then the dense layers."""
        return self.convs + self.dense

    @property
    def feature_shapes(self):
        """``(C, H, W)`` of the input, after each convolution, and after the pool."""
        c, h, w = self.in_shape
        shapes = [(c, h, w)]
        for conv in self.convs:
            c, h, w = conv.c_out, output_size(h, conv.kernel, conv.padding), \
                output_size(w, conv.kernel, conv.padding)
            shapes.append((c, h, w))
        shapes.append((c, h // self.pool, w // self.pool))
        return shapes

    @property
    def n_inputs(self):
        c, h, w = self.in_shape
        return c * h * w

    @property
    def n_classes(self):
        return self.dense[-1].n_out

    @property
    def logit_bits(self):
        return self.dense[-1].acc_bits

    def features(self, x_q):
        """The pooled feature vectors (n, n_features) in (y, x, c) raster order."""
        x_q = np.asarray(x_q, dtype=np.int64)
        c, h, w = self.in_shape
        if x_q.ndim != 2 or x_q.shape[1] != self.n_inputs:
            raise ValueError(f"Inputs must have shape (n, {self.n_inputs}), not {x_q.shape}")
        a = x_q.reshape(len(x_q), h, w, c).transpose(0, 3, 1, 2)       # (n, C, H, W)
        for conv in self.convs:
            a = conv_forward_batch(a, conv)
        a = maxpool_int(a, self.pool)                                   # (n, C, Hp, Wp)
        return a.transpose(0, 2, 3, 1).reshape(len(a), -1)              # (n, Hp·Wp·C)

    def __call__(self, x_q):
        """Logits (n, n_classes) int64 of integer inputs x_q (n, n_inputs) in raster order."""
        a = self.features(x_q)
        for d in self.dense:
            acc = a @ d.W.T + d.b
            a = requantize(acc, d.multiplier, d.shift, relu=True, out_bits=d.out_bits) \
                if d.requant else acc
        return a


def _split_float_cnn(model):
    """``(convs, pool, dense)`` float layers of a Conv2d/ReLU…/MaxPool2d/Flatten/Dense… model."""
    kinds = [layer.kind for layer in model.layers]
    convs, dense, pool = [], [], 1
    i = 0
    while i < len(kinds) and kinds[i] == "conv2d":
        if i + 1 >= len(kinds) or kinds[i + 1] != "relu":
            raise ValueError(f"Convolution at position {i} must be followed by ReLU")
        if model.layers[i].stride != 1:
            raise ValueError(f"Convolution at position {i} has stride {model.layers[i].stride}; "
                             f"the hardware takes stride 1")
        convs.append(model.layers[i])
        i += 2
    if i < len(kinds) and kinds[i] == "maxpool2d":
        pool = model.layers[i].kernel
        i += 1
    if not convs or i >= len(kinds) or kinds[i] != "flatten":
        raise ValueError(f"Expected conv2d, relu, … [maxpool2d], flatten, dense, …; got {kinds}")
    i += 1
    while i < len(kinds):
        if kinds[i] != "dense":
            raise ValueError(f"Expected a dense layer at position {i}, got {kinds[i]!r}")
        dense.append(model.layers[i])
        relu = i + 1 < len(kinds) and kinds[i + 1] == "relu"
        i += 2 if relu else 1
        if not relu and i < len(kinds):
            raise ValueError("Hidden dense layers must be followed by ReLU")
    if not dense:
        raise ValueError("The model has no dense classifier after the flatten")
    return convs, pool, dense


def quantize_cnn(model, x_calib, input_scale, config=QuantConfig(), layer_weight_bits=None):
    """Quantize a trained float CNN (:func:`slimgen.sw.nn.cnn_spec` form) into an :class:`IntCNN`.

    ``x_calib`` (n, C, H, W) float: calibration images (the training split). ``layer_weight_bits``:
    one width per weight layer (convolutions, then dense layers), default
    ``config.weight_bits``.
    """
    convs, pool, dense = _split_float_cnn(model)
    position = {id(layer): i for i, layer in enumerate(model.layers)}
    for what, layers in (("convolution", convs), ("dense layer", dense)):
        for j, layer in enumerate(layers):
            check_finite_weights(f"{what} {j} (model layer {position[id(layer)]})",
                                 **layer.params)
    input_scale = check_scale("input_scale", input_scale)
    n_layers = len(convs) + len(dense)
    if layer_weight_bits is None:
        layer_weight_bits = [config.weight_bits] * n_layers
    layer_weight_bits = [int(b) for b in layer_weight_bits]
    if len(layer_weight_bits) != n_layers or not all(2 <= b <= 16 for b in layer_weight_bits):
        raise ValueError(f"layer_weight_bits must give one width from 2 to 16 for each of the "
                         f"{n_layers} weight layers, not {layer_weight_bits}")
    a = np.asarray(x_calib, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"Calibration images must have shape (n, C, H, W), not {a.shape}")
    check_calibration(a)
    amax = (1 << config.act_bits) - 1
    s_x, in_bits = float(input_scale), config.act_bits
    qconvs = []
    for conv, wb in zip(convs, layer_weight_bits):
        a = np.maximum(conv.forward(a), 0.0)                       # (n, Cout, O, O) float
        peak = float(np.percentile(a, config.calibration_percentile)) or 1.0
        s_y = peak / amax
        qconvs.append(quantize_conv(conv.params["W"], conv.params["b"], in_scale=s_x,
                                    out_scale=s_y, weight_bits=wb, in_bits=in_bits,
                                    out_bits=config.act_bits, padding=conv.padding,
                                    multiplier_bits=config.multiplier_bits))
        s_x, in_bits = s_y, config.act_bits
    c, h, w = a.shape[1:]
    hp, wp = h // pool, w // pool
    a = a[:, :, :hp * pool, :wp * pool].reshape(len(a), c, hp, pool, wp, pool).max(axis=(3, 5))
    a = a.reshape(len(a), -1)                                       # (n, C·Hp·Wp) float order
    perm = flatten_permutation(c, hp, wp)
    qdense = []
    for j, (layer, wb) in enumerate(zip(dense, layer_weight_bits[len(convs):])):
        W, b = layer.params["W"], layer.params["b"]                 # (n_in, n_out), (n_out,)
        Wq, s_w = quantize_symmetric(W, wb)
        Wq = Wq.T                                                   # (n_out, n_in)
        if j == 0:
            Wq = Wq[:, perm]
        bq = np.rint(b / (s_x * s_w)).astype(np.int64)
        acc_bits = accumulator_bits(Wq, bq, (1 << in_bits) - 1)
        a = np.maximum(a @ W + b, 0.0)
        if j == len(dense) - 1:
            qdense.append(QuantDense(Wq, bq, 1, 1, False, False, in_bits, acc_bits, wb,
                                     acc_bits, s_x, s_w, s_x * s_w))
            break
        peak = float(np.percentile(a, config.calibration_percentile)) or 1.0
        s_y = peak / amax
        M, shift = multiplier_shift(s_x * s_w / s_y, config.multiplier_bits)
        qdense.append(QuantDense(Wq, bq, M, shift, True, True, in_bits, config.act_bits, wb,
                                 acc_bits, s_x, s_w, s_y))
        s_x, in_bits = s_y, config.act_bits
    return IntCNN(tuple(qconvs), pool, tuple(qdense), tuple(x_calib.shape[1:]), float(input_scale),
                  config.act_bits, config)


def random_int_cnn(rng, in_shape=(1, 6, 6), channels=(2, 3), pool=2, n_classes=3, *,
                   weight_bits=6, act_bits=8, density=1.0, conv_bias=True):
    """A small random :class:`IntCNN` for hardware tests (outputs cover zero to saturation).

    ``conv_bias=False``: convolutions without bias, so that most activations of every layer
    lie between zero and saturation.
    """
    from .conv_golden import random_conv_layer
    from .quant import random_dense_layer
    c, h, w = in_shape
    convs = []
    for k in channels:
        convs.append(random_conv_layer(rng, c, k, weight_bits=weight_bits, in_bits=act_bits,
                                       out_bits=act_bits, bias=conv_bias))
        c = k
    d = random_dense_layer(rng, c * (h // pool) * (w // pool), n_classes,
                           weight_bits=weight_bits, in_bits=act_bits, requant=False,
                           density=density)
    return IntCNN(tuple(convs), pool, (d,), in_shape, 1.0, act_bits,
                  QuantConfig(weight_bits=weight_bits, act_bits=act_bits))
