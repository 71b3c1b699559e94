"""The one quantizer (sw/quantize.py) and the golden model it feeds (sw/golden.py): layouts,
folding, per-layer and per-channel scales, pooling, recurrent cells, accuracy, errors."""

import numpy as np
import pytest

from slimgen.sw import golden
from slimgen.sw.data import load_dataset
from slimgen.sw.golden import argmax_first, sigmoid_table, tanh_table
from slimgen.sw.integer_model import RecurrentFormat
from slimgen.sw.network import check_network, preset, to_float_input
from slimgen.sw.nn import TrainConfig, build_model, evaluate, train
from slimgen.sw.nn.gru import gru_loop
from slimgen.sw.nn.lstm import lstm_loop
from slimgen.sw.quantize import (QuantConfig, flatten_permutation, quantize_inputs,
                                 quantize_network)


def _model(net, seed=0):
    return build_model(net.float_spec()[0], np.random.default_rng(seed))


def _trained(net, epochs=4, seed=0):
    data = load_dataset("digits", view="vector", seed=seed)
    from dataclasses import replace
    fdata = replace(data, x=to_float_input(net, data.x))
    model = _model(net, seed)
    train(model, fdata, TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, seed=seed),
          progress=False)
    return model, data, fdata


def _accuracies(net, model, data, fdata, **kw):
    q = quantize_network(net, model, data.part("train")[0], input_scale=1 / 16, **kw)
    x, y = data.part("test")
    acc_int = float(np.mean(argmax_first(q(quantize_inputs(x, 1 / 16, q.input_bits))) == y))
    return q, evaluate(model, *fdata.part("test")), acc_int


@pytest.fixture(scope="module")
def cnn():
    net = preset("cnn")
    return (net, *_trained(net))


def test_flatten_permutation():
    a = np.random.default_rng(0).integers(0, 99, (2, 3, 4, 5))          # (n, C, H, W)
    float_flat = a.reshape(2, -1)                                      # (c, y, x)
    hw_flat = a.transpose(0, 2, 3, 1).reshape(2, -1)                   # (y, x, c)
    np.testing.assert_array_equal(float_flat[:, flatten_permutation((4, 5, 3))], hw_flat)
    s = np.random.default_rng(1).integers(0, 99, (2, 3, 7))            # (n, C, L)
    np.testing.assert_array_equal(s.reshape(2, -1)[:, flatten_permutation((7, 3))],
                                  s.transpose(0, 2, 1).reshape(2, -1))


def test_cnn_golden_close_to_float_and_accurate(cnn):
    net, model, data, fdata = cnn
    q, acc_float, acc_int = _accuracies(net, model, data, fdata)
    assert acc_int >= acc_float - 0.01
    x = data.part("test")[0]
    logits = q(quantize_inputs(x, 1 / 16, 8)) * q.layers[-1].out_scale
    ref = model.forward(to_float_input(net, x))
    assert np.abs(logits - ref).max() < 0.05 * np.abs(ref).max()
    assert [r.kind for r in q.layers] == ["conv", "conv", "pool", "flatten", "dense"]
    assert [r.relu for r in q.of_kind("conv")] == [True, True]


def test_dense_columns_in_raster_order(cnn):
    """After a flatten of channels-first float activations the first dense layer's columns are
    the float model's permuted to (y, x, c), not re-quantized differently."""
    net, model, data, _ = cnn
    q = quantize_network(net, model, data.part("train")[0], input_scale=1 / 16)
    d = q.of_kind("dense")[0]
    Wf = model.layers[-1].params["W"].T                                  # (10, 128), (c, y, x)
    Wq = np.rint(Wf / d.w_scale).astype(np.int64)
    np.testing.assert_array_equal(d.W, Wq[:, flatten_permutation((4, 4, 8))])


def test_layer_weight_bits_and_per_channel(cnn):
    net, model, data, fdata = cnn
    x = data.part("train")[0][:50]
    q = quantize_network(net, model, x, input_scale=1 / 16, layer_weight_bits=[6, 5, 4])
    assert [r.weight_bits for r in q.of_kind("conv", "dense")] == [6, 5, 4]
    with pytest.raises(ValueError, match=r"one width from 2 to 16 for each of the 3 weight "
                                         r"layers, not \[8\]"):
        quantize_network(net, model, x, input_scale=1 / 16, layer_weight_bits=[8])
    q, acc_float, acc_int = _accuracies(net, model, data, fdata,
                                        config=QuantConfig(per_channel=True, weight_bits=4))
    conv = q.of_kind("conv")[0]
    assert np.ndim(conv.multiplier) == 1 and len(set(conv.multiplier.tolist())) > 1
    for o in range(conv.c_out):                  # every channel uses its whole weight range
        assert np.abs(conv.W[o]).max() in (0, 7)
    assert np.ndim(q.layers[-1].multiplier) == 0     # the logits keep one scale
    assert acc_int >= acc_float - 0.05


def _net(layers, shape):
    return check_network([{"type": "input", "shape": shape}] + layers)


def test_batchnorm_folds_and_pools_track_float():
    """conv → batchnorm → relu → avgpool, 1-D conv with stride 2, global average pool: the
    integer model's logits follow the float model's (trained briefly, batchnorm statistics
    from training)."""
    net = _net([{"type": "conv2d", "channels": 6, "kernel": 3}, {"type": "batchnorm"},
                {"type": "relu"}, {"type": "avgpool", "size": 2},
                {"type": "conv2d", "channels": 8, "kernel": 3, "stride": 2, "bias": False},
                {"type": "relu"}, {"type": "dropout", "rate": 0.1},
                {"type": "global_avgpool"}, {"type": "dense", "units": 10}], [8, 8, 1])
    model, data, fdata = _trained(net, epochs=6)
    q, acc_float, acc_int = _accuracies(net, model, data, fdata)
    assert [r.kind for r in q.layers] == ["conv", "pool", "conv", "pool", "dense"]
    assert q.layers[1].op == "avg" and q.layers[3].global_
    assert acc_int >= acc_float - 0.02, (acc_float, acc_int)


def test_conv1d_on_sequences_tracks_float():
    net = _net([{"type": "conv1d", "channels": 8, "kernel": 3, "stride": 2},
                {"type": "relu"}, {"type": "maxpool", "size": 2, "stride": 1},
                {"type": "flatten"}, {"type": "dense", "units": 10}], [8, 8])
    model, data, fdata = _trained(net, epochs=6)
    q, acc_float, acc_int = _accuracies(net, model, data, fdata)
    assert acc_int >= acc_float - 0.02, (acc_float, acc_int)


def test_signed_outputs_and_a_relu_after_a_pool():
    """A dense layer without ReLU gives signed activations; a ReLU after a max pool of signed
    values stays a layer of its own."""
    net = _net([{"type": "conv1d", "channels": 4, "kernel": 3}, {"type": "maxpool", "size": 2},
                {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 16},
                {"type": "dense", "units": 10}], [8, 8])
    model = _model(net)
    x = np.random.default_rng(0).random((40, 64))
    q = quantize_network(net, model, x, input_scale=1 / 16)
    assert [r.kind for r in q.layers] == ["conv", "pool", "relu", "flatten", "dense", "dense"]
    assert q.layers[0].out_signed and q.layers[1].signed
    assert q.layers[4].out_signed and q.layers[5].in_signed
    trace = q.trace(quantize_inputs(x, 1 / 16, 8))
    assert trace[0].min() < 0 and trace[2].min() >= 0 and trace[4].min() < 0


def test_tables():
    fmt = RecurrentFormat()
    S, T = sigmoid_table(fmt), tanh_table(fmt)
    assert S.shape == T.shape == (256,)
    assert S[128] == 128 and T[128] == 0                # σ(0) = ½, tanh(0) = 0, at 2^8
    assert S[0] == 0 and S[-1] == 256 and T[0] == -256 and T[-1] == 256   # ±8 and ±4
    assert np.all(np.diff(S) >= 0) and np.all(np.diff(T) >= 0)
    np.testing.assert_array_equal(T[1:], -T[1:][::-1])   # odd around index 128


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_cells_track_the_float_cell(cell):
    rng = np.random.default_rng(0)
    net = _net([{"type": cell, "hidden": 12, "sequences": True}, {"type": "flatten"},
                {"type": "dense", "units": 10}], [8, 8])
    model = _model(net)
    p = model.layers[0].params
    for name in p:
        if name.startswith("b"):
            p[name][...] = rng.normal(0, 0.5, p[name].shape)
    x = rng.integers(0, 17, (50, 64))
    q = quantize_network(net, model, x / 16, input_scale=1 / 16)
    rec = q.layers[0]
    assert rec.cell == cell and rec.sequences
    h_int = golden.recurrent(x.reshape(50, 8, 8), rec) / 2 ** rec.fmt.h_frac
    ref = (lstm_loop if cell == "lstm" else gru_loop)(x.reshape(50, 8, 8) / 16, p)
    assert np.abs(h_int - ref).max() < 0.06
    logits = q(x).astype(float)
    assert np.corrcoef(logits.ravel(), model.forward(x.reshape(50, 8, 8) / 16).ravel())[0, 1] \
        > 0.99


def test_lstm_state_saturates_and_stays_in_range():
    net = _net([{"type": "lstm", "hidden": 6, "c_bits": 10}, {"type": "dense", "units": 3}],
               [8, 4])
    model = _model(net, 1)
    for name, a in model.layers[0].params.items():
        a *= 8                                          # large weights: the state saturates
    x = np.random.default_rng(2).integers(0, 32, (40, 32))
    q = quantize_network(net, model, x / 31, input_scale=1 / 31,
                         config=QuantConfig(act_bits=8))
    rec = q.layers[0]
    h = np.zeros((40, 6), np.int64)
    c = np.zeros((40, 6), np.int64)
    cs, hs = [], []
    for t in range(8):
        h, c = golden.lstm_step(rec, x.reshape(40, 8, 4)[:, t], h, c)
        cs.append(c)
        hs.append(h)
    c, h = np.stack(cs), np.stack(hs)
    assert c.min() >= -512 and c.max() <= 511 and ((c == 511).any() or (c == -512).any())
    assert h.min() >= -128 and h.max() <= 127


def test_pruned_weights_stay_zero():
    net = preset("mlp")
    model = _model(net)
    W = model.layers[0].params["W"]
    W[np.abs(W) < 0.1] = 0
    q = quantize_network(net, model, np.random.default_rng(0).random((20, 64)), input_scale=1 / 16)
    np.testing.assert_array_equal(q.layers[0].W == 0, W.T == 0)


def test_errors():
    net = preset("mlp", sizes=(64, 8, 10))
    model = _model(net)
    x = np.random.default_rng(0).random((10, 64))
    model.layers[2].params["W"][3, 1] = np.nan
    with pytest.raises(ValueError, match=r"^Cannot quantize layer 3 \(dense\): its W holds nan "
                                         r"at index \(3, 1\)"):
        quantize_network(net, model, x, input_scale=1 / 16)
    model = _model(net)
    with pytest.raises(ValueError, match=r"^Calibration inputs must have 64 values each, not 63$"):
        quantize_network(net, model, x[:, :63], input_scale=1 / 16)
    bad = x.copy()
    bad[2, 5] = np.inf
    with pytest.raises(ValueError, match=r"calibration inputs hold inf at index \(2, 5\)"):
        quantize_network(net, model, bad, input_scale=1 / 16)
    with pytest.raises(ValueError, match=r"^input_scale must be a positive finite number, not 0"):
        quantize_network(net, model, x, input_scale=0)
    q = quantize_network(net, model, x, input_scale=1 / 16)
    with pytest.raises(ValueError, match=r"^Inputs must have shape \(n, 64\), not \(2, 63\)$"):
        q(np.zeros((2, 63), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^Input codes must lie in \[0, 255\], found \[256, 256\]$"):
        q(np.full((1, 64), 256))
    with pytest.raises(ValueError, match=r"^Inputs must be integer codes, not float64$"):
        q(np.zeros((1, 64)))
    with pytest.raises(ValueError, match=r"^weight_bits must be an integer from 2 to 16, not 1$"):
        QuantConfig(weight_bits=1)
