"""Fixed-point arithmetic: widths, rounding, saturation, the multiplier/shift rule, the quantizer."""

from fractions import Fraction
import math

import numpy as np
import pytest

from slimgen.sw.fixed import (MAX_SHIFT, multiplier_shift, quantize_symmetric, requantize,
                              round_half_up_shift, saturate, signed_bits, signed_range,
                              symmetric_max)


def test_widths_and_ranges():
    assert signed_bits(-128, 127) == 8 and signed_bits(-129, 0) == 9 and signed_bits(0, 128) == 9
    assert signed_bits(0, 0) == 1 and signed_bits(-1, 0) == 1
    for b in range(1, 20):
        lo, hi = signed_range(b)
        assert signed_bits(lo, hi) == b and signed_bits(lo - 1, hi) == b + 1
    assert signed_range(8) == (-128, 127) and symmetric_max(8) == 127 and symmetric_max(2) == 1
    with pytest.raises(ValueError, match=r"^The range must have lo ≤ hi, not \[1, 0\]$"):
        signed_bits(1, 0)
    with pytest.raises(ValueError, match=r"^Bit width must be a positive integer, not 0$"):
        signed_range(0)
    with pytest.raises(ValueError, match=r"^Weight bits must be at least 2, not 1$"):
        symmetric_max(1)


def test_saturate():
    v = np.array([-300, -129, -128, 0, 127, 128, 300])
    assert saturate(v, 8).tolist() == [-128, -128, -128, 0, 127, 127, 127]
    assert saturate(v, 8, signed=False).tolist() == [0, 0, 0, 0, 127, 128, 255]


def test_round_half_up_shift_matches_exact_rounding():
    v = np.arange(-1000, 1001)
    for shift in (1, 2, 5, 9):
        expected = [math.floor(Fraction(int(x), 2 ** shift) + Fraction(1, 2)) for x in v]
        assert round_half_up_shift(v, shift).tolist() == expected
    # Ties go up, for negative numbers too.
    assert round_half_up_shift(np.array([-3, -1, 1, 3]), 1).tolist() == [-1, 0, 1, 2]
    assert round_half_up_shift(np.array([1 << 61, -(1 << 61)]), MAX_SHIFT).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"^Shift must be at least 1, not 0$"):
        round_half_up_shift(np.array([1]), 0)
    with pytest.raises(ValueError, match=rf"^Shift must be at most {MAX_SHIFT}, not 63$"):
        round_half_up_shift(np.array([1]), 63)


def test_requantize_relu_and_saturation():
    acc = np.array([-100, 0, 3, 1000, 10 ** 6])
    assert requantize(acc, 1, 2).tolist() == [0, 0, 1, 250, 255]
    assert requantize(acc, 1, 2, relu=False).tolist() == [-25, 0, 1, 127, 127]
    assert requantize(acc, 3, 3, out_bits=4).tolist() == [0, 0, 1, 15, 15]


@pytest.mark.parametrize("mb", [4, 8, 16, 24])
def test_multiplier_shift_rule(mb):
    """M in [2^(mb−2), 2^(mb−1)] (mb − 1 significant bits), relative error ≤ 2^−(mb−1)."""
    rng = np.random.default_rng(mb)
    for ratio in np.exp(rng.uniform(np.log(1e-12), np.log(2.0 ** (mb - 3)), 2000)):
        M, s = multiplier_shift(ratio, mb)
        assert 1 << (mb - 2) <= M <= 1 << (mb - 1) and 1 <= s <= MAX_SHIFT
        assert abs(M / 2 ** s - ratio) <= ratio * 2.0 ** -(mb - 1)
    # Exact powers of two, and the rounding case M = 2^(mb−1): it still fits mb unsigned bits.
    assert multiplier_shift(1.0, mb) == (1 << (mb - 2), mb - 2)
    M, s = multiplier_shift(1.0 - 2.0 ** -(mb + 2), mb)
    assert M == 1 << (mb - 1) and M < 1 << mb and M / 2 ** s == 1.0


def test_multiplier_shift_refuses():
    with pytest.raises(ValueError, match=r"^Requantization ratio 16384.0 is too large for a right "
                                         r"shift; the layer's output scale is smaller than its "
                                         r"accumulator's$"):
        multiplier_shift(16384.0, 16)
    assert multiplier_shift(16383.0, 16) == (16383 * 2, 1)
    with pytest.raises(ValueError, match=r"^Requantization ratio 1e-20 is too small: it needs a "
                                         r"shift of 81, more than 62$"):
        multiplier_shift(1e-20, 16)
    with pytest.raises(ValueError, match=r"^Multiplier bits must be an integer of at least 2, "
                                         r"not 1$"):
        multiplier_shift(1.0, 1)


def test_quantize_symmetric():
    W = np.array([[0.0, 0.5, -1.0], [0.25, -0.125, 0.0]])
    Wq, s = quantize_symmetric(W, 8)
    assert s == 1.0 / 127 and Wq.dtype == np.int64
    assert Wq.tolist() == [[0, 64, -127], [32, -16, 0]]           # rint: 63.5 → 64, 15.875 → 16
    Wq, s = quantize_symmetric(W, 8, channel_axis=0)              # per row
    assert s.shape == (2, 1) and s[1, 0] == 0.25 / 127
    assert Wq.tolist() == [[0, 64, -127], [127, -64, 0]]
    Wq, s = quantize_symmetric(np.zeros((2, 3)), 4)
    assert s == 1.0 and not Wq.any()
    Wq, s = quantize_symmetric(np.array([[0.0, 0.0], [1.0, -3.0]]), 4, channel_axis=0)
    assert s[:, 0].tolist() == [1.0, 3.0 / 7] and Wq.tolist() == [[0, 0], [2, -7]]
    with pytest.raises(ValueError, match=r"^Channel axis must be an axis of the 2-d weights, "
                                         r"not 2$"):
        quantize_symmetric(W, 8, channel_axis=2)


def test_quantize_symmetric_error_bound():
    """|W − s·W_q| ≤ s/2 everywhere, and the largest weight is exactly ±q."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(16, 9)) * (rng.random((16, 9)) < 0.7)
    for bits in (2, 4, 8):
        for axis in (None, 0):
            Wq, s = quantize_symmetric(W, bits, channel_axis=axis)
            assert np.all(np.abs(W - s * Wq) <= s / 2 + 1e-12)
            assert np.abs(Wq).max() == symmetric_max(bits)
            assert np.all(Wq[W == 0] == 0)
