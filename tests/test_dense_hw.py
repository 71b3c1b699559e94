# amaranth: UnusedElaboratable=no
"""The dense engine and the network top on Amaranth's simulator, against the golden model."""

import numpy as np
import pytest

from slimgen.hw.dense import DenseEngine
from slimgen.hw.lib.argmax import Argmax
from slimgen.hw.network import Network
from slimgen.sw.fixed import requantize
from slimgen.sw.golden import argmax_first, dense_accumulate
from slimgen.sim.testing import dense_network, random_dense_layer

from hw_sim import run_stream


def golden_layer(layer, x):
    acc = dense_accumulate(x[None], layer.W, layer.b)[0]
    if not layer.requant:
        return acc
    return requantize(acc, layer.multiplier, layer.shift, relu=True, out_bits=layer.out_bits)


def run_layer(layer, vectors, lanes):
    dut = DenseEngine(layer, lanes=lanes)
    out, cycles = run_stream(dut, np.concatenate(vectors), len(vectors) * layer.n_out)
    return np.array(out, dtype=np.int64).reshape(len(vectors), layer.n_out), cycles


@pytest.mark.parametrize("n_in,n_out,lanes,requant", [
    (16, 8, 1, True), (16, 8, 4, True), (13, 10, 4, False), (9, 7, 3, True), (5, 3, 3, False),
])
def test_dense_engine_random(n_in, n_out, lanes, requant):
    rng = np.random.default_rng(n_in * 100 + n_out * 10 + lanes)
    layer = random_dense_layer(rng, n_in, n_out, requant=requant, density=0.7)
    vectors = [rng.integers(0, 256, n_in) for _ in range(3)]
    out, _ = run_layer(layer, vectors, lanes)
    expected = np.stack([golden_layer(layer, x) for x in vectors])
    np.testing.assert_array_equal(out, expected)
    if requant:  # the test data reaches both ends of the output range
        assert expected.min() == 0 and expected.max() == 255


@pytest.mark.parametrize("extreme", ["max", "min"])
def test_dense_engine_bit_growth_extremes(extreme):
    rng = np.random.default_rng(1)
    layer = random_dense_layer(rng, 12, 4, requant=False, extreme=extreme)
    vectors = [np.full(12, 255), np.zeros(12, dtype=np.int64)]
    out, _ = run_layer(layer, vectors, 2)
    expected = np.stack([golden_layer(layer, x) for x in vectors])
    np.testing.assert_array_equal(out, expected)
    # The all-255 input drives the accumulator to the edge of its exact width.
    edge = expected[0] - layer.b
    assert np.all(np.abs(edge) == 255 * 12 * 127)


def test_dense_engine_rejects_bad_lanes():
    layer = random_dense_layer(np.random.default_rng(0), 4, 3)
    with pytest.raises(ValueError, match=r"^Lane count must be at most the layer's 3 outputs, "
                                         r"not 4$"):
        DenseEngine(layer, lanes=4)
    with pytest.raises(TypeError, match=r"^Lane count must be a positive integer, not 0$"):
        DenseEngine(layer, lanes=0)


def test_network_matches_golden_on_random_model():
    rng = np.random.default_rng(7)
    l0 = random_dense_layer(rng, 10, 6)
    l1 = random_dense_layer(rng, 6, 4, requant=False)
    q = dense_network([l0, l1])
    x = rng.integers(0, 256, (4, 10))
    dut = Network(q, lanes=[3, 2])
    out, _ = run_stream(dut, x.reshape(-1), len(x))
    expected = q(x)
    for k, payload in enumerate(out):
        assert [int(v) for v in payload.logits] == expected[k].tolist()
        assert int(payload.cls) == argmax_first(expected[k:k + 1])[0]


def test_argmax_ties_go_to_lowest_index():
    dut = Argmax(n_classes=4, logit_bits=8)
    out, _ = run_stream(dut, [3, 7, 7, -2, -5, -5, -5, -5], 2)
    assert [int(p.cls) for p in out] == [1, 0]
    assert [int(v) for v in out[1].logits] == [-5, -5, -5, -5]


def test_network_rejects_wrong_lane_list():
    rng = np.random.default_rng(0)
    q = dense_network([random_dense_layer(rng, 4, 3), random_dense_layer(rng, 3, 2,
                                                                         requant=False)])
    with pytest.raises(ValueError, match=r"^Give one lane count or one per layer \(2\), not 3$"):
        Network(q, lanes=[1, 1, 1])


@pytest.mark.parametrize("engines,layout", [("sparse", "rows"), (["sparse", "dense"], "banks")])
def test_network_with_sparse_engines_matches_golden(engines, layout):
    rng = np.random.default_rng(11)
    l0 = random_dense_layer(rng, 12, 8, density=0.3)
    l1 = random_dense_layer(rng, 8, 3, requant=False, density=0.5)
    q = dense_network([l0, l1])
    x = rng.integers(0, 256, (3, 12))
    dut = Network(q, lanes=2, engines=engines, layout=layout)
    out, _ = run_stream(dut, x.reshape(-1), len(x))
    expected = q(x)
    for k, payload in enumerate(out):
        assert [int(v) for v in payload.logits] == expected[k].tolist()


def test_network_rejects_unknown_engine():
    rng = np.random.default_rng(0)
    q = dense_network([random_dense_layer(rng, 4, 3), random_dense_layer(rng, 3, 2,
                                                                         requant=False)])
    with pytest.raises(ValueError, match=r"^Engines must be one of dense, sparse or one per layer "
                                         r"\(2\), not \['dense', 'winograd'\]$"):
        Network(q, engines=["dense", "winograd"])


def test_engines_refuse_what_they_cannot_compute():
    from dataclasses import replace
    from slimgen.sim.testing import random_cnn
    rng = np.random.default_rng(0)
    l0, l1 = random_dense_layer(rng, 4, 3), random_dense_layer(rng, 3, 2, requant=False)
    with pytest.raises(TypeError, match=r"^Model must be an IntNetwork, not \(IntDense"):
        Network((l0, l1))
    with pytest.raises(ValueError, match=r"^The MLP engines take dense layers only, not conv "
                                         r"layers$"):
        Network(random_cnn(rng))
    with pytest.raises(ValueError, match=r"^Layer 1 is hidden: it must requantize with ReLU$"):
        Network(dense_network([l0, random_dense_layer(rng, 3, 3, requant=False), l1]))
    with pytest.raises(ValueError, match=r"^The last layer must give its accumulators"):
        Network(dense_network([l0, random_dense_layer(rng, 3, 2)]))
    per_channel = replace(l0, multiplier=np.array([l0.multiplier] * 3))
    with pytest.raises(ValueError, match=r"^Layer 0 has one multiplier per output channel; the "
                                         r"engines take one per layer"):
        Network(dense_network([per_channel, l1]))
    with pytest.raises(TypeError, match=r"^Layer must be an IntDense, not 3$"):
        DenseEngine(3)
    with pytest.raises(ValueError, match=r"^The dense engine takes unsigned inputs"):
        DenseEngine(replace(l1, in_signed=True))
