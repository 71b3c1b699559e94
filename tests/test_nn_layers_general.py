"""The layers of a general sequential network: Conv1d, Conv2d's bias and asymmetric padding,
strided and 1-D pooling, global average pooling, dropout, GRU, SwapAxes, BatchNorm on
sequences and its folding; each against a loop reference and finite differences."""

import json

import numpy as np
import pytest

from slimgen.sw.nn import (GRU, AvgPool1d, AvgPool2d, BatchNorm, Conv1d, Conv2d, Dropout,
                           GlobalAvgPool, MaxPool1d, MaxPool2d, SwapAxes, build_model,
                           fold_batchnorm, predict, softmax_cross_entropy)
from slimgen.sw.nn.conv import col2im, conv1d_loop, conv2d_loop, im2col
from slimgen.sw.nn.gradcheck import layer_gradients, max_rel_error, numerical_grad
from slimgen.sw.nn.gru import GRU_GATES, gru_loop

TOL = 1e-6


def _jiggle(layer, rng, scale=0.3):
    """Non-trivial parameters (biases, γ and β away from their initial values)."""
    for p in layer.params.values():
        p += scale * rng.normal(size=p.shape)
    return layer


# --- convolutions -----------------------------------------------------------------------------

@pytest.mark.parametrize("c_in,c_out,k,stride,padding,L,bias", [
    (2, 3, 3, 1, 1, 7, True), (3, 2, 3, 2, (2, 0), 8, False), (1, 4, 5, 2, (0, 3), 9, True),
    (2, 2, 1, 1, 0, 4, True), (2, 3, 4, 3, 2, 10, False),
])
def test_conv1d_matches_loop_reference(c_in, c_out, k, stride, padding, L, bias):
    rng = np.random.default_rng(0)
    conv = _jiggle(Conv1d(c_in, c_out, k, stride=stride, padding=padding, bias=bias, rng=rng), rng)
    x = rng.normal(size=(3, c_in, L))
    ref = conv1d_loop(x, conv.params["W"], conv.params.get("b"), stride, padding)
    y = conv.forward(x)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv1d_loop_is_a_cross_correlation():
    x = np.arange(5.0).reshape(1, 1, 5)
    W = np.array([1.0, 10.0, 100.0]).reshape(1, 1, 3)
    np.testing.assert_array_equal(conv1d_loop(x, W, None), [[[210.0, 321.0, 432.0]]])


@pytest.mark.parametrize("padding,bias,stride", [
    (((1, 0), (0, 2)), True, 1), (((0, 2), (1, 1)), False, 2), (1, False, 1),
    (((2, 1), (0, 0)), True, 3),
])
def test_conv2d_asymmetric_padding_and_no_bias_match_loop_reference(padding, bias, stride):
    rng = np.random.default_rng(1)
    conv = _jiggle(Conv2d(2, 3, 3, stride=stride, padding=padding, bias=bias, rng=rng), rng)
    x = rng.normal(size=(2, 2, 6, 5))
    ref = conv2d_loop(x, conv.params["W"], conv.params.get("b"), stride, padding)
    np.testing.assert_allclose(conv.forward(x), ref, rtol=1e-12, atol=1e-12)


def test_conv_without_bias_has_no_b_parameter():
    for conv in (Conv1d(2, 3, bias=False), Conv2d(2, 3, bias=False)):
        assert set(conv.params) == set(conv.grads) == {"W"}
        assert conv.spec()["bias"] is False
    assert "bias" not in Conv2d(2, 3).spec() and "bias" not in Conv1d(2, 3).spec()


def test_padding_spec():
    assert Conv2d(1, 1, padding=((1, 1), (1, 1))).spec()["padding"] == 1   # all equal: one p
    assert Conv2d(1, 1, padding=((1, 0), (2, 2))).spec()["padding"] == [[1, 0], [2, 2]]
    assert Conv1d(1, 1, padding=(2, 2)).spec()["padding"] == 2
    assert Conv1d(1, 1, padding=[0, 2]).spec()["padding"] == [0, 2]
    assert Conv2d(1, 1, padding=((1, 0), (2, 2))).padding == ((1, 0), (2, 2))


def test_col2im_is_the_adjoint_of_im2col_with_asymmetric_padding():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 6, 5))
    pad = ((2, 0), (1, 3))
    cols = im2col(x, 3, 2, 2, pad)
    c = rng.normal(size=cols.shape)
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, col2im(c, x.shape, 3, 2, 2, pad)))


# --- pooling ----------------------------------------------------------------------------------

def _pool2d_loop(x, k, s, reduce):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = reduce(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return y


def _pool1d_loop(x, k, s, reduce):
    n, c, L = x.shape
    y = np.empty((n, c, (L - k) // s + 1))
    for i in range(y.shape[2]):
        y[:, :, i] = reduce(x[:, :, i * s:i * s + k], axis=2)
    return y


@pytest.mark.parametrize("k,s,hw", [(3, 2, (7, 6)), (2, 1, (4, 5)), (2, 3, (8, 7)), (3, 3, (7, 8))])
def test_pool2d_with_stride_matches_loops(k, s, hw):
    x = np.random.default_rng(3).normal(size=(2, 3, *hw))
    np.testing.assert_array_equal(MaxPool2d(k, stride=s).forward(x), _pool2d_loop(x, k, s, np.max))
    np.testing.assert_allclose(AvgPool2d(k, stride=s).forward(x), _pool2d_loop(x, k, s, np.mean),
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("k,s,L", [(2, None, 7), (3, 2, 8), (2, 1, 5), (2, 3, 9), (4, 4, 4)])
def test_pool1d_matches_loops(k, s, L):
    x = np.random.default_rng(4).normal(size=(2, 3, L))
    y = MaxPool1d(k, stride=s).forward(x)
    assert y.shape == (2, 3, (L - k) // (s or k) + 1)
    np.testing.assert_array_equal(y, _pool1d_loop(x, k, s or k, np.max))
    np.testing.assert_allclose(AvgPool1d(k, stride=s).forward(x),
                               _pool1d_loop(x, k, s or k, np.mean), rtol=1e-14, atol=1e-15)


def test_overlapping_maxpool_sums_the_gradient_of_a_shared_maximum():
    pool = MaxPool1d(2, stride=1)
    np.testing.assert_array_equal(pool.forward(np.array([[[0.0, 5.0, 0.0, 1.0]]]), train=True),
                                  [[[5.0, 5.0, 1.0]]])
    np.testing.assert_array_equal(pool.backward(np.array([[[1.0, 2.0, 4.0]]])), [[[0, 3, 0, 4]]])
    pool = MaxPool2d(2, stride=1)                   # four-way tie: the first element of each
    pool.forward(np.ones((1, 1, 3, 3)), train=True)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 2, 2)))[0, 0],
                                  [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_pool_spec_names_the_stride_only_when_it_differs_from_the_kernel():
    assert MaxPool2d(2, stride=2).spec() == {"type": "maxpool2d", "kernel": 2}
    assert AvgPool2d(3).spec() == {"type": "avgpool2d", "kernel": 3}
    assert MaxPool1d(3, stride=2).spec() == {"type": "maxpool1d", "kernel": 3, "stride": 2}
    assert AvgPool1d(2, stride=1).spec() == {"type": "avgpool1d", "kernel": 2, "stride": 1}


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3)])
def test_global_avgpool_is_the_mean_over_positions(shape):
    x = np.random.default_rng(5).normal(size=shape)
    y = GlobalAvgPool().forward(x)
    assert y.shape == shape[:2]
    np.testing.assert_allclose(y, x.reshape(*shape[:2], -1).mean(axis=2), rtol=1e-14)


# --- dropout, swap_axes -----------------------------------------------------------------------

def test_dropout_is_the_identity_at_inference():
    x = np.random.default_rng(6).normal(size=(4, 5))
    assert Dropout(0.5, rng=np.random.default_rng(0)).forward(x) is x


def test_dropout_keeps_with_probability_one_minus_rate_and_scales():
    layer = Dropout(0.25, rng=np.random.default_rng(0))
    x = np.random.default_rng(7).uniform(1, 2, size=(200, 50))
    y = layer.forward(x, train=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)
    assert abs(kept.mean() - 0.75) < 0.02
    G = np.random.default_rng(8).normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(G), np.where(kept, G * (1 / 0.75), 0.0))


def test_dropout_same_seed_same_masks():
    x = np.ones((8, 16))
    a, b = (Dropout(0.5, rng=np.random.default_rng(3)) for _ in range(2))
    first = a.forward(x, train=True)
    np.testing.assert_array_equal(first, b.forward(x, train=True))
    np.testing.assert_array_equal(a.forward(x, train=True), b.forward(x, train=True))
    assert not np.array_equal(first, a.forward(x, train=True))        # a fresh mask per call
    assert not np.array_equal(first, Dropout(0.5, rng=np.random.default_rng(4)).forward(x, True))


def test_dropout_rate_zero_is_the_identity_in_training():
    x = np.random.default_rng(9).normal(size=(3, 4))
    layer = Dropout(0, rng=np.random.default_rng(0))
    assert layer.forward(x, train=True) is x and layer.spec() == {"type": "dropout", "rate": 0.0}


def test_dropout_float32():
    x = np.ones((4, 6), dtype=np.float32)
    y = Dropout(0.5, rng=np.random.default_rng(0)).forward(x, train=True)
    assert y.dtype == np.float32 and set(np.unique(y)) <= {0.0, 2.0}


def test_swap_axes_round_trip():
    x = np.arange(24.0).reshape(2, 3, 4)
    layer = SwapAxes()
    y = layer.forward(x, train=True)
    assert y.shape == (2, 4, 3) and y[1, 2, 0] == x[1, 0, 2]
    np.testing.assert_array_equal(layer.backward(y), x)


# --- GRU --------------------------------------------------------------------------------------

def test_gru_matches_loop_reference():
    rng = np.random.default_rng(10)
    gru = _jiggle(GRU(5, 7, return_sequences=True, rng=rng), rng)
    x = rng.normal(size=(4, 6, 5))
    np.testing.assert_allclose(gru.forward(x), gru_loop(x, gru.params), rtol=1e-12, atol=1e-12)


def test_gru_last_state_is_last_step_of_sequence():
    x = np.random.default_rng(11).normal(size=(2, 5, 3))
    last = GRU(3, 4, rng=np.random.default_rng(2))
    seq = GRU(3, 4, return_sequences=True, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(last.forward(x), seq.forward(x)[:, -1])


def test_gru_parameters_and_initialisation():
    gru = GRU(8, 16)
    assert list(gru.params) == ["W_r", "W_z", "W_n", "U_r", "U_z", "U_n",
                                "b_r", "b_z", "b_n", "b_hn"]
    assert gru.params["W_z"].shape == (8, 16) and gru.params["U_n"].shape == (16, 16)
    for g in GRU_GATES:
        np.testing.assert_allclose(gru.params[f"U_{g}"].T @ gru.params[f"U_{g}"], np.eye(16),
                                   atol=1e-12)
    assert all(not gru.params[k].any() for k in ("b_r", "b_z", "b_n", "b_hn"))
    limit = np.sqrt(6 / (8 + 16))
    assert all(np.abs(gru.params[f"W_{g}"]).max() <= limit for g in GRU_GATES)


def test_gru_float32_agrees_with_float64():
    rng = np.random.default_rng(12)
    gru = _jiggle(GRU(3, 5, return_sequences=True, rng=rng), rng)
    x, G = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 6, 5))
    y64, dx64 = gru.forward(x, train=True), gru.backward(G)
    g64 = {k: g.copy() for k, g in gru.grads.items()}
    y32 = gru.forward(x.astype(np.float32), train=True)
    dx32 = gru.backward(G.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, atol=1e-4)
    for k, g in gru.grads.items():
        assert g.dtype == np.float64, k
        np.testing.assert_allclose(g, g64[k], atol=1e-4, err_msg=k)


# --- BatchNorm on sequences, folding ----------------------------------------------------------

def test_batchnorm_on_sequences_normalizes_over_batch_and_positions():
    x = 5 + 3 * np.random.default_rng(13).normal(size=(8, 3, 6))
    bn = BatchNorm(3)
    y = bn.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1, atol=1e-4)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2)))


def _trained_like(spec, x):
    rng = np.random.default_rng(14)
    model = build_model(spec, rng)
    for layer in model.layers:
        _jiggle(layer, rng, 0.2)
    for _ in range(5):                      # non-trivial running statistics
        model.forward(x[rng.permutation(len(x))[:12]], train=True)
    return model


@pytest.mark.parametrize("spec,shape", [
    ([{"type": "conv1d", "c_in": 2, "c_out": 3, "kernel": 3, "padding": [1, 0]},
      {"type": "batchnorm", "n_channels": 3}, {"type": "relu"},
      {"type": "conv1d", "c_in": 3, "c_out": 2, "kernel": 2, "stride": 2, "bias": False},
      {"type": "batchnorm", "n_channels": 2}, {"type": "global_avgpool"}], (16, 2, 9)),
    ([{"type": "conv2d", "c_in": 1, "c_out": 3, "kernel": 3, "padding": [[1, 0], [0, 1]],
       "bias": False},
      {"type": "batchnorm", "n_channels": 3}, {"type": "relu"}, {"type": "flatten"}],
     (16, 1, 5, 5)),
])
def test_folding_into_conv1d_and_biasless_convolutions(spec, shape):
    x = np.random.default_rng(15).uniform(size=shape)
    model = _trained_like(spec, x)
    folded = fold_batchnorm(model)
    assert [layer.kind for layer in folded.layers] == [e["type"] for e in spec
                                                       if e["type"] != "batchnorm"]
    assert all("b" in layer.params and "bias" not in layer.spec()
               for layer in folded.layers if layer.kind.startswith("conv"))
    np.testing.assert_allclose(predict(folded, x), predict(model, x), rtol=1e-10, atol=1e-10)


# --- gradients --------------------------------------------------------------------------------

class _FixedMaskDropout(Dropout):
    """The same mask on every training forward, so finite differences see one function."""

    def forward(self, x, train=False):
        self._rng = np.random.default_rng(5)
        return super().forward(x, train)


CASES = {
    "conv1d": (lambda r: Conv1d(2, 3, 3, padding=1, rng=r), (2, 2, 6)),
    "conv1d_stride2_asym": (lambda r: Conv1d(3, 2, 3, stride=2, padding=(2, 0), rng=r), (2, 3, 7)),
    "conv1d_no_bias": (lambda r: Conv1d(2, 2, 2, bias=False, rng=r), (2, 2, 5)),
    "conv2d_asym": (lambda r: Conv2d(2, 3, 3, padding=((1, 0), (0, 2)), rng=r), (2, 2, 4, 4)),
    "conv2d_no_bias_stride2": (lambda r: Conv2d(2, 2, 3, stride=2, padding=((0, 1), (1, 1)),
                                                bias=False, rng=r), (2, 2, 5, 4)),
    "maxpool2d_overlap": (lambda r: MaxPool2d(3, stride=2), (2, 2, 5, 6)),
    "maxpool2d_stride1": (lambda r: MaxPool2d(2, stride=1), (1, 2, 3, 4)),
    "avgpool2d_overlap": (lambda r: AvgPool2d(3, stride=2), (2, 2, 5, 6)),
    "avgpool2d_gaps": (lambda r: AvgPool2d(2, stride=3), (1, 2, 6, 5)),
    "maxpool1d": (lambda r: MaxPool1d(2), (2, 3, 7)),
    "maxpool1d_overlap": (lambda r: MaxPool1d(3, stride=2), (2, 2, 8)),
    "avgpool1d": (lambda r: AvgPool1d(3), (2, 2, 7)),
    "avgpool1d_overlap": (lambda r: AvgPool1d(3, stride=1), (2, 2, 5)),
    "global_avgpool_1d": (lambda r: GlobalAvgPool(), (2, 3, 4)),
    "global_avgpool_2d": (lambda r: GlobalAvgPool(), (2, 3, 3, 2)),
    "dropout": (lambda r: _FixedMaskDropout(0.4, rng=r), (3, 5)),
    "swap_axes": (lambda r: SwapAxes(), (2, 3, 4)),
    "gru_last": (lambda r: GRU(3, 4, rng=r), (2, 4, 3)),
    "gru_sequences": (lambda r: GRU(3, 2, return_sequences=True, rng=r), (3, 3, 3)),
    "batchnorm_seq": (lambda r: BatchNorm(3), (2, 3, 4)),
    "batchnorm_seq_batch1": (lambda r: BatchNorm(2), (1, 2, 3)),
}


@pytest.mark.parametrize("name", CASES)
def test_layer_gradients(name):
    rng = np.random.default_rng(16)
    make, shape = CASES[name]
    layer = _jiggle(make(rng), rng, 0.1)
    x = rng.normal(size=shape)
    grads = layer_gradients(layer, x, rng)
    assert set(grads) == {"x", *layer.params}
    for key, (analytic, numerical) in grads.items():
        assert analytic.shape == numerical.shape, key
        assert max_rel_error(analytic, numerical) < TOL, key


def test_gradients_through_a_conv1d_gru_chain():
    # conv1d (n, c, L) → sequences (n, T, c) → GRU → classifier: the chain and the memory
    # orders the layers hand each other, loss included, against finite differences
    spec = [{"type": "conv1d", "c_in": 2, "c_out": 3, "kernel": 3, "padding": 1},
            {"type": "batchnorm", "n_channels": 3}, {"type": "relu"},
            {"type": "maxpool1d", "kernel": 2}, {"type": "swap_axes"},
            {"type": "gru", "n_in": 3, "n_hidden": 4},
            {"type": "dense", "n_in": 4, "n_out": 3}]
    rng = np.random.default_rng(17)
    model = build_model(spec, rng)
    for layer in model.layers:
        _jiggle(layer, rng, 0.1)
    x, y = rng.normal(size=(3, 2, 6)), np.array([0, 2, 1])

    def loss():
        return softmax_cross_entropy(model.forward(x, train=True), y)[0]

    dx = model.backward(softmax_cross_entropy(model.forward(x, train=True), y)[1])
    grads = {key: g.copy() for key, _, g in model.named_parameters()}
    assert max_rel_error(dx, numerical_grad(loss, x)) < TOL
    for key, p, _ in model.named_parameters():
        assert max_rel_error(grads[key], numerical_grad(loss, p)) < TOL, key


# --- specs and errors -------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    {"type": "conv1d", "c_in": 2, "c_out": 3, "kernel": 3, "stride": 2, "padding": [1, 0],
     "bias": False},
    {"type": "conv1d", "c_in": 2, "c_out": 3, "kernel": 5, "stride": 1, "padding": 2},
    {"type": "conv2d", "c_in": 1, "c_out": 2, "kernel": 3, "stride": 1,
     "padding": [[1, 0], [0, 1]], "bias": False},
    {"type": "maxpool2d", "kernel": 3, "stride": 2},
    {"type": "avgpool2d", "kernel": 2, "stride": 1},
    {"type": "maxpool1d", "kernel": 2}, {"type": "avgpool1d", "kernel": 3, "stride": 2},
    {"type": "global_avgpool"}, {"type": "dropout", "rate": 0.3}, {"type": "swap_axes"},
    {"type": "gru", "n_in": 3, "n_hidden": 4, "return_sequences": True},
])
def test_new_kinds_round_trip_through_their_spec_and_json(entry):
    model = build_model(json.loads(json.dumps([entry])), np.random.default_rng(0))
    assert model.spec() == [entry]
    assert build_model(json.loads(json.dumps(model.spec()))).spec() == model.spec()


@pytest.mark.parametrize("make,message", [
    (lambda: Conv1d(2, 0), "Conv1d c_out must be a positive integer, not 0"),
    (lambda: Conv1d(1, 1, 3, stride=0), "Conv1d stride must be a positive integer, not 0"),
    (lambda: Conv1d(1, 1, padding=-1), "Conv1d padding must be a non-negative integer, not -1"),
    (lambda: Conv1d(1, 1, padding=(1, -1)),
     "Conv1d padding must be a non-negative integer or (before, after) of non-negative integers, "
     "not (1, -1)"),
    (lambda: Conv1d(1, 1, bias=1), "Conv1d bias must be True or False, not 1"),
    (lambda: Conv2d(1, 1, padding=(1, 2)), "Conv2d padding must be a non-negative integer or "
                                           "((top, bottom), (left, right)) of non-negative "
                                           "integers, not (1, 2)"),
    (lambda: Conv2d(1, 1, bias="no"), "Conv2d bias must be True or False, not 'no'"),
    (lambda: MaxPool2d(2, stride=0), "MaxPool2d stride must be a positive integer, not 0"),
    (lambda: AvgPool1d(0), "AvgPool1d kernel must be a positive integer, not 0"),
    (lambda: MaxPool1d(2, stride=1.5), "MaxPool1d stride must be a positive integer, not 1.5"),
    (lambda: Dropout(1.0), "Dropout rate must be a number in [0, 1), not 1.0"),
    (lambda: Dropout(-0.1), "Dropout rate must be a number in [0, 1), not -0.1"),
    (lambda: Dropout("0.5"), "Dropout rate must be a number in [0, 1), not '0.5'"),
    (lambda: GRU(0, 3), "GRU n_in must be a positive integer, not 0"),
    (lambda: GRU(3, -1), "GRU n_hidden must be a positive integer, not -1"),
])
def test_constructor_errors(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert str(e.value) == message


@pytest.mark.parametrize("layer,shape,message", [
    (Conv1d(2, 3), (1, 3, 5), "Conv1d expects input of shape (n, 2, L), got (1, 3, 5)"),
    (Conv1d(2, 3, 4), (1, 2, 3), "Conv1d kernel 4 with padding 0 does not fit input length 3"),
    (MaxPool1d(2), (1, 2, 3, 3), "MaxPool1d expects input of shape (n, c, L), got (1, 2, 3, 3)"),
    (AvgPool1d(4), (1, 2, 3), "AvgPool1d kernel 4 is larger than the input 3"),
    (MaxPool2d(3, stride=1), (1, 1, 2, 5), "MaxPool2d kernel 3 is larger than the input 2×5"),
    (GlobalAvgPool(), (2, 3), "GlobalAvgPool expects input of shape (n, c, L) or (n, c, h, w), "
                              "got (2, 3)"),
    (SwapAxes(), (2, 3), "SwapAxes expects input of shape (n, a, b), got (2, 3)"),
    (GRU(3, 4), (2, 5, 2), "GRU expects input of shape (n, steps, 3), got (2, 5, 2)"),
    (BatchNorm(2), (2, 2, 2, 2, 2), "BatchNorm expects input of shape (n, c), (n, c, L) or "
                                    "(n, c, h, w), got (2, 2, 2, 2, 2)"),
])
def test_forward_rejects_wrong_shapes(layer, shape, message):
    with pytest.raises(ValueError) as e:
        layer.forward(np.zeros(shape))
    assert str(e.value) == message


def test_float32_input_computes_in_float32_through_the_new_layers():
    spec = [{"type": "conv1d", "c_in": 2, "c_out": 3, "kernel": 3, "padding": [0, 2],
             "bias": False},
            {"type": "maxpool1d", "kernel": 3, "stride": 2},
            {"type": "avgpool1d", "kernel": 2, "stride": 1}, {"type": "swap_axes"},
            {"type": "swap_axes"}, {"type": "dropout", "rate": 0.0}, {"type": "global_avgpool"},
            {"type": "dense", "n_in": 3, "n_out": 4}]
    rng = np.random.default_rng(18)
    x, G = rng.normal(size=(5, 2, 9)), rng.normal(size=(5, 4))
    model = build_model(spec, np.random.default_rng(0))
    y64, dx64 = model.forward(x, train=True), model.backward(G)
    y32 = model.forward(x.astype(np.float32), train=True)
    dx32 = model.backward(G.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, atol=1e-5)
