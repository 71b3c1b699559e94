"""Fast tests on Amaranth's simulator: transform units, tile engines and the conv layer against
the golden model, plus the error messages."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from hw_arrays import pack, run_arrays, unpack

from slimgen.hw.conv_layer import ConvLayer
from slimgen.hw.direct_conv import direct_tile
from slimgen.hw.transform import Transform2D, TransformUnit
from slimgen.hw.winograd_tile import winograd_tile
from slimgen.sim.testing import random_conv_layer
from slimgen.sw.golden import conv
from slimgen.sw.winograd import correlate_direct, integer_form, winograd_1d, winograd_2d


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


@pytest.mark.parametrize("alg,lanes", [((2, 3), 4), ((2, 3), 16), ((4, 3, "crt"), 7),
                                       ((4, 3), 36), ((6, 3), 8)])
def test_winograd_tile(alg, lanes):
    rng = np.random.default_rng(1)
    a = winograd_2d(*alg)
    L = random_conv_layer(rng, 2, 2, 3, requant=False)
    eng = winograd_tile(L, a, lanes=lanes)
    N, m = a.N[0], a.m[0]
    wins = rng.integers(0, 256, (2, L.c_in, N, N))
    wins[0] = 255
    out, _, products = run_arrays(eng, [pack(w.reshape(-1), 8) for t in wins for w in t],
                                  2 * L.c_out, extra=eng.active)
    want = np.array([correlate_direct(t, L.W) for t in wins]).reshape(-1)
    got = np.array([unpack(o, eng.y_bits, m * m) for o in out]).reshape(-1)
    assert np.array_equal(got, want)
    assert products == 2 * L.c_in * L.c_out * a.alpha


def test_direct_tile():
    rng = np.random.default_rng(2)
    L = random_conv_layer(rng, 2, 3, 3, requant=False)
    eng = direct_tile(L, tile=2, lanes=18)
    wins = rng.integers(0, 256, (2, 2, 4, 4))
    out, _, _ = run_arrays(eng, [pack(w.reshape(-1), 8) for t in wins for w in t], 6)
    want = np.array([correlate_direct(t, L.W) for t in wins]).reshape(-1)
    assert np.array_equal(np.array([unpack(o, eng.y_bits, 4) for o in out]).reshape(-1), want)


@pytest.mark.parametrize("alg", [None, (2, 3), (4, 3, "crt")])
def test_conv_layer_two_frames(alg):
    rng = np.random.default_rng(3)
    L = random_conv_layer(rng, 2, 3, 3, requant=True)
    dut = ConvLayer(L, height=5, width=6, algorithm=alg and winograd_2d(*alg),
                    lanes=None if alg is None else (4 if alg == (2, 3) else 7))
    xs = rng.integers(0, 256, (2, 2, 5, 6))
    want = conv(xs.transpose(0, 2, 3, 1), L).reshape(-1)
    out, _, _ = run_arrays(dut, xs.transpose(0, 2, 3, 1).reshape(-1), want.size)
    assert np.array_equal(np.array(out), want)


def test_messages():
    L = random_conv_layer(np.random.default_rng(0), 1, 1, 3)
    with pytest.raises(ValueError, match=r"^Lane count must be an integer from 1 to α² = 16, "
                                         r"not 17$"):
        winograd_tile(L, winograd_2d(2, 3), lanes=17)
    with pytest.raises(ValueError, match=r"^Lane count must be a multiple q·9 of the kernel's 9 "
                                         r"taps with q dividing 4, not 10$"):
        direct_tile(L, lanes=10)
    with pytest.raises(ValueError, match=r"^Height must be a positive integer, not 0$"):
        ConvLayer(L, height=0, width=4)
    with pytest.raises(ValueError, match=r"^Algorithm F\(2×2, 5×5\) is for 5×5 kernels, the "
                                         r"layer has 3×3$"):
        winograd_tile(L, winograd_2d(2, 5))
    from dataclasses import replace
    with pytest.raises(TypeError, match=r"^Layer must be a 2-D IntConv, not 3$"):
        ConvLayer(3, height=4, width=4)
    with pytest.raises(ValueError, match=r"^The convolution engines take square kernels, stride "
                                         r"1 and the same padding on every side, not kernel "
                                         r"\(3, 3\), stride 2 and padding \(\(1, 1\), \(1, 1\)\)$"):
        direct_tile(replace(L, stride=2))
    with pytest.raises(ValueError, match=r"^The convolution engines take unsigned inputs$"):
        winograd_tile(replace(L, in_signed=True), winograd_2d(2, 3))


@pytest.mark.parametrize("alg", [(2, 3), (4, 3, "crt")])
def test_winograd_arithmetic_equals_the_golden_convolution(alg):
    """The hardware's integer Winograd form, exactly and in its truncated width, gives the
    accumulators of the golden model's convolution (edge tiles cropped)."""
    from dataclasses import replace
    from slimgen.hw.winograd_tile import filter_range
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
