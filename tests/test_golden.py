"""The integer golden model: exact accumulator widths, argmax, quantization of an MLP."""

import numpy as np
import pytest

from slimgen.sw.data import load_digits
from slimgen.sw.fixed import signed_bits
from slimgen.sw.golden import argmax_first, dense_accumulate
from slimgen.sw.integer_model import range_acc_bits
from slimgen.sw.network import preset
from slimgen.sw.nn import TrainConfig, build_model, evaluate, mlp_spec, train
from slimgen.sw.quantize import quantize_inputs, quantize_network


def accumulator_bits(W, b, in_max):
    return range_acc_bits(W, b, 0, in_max)


def test_accumulator_bits_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(20):
        W = rng.integers(-127, 128, (5, 9))
        b = rng.integers(-5000, 5000, 5)
        bits = accumulator_bits(W, b, 255)
        # Inputs at 0 or 255 chosen per weight sign reach both ends of each neuron's range.
        hi = dense_accumulate(np.where(W > 0, 255, 0), W, b).diagonal()
        lo = dense_accumulate(np.where(W < 0, 255, 0), W, b).diagonal()
        assert signed_bits(min(lo.min(), 0), max(hi.max(), 0)) == bits
        assert -(1 << (bits - 1)) <= lo.min() and hi.max() <= (1 << (bits - 1)) - 1
        # signed inputs in [-128, 127]: the extremes per weight sign
        signed = range_acc_bits(W, b, -128, 127)
        hi = dense_accumulate(np.where(W > 0, 127, -128), W, b).diagonal()
        lo = dense_accumulate(np.where(W < 0, 127, -128), W, b).diagonal()
        assert signed_bits(min(lo.min(), 0), max(hi.max(), 0)) == signed


def test_argmax_ties_lowest_index():
    assert argmax_first(np.array([[1, 5, 5], [-2, -2, -3]])).tolist() == [1, 0]


@pytest.fixture(scope="module")
def trained_mlp():
    data = load_digits(seed=0)
    model = build_model(mlp_spec((64, 32, 10)), np.random.default_rng(0))
    train(model, data, TrainConfig(seed=0), progress=False)
    return model, data


def test_quantized_mlp_within_one_point_of_float(trained_mlp):
    model, data = trained_mlp
    x, y = data.part("test")
    float_acc = evaluate(model, x, y)
    assert float_acc >= 0.96
    q = quantize_network(preset("mlp"), model, data.part("train")[0], input_scale=1 / 16)
    x_q = quantize_inputs(x, q.input_scale, q.input_bits)
    assert np.array_equal(x_q, np.rint(x * 16))  # digits keep their raw pixel codes
    int_acc = np.mean(argmax_first(q(x_q)) == y)
    assert abs(int_acc - float_acc) <= 0.01
    for layer in q.layers:
        assert np.abs(layer.W).max() == 127
        assert layer.acc_bits == accumulator_bits(layer.W, layer.b, (1 << layer.in_bits) - 1)
    hidden = q.layers[0]
    assert 2 ** 14 <= hidden.multiplier <= 2 ** 15 and hidden.relu and hidden.requant
    assert not q.layers[-1].requant
    # The integer logits track the float logits: same scale, small error.
    float_logits = model.forward(x)
    int_logits = q(x_q) * q.layers[-1].out_scale
    assert np.abs(float_logits - int_logits).mean() < 0.05 * np.abs(float_logits).mean()
