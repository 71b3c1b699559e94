"""The flow on the compiler: a description no preset engine takes generates on the
shared-array engine (its per-layer programs, cycles and bound in generate.json, each
convolution's algorithm chosen by the cost model with its reason), and a
recurrent one neither can build is refused with both reasons."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from slimgen.cli import main
from slimgen.models.net import make_network
from slimgen.sw.network import check_network, load_network
from slimgen.sw.random_network import random_int_network

CONV1D = {"name": "seq", "layers": [
    {"type": "input", "shape": [8, 8]},
    {"type": "conv1d", "channels": 6, "kernel": 5, "stride": 2}, {"type": "relu"},
    {"type": "avgpool", "size": 2}, {"type": "flatten"}, {"type": "dense", "units": 10}]}


def test_a_description_no_preset_takes_generates_on_the_compiler(tmp_path):
    net = tmp_path / "net.json"
    net.write_text(json.dumps(CONV1D))
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", str(net), "--epochs", "1", "--lanes", "3",
                 "--to", "generate", "--quiet"]) == 0
    g = json.loads((run / "generate.json").read_text())
    assert g["engines"] == ["direct, shared array", "avg pool, shared array",
                            "direct, shared array"]
    assert g["multipliers"] == 3 and g["lanes"] == [3, 3, 3]
    assert [e["algorithm"] for e in g["layers"]] == ["direct", "avg", "direct"]
    for e in g["layers"]:
        assert e["bound"] == -(-e["mults_per_inference"] // 3) <= e["cycles"]
    assert g["cycles_lower_bound"] == -(-g["mults_per_inference"] // 3)
    assert g["cycles_estimate"] > sum(e["cycles"] for e in g["layers"])
    assert "module network" in (run / "network.v").read_text()


def test_a_recurrent_network_no_engine_takes_is_refused():
    """A GRU giving every step's state (a flatten and a dense layer after it) is neither the
    recurrent engine's classifier nor feed-forward."""
    desc = [{"type": "input", "shape": [8, 8], "bits": 5},
            {"type": "gru", "hidden": 8, "sequences": True}, {"type": "flatten"},
            {"type": "dense", "units": 10}]
    int_net = random_int_network(np.random.default_rng(0), check_network(desc, name="seq"))
    with pytest.raises(ValueError, match=r"^the network seq \(seq.json\) cannot be built: the "
                                         r"compiler says Layer 0 is a recurrent gru cell; .* and "
                                         r"it fits none of the preset engines \(mlp: .*lstm: The "
                                         r"recurrent classifier takes an LSTM or GRU cell and a "
                                         r"dense head, not recurrent, flatten, dense\); run the "
                                         r"software stages with --to quantize$"):
        make_network(int_net, SimpleNamespace(net="seq.json", lanes=4))


def test_the_gru_example_goes_to_the_recurrent_engine():
    """examples/nets/gru.json (a GRU's last state, dropout, dense): the recurrent engine with
    its GRU element-wise unit, its entries the GRU's."""
    from slimgen.models import get_model_kind
    path = str(Path(__file__).parents[1] / "examples" / "nets" / "gru.json")
    int_net = random_int_network(np.random.default_rng(0), load_network(path))
    config = SimpleNamespace(net=path, lanes=4, layout="rows", engine="auto", engines="auto",
                             board="icebreaker", method="none", weight_memory="auto")
    hw = make_network(int_net, config)
    assert hw.slimgen_kind == "lstm" and hw.engine.cell.cell == "gru"
    assert (hw.engine.lanes, hw.engine.ew_multipliers, hw.engine.ew_ii) == (4, 1, 6)
    entries = get_model_kind("lstm").layer_entries(hw)
    assert [e["name"] for e in entries] == ["gates_rz", "gate_n", "head", "elementwise"]
    assert entries[-1]["mults_per_inference"] == 8 * 32 * 5
    cell = hw.engine.cell
    assert entries[0]["nonzeros"] == np.count_nonzero(cell.W["r"]) + \
        np.count_nonzero(cell.W["z"])
    assert entries[1]["nonzeros"] == np.count_nonzero(cell.W["n"])
    with pytest.raises(ValueError, match=r"^--weight-memory spram is for the compiler's shared "
                                         r"array .* gru runs on the lstm preset's engine"):
        make_network(int_net, SimpleNamespace(**{**vars(config), "weight_memory": "spram"}))


WINO1D = {"name": "seq3", "layers": [
    {"type": "input", "shape": [8, 8]},
    {"type": "conv1d", "channels": 8, "kernel": 3, "padding": "same"}, {"type": "relu"},
    {"type": "conv1d", "channels": 4, "kernel": 3, "stride": 2}, {"type": "relu"},
    {"type": "flatten"}, {"type": "dense", "units": 10}]}


def test_the_cost_model_says_why_in_generate_json(tmp_path):
    """A stride-1 3-tap 1-D convolution of 8 channels goes on a Winograd algorithm (on the
    ULX3S, which has room for its transform units and accumulators); the stride-2 one stays
    direct; every candidate's figures and the reason are recorded."""
    net = tmp_path / "net.json"
    net.write_text(json.dumps(WINO1D))
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", str(net), "--epochs", "1", "--lanes", "4",
                 "--board", "ulx3s-85f", "--to", "generate", "--quiet"]) == 0
    g = json.loads((run / "generate.json").read_text())
    first, second, dense = g["layers"]
    assert first["algorithm"].startswith("F(") and first["algorithm"].split(")")[0] in (
        "F(2, 3", "F(4, 3")
    assert g["engines"][0] == f"winograd {first['algorithm']}, shared array"
    cycles = {c["algorithm"]: c["cycles"] for c in first["candidates"]}
    assert list(cycles) == ["direct", "F(2, 3) Toom-Cook", "F(4, 3) Toom-Cook", "F(4, 3) CRT"]
    assert first["cycles"] == cycles[first["algorithm"]] == min(cycles.values())
    assert first["why"].startswith(f"{first['algorithm']}: {first['cycles']} cycles against "
                                   f"{cycles['direct']} direct")
    assert second["algorithm"] == "direct"
    assert second["why"] == "direct: stride 2: Winograd needs stride 1"
    assert dense["why"] == "direct: dense layer: no sliding window"
    assert g["cycles_estimate"] > sum(e["cycles"] for e in g["layers"])


def test_per_layer_plans_fastest_first():
    """The combinations the board fit searches: one algorithm per layer, by total cycles."""
    from slimgen.models.net import _plans
    plans = _plans({0: [("direct", 10), ("A", 6)], 2: [("direct", 20), ("B", 12), ("C", 15)]})
    assert plans == [{0: "A", 2: "B"}, {0: "A", 2: "C"}, {0: "direct", 2: "B"},
                     {0: "direct", 2: "C"}, {0: "A", 2: "direct"},
                     {0: "direct", 2: "direct"}]


def _three_convs():
    """Three dense 3-tap 1-D convolutions of 8 channels and a dense layer, 4-bit: each
    convolution has F(2, 3) and F(4, 3) candidates the board fit chooses among."""
    from slimgen.sw.network import check_network
    net = check_network({"name": "c", "layers": [
        {"type": "input", "shape": [32, 8], "bits": 4},
        {"type": "conv1d", "channels": 8, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "conv1d", "channels": 8, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "conv1d", "channels": 8, "kernel": 3, "padding": "same"},
        {"type": "flatten"}, {"type": "dense", "units": 3}]})
    return random_int_network(np.random.default_rng(0), net, density=1.0, weight_bits=4,
                              act_bits=4)


def test_the_board_fit_takes_the_fastest_plan_predicted_to_fit(monkeypatch):
    """With a resource model that charges 2,000 logic cells per layer on an F(4, r)
    algorithm and 500 per layer on any other Winograd one, the iCEBreaker (4,752 planned)
    takes at most one F(4, r) layer: the board fit must build the fastest such plan, every
    single-layer plan among those it tries, the layers left on the cost model's choice keeping
    its reason and the others saying why they moved."""
    from slimgen.boards import resource_model
    from slimgen.boards.resource_model import Prediction
    from slimgen.hw.compiler import choose, compile_network, options
    from slimgen.models.net import _plans

    def cost(algorithms):
        return 1000 + sum(2000 if a.startswith("F(4") else 500 if a.startswith("F(") else 0
                          for a in algorithms)

    def fake_predict(int_net, board, *, network_factory, **_):
        engine = network_factory()
        lc = cost(e["algorithm"] for e in engine.summary)
        return Prediction("ice40", lc, 4, 10, {}, {})
    monkeypatch.setattr(resource_model, "predict_top", fake_predict)
    int_net = _three_convs()
    own = compile_network(int_net, lanes=4)
    assert cost(e["algorithm"] for e in own.summary) > 4752     # the cost model's is over
    per_layer = options(choose(int_net, lanes=4)[1])
    fitting = [p for p in _plans(per_layer) if cost(p.values()) <= 4752]
    hw = make_network(int_net, SimpleNamespace(lanes=4, board="icebreaker", net="c.json",
                                               engine="auto", method="none", layout="rows"))
    got = {k: e["algorithm"] for k, e in zip(sorted(per_layer), hw.summary[:3])}
    assert got == fitting[0]
    for e, old in zip(hw.summary[:3], own.summary):
        if e["algorithm"] == old["algorithm"]:
            assert e["why"] == old["why"]
        else:
            assert e["why"].startswith(f"{e['algorithm']}: the cost model's {old['algorithm']} "
                                       f"is faster"), e["why"]
    assert hw.summary[3]["why"] == "direct: dense layer: no sliding window"


def test_2d_winograd_where_the_board_has_room():
    """conv_stride2's 3×3 convolution of stride 1 halves its cycles on F(2×2, 3×3), whose 16
    running sums per lane and their bank copies the ULX3S holds; on the iCEBreaker the
    resource model predicts about twice its logic cells, so the layer runs direct and says
    why (the real resource model, no build)."""
    net = load_network(str(Path(__file__).parents[1] / "examples" / "nets" / "conv_stride2.json"))
    int_net = random_int_network(np.random.default_rng(4), net, density=1.0)
    settings = dict(lanes=4, net="conv_stride2.json", engine="auto", method="none",
                    layout="rows")
    big = make_network(int_net, SimpleNamespace(board="ulx3s-85f", **settings))
    small = make_network(int_net, SimpleNamespace(board="icebreaker", **settings))
    assert [e["algorithm"] for e in big.summary] == ["direct", "F(2×2, 3×3) Toom-Cook", "avg",
                                                     "direct"]
    assert [e["algorithm"] for e in small.summary] == ["direct", "direct", "avg", "direct"]
    assert small.summary[1]["why"].startswith(
        "direct: the cost model's F(2×2, 3×3) Toom-Cook is faster")
    assert re.search(r"predicted to need [\d,]+ logic cells of 4,752 planned",
                     small.summary[1]["why"])
    assert big.summary[1]["cycles"] < 0.5 * small.summary[1]["cycles"]
    assert big.cycles < small.cycles


def test_the_board_fit_puts_the_weights_where_its_own_plan_needs(monkeypatch):
    """``--weight-memory auto`` decides on the plan the board fit takes, not on the cost
    model's first choice: with a resource model in which any F(4, r) layer costs 2,000 logic
    cells and 20 more block RAMs when its weights are in block RAM, the cost model's design
    goes to SPRAM, but the plan that fits the logic cells has no F(4, r) layer and keeps its
    weights in block RAM (nothing to load at run time)."""
    from slimgen.boards import resource_model
    from slimgen.boards.resource_model import Prediction

    def fake_predict(int_net, board, *, network_factory, **_):
        engine = network_factory()
        wide = sum(e["algorithm"].startswith("F(4") for e in engine.summary)
        bram = 10 + (20 * wide if engine.weights == "bram" else 0)
        return Prediction("ice40", 1000 + 2000 * wide, 4, bram, {}, {})
    monkeypatch.setattr(resource_model, "predict_top", fake_predict)
    int_net = _three_convs()
    settings = dict(lanes=4, board="icebreaker", net="c.json", engine="auto", method="none",
                    layout="rows")
    from slimgen.hw.compiler import compile_network
    first = compile_network(int_net, lanes=4)
    assert sum(e["algorithm"].startswith("F(4") for e in first.summary) > 1   # over both
    hw = make_network(int_net, SimpleNamespace(weight_memory="auto", **settings))
    wide = sum(e["algorithm"].startswith("F(4") for e in hw.summary)
    assert wide == 1 and hw.weights == "bram"          # 3,000 logic cells, 30 block RAMs
    forced = make_network(int_net, SimpleNamespace(weight_memory="spram", **settings))
    assert forced.weights == "spram"
