"""Post-training quantization of a trained float MLP into the integer model of
:mod:`slimgen.sw.golden`.

For layer l with float weights W (n_in, n_out) and bias b:

- weight scale ``s_w = max|W| / (2^(weight_bits−1) − 1)``, ``W_q = round(W / s_w)`` (symmetric,
  :func:`slimgen.sw.fixed.quantize_symmetric`);
- input scale ``s_x`` (the network input: ``1 / pixel_max``, so digits stay their raw 0..16);
- output scale ``s_y = max over the calibration set of the float activation / (2^act_bits − 1)``;
- bias ``b_q = round(b / (s_x · s_w))`` at the accumulator's scale;
- requantization ratio ``r = s_x · s_w / s_y ≈ M / 2^shift`` with M an unsigned integer in
  ``[2^(multiplier_bits−2), 2^(multiplier_bits−1)]`` (:func:`slimgen.sw.fixed.multiplier_shift`).

The last layer is not requantized: its accumulators are the logits (scale ``s_x · s_w``).

A non-finite weight, calibration input or scale is refused (:func:`check_finite_weights`,
:func:`check_scale`): it would round to −2^63 and reach the hardware.
"""

from dataclasses import dataclass, asdict, field

import numpy as np

from .fixed import multiplier_shift, quantize_symmetric, symmetric_max
from .golden import accumulator_bits, forward_int
from .nn.layers import Dense, ReLU

__all__ = ["QuantConfig", "QuantDense", "QuantizedModel", "quantize_mlp", "quantize_inputs",
           "random_dense_layer", "check_finite_weights", "check_scale",
           "first_index"]


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize; validated where built."""
    weight_bits: int = 8
    act_bits: int = 8
    multiplier_bits: int = 16
    calibration_percentile: float = 100.0  # of the activations, for the output scale

    def __post_init__(self):
        if not isinstance(self.weight_bits, int) or not 2 <= self.weight_bits <= 16:
            raise ValueError(f"weight_bits must be an integer from 2 to 16, not {self.weight_bits!r}")
        if not isinstance(self.act_bits, int) or not 2 <= self.act_bits <= 16:
            raise ValueError(f"act_bits must be an integer from 2 to 16, not {self.act_bits!r}")
        if not isinstance(self.multiplier_bits, int) or not 4 <= self.multiplier_bits <= 24:
            raise ValueError(f"multiplier_bits must be an integer from 4 to 24, "
                             f"not {self.multiplier_bits!r}")
        if not 50.0 <= self.calibration_percentile <= 100.0:
            raise ValueError(f"calibration_percentile must be in [50, 100], "
                             f"not {self.calibration_percentile!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


@dataclass(frozen=True, eq=False)
class QuantDense:
    """One integer dense layer. W (n_out, n_in) int64, b (n_out,) int64."""
    W: np.ndarray
    b: np.ndarray
    multiplier: int
    shift: int
    relu: bool
    requant: bool
    in_bits: int
    out_bits: int        # activation bits out (requant), or the accumulator width (last layer)
    weight_bits: int
    acc_bits: int
    in_scale: float
    w_scale: float
    out_scale: float

    @property
    def n_in(self):
        return self.W.shape[1]

    @property
    def n_out(self):
        return self.W.shape[0]

    def meta(self):
        """Everything but the arrays, as JSON-able plain values."""
        return {k: v for k, v in asdict(self).items() if k not in ("W", "b")}


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """An integer MLP: the layers and how float inputs map to integer codes.

    ``input_order``: where the first layer's inputs sit in the input banks of a sparse MAC
    array (:mod:`slimgen.sw.sparse_layout`, ``order[position] = input``), as balanced sparsity
    chose it; None for the natural order. It changes no number the model computes.
    """
    layers: tuple
    input_scale: float      # real value of one input code
    input_bits: int
    config: QuantConfig = field(default_factory=QuantConfig)
    input_order: tuple = None

    def __post_init__(self):
        if self.input_order is not None:
            from .sparse_layout import check_order
            object.__setattr__(self, "input_order",
                               check_order(self.input_order, self.layers[0].n_in))

    @property
    def n_inputs(self):
        return self.layers[0].n_in

    @property
    def n_classes(self):
        return self.layers[-1].n_out

    @property
    def logit_bits(self):
        return self.layers[-1].acc_bits

    def __call__(self, x_q):
        return forward_int(self, x_q)


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


def check_calibration(x):
    """``ValueError`` when the calibration inputs hold a value that is not finite."""
    bad = ~np.isfinite(x)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"Cannot quantize: the calibration inputs hold {x[i]} at index {i}; "
                         f"they must be finite numbers")


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


def quantize_mlp(model, x_calib, *, input_scale, config=QuantConfig(), layer_weight_bits=None):
    """Quantize a trained MLP (Dense/ReLU layers) into a :class:`QuantizedModel`.

    ``x_calib`` (n, n_in) float: calibration inputs (the training split) for the output scales.
    ``layer_weight_bits``: one weight bit width per Dense layer (for example chosen by joint
    pruning and quantization); default ``config.weight_bits`` for all. Weights that are exactly
    zero (pruned) stay zero.
    """
    dense, relu_after = [], []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            dense.append(layer)
            relu_after.append(i + 1 < len(model.layers) and isinstance(model.layers[i + 1], ReLU))
        elif not isinstance(layer, ReLU):
            raise ValueError(f"Post-training quantization handles Dense and ReLU layers only, "
                             f"found {layer!r} at position {i}")
    if not dense:
        raise ValueError("The model has no Dense layer to quantize")
    for j, r in enumerate(relu_after[:-1]):
        if not r:
            raise ValueError(f"Dense layer {j} is not followed by ReLU; hidden layers must be")
    if relu_after[-1]:
        raise ValueError("The last Dense layer must give logits, without a ReLU after it")
    positions = [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
    for j, (i, layer) in enumerate(zip(positions, dense)):
        check_finite_weights(f"dense layer {j} (model layer {i})", **layer.params)
    input_scale = check_scale("input_scale", input_scale)

    if layer_weight_bits is None:
        layer_weight_bits = [config.weight_bits] * len(dense)
    layer_weight_bits = [int(b) for b in layer_weight_bits]
    if len(layer_weight_bits) != len(dense) or not all(2 <= b <= 16 for b in layer_weight_bits):
        raise ValueError(f"layer_weight_bits must give one width from 2 to 16 for each of the "
                         f"{len(dense)} Dense layers, not {layer_weight_bits}")
    amax = (1 << config.act_bits) - 1
    input_bits = config.act_bits
    s_x, in_bits, a = input_scale, input_bits, np.asarray(x_calib, dtype=np.float64)
    check_calibration(a)
    layers = []
    for j, (layer, weight_bits) in enumerate(zip(dense, layer_weight_bits)):
        W, b = layer.params["W"], layer.params["b"]
        W_q, s_w = quantize_symmetric(W, weight_bits)
        W_q = W_q.T                                                   # (n_out, n_in)
        b_q = np.rint(b / (s_x * s_w)).astype(np.int64)
        acc_bits = accumulator_bits(W_q, b_q, (1 << in_bits) - 1)
        a = np.maximum(a @ W + b, 0.0)  # float activations for calibration
        last = j == len(dense) - 1
        if last:
            layers.append(QuantDense(W_q, b_q, 1, 1, False, False, in_bits, acc_bits,
                                     weight_bits, acc_bits, s_x, s_w, s_x * s_w))
            break
        peak = float(np.percentile(a, config.calibration_percentile)) or 1.0
        s_y = peak / amax
        M, shift = multiplier_shift(s_x * s_w / s_y, config.multiplier_bits)
        layers.append(QuantDense(W_q, b_q, M, shift, True, True, in_bits, config.act_bits,
                                 weight_bits, acc_bits, s_x, s_w, s_y))
        s_x, in_bits = s_y, config.act_bits
    return QuantizedModel(tuple(layers), input_scale, input_bits, config)


def random_dense_layer(rng, n_in, n_out, *, weight_bits=8, in_bits=8, out_bits=8, requant=True,
                       density=1.0, extreme=None):
    """A random integer dense layer, for tests and benchmarks of the hardware.

    ``density``: fraction of non-zero weights. ``extreme``: ``"max"`` (every weight the largest
    positive value) or ``"min"`` (the most negative symmetric value) to exercise bit growth.
    The requantization multiplier and shift map the accumulator range onto the outputs.
    """
    qmax = symmetric_max(weight_bits)
    if extreme == "max":
        W = np.full((n_out, n_in), qmax, dtype=np.int64)
    elif extreme == "min":
        W = np.full((n_out, n_in), -qmax, dtype=np.int64)
    elif extreme is None:
        W = rng.integers(-qmax, qmax + 1, (n_out, n_in))
        W = W * (rng.random((n_out, n_in)) < density)
    else:
        raise ValueError(f"extreme must be None, 'max' or 'min', not {extreme!r}")
    b = rng.integers(-(1 << (in_bits + weight_bits)), 1 << (in_bits + weight_bits), n_out)
    acc_bits = accumulator_bits(W, b, (1 << in_bits) - 1)
    if not requant:
        return QuantDense(W, b, 1, 1, False, False, in_bits, acc_bits, weight_bits, acc_bits,
                          1.0, 1.0, 1.0)
    # Map about a quarter of the accumulator range onto the output range, so that outputs
    # cover zero, the middle and saturation.
    ratio = ((1 << out_bits) - 1) / (1 << max(acc_bits - 3, 1))
    M, shift = multiplier_shift(ratio, 16)
    return QuantDense(W, b, M, shift, True, True, in_bits, out_bits, weight_bits, acc_bits,
                      1.0, 1.0, 1.0 / ratio)
