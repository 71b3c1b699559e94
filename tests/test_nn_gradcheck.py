"""Every layer's backward and the loss against finite differences (float64, small shapes)."""

import numpy as np
import pytest

from slimgen.sw.nn import (AvgPool2d, BatchNorm, Conv2d, Dense, Flatten, LSTM, MaxPool2d, ReLU,
                           build_model, cnn_spec, deep_cnn_spec, lstm_spec, softmax_cross_entropy)
from slimgen.sw.nn.gradcheck import layer_gradients, max_rel_error, numerical_grad

TOL = 1e-6


def away_from_zero(rng, shape, gap=0.05):
    """Random values with |x| ≥ gap, so ReLU and max pooling have no kink within ε."""
    x = rng.normal(size=shape)
    return np.where(x >= 0, x + gap, x - gap)


CASES = {
    "dense": (lambda r: Dense(5, 4, rng=r), (3, 5)),
    "relu": (lambda r: ReLU(), (3, 4, 2)),
    "flatten": (lambda r: Flatten(), (2, 3, 2, 2)),
    "conv3x3": (lambda r: Conv2d(2, 3, 3, padding=1, rng=r), (2, 2, 5, 5)),
    "conv_stride2": (lambda r: Conv2d(3, 2, 3, stride=2, padding=1, rng=r), (2, 3, 6, 5)),
    "conv_1x1": (lambda r: Conv2d(3, 4, 1, rng=r), (2, 3, 3, 3)),
    "conv_valid": (lambda r: Conv2d(1, 2, 2, stride=1, padding=0, rng=r), (1, 1, 4, 3)),
    "maxpool2": (lambda r: MaxPool2d(2), (2, 2, 4, 4)),
    "maxpool_crop": (lambda r: MaxPool2d(2), (1, 2, 5, 3)),
    "avgpool2": (lambda r: AvgPool2d(2), (2, 2, 4, 4)),
    "avgpool_global": (lambda r: AvgPool2d(3), (2, 3, 3, 3)),
    "lstm_last": (lambda r: LSTM(3, 4, rng=r), (2, 4, 3)),
    "lstm_sequences": (lambda r: LSTM(3, 2, return_sequences=True, rng=r), (3, 3, 3)),
    "batchnorm_dense": (lambda r: BatchNorm(4), (5, 4)),
    "batchnorm_conv": (lambda r: BatchNorm(3), (2, 3, 3, 2)),
    "batchnorm_conv_batch1": (lambda r: BatchNorm(2), (1, 2, 3, 3)),
}


@pytest.mark.parametrize("name", CASES)
def test_layer_gradients(name):
    rng = np.random.default_rng(1)
    make, shape = CASES[name]
    layer = make(rng)
    for p in layer.params.values():  # non-trivial biases, γ and β
        p += 0.1 * rng.normal(size=p.shape)
    x = away_from_zero(rng, shape)
    grads = layer_gradients(layer, x, rng)
    assert set(grads) == {"x", *layer.params}
    for key, (analytic, numerical) in grads.items():
        assert analytic.shape == numerical.shape, key
        assert max_rel_error(analytic, numerical) < TOL, key


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(2)
    z = 3 * rng.normal(size=(4, 5))
    y = np.array([0, 4, 2, 2])
    loss, dLdz = softmax_cross_entropy(z, y)
    num = numerical_grad(lambda: softmax_cross_entropy(z, y)[0], z)
    assert max_rel_error(dLdz, num) < TOL
    # the value itself: −mean log p[y]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(4), y])))


def test_softmax_cross_entropy_is_stable_for_large_logits():
    loss, dLdz = softmax_cross_entropy(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([0, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dLdz))
    assert loss == pytest.approx(500.0)


@pytest.mark.parametrize("spec,shape", [
    (cnn_spec((1, 5, 4), channels=(2, 3)), (2, 1, 5, 4)),                  # crop in the pooling
    (cnn_spec((2, 4, 4), channels=(2,), kernel=3, pool=2), (3, 2, 4, 4)),
    (deep_cnn_spec((1, 4, 4), depth=3, width=2), (2, 1, 4, 4)),
    (lstm_spec(n_in=3, n_hidden=4, n_classes=3), (2, 5, 3)),
])
def test_model_gradients_through_the_layer_chain(spec, shape):
    # Layers hand each other arrays in their own memory order (a convolution's output is a
    # view with the batch index fastest): the whole chain, loss included, against finite
    # differences.
    rng = np.random.default_rng(3)
    model = build_model(spec, rng)
    for _, p, _ in model.named_parameters():
        p += 0.1 * rng.normal(size=p.shape)
    x = rng.normal(size=shape)
    y = rng.integers(0, model.layers[-1].n_out, len(x))

    def loss():
        return softmax_cross_entropy(model.forward(x, train=True), y)[0]

    _, dLdz = softmax_cross_entropy(model.forward(x, train=True), y)
    dx = model.backward(dLdz)
    grads = {key: g.copy() for key, _, g in model.named_parameters()}
    assert max_rel_error(dx, numerical_grad(loss, x)) < TOL
    for key, p, _ in model.named_parameters():
        assert max_rel_error(grads[key], numerical_grad(loss, p)) < TOL, key
