"""The CNN top on Amaranth's simulator: a tiny random CNN against the integer golden model."""

import numpy as np
import pytest

from hw_sim import run_stream
from slimgen.hw.cnn import CNN
from slimgen.sw.cnn_quant import random_int_cnn
from slimgen.sw.golden import argmax_first
from slimgen.sw.winograd import winograd_2d


def _check(dut, model, x_q):
    out, cycles = run_stream(dut, x_q.reshape(-1), len(x_q), max_cycles=100_000)
    logits = np.array([[int(v) for v in o.logits] for o in out])
    expected = model(x_q)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal([int(o.cls) for o in out], argmax_first(expected))
    return cycles


@pytest.mark.parametrize("algs, engines", [
    ((None, winograd_2d(2, 3)), "sparse"),     # direct first layer, F(2×2,3×3) second
    (winograd_2d(2, 3), "dense"),
])
def test_tiny_cnn_matches_golden(algs, engines):
    rng = np.random.default_rng(3)
    model = random_int_cnn(rng, (1, 6, 6), (2, 3), pool=2, n_classes=3, density=0.5)
    x_q = rng.integers(0, 256, (2, model.n_inputs))
    dut = CNN(model, conv_algorithms=algs, lanes=2, engines=engines)
    _check(dut, model, x_q)


def test_two_input_channels_no_pool_counts():
    rng = np.random.default_rng(4)
    model = random_int_cnn(rng, (2, 4, 4), (2,), pool=1, n_classes=2)
    dut = CNN(model, conv_algorithms=winograd_2d(2, 3), conv_lanes=4, lanes=1)
    assert dut.pool is None and dut.lanes == [4, 1] and dut.multipliers == 5
    _check(dut, model, rng.integers(0, 256, (1, model.n_inputs)))


def test_messages():
    model = random_int_cnn(np.random.default_rng(0), (1, 4, 4), (2,), pool=2, n_classes=2)
    with pytest.raises(TypeError, match="Model must be an IntCNN, not 3"):
        CNN(3)
    with pytest.raises(ValueError, match=r"Give one convolution algorithm or one per layer \(1\), "
                                         r"not 2"):
        CNN(model, conv_algorithms=[None, None])
    with pytest.raises(TypeError, match="Convolution algorithm must be a Winograd2D or None"):
        CNN(model, conv_algorithms="F23")
    with pytest.raises(ValueError, match="Engines must be one of dense, sparse"):
        CNN(model, engines="fast")


def test_layer_entries_and_bounds():
    from slimgen.flow import RunConfig
    from slimgen.models import cnn
    model = random_int_cnn(np.random.default_rng(5), (1, 8, 8), (4, 8), pool=2, n_classes=10,
                           density=0.25)
    net = cnn.make_network(model, RunConfig(model="cnn", method="balanced"))
    e = cnn.layer_entries(net)
    assert [x["lanes"] for x in e] == [2, 16, 4]                 # conv0 as slow as conv1
    assert [x["cycles"] for x in e[:2]] == [512, 512]
    assert (e[1]["mults_direct"], e[1]["mults"]) == (36, 16.0)    # 4 channels · 9 → 4 · 16/4
    assert [x["mults_per_inference"] for x in e] == [1024, 8192, int((model.dense[0].W != 0).sum())]
    assert cnn.cycles_lower_bound(e) == -(-sum(x["mults_per_inference"] for x in e) // 22)
    assert 512 + e[2]["cycles"] < cnn.cycles_estimate(net) < sum(x["cycles"] for x in e)
