"""Conv2d and pooling forward passes against loop references, and im2col/col2im as adjoints."""

import numpy as np
import pytest

from slimgen.sw.nn import AvgPool2d, Conv2d, MaxPool2d
from slimgen.sw.nn.conv import col2im, conv2d_loop, im2col


@pytest.mark.parametrize("c_in,c_out,k,stride,padding,hw", [
    (1, 8, 3, 1, 1, (8, 8)), (3, 4, 3, 2, 1, (7, 6)), (2, 5, 1, 1, 0, (4, 4)),
    (4, 2, 5, 1, 2, (6, 6)), (2, 3, 2, 2, 0, (5, 7)), (3, 3, 3, 3, 0, (9, 9)),
])
def test_conv2d_matches_loop_reference(c_in, c_out, k, stride, padding, hw):
    rng = np.random.default_rng(0)
    conv = Conv2d(c_in, c_out, k, stride=stride, padding=padding, rng=rng)
    conv.params["b"] += rng.normal(size=c_out)
    x = rng.normal(size=(3, c_in, *hw))
    y = conv.forward(x)
    ref = conv2d_loop(x, conv.params["W"], conv.params["b"], stride, padding)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv2d_loop_is_a_cross_correlation():
    # one pixel, one 3×3 kernel: the output at the centre is Σ W·x (no kernel flip)
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    W = np.arange(9.0).reshape(1, 1, 3, 3)
    assert conv2d_loop(x, W, np.zeros(1))[0, 0, 0, 0] == np.sum(np.arange(9.0) ** 2)


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 6, 5))
    cols = im2col(x, 3, 3, 2, 1)
    c = rng.normal(size=cols.shape)
    # ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, col2im(c, x.shape, 3, 3, 2, 1)))


def test_pooling_matches_loops():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 5, 6))
    mx, av = MaxPool2d(2).forward(x), AvgPool2d(2).forward(x)
    assert mx.shape == av.shape == (2, 3, 2, 3)
    for i in range(2):
        for j in range(3):
            win = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
            np.testing.assert_allclose(mx[:, :, i, j], win.max(axis=(2, 3)))
            np.testing.assert_allclose(av[:, :, i, j], win.mean(axis=(2, 3)))


def test_maxpool_routes_gradient_to_one_maximum_per_window():
    pool = MaxPool2d(2)
    pool.forward(np.ones((1, 1, 2, 2)), train=True)  # four-way tie
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1))), [[[[1, 0], [0, 0]]]])


@pytest.mark.parametrize("make,message", [
    (lambda: Conv2d(0, 4), "Conv2d c_in must be a positive integer, not 0"),
    (lambda: Conv2d(1, 4, 3, stride=0), "Conv2d stride must be a positive integer, not 0"),
    (lambda: Conv2d(1, 4, 3, padding=-1), "Conv2d padding must be a non-negative integer, not -1"),
    (lambda: MaxPool2d(1.5), "MaxPool2d kernel must be a positive integer, not 1.5"),
])
def test_constructor_errors(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert str(e.value) == message


def test_conv2d_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"Conv2d expects input of shape \(n, 2, h, w\), "
                                         r"got \(1, 3, 4, 4\)"):
        Conv2d(2, 4).forward(np.zeros((1, 3, 4, 4)))
