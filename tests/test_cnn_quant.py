"""The integer CNN golden model: layouts, batched convolution, quantization error, accuracy."""

import numpy as np
import pytest

from slimgen.sw.cnn_quant import (IntCNN, conv_forward_batch, flatten_permutation, maxpool_int,
                                  quantize_cnn, random_int_cnn)
from slimgen.sw.conv_golden import conv_forward_int, random_conv_layer
from slimgen.sw.data import load_dataset
from slimgen.sw.golden import argmax_first
from slimgen.sw.nn import MaxPool2d, TrainConfig, build_model, cnn_spec, evaluate, train
from slimgen.sw.quant import QuantConfig, quantize_inputs


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("digits", view="image", seed=0)
    model = build_model(cnn_spec(channels=(4, 8)), np.random.default_rng(0))
    train(model, data, TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=0), progress=False)
    return model, data


def test_flatten_permutation():
    a = np.random.default_rng(0).integers(0, 99, (2, 3, 4, 5))          # (n, C, H, W)
    float_flat = a.reshape(2, -1)                                      # (c, y, x)
    hw_flat = a.transpose(0, 2, 3, 1).reshape(2, -1)                   # (y, x, c)
    np.testing.assert_array_equal(float_flat[:, flatten_permutation(3, 4, 5)], hw_flat)


def test_maxpool_matches_float_layer():
    a = np.random.default_rng(1).integers(0, 256, (2, 3, 5, 7))
    np.testing.assert_array_equal(maxpool_int(a, 2), MaxPool2d(2).forward(a.astype(float)))


def test_batched_conv_matches_conv_golden():
    rng = np.random.default_rng(2)
    layer = random_conv_layer(rng, 3, 4, weight_bits=6)
    x = rng.integers(0, 256, (3, 3, 6, 6))
    want = np.stack([conv_forward_int(xi, layer) for xi in x])
    np.testing.assert_array_equal(conv_forward_batch(x, layer), want)


def test_golden_close_to_float_and_accurate(trained):
    model, data = trained
    int_model = quantize_cnn(model, data.part("train")[0], 1.0 / data.pixel_max, QuantConfig())
    x, y = data.part("test")
    x_q = quantize_inputs(x.reshape(len(x), -1), int_model.input_scale, int_model.input_bits)
    logits = int_model(x_q) * int_model.dense[-1].out_scale              # back to float units
    ref = model.forward(x)
    err = np.abs(logits - ref).max()
    assert err < 0.05 * np.abs(ref).max(), err
    acc_int = float(np.mean(argmax_first(int_model(x_q)) == y))
    assert acc_int >= evaluate(model, x, y) - 0.01
    assert int_model.n_inputs == 64 and int_model.n_classes == 10
    assert [s for s in int_model.feature_shapes] == [(1, 8, 8), (4, 8, 8), (8, 8, 8), (8, 4, 4)]


def test_dense_columns_in_raster_order(trained):
    """The golden model's first dense layer sees (y, x, c) features: its columns are the float
    model's columns permuted, not re-quantized differently."""
    model, data = trained
    int_model = quantize_cnn(model, data.part("train")[0], 1.0 / data.pixel_max, QuantConfig())
    d = int_model.dense[0]
    Wf = model.layers[-1].params["W"].T                                  # (10, 128), (c, y, x)
    Wq = np.rint(Wf / d.w_scale).astype(np.int64)
    np.testing.assert_array_equal(d.W, Wq[:, flatten_permutation(8, 4, 4)])


def test_layer_weight_bits(trained):
    model, data = trained
    int_model = quantize_cnn(model, data.part("train")[0][:50], 1 / 16, QuantConfig(),
                             layer_weight_bits=[6, 5, 4])
    assert [layer.weight_bits for layer in int_model.layers] == [6, 5, 4]
    with pytest.raises(ValueError, match="one width from 2 to 16 for each of the 3 weight layers, "
                                         r"not \[8\]"):
        quantize_cnn(model, data.part("train")[0][:50], 1 / 16, layer_weight_bits=[8])


def test_rejects_other_models():
    from slimgen.sw.nn import mlp_spec
    mlp = build_model(mlp_spec((64, 10)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="Expected conv2d, relu"):
        quantize_cnn(mlp, np.zeros((2, 1, 8, 8)), 1 / 16)


def test_intcnn_checks():
    m = random_int_cnn(np.random.default_rng(0), (1, 6, 6), (2,), pool=2, n_classes=3)
    with pytest.raises(ValueError, match="Convolution 0 takes 1 channels, its input has 2"):
        IntCNN(m.convs, 2, m.dense, (2, 6, 6), 1.0, 8)
    with pytest.raises(ValueError, match="Dense layer 0 takes 18 inputs, not the 72 it gets"):
        IntCNN(m.convs, 1, m.dense, (1, 6, 6), 1.0, 8)
    with pytest.raises(ValueError, match=r"Inputs must have shape \(n, 36\), not \(2, 5\)"):
        m(np.zeros((2, 5), dtype=np.int64))
