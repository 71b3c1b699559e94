"""Fast tests on Amaranth's simulator: the transform units against NumPy, and the integer Winograd
arithmetic of the CNN engine against the golden convolution."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from hw_arrays import pack, run_arrays, unpack

from slimgen.hw.lib.transform import Transform2D, TransformUnit
from slimgen.sim.testing import random_conv_layer
from slimgen.sw.golden import conv
from slimgen.sw.winograd import integer_form, winograd_1d, winograd_2d


@pytest.mark.parametrize("alg", [(2, 3), (4, 3), (4, 3, "crt"), (6, 3)])
@pytest.mark.parametrize("stages", [1, 3])
def test_transform_2d_matches_numpy(alg, stages):
    f = integer_form(winograd_1d(*alg))
    BT = np.array(f.BT.matrix)
    dut = Transform2D(f.BT.matrix, f.BT.matrix, in_shape=unsigned(8), stages=stages)
    rng = np.random.default_rng(0)
    N = BT.shape[1]
    xs = [rng.integers(0, 256, (N, N)) for _ in range(6)] + [np.full((N, N), 255),
                                                              np.zeros((N, N), int)]
    out, _, _ = run_arrays(dut, [pack(x.reshape(-1), 8) for x in xs], len(xs))
    for x, o in zip(xs, out):
        assert unpack(o, dut.out_bits, BT.shape[0] ** 2) == (BT @ x @ BT.T).reshape(-1).tolist()


def test_transform_modular_width_and_sharing():
    M = [[3, -5, 7], [3, -5, 0], [0, 7, 1]]
    flat = TransformUnit(M, in_shape=unsigned(4), share=False)
    shared = TransformUnit(M, in_shape=unsigned(4), share=True)
    assert shared.adders < flat.adders
    dut = TransformUnit(M, in_shape=unsigned(4), width=5, stages=1)
    xs = [[15, 0, 15], [1, 2, 3], [15, 15, 15]]
    out, _, _ = run_arrays(dut, [pack(x, 4) for x in xs], 3)
    for x, o in zip(xs, out):
        want = [((v + 16) % 32) - 16 for v in (np.array(M) @ x)]
        assert unpack(o, 5, 3) == want


@pytest.mark.parametrize("alg", [(2, 3), (4, 3, "crt")])
def test_winograd_arithmetic_equals_the_golden_convolution(alg):
    """The hardware's integer Winograd form, exactly and in its truncated width, gives the
    accumulators of the golden model's convolution (edge tiles cropped)."""
    from dataclasses import replace
    from slimgen.hw.cnn_schedule import filter_range
    from slimgen.sw.winograd.hardware import winograd_accumulate
    from slimgen.sw.fixed import signed_bits
    rng = np.random.default_rng(4)
    L = random_conv_layer(rng, 3, 2, 3, requant=False)
    x = rng.integers(0, 256, (7, 9, 3))
    x[0] = 255
    a = winograd_2d(*alg)
    want = conv(x[None], L)[0]
    np.testing.assert_array_equal(winograd_accumulate(x, L, a), want)
    width = signed_bits(*filter_range(L.W, L.in_bits))      # y's, the transform domain's + k
    no_bias = replace(L, b=np.zeros(2, dtype=np.int64))
    np.testing.assert_array_equal(winograd_accumulate(x, no_bias, a, width) + L.b, want)
    with pytest.raises(ValueError, match=r"^The Winograd form takes a 2-D convolution with "
                                         r"stride 1"):
        winograd_accumulate(x, replace(L, stride=2), a)
