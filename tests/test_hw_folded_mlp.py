# amaranth: UnusedElaboratable=no
"""FoldedMlp (every layer on one shared array) against the golden model, on Amaranth's simulator."""

import numpy as np
import pytest

from slimgen.hw.folded_mlp import FoldedMlp
from slimgen.sim.testing import dense_network, random_dense_layer, random_mlp
from slimgen.sw.golden import argmax_first

from hw_sim import run_stream

_model = random_mlp


def _check(q, lanes, x):
    dut = FoldedMlp(q, lanes=lanes)
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
    ((3, 9, 2), 8),           # a layer shorter than the bank: groups wait for the serializer
    ((1, 4, 2), 2),           # one input: every group's first product is also its last
])
def test_folded_mlp_matches_golden_on_random_models(sizes, lanes):
    rng = np.random.default_rng(sum(sizes) + lanes)
    q = _model(rng, sizes)
    _check(q, lanes, rng.integers(0, 256, (5, sizes[0])))


@pytest.mark.parametrize("extreme", ["max", "min"])
def test_folded_mlp_bit_growth_extremes(extreme):
    rng = np.random.default_rng(3)
    q = _model(rng, (16, 8, 4), extreme=extreme)
    _check(q, 4, np.array([[255] * 16, [0] * 16, list(range(0, 256, 16))]))


def test_folded_mlp_on_the_digits_mlp_meets_its_cycle_estimate():
    from slimgen.sim.testing import trained_int_network
    q, x, _ = trained_int_network("mlp", view="vector", sizes=(64, 32, 10),
                                  train_options={"epochs": 2})
    dut, cycles = _check(q, 8, x[:3])
    # three samples back to back; the estimate is one sample's latency
    assert cycles <= 3 * dut.cycles_per_vector + 8
    bound = (64 * 32 + 32 * 10) / 8
    assert dut.cycles_per_vector / bound < 1.25


def test_folded_mlp_refuses_bad_lanes_and_layers():
    rng = np.random.default_rng(0)
    q = _model(rng, (6, 4, 3))
    with pytest.raises(ValueError, match=r"^Lane count must be an integer from 1 to the "
                                         r"widest layer's 4 outputs, not 5$"):
        FoldedMlp(q, lanes=5)
    bad = dense_network([q.layers[0], random_dense_layer(rng, 4, 3, requant=True)])
    with pytest.raises(ValueError, match="The last layer must give its accumulators"):
        FoldedMlp(bad, lanes=2)
    with pytest.raises(TypeError, match="Model must be an IntNetwork"):
        FoldedMlp(q.layers, lanes=2)


@pytest.mark.parametrize("sizes, lanes", [
    ((64, 32, 10), 8),        # the digits MLP: 336 cycles (344 predicted before issue 19)
    ((10, 6, 4), 3),
    ((12, 8, 5, 3), 4),
    ((5, 1, 2), 1),           # groups shorter than the bank's P + 3: they wait for it
    ((1, 4, 2), 2),           # one input: the next sample's first group waits too
])
def test_folded_mlp_cycles_and_interval_exact(sizes, lanes):
    """Issue 19: one sample alone takes cycles_per_vector (first input to result, both
    counted), and samples back to back give results interval apart, exactly."""
    rng = np.random.default_rng(sum(sizes) + lanes)
    q = _model(rng, sizes)
    x = rng.integers(0, 256, (3, sizes[0]))
    _, one = _check(q, lanes, x[:1])
    dut, three = _check(q, lanes, x)
    assert one == dut.cycles_per_vector == sum(dut.layer_cycles)
    assert three - one == 2 * dut.interval
