"""Every layer's backward and the loss against finite differences (float64, small shapes)."""

import numpy as np
import pytest

from slimgen.sw.nn import (AvgPool2d, BatchNorm, Conv2d, Dense, Flatten, LSTM, MaxPool2d, ReLU,
                           softmax_cross_entropy)
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
