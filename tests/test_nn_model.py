"""Specs, model building, state, hooks; the digits model helpers."""

import json

import numpy as np
import pytest

from slimgen.sw.nn import (LAYER_TYPES, build_model, cnn_spec, deep_cnn_spec, lstm_spec,
                           mlp_spec)


def test_mlp_contract():
    model = build_model(mlp_spec((64, 32, 10)), np.random.default_rng(0))
    assert [l.kind for l in model.layers] == ["dense", "relu", "dense"]
    model = build_model(mlp_spec((64, 32, 16, 10)), np.random.default_rng(0))
    assert [l.kind for l in model.layers] == ["dense", "relu", "dense", "relu", "dense"]
    assert model.layers[0].params["W"].shape == (64, 32)
    assert model.layers[0].params["b"].shape == (32,)


@pytest.mark.parametrize("spec,shape", [
    (cnn_spec(), (3, 1, 8, 8)), (cnn_spec(batchnorm=True), (3, 1, 8, 8)),
    (deep_cnn_spec(), (3, 1, 8, 8)), (deep_cnn_spec(depth=6, batchnorm=True), (3, 1, 8, 8)),
    (lstm_spec(), (3, 8, 8)), (mlp_spec(), (3, 64)),
])
def test_specs_build_run_and_round_trip_through_json(spec, shape):
    spec2 = json.loads(json.dumps(spec))
    model = build_model(spec2, np.random.default_rng(0))
    assert model.spec() == spec
    y = model.forward(np.random.default_rng(1).uniform(size=shape))
    assert y.shape == (3, 10)
    # same seed, same weights
    again = build_model(spec2, np.random.default_rng(0))
    for (k, a), (_, b) in zip(model.state().items(), again.state().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_small_cnn_is_the_one_the_issue_names():
    kinds = [(e["type"], e.get("c_out") or e.get("n_out")) for e in cnn_spec()]
    assert kinds == [("conv2d", 8), ("relu", None), ("conv2d", 16), ("relu", None),
                     ("maxpool2d", None), ("flatten", None), ("dense", 10)]


def test_deep_cnn_has_depth_convolutions():
    assert sum(e["type"] == "conv2d" for e in deep_cnn_spec(depth=8)) == 8


def test_every_layer_type_builds_from_its_own_spec():
    examples = {"dense": {"n_in": 2, "n_out": 3}, "conv2d": {"c_in": 1, "c_out": 2},
                "lstm": {"n_in": 2, "n_hidden": 3}, "batchnorm": {"n_channels": 2},
                "maxpool2d": {"kernel": 2}, "avgpool2d": {"kernel": 2},
                "conv1d": {"c_in": 1, "c_out": 2}, "gru": {"n_in": 2, "n_hidden": 3}}
    for kind, cls in LAYER_TYPES.items():
        spec = [{"type": kind, **examples.get(kind, {})}]
        assert build_model(spec).spec() == [cls(**examples.get(kind, {})).spec()]


def test_build_model_errors():
    with pytest.raises(ValueError, match="Layer 0: type must be one of dense, relu"):
        build_model([{"type": "rnn"}])
    with pytest.raises(ValueError, match=r"Layer 1 \(conv2d\): .*unexpected keyword"):
        build_model([{"type": "relu"}, {"type": "conv2d", "c_in": 1, "c_out": 2, "dilation": 2}])


def test_hooks_see_outputs_and_add_gradients():
    model = build_model(mlp_spec((3, 2, 2)), np.random.default_rng(0))
    seen = []

    class Probe:
        def after_forward(self, i, y, train):
            seen.append((i, y.shape, train))

        def before_backward(self, i, dLdy):
            return dLdy + 1.0 if i == 0 else dLdy

    probe = Probe()
    model.add_hook(probe)
    x = np.ones((4, 3))
    model.forward(x, train=True)
    assert seen == [(0, (4, 2), True), (1, (4, 2), True), (2, (4, 2), True)]
    model.backward(np.zeros((4, 2)))
    # the +1 added at layer 0's output reaches its weight gradient: dLdW = xᵀ·1
    np.testing.assert_allclose(model.layers[0].grads["W"], np.full((3, 2), 4.0))
    model.remove_hook(probe)
    assert model.hooks == []


@pytest.mark.parametrize("spec,shape", [
    (cnn_spec(), (4, 1, 8, 8)), (deep_cnn_spec(depth=4, batchnorm=True), (4, 1, 8, 8)),
    (lstm_spec(), (4, 8, 8)), (mlp_spec(), (4, 64)),
    ([{"type": "relu"}] + mlp_spec((64, 10)), (4, 64)),        # first layer without parameters
])
def test_backward_without_the_input_gradient_gives_the_same_parameter_gradients(spec, shape):
    rng = np.random.default_rng(4)
    x, G = rng.normal(size=shape), rng.normal(size=(shape[0], 10))
    model = build_model(spec, np.random.default_rng(0))
    model.forward(x, train=True)
    dx = model.backward(G)
    assert dx.shape == shape
    full = {key: g.copy() for key, _, g in model.named_parameters()}
    model.forward(x, train=True)
    assert model.backward(G, input_grad=False) is None
    for key, _, g in model.named_parameters():
        np.testing.assert_array_equal(g, full[key], err_msg=str(key))


@pytest.mark.parametrize("spec,shape", [
    (cnn_spec(), (5, 1, 8, 8)), (deep_cnn_spec(depth=4), (5, 1, 8, 8)),
    (lstm_spec(), (5, 8, 8)), (mlp_spec(), (5, 64)),
    ([{"type": "conv2d", "c_in": 2, "c_out": 3, "kernel": 3, "stride": 2, "padding": 1},
      {"type": "avgpool2d", "kernel": 2}, {"type": "flatten"},
      {"type": "dense", "n_in": 12, "n_out": 10}], (5, 2, 7, 8)),
])
def test_float32_input_computes_in_float32_and_agrees_with_float64(spec, shape):
    rng = np.random.default_rng(5)
    x, G = rng.uniform(size=shape), rng.normal(size=(shape[0], 10))
    model = build_model(spec, np.random.default_rng(0))
    y64 = model.forward(x, train=True)
    dx64 = model.backward(G)
    g64 = {key: g.copy() for key, _, g in model.named_parameters()}
    y32 = model.forward(x.astype(np.float32), train=True)
    dx32 = model.backward(G.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5 * np.abs(y64).max())
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5 * np.abs(dx64).max())
    for key, p, g in model.named_parameters():
        assert p.dtype == g.dtype == np.float64, key      # parameters and gradients stay float64
        np.testing.assert_allclose(g, g64[key], rtol=1e-4, atol=1e-5 * np.abs(g64[key]).max(),
                                   err_msg=str(key))


def test_integer_input_computes_in_float64():
    model = build_model(cnn_spec(), np.random.default_rng(0))
    x = np.random.default_rng(6).integers(0, 17, size=(2, 1, 8, 8))
    for dtype in (np.uint8, np.int64):
        y = model.forward(x.astype(dtype))
        assert y.dtype == np.float64
        np.testing.assert_array_equal(y, model.forward(x.astype(np.float64)))
