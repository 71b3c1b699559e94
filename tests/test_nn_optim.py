"""Optimizers and learning-rate schedules."""

import math

import numpy as np
import pytest

from slimgen.sw.nn import SGD, Adam, build_model, lr_factor, make_optimizer


def _model_with_grads():
    model = build_model([{"type": "dense", "n_in": 2, "n_out": 2}])
    layer = model.layers[0]
    layer.params["W"][...] = [[1.0, 2.0], [3.0, 4.0]]
    layer.params["b"][...] = [1.0, 1.0]
    layer.grads["W"] = np.full((2, 2), 0.5)
    layer.grads["b"] = np.full(2, 0.5)
    return model, layer


def test_sgd_momentum_accumulates_velocity():
    model, layer = _model_with_grads()
    opt = SGD(0.1, momentum=0.9)
    opt.step(model)   # v = g
    opt.step(model)   # v = 0.9 g + g
    np.testing.assert_allclose(layer.params["b"], 1 - 0.1 * 0.5 * (1 + 1.9))


def test_sgd_nesterov_and_plain():
    model, layer = _model_with_grads()
    SGD(0.1, momentum=0.9, nesterov=True).step(model)  # g + μ·v with v = g
    np.testing.assert_allclose(layer.params["b"], 1 - 0.1 * 0.5 * 1.9)
    model, layer = _model_with_grads()
    SGD(0.1, momentum=0.0).step(model)
    np.testing.assert_allclose(layer.params["b"], 1 - 0.05)


def test_weight_decay_spares_biases():
    model, layer = _model_with_grads()
    layer.grads["W"][...] = 0
    layer.grads["b"][...] = 0
    SGD(0.1, momentum=0.0, weight_decay=0.5).step(model)
    np.testing.assert_allclose(layer.params["W"], 0.95 * np.array([[1, 2], [3, 4]]))
    np.testing.assert_allclose(layer.params["b"], 1)


def test_adam_first_step_moves_by_lr_times_sign():
    model, layer = _model_with_grads()
    Adam(0.01).step(model)
    np.testing.assert_allclose(layer.params["b"], 1 - 0.01, rtol=1e-6)


def test_optimizers_minimize_a_quadratic():
    for opt in (SGD(0.05), Adam(0.05)):
        model = build_model([{"type": "dense", "n_in": 3, "n_out": 1}], np.random.default_rng(0))
        layer = model.layers[0]
        for _ in range(500):  # L = ½ ‖W‖² + ½ ‖b − 1‖²
            layer.grads["W"] = layer.params["W"].copy()
            layer.grads["b"] = layer.params["b"] - 1
            opt.step(model)
        np.testing.assert_allclose(layer.params["W"], 0, atol=1e-3)
        np.testing.assert_allclose(layer.params["b"], 1, atol=1e-3)


def test_make_optimizer_errors():
    with pytest.raises(ValueError, match="Optimizer must be one of sgd, adam, not 'rmsprop'"):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError, match="Learning rate must be positive, not 0"):
        SGD(0)
    with pytest.raises(ValueError, match=r"Momentum must be in \[0, 1\), not 1.0"):
        SGD(0.1, momentum=1.0)


def test_schedules():
    assert lr_factor("constant", 50, 100) == 1.0
    assert lr_factor("cosine", 0, 100) == 1.0
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0)
    assert lr_factor("linear", 25, 100) == 0.75
    assert [lr_factor("step", t, 90) for t in (0, 29, 30, 60, 89)] == \
        pytest.approx([1, 1, 0.1, 0.01, 0.01])
    # warm-up: linear over the first steps, then the schedule over the rest
    assert [lr_factor("cosine", t, 110, warmup=10) for t in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor("cosine", 60, 110, warmup=10) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))
    with pytest.raises(ValueError, match="Schedule must be one of constant, cosine, step, linear, "
                                         "not 'exp'"):
        lr_factor("exp", 0, 1)
