# amaranth: UnusedElaboratable=no
"""The folded MLP, every layer on the compiler's shared array
(:func:`slimgen.hw.compiler.compile_network`), against the golden model on Amaranth's
simulator, with the cycle counts exact."""

import numpy as np
import pytest

from slimgen.hw.compiler import compile_network
from slimgen.sim.testing import random_mlp
from slimgen.sw.golden import argmax_first

from hw_sim import run_stream

_model = random_mlp


def _check(q, lanes, x):
    dut = compile_network(q, lanes=lanes)
    out, cycles = run_stream(dut, x.reshape(-1), len(x))
    expected = q(x)
    for k, payload in enumerate(out):
        assert [int(v) for v in payload.logits] == expected[k].tolist(), f"sample {k}"
        assert int(payload.cls) == argmax_first(expected[k:k + 1])[0]
    return dut, cycles


@pytest.mark.parametrize("sizes, lanes", [
    ((10, 6, 4), 3),          # groups that do not divide the layers
    ((12, 8, 5, 3), 4),       # three layers: both activation buffers, back and forth
    ((9, 7, 2), 7),           # one group per layer, a last layer narrower than the lanes
    ((5, 1, 2), 1),           # one lane, a one-neuron hidden layer
    ((3, 9, 2), 8),           # a layer shorter than the drain: groups wait for it
    ((1, 4, 2), 2),           # one input: every group's first product is also its last
])
def test_mlp_matches_golden_on_random_models(sizes, lanes):
    rng = np.random.default_rng(sum(sizes) + lanes)
    q = _model(rng, sizes)
    _check(q, lanes, rng.integers(0, 256, (5, sizes[0])))


@pytest.mark.parametrize("extreme", ["max", "min"])
def test_mlp_bit_growth_extremes(extreme):
    rng = np.random.default_rng(3)
    q = _model(rng, (16, 8, 4), extreme=extreme)
    _check(q, 4, np.array([[255] * 16, [0] * 16, list(range(0, 256, 16))]))


def test_the_digits_mlp_within_its_bound():
    from slimgen.sim.testing import trained_int_network
    q, x, _ = trained_int_network("mlp", view="vector", sizes=(64, 32, 10),
                                  train_options={"epochs": 2})
    dut, cycles = _check(q, 8, x[:3])
    assert cycles == dut.cycles + 2 * dut.interval     # three samples back to back
    bound = (64 * 32 + 32 * 10) / 8
    assert dut.cycles / bound < 1.15


@pytest.mark.parametrize("sizes, lanes", [
    ((64, 32, 10), 8),        # the digits MLP
    ((10, 6, 4), 3),
    ((12, 8, 5, 3), 4),
    ((5, 1, 2), 1),           # a one-neuron hidden layer on one lane
    ((1, 4, 2), 2),           # one input: every group's first tap is also its last
])
def test_mlp_cycles_and_interval_exact(sizes, lanes):
    """Issue 19: one sample alone takes ``cycles`` (first input to result, both counted), and
    samples back to back give results ``interval`` apart, exactly (with the weights in SPRAM:
    sim/test_network.py)."""
    rng = np.random.default_rng(sum(sizes) + lanes)
    q = _model(rng, sizes)
    x = rng.integers(0, 256, (3, sizes[0]))
    _, one = _check(q, lanes, x[:1])
    dut, three = _check(q, lanes, x)
    assert one == dut.cycles
    assert three - one == 2 * dut.interval


def test_the_folded_lanes_are_lanes_times_layers_within_the_widest_layer_and_the_board():
    """A deep MLP's default (4 lanes a layer, 5 layers) would need 20 multipliers; the
    iCEBreaker has 8 DSP blocks, the ULX3S-85F 156."""
    from types import SimpleNamespace

    from slimgen.models.mlp import make_network
    rng = np.random.default_rng(5)
    q = _model(rng, (64, 32, 32, 32, 16, 10))
    for board, lanes in (("icebreaker", 8), ("ulx3s-85f", 20), (None, 20)):
        net = make_network(q, SimpleNamespace(engines="folded", lanes=4, board=board,
                                              weight_memory="bram"))
        net._MustUse__silence = True
        assert net.lanes == lanes, board
    assert net.__dict__.get("slimgen_note") is None          # 20 lanes: as asked
    net = make_network(q, SimpleNamespace(engines="folded", lanes=4, board="icebreaker",
                                          weight_memory="bram"))
    net._MustUse__silence = True
    assert net.slimgen_note == ("the folded array has 8 lanes, not 4 lanes × 5 layers = 20: "
                                "at most the icebreaker's 8 DSP blocks")
    net = make_network(q, SimpleNamespace(engines="folded", lanes=16, weight_memory="bram"))
    net._MustUse__silence = True
    assert net.lanes == 32                       # the widest layer's outputs
    assert net.slimgen_note == ("the folded array has 32 lanes, not 16 lanes × 5 layers = 80: "
                                "at most the widest layer's 32 outputs")
