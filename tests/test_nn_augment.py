"""Augmentation: random whole-pixel shifts against the loop reference, in every view of the
digits; determinism per generator; that samples really move; errors on bad arguments."""

import numpy as np
import pytest

from slimgen.sw.nn.augment import random_shift, shift_images


def _images(n=6, c=1, side=8, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, c, side, side))


def test_shift_images_by_hand():
    x = np.arange(9.0).reshape(1, 3, 3)
    np.testing.assert_array_equal(shift_images(x, [1], [0]),
                                  [[[0, 0, 0], [0, 1, 2], [3, 4, 5]]])
    np.testing.assert_array_equal(shift_images(x, [0], [-1]),
                                  [[[1, 2, 0], [4, 5, 0], [7, 8, 0]]])
    np.testing.assert_array_equal(shift_images(x, [-1], [1]),
                                  [[[0, 3, 4], [0, 6, 7], [0, 0, 0]]])
    np.testing.assert_array_equal(shift_images(x, [3], [0]), np.zeros((1, 3, 3)))


@pytest.mark.parametrize("max_shift", [1, 2, 9])
def test_random_shift_matches_loop_reference(max_shift):
    x = _images(n=200, c=2)
    out = random_shift(x, np.random.default_rng(5), max_shift)
    d = np.random.default_rng(5).integers(-max_shift, max_shift + 1, size=(200, 2))
    np.testing.assert_array_equal(out, shift_images(x, d[:, 0], d[:, 1]))
    assert np.all(np.abs(d) <= max_shift) and {-max_shift, max_shift} <= set(d.ravel())


def test_views_shift_the_same_image():
    """vector (n, 64), image (n, 1, 8, 8) and sequence (n, 8, 8) are one 8×8 image underneath."""
    im = _images(n=12)
    ref = random_shift(im, np.random.default_rng(1))
    vec = random_shift(im.reshape(12, 64), np.random.default_rng(1))
    seq = random_shift(im.reshape(12, 8, 8), np.random.default_rng(1))
    assert vec.shape == (12, 64) and seq.shape == (12, 8, 8) and ref.shape == im.shape
    np.testing.assert_array_equal(vec, ref.reshape(12, 64))
    np.testing.assert_array_equal(seq, ref.reshape(12, 8, 8))


def test_channels_move_together():
    x = np.repeat(_images(n=10), 3, axis=1)         # three equal channels
    out = random_shift(x, np.random.default_rng(2))
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    np.testing.assert_array_equal(out[:, 0], out[:, 2])


def test_really_shifts_and_is_deterministic():
    x = _images(n=50)
    a = random_shift(x, np.random.default_rng(3))
    b = random_shift(x, np.random.default_rng(3))
    c = random_shift(x, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    moved = [not np.array_equal(a[i], x[i]) for i in range(50)]
    assert 30 <= sum(moved) < 50   # 8 of the 9 (dy, dx) move: about 44 of 50
    np.testing.assert_array_equal(x, _images(n=50))  # the input is left alone


def test_zero_shift_is_a_copy():
    x = _images(n=4)
    out = random_shift(x, np.random.default_rng(0), 0)
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize("args,error,message", [
    ((np.zeros((2, 10)), np.random.default_rng(0)), ValueError,
     "Vector samples must hold a square image, not 10 values"),
    ((np.zeros((2, 1, 1, 4, 4)), np.random.default_rng(0)), ValueError,
     "Samples must be vectors, sequences or images (2, 3 or 4 dimensions), "
     "got shape (2, 1, 1, 4, 4)"),
    ((np.zeros((2, 16)), 0), TypeError, "rng must be a numpy.random.Generator, not int"),
    ((np.zeros((2, 16)), np.random.default_rng(0), -1), ValueError,
     "max_shift must be a non-negative integer, not -1"),
    ((np.zeros((2, 16)), np.random.default_rng(0), 1.0), ValueError,
     "max_shift must be a non-negative integer, not 1.0"),
])
def test_errors(args, error, message):
    with pytest.raises(error) as e:
        random_shift(*args)
    assert str(e.value) == message
