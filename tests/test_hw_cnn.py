"""The CNN on one shared multiplier array, on Amaranth's simulator: small random CNNs against
the integer golden model, bit for bit, and its cycle count against its estimate."""

from dataclasses import replace

import numpy as np
import pytest

from hw_sim import run_stream
from slimgen.hw.cnn import CNN
from slimgen.sim.testing import random_cnn
from slimgen.sw.golden import argmax_first


def _model(seed, in_shape, channels, n_classes=5):
    # no convolution bias: activations of every layer lie between zero and saturation
    return random_cnn(np.random.default_rng(seed), in_shape, channels, pool=2,
                      n_classes=n_classes, density=0.5, conv_bias=False)


def _prune_filters(model, rng, fraction):
    """``model`` with about ``fraction`` of its convolution filters ``W[k, c]`` set to zero,
    and every filter of output channel 0 of the last convolution (its outputs: bias only)."""
    convs = model.of_kind("conv")
    layers = []
    for layer in model.layers:
        if layer.kind == "conv":
            W = layer.W.copy()
            W[rng.random(W.shape[:2]) < fraction] = 0
            if layer is convs[-1]:
                W[0] = 0
            layer = replace(layer, W=W)
        layers.append(layer)
    return replace(model, layers=tuple(layers))


def _keep_filters(model, counts):
    """``model`` whose convolution ``l`` (a key of ``counts``) keeps, in output channel ``k``,
    the filters of its first ``counts[l][k]`` input channels (the others set to zero)."""
    convs = model.of_kind("conv")
    layers = []
    for layer in model.layers:
        if layer.kind == "conv" and convs.index(layer) in counts:
            W = layer.W.copy()
            for k, n in enumerate(counts[convs.index(layer)]):
                W[k, n:] = 0
            layer = replace(layer, W=W)
        layers.append(layer)
    return replace(model, layers=tuple(layers))


def _features(model, x_q):
    """The pooled feature maps of inputs x_q (n, n_inputs), (n, Hp, Wp, C)."""
    return model.trace(x_q)[len(model.of_kind("conv"))]


def _check(dut, model, x_q):
    out, cycles = run_stream(dut, x_q.reshape(-1), len(x_q), max_cycles=100_000)
    logits = np.array([[int(v) for v in o.logits] for o in out])
    expected = model(x_q)
    np.testing.assert_array_equal(logits, expected)
    np.testing.assert_array_equal([int(o.cls) for o in out], argmax_first(expected))
    return cycles


@pytest.mark.parametrize("in_shape, channels, lanes, engine", [
    ((6, 6, 1), (2, 3), 4, "sparse"),       # R = 1 row of M per step, four steps
    ((5, 5, 2), (3, 2), 8, "dense"),        # two rows per step; edge tiles cropped
    ((6, 6, 1), (2, 2, 3), 16, "sparse"),   # three convolutions; every element in one step
])
def test_matches_golden(in_shape, channels, lanes, engine):
    model = _model(3, in_shape, channels)
    x_q = np.random.default_rng(4).integers(0, 256, (2, model.n_inputs))
    feats = _features(model, x_q)
    assert 0 < (feats > 0).mean() < 1 and (feats < 255).any()     # lively, not all clipped
    _check(CNN(model, lanes=lanes, engine=engine), model, x_q)


@pytest.mark.parametrize("lanes", [4, 8])
def test_pruned_filters_skipped(lanes):
    model = _prune_filters(_model(7, (6, 6, 1), (3, 4)), np.random.default_rng(8), 0.5)
    dut = CNN(model, lanes=lanes)
    assert dut.schedule.filters[1][0] == [0] and sum(map(len, dut.schedule.filters[1])) < 12
    x_q = np.random.default_rng(9).integers(0, 256, (2, model.n_inputs))
    _check(dut, model, x_q)


@pytest.mark.parametrize("lanes, channels, counts", [
    (16, (4, 6, 4), {1: [4, 1, 3, 1, 2, 4], 2: [6, 1, 5, 2]}),   # conv1 into the banks
    (8, (4, 6), {1: [4, 1, 3, 1, 2, 4]}),                          # conv1 into the max-pool
])
def test_short_channel_after_a_full_one(lanes, channels, counts):
    # Issue 16: a k with S·n_k < m² products right after a k with S·n_k ≥ m² used to end fewer
    # than m² cycles after it, and the output path dropped the rest of the earlier k's tile
    # (magnitude pruning to 90 % with 16 lanes, to 95 % with 8). S·n_k is n_k with 16 lanes,
    # 2·n_k with 8; m² = 4.
    model = _keep_filters(_model(11, (4, 4, 1), channels), counts)
    dut = CNN(model, lanes=lanes)
    assert [[len(f) for f in dut.schedule.filters[j]] for j in counts] == list(counts.values())
    x_q = np.random.default_rng(12).integers(0, 256, (2, model.n_inputs))
    feats = _features(model, x_q)
    assert 0 < (feats > 0).mean() < 1 and (feats < 255).any()
    _check(dut, model, x_q)


def test_latency_is_the_estimate():
    model = _model(5, (8, 8, 1), (4, 8), n_classes=10)
    dut = CNN(model, lanes=4)
    x_q = np.random.default_rng(6).integers(0, 256, (1, model.n_inputs))
    cycles = _check(dut, model, x_q)
    assert cycles == dut.schedule.cycles_estimate() == 2679    # 2,677 before issue 19
    sch = dut.schedule
    assert dut.multipliers == 4 and sch.inner_cycles(1, 0) == 16 and sch.conv_cycles(1) == 2048


def test_messages():
    model = _model(0, (4, 4, 1), (2,))
    with pytest.raises(TypeError, match="Model must be an IntNetwork, not 3"):
        CNN(3)
    with pytest.raises(TypeError, match="Algorithm must be a Winograd2D or None, not 'F23'"):
        CNN(model, algorithm="F23")
    with pytest.raises(ValueError, match="Lane count must be a multiple of α = 4 that divides "
                                         "α² = 16, not 6"):
        CNN(model, lanes=6)
    with pytest.raises(ValueError, match="Engine must be one of sparse, dense, not 'fast'"):
        CNN(model, engine="fast")
    with pytest.raises(ValueError, match="The shared array takes the 'rows' layout, not 'banks'"):
        CNN(model, layout="banks")
    odd = random_cnn(np.random.default_rng(0), (6, 6, 1), (2,), pool=3, n_classes=2)
    with pytest.raises(ValueError, match="The max-pool window must equal the output tile "
                                         "m = 2, not 3"):
        CNN(odd)


def test_layer_entries_and_bounds():
    from slimgen.flow import RunConfig
    from slimgen.models import cnn
    model = _model(5, (8, 8, 1), (4, 8), n_classes=10)
    net = cnn.make_network(model, RunConfig(model="cnn", method="balanced"))
    e = cnn.layer_entries(net)
    assert cnn.multipliers(net) == 4 and [x["lanes"] for x in e] == [4, 4, 4]
    assert (e[1]["mults_direct"], e[1]["mults"]) == (36, 16.0)    # 4 channels · 9 → 4 · 16/4
    assert [x["nonzero_filters"] for x in e[:2]] == [4, 32]
    nnz = int((model.of_kind("dense")[0].W != 0).sum())
    assert [x["mults_per_inference"] for x in e] == [1024, 8192, nnz]
    assert e[2]["engine"] == "sparse rows, shared array" and sum(e[2]["nonzeros_per_group"]) == nnz
    assert [x["cycles"] for x in e[:2]] == [16 + 16 * 16, 64 + 16 * 128]
    bound = -(-(1024 + 8192 + nnz) // 4)
    assert bound < cnn.cycles_estimate(net) < 1.25 * bound
    pruned = cnn.make_network(_prune_filters(model, np.random.default_rng(1), 0.5),
                              RunConfig(model="cnn", method="balanced"))
    e = cnn.layer_entries(pruned)
    W = pruned.schedule.convs[1].W
    filters = int(np.any(W != 0, axis=(2, 3)).sum())
    assert e[1]["nonzero_filters"] == filters < sum(map(len, pruned.schedule.filters[1])) < 32
    assert e[1]["mults_per_inference"] == 16 * 16 * filters
    assert e[1]["cycles"] == 64 + 16 * pruned.schedule.tile_cycles(1) < 64 + 16 * 128


def test_structure_checked():
    from slimgen.hw.cnn_schedule import cnn_parts
    from slimgen.sim.testing import random_mlp
    model = _model(0, (4, 4, 1), (2, 3))
    conv0, conv1, pool, flatten, dense = model.layers
    assert cnn_parts(model) == ((conv0, conv1), 2, (dense,), (1, 4, 4))
    with pytest.raises(ValueError, match=r"^The CNN takes convolutions, a max-pool, a flatten "
                                         r"and dense layers, not dense, dense$"):
        CNN(random_mlp(np.random.default_rng(0), (4, 3, 2)))
    with pytest.raises(ValueError, match=r"^Convolution 1 must be 2-D with stride 1 and the same "
                                         r"padding on every side, not stride 1 and padding "
                                         r"\(\(0, 1\), \(1, 1\)\)$"):
        cnn_parts(replace(model, layers=(conv0, replace(conv1, pad=((0, 1), (1, 1))), pool,
                                         flatten, dense)))
    with pytest.raises(ValueError, match=r"^Convolution 0 must requantize with ReLU and one "
                                         r"multiplier$"):
        cnn_parts(replace(model, layers=(replace(conv0, relu=False),) + model.layers[1:]))
    with pytest.raises(ValueError, match=r"^Convolution 0 takes 2 channels, its input has 1$"):
        cnn_parts(replace(model, layers=(conv1, conv1, pool, flatten, dense)))
    with pytest.raises(ValueError, match=r"^The pool must be a max-pool with its stride equal to "
                                         r"its size$"):
        cnn_parts(replace(model, layers=(conv0, conv1, replace(pool, stride=1), flatten, dense)))
    with pytest.raises(ValueError, match=r"^Dense layer 0 takes 12 inputs, not the 8 it gets$"):
        cnn_parts(replace(model, layers=(conv0, pool, flatten, dense)))


@pytest.mark.parametrize("in_shape, channels, lanes, engine", [
    ((6, 6, 1), (2, 3), 4, "sparse"),       # products set the pace (tr < pr)
    ((5, 5, 2), (3, 2), 8, "dense"),
    ((6, 6, 1), (2, 2, 3), 16, "sparse"),   # tr = pr: the two tile buffers set the pace
    ((16, 16, 1), (1,), 16, "sparse"),      # back to back, the next image's load sets it
])
def test_latency_and_interval_exact(in_shape, channels, lanes, engine):
    """Issue 19: one image alone takes cycles_estimate() (first input to result, both
    counted), and results back to back come result_interval() apart, exactly."""
    model = _model(3, in_shape, channels)
    x_q = np.random.default_rng(4).integers(0, 256, (3, model.n_inputs))
    one = _check(CNN(model, lanes=lanes, engine=engine), model, x_q[:1])
    dut = CNN(model, lanes=lanes, engine=engine)
    three = _check(dut, model, x_q)
    assert one == dut.schedule.cycles_estimate()
    assert three - one == 2 * dut.schedule.result_interval() == 2 * dut.interval
