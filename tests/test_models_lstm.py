# amaranth: UnusedElaboratable=no
"""The LSTM model kind end to end on a tiny LSTM: quantize, save, load, elaborate, entries."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from slimgen.flow import RunConfig
from slimgen.models import get_model_kind
from slimgen.sw.artifact import load_int_network, save_int_network
from slimgen.sw.data import load_dataset
from slimgen.sw.nn import build_model, lstm_spec
from slimgen.sw.quantize import quantize_network

lstm_kind = get_model_kind("lstm")


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", view="vector", seed=0)


@pytest.fixture(scope="module")
def int_model(data):
    model = build_model(lstm_spec(n_in=8, n_hidden=6, n_classes=10), np.random.default_rng(0))
    # Prune some of W_i as method 2 would, so one core is sparse.
    model.layers[0].params["W_i"][np.abs(model.layers[0].params["W_i"]) < 0.2] = 0.0
    net = lstm_kind.network(RunConfig(model="lstm", hidden=6), pixel_max=data.pixel_max)
    return quantize_network(net, model, data.part("train")[0], input_scale=1 / data.pixel_max)


def test_spec_and_view():
    assert lstm_kind.VIEW == "sequence"
    spec = lstm_kind.network(RunConfig(model="lstm")).float_spec()[0]
    assert spec[0]["type"] == "lstm" and spec[0]["n_hidden"] == lstm_kind.N_HIDDEN
    assert spec[1] == {"type": "dense", "n_in": lstm_kind.N_HIDDEN, "n_out": 10}


def test_quantize_save_load(tmp_path, int_model, data):
    m = int_model
    assert (m.input_bits, m.n_inputs, m.n_classes, m.network.input_shape) == (5, 64, 10, (8, 8))
    assert m.input_scale == 1 / data.pixel_max
    save_int_network(tmp_path / "model.npz", m, dataset="digits", split_seed=0)
    back = load_int_network(tmp_path / "model.npz")[0]
    x = np.random.default_rng(1).integers(0, 17, (30, 64))
    np.testing.assert_array_equal(back(x), m(x))


def test_network_and_entries(int_model):
    net = lstm_kind.make_network(int_model, RunConfig(model="lstm", lanes=5))
    Fragment.get(net, None)   # elaborates
    # the lanes and the element-wise unit's multipliers
    n_ew = net.engine.ew_multipliers
    assert net.engine.lanes == 5 and lstm_kind.multipliers(net) == 5 + n_ew
    # More lanes than hidden units: one neuron per lane.
    wide = lstm_kind.make_network(int_model, RunConfig(model="lstm", lanes=9))
    Fragment.get(wide, None)
    assert wide.engine.lanes == 6
    entries = lstm_kind.layer_entries(net)
    assert [e["name"] for e in entries] == ["gates_ifo", "gate_c", "head", "elementwise"]
    keys = {"name", "kind", "engine", "shape", "weight_bits", "sparsity", "nonzeros",
            "nonzeros_per_group", "lanes", "mults_direct", "mults", "cycles",
            "mults_per_inference"}
    assert all(set(e) == keys for e in entries)
    # per hidden unit and step: z·M for the 4 gates, then i·g, f·c and o·tanh(c)
    ew = entries.pop()
    assert (ew["lanes"], ew["mults_per_inference"]) == (n_ew, 8 * 6 * 7)
    assert [e["mults_per_inference"] for e in entries] == [
        8 * entries[0]["nonzeros"], 8 * entries[1]["nonzeros"], entries[2]["nonzeros"]]
    assert lstm_kind.cycles_estimate(net) == net.engine.cycles_estimate
    ifo, c, head = entries
    W = int_model.of_kind("recurrent")[0].W
    assert ifo["shape"] == [18, 14] and c["shape"] == [6, 14] and head["shape"] == [10, 6]
    assert ifo["nonzeros"] == sum(int(np.count_nonzero(W[g])) for g in "ifo")
    assert c["nonzeros"] == np.count_nonzero(W["c"]) and ifo["sparsity"] > 0
    for e in entries:
        assert e["lanes"] == 5 and sum(e["nonzeros_per_group"]) == e["nonzeros"]
    # The lanes' words: every non-zero once per step, a filler per empty row, head once.
    sched = net.engine.schedule
    assert sum(sched.step_words) == sum(max(1, int(np.count_nonzero(W[g][j])))
                                        for g in "cifo" for j in range(6))
    assert head["cycles"] == max(sched.head_words)
    assert ifo["mults"] == ifo["nonzeros"] / 18 and c["mults_direct"] == 14


def test_planner_picks_the_busier_element_wise_unit(int_model):
    """One element-wise multiplier when the lanes pace the steps, two when the element-wise
    unit does (one hidden unit per lane): whichever gives fewer multiplier-cycles per
    multiplication on the cycle model."""
    from slimgen.hw.lstm_engine import LstmEngine
    lstm = int_model.of_kind("recurrent")[0]
    mults = 8 * sum(int(np.count_nonzero(lstm.W[g])) for g in "cifo") + \
        int(np.count_nonzero(int_model.layers[1].W)) + 8 * 6 * 7
    chosen = {}
    for lanes in (1, 6):
        cost = {n: LstmEngine(int_model, lanes=lanes, ew_multipliers=n).cycles_estimate *
                (lanes + n) / mults for n in (1, 2)}
        chosen[lanes] = lstm_kind.ew_multipliers(int_model, lanes)
        assert cost[chosen[lanes]] == min(cost.values())
        net = lstm_kind.make_network(int_model, RunConfig(model="lstm", lanes=lanes))
        Fragment.get(net, None)
        assert net.engine.ew_multipliers == chosen[lanes]
    assert chosen == {1: 1, 6: 2}
