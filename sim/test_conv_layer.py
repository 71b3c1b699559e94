"""Launch the convolution-layer bench: the layer's integer output (before requantization) must
equal the direct integer correlation for F(2×2,3×3), F(4×4,3×3) Toom-Cook and CRT, F(6×6,3×3),
F(2×2,5×5) and the direct engine, on random layers, extreme weights and data, and the first
layer of a trained digits CNN; on Icarus and Verilator."""

from dataclasses import replace

import numpy as np
import pytest

from slimgen.sim.conv_layer import verify_conv_layer
from slimgen.sim.runner import BenchFailed, default_simulator
from slimgen.sw.winograd import winograd_2d

from .testing import random_conv_layer, require_simulator

ALGORITHMS = {
    "F2x2_3x3": lambda: winograd_2d(2, 3),
    "F4x4_3x3_toomcook": lambda: winograd_2d(4, 3),
    "F4x4_3x3_crt": lambda: winograd_2d(4, 3, "crt"),
    "F6x6_3x3": lambda: winograd_2d(6, 3),
    "direct": lambda: None,
}
LANES = {"F2x2_3x3": 4, "F4x4_3x3_toomcook": 9, "F4x4_3x3_crt": 7, "F6x6_3x3": 8, "direct": 9}


def _frames(rng, n, c, h, w):
    x = rng.integers(0, 256, (n, c, h, w))
    x[0] = 255                      # all maximum
    x[1, :, ::2] = 0                # stripes of minimum
    return x


BOTH = ["F2x2_3x3", "F4x4_3x3_crt"]   # on both simulators; the rest on the default one
CASES = [(name, sim) for name in ALGORITHMS
         for sim in (["icarus", "verilator"] if name in BOTH else [None])]


@pytest.mark.sim
@pytest.mark.parametrize("name,sim", CASES)
def test_conv_layer_equals_direct_correlation(name, sim, tmp_path):
    """Raw accumulators (bias included) of a random layer, edge tiles (7×9 input, padding 1)."""
    sim = sim or default_simulator()
    require_simulator(sim)
    rng = np.random.default_rng(len(name))
    layer = random_conv_layer(rng, 3, 4, 3, requant=False)
    verify_conv_layer(layer, _frames(rng, 3, 3, 7, 9), algorithm=ALGORITHMS[name](),
                      lanes=LANES[name], build_dir=tmp_path, sim=sim)


@pytest.mark.sim
@pytest.mark.parametrize("extreme", ["max", "min"])
def test_conv_layer_extreme_weights(extreme, tmp_path):
    """Bit growth bounds: every weight ±127 with all-255 frames, F(6×6,3×3) (widest growth)."""
    sim = default_simulator()
    require_simulator(sim)
    rng = np.random.default_rng(7)
    layer = random_conv_layer(rng, 4, 2, 3, requant=False, extreme=extreme)
    verify_conv_layer(layer, _frames(rng, 2, 4, 6, 6), algorithm=winograd_2d(6, 3), lanes=16,
                      build_dir=tmp_path, sim=sim)


@pytest.mark.sim
def test_conv_layer_requantized_5x5(tmp_path):
    sim = default_simulator()
    require_simulator(sim)
    rng = np.random.default_rng(5)
    layer = random_conv_layer(rng, 2, 3, 5, requant=True)
    verify_conv_layer(layer, _frames(rng, 2, 2, 6, 7), algorithm=winograd_2d(2, 5), lanes=12,
                      build_dir=tmp_path, sim=sim)


@pytest.fixture(scope="module")
def digits_conv():
    """The first convolution of a small digits CNN trained with slimgen.sw.nn, quantized as
    the flow does it; four test images (1, 8, 8)."""
    from .testing import trained_int_network
    int_net, x_q, _ = trained_int_network("cnn", view="image", channels=(4,),
                                          train_options={"epochs": 3})
    return int_net.layers[0], x_q[:4].reshape(4, 1, 8, 8)


@pytest.mark.sim
@pytest.mark.slow
def test_digits_cnn_first_layer(digits_conv, tmp_path):
    """Raw accumulators with F(4×4,3×3) CRT, then requantized activations with F(2×2,3×3)."""
    sim = default_simulator()
    require_simulator(sim)
    layer, x = digits_conv
    raw = replace(layer, requant=False, relu=False)
    verify_conv_layer(raw, x, algorithm=winograd_2d(4, 3, "crt"), lanes=7,
                      build_dir=tmp_path / "crt", sim=sim)
    verify_conv_layer(layer, x, algorithm=winograd_2d(2, 3), lanes=4,
                      build_dir=tmp_path / "f2", sim=sim)


@pytest.mark.sim
def test_conv_bench_catches_a_wrong_weight(tmp_path, monkeypatch):
    """One weight off by one in the RTL, golden model of the right layer: the bench must fail."""
    import slimgen.sim.conv_layer as cl
    sim = default_simulator()
    require_simulator(sim)
    rng = np.random.default_rng(3)
    layer = random_conv_layer(rng, 2, 2, 3, requant=False)
    W = layer.W.copy()
    W[1, 0, 1, 1] += 1
    broken = replace(layer, W=W)
    frames = _frames(rng, 2, 2, 5, 5)
    orig = cl.conv
    monkeypatch.setattr(cl, "conv", lambda x, _layer: orig(x, layer))
    with pytest.raises(BenchFailed, match=r"1 of 1 tests failed"):
        verify_conv_layer(broken, frames, algorithm=winograd_2d(2, 3), lanes=4,
                          build_dir=tmp_path, sim=sim, log_file=tmp_path / "sim.log")
