"""Every array and manifest field of an integer CNN artifact is checked when loaded (issue 21)."""

import numpy as np
import pytest

from slimgen.sw.cnn_artifact import load_int_cnn, save_int_cnn
from slimgen.sw.cnn_quant import random_int_cnn

from test_artifact_checks import refused, rewrite, setitem


@pytest.fixture
def path(tmp_path):
    model = random_int_cnn(np.random.default_rng(0), (1, 6, 6), (2, 3), pool=2, n_classes=3)
    path = tmp_path / "model.npz"
    save_int_cnn(path, model, dataset="digits", split_seed=0)
    return path


def _conv(i, key, value):
    return lambda m, a: setitem(m["convs"][i], key, value)


CASES = [
    (lambda m, a: setitem(m, "input_bits", 0),
     "manifest field 'input_bits' is 0; it must be an integer from 1 to 16"),
    (lambda m, a: setitem(m, "input_scale", float("inf")),
     "manifest field 'input_scale' is inf; it must be a positive finite number"),
    (lambda m, a: setitem(m, "pool", 0),
     "manifest field 'pool' is 0; it must be an integer from 1 to 4096"),
    (lambda m, a: setitem(m, "in_shape", [1, 0, 6]),
     "manifest field 'in_shape[1]' is 0; it must be an integer from 1 to 4096"),
    (lambda m, a: setitem(m, "in_shape", [1, 6]),
     "manifest field 'in_shape' is [1, 6]; it must be a list [channels, height, width]"),
    (lambda m, a: setitem(m, "convs", []),
     "manifest field 'convs' is []; it must be a list of one or more layers"),
    (_conv(0, "weight_bits", 0),
     "manifest field 'convs[0].weight_bits' is 0; it must be an integer from 2 to 16"),
    (_conv(1, "in_bits", 4),
     "manifest field 'convs[1].in_bits' is 4; it must be 8, the width of its input "
     "(convs[0].out_bits)"),
    (_conv(0, "out_bits", 17),
     "manifest field 'convs[0].out_bits' is 17; it must be an integer from 1 to 16"),
    (_conv(0, "shift", 0),
     "manifest field 'convs[0].shift' is 0; it must be an integer from 1 to 62"),
    (_conv(1, "multiplier", -3),
     "manifest field 'convs[1].multiplier' is -3; it must be an integer from 1 to 65535"),
    (_conv(0, "padding", -1),
     "manifest field 'convs[0].padding' is -1; it must be an integer from 0 to 2"),
    (_conv(0, "requant", 1),
     "manifest field 'convs[0].requant' is 1; it must be true or false"),
    (lambda m, a: setitem(m["dense"][0], "in_bits", 7),
     "manifest field 'dense[0].in_bits' is 7; it must be 8, the width of its input "
     "(convs[1].out_bits)"),
    (lambda m, a: setitem(m["dense"][0], "out_scale", 0.0),
     "manifest field 'dense[0].out_scale' is 0.0; it must be a positive finite number"),
    (lambda m, a: a["conv0.W"].__setitem__((1, 0, 2, 2), 1 << 40),
     "array 'conv0.W' holds 1099511627776 at index (1, 0, 2, 2), outside [-31, 31], the range "
     "of 6-bit weights (convs[0].weight_bits)"),
    (lambda m, a: a["conv1.b"].__setitem__(2, 1 << 50),
     "array 'conv1.b' holds 1125899906842624 at index 2, outside [-549755813888, 549755813887], "
     "the range of 40-bit accumulators (the widest slimgen builds)"),
    (lambda m, a: a["dense0.W"].__setitem__((0, 5), 32),
     "array 'dense0.W' holds 32 at index (0, 5), outside [-31, 31], the range of 6-bit weights "
     "(dense[0].weight_bits)"),
    (lambda m, a: setitem(a, "conv0.W", a["conv0.W"][0]),
     "array 'conv0.W' has shape [1, 3, 3]; it must be (out channels, in channels, kernel, "
     "kernel)"),
    (lambda m, a: setitem(a, "conv0.b", a["conv0.b"][:1]),
     "array 'conv0.b' has shape [1]; it must be [2], one bias per filter of conv0.W"),
]


@pytest.mark.parametrize("change,message", CASES)
def test_int_cnn_fields_and_arrays(tmp_path, path, change, message):
    bad = rewrite(path, tmp_path / "bad.npz", "int-cnn", change)
    refused(load_int_cnn, bad, message, "quantize")


def test_conv_accumulator_wider_than_the_golden_model_holds(tmp_path, path):
    def change(m, a):
        a["conv0.b"][0] = (1 << 39) - 1       # fits 40 bits, but the sums with it do not
    bad = rewrite(path, tmp_path / "bad.npz", "int-cnn", change)
    refused(load_int_cnn, bad, "convolution 0 needs 41-bit accumulators for its weights and "
                               "biases; slimgen builds at most 40", "quantize")


def test_inf_in_an_int_artifact_is_refused_as_a_float_array(tmp_path, path):
    bad = rewrite(path, tmp_path / "bad.npz", "int-cnn",
                  lambda m, a: setitem(a, "dense0.b", np.full(3, np.inf)))
    refused(load_int_cnn, bad, "array 'dense0.b' holds inf at index 0; every value must be a "
                               "finite number", "quantize")
