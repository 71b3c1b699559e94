# amaranth: UnusedElaboratable=no
"""``act_memory`` (``--act-memory``): the lanes' copies of the activations (the recurrent
engine's, the CNN shared array's features) in block RAM through yosys' ``ram_style``
attribute, the resource model's count of them, the planner weighing both places, and the
refusals where no engine keeps such copies."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from slimgen.boards.resource_model import netlist_of, predict
from slimgen.hw.lstm_cell import LstmClassifier
from slimgen.hw.lstm_engine import LstmEngine
from slimgen.hw.verilog import to_verilog
from slimgen.settings import RunConfig, SettingError
from slimgen.sim.testing import random_recurrent_classifier


@pytest.fixture(scope="module")
def gru():
    """A GRU classifier of 8 steps of 8 inputs and 12 hidden units (as examples/nets/gru.json
    has, smaller): 64 + 24 activation words a lane."""
    return random_recurrent_classifier(np.random.default_rng(3), 8, 12, 10, steps=8,
                                       cell="gru", density=0.5)


def test_each_lanes_activations_get_a_block_ram_when_asked(gru):
    """``"bram"`` marks every lane's activation memory, and only those, ``ram_style =
    "block"``; the resource model then counts a block RAM a lane on the ECP5 and the LUT RAM
    they took no more (the design is otherwise the same, cycle for cycle)."""
    auto = LstmClassifier(gru, lanes=3)
    bram = LstmClassifier(gru, lanes=3, act_memory="bram")
    assert bram.engine.cycles_estimate == auto.engine.cycles_estimate
    assert 'ram_style = "block"' not in to_verilog(auto, "top")
    assert to_verilog(bram, "top").count('(* ram_style = "block" *)') == 3
    p_auto = predict(netlist_of(LstmClassifier(gru, lanes=3)), "ecp5")
    p_bram = predict(netlist_of(LstmClassifier(gru, lanes=3, act_memory="bram")), "ecp5")
    assert p_bram.bram == p_auto.bram + 3 and p_bram.dsp == p_auto.dsp
    assert p_bram.lc < p_auto.lc
    act_bits = gru.of_kind("recurrent")[0].act_bits
    assert p_auto.counts["lutram"] - p_bram.counts.get("lutram", 0) == \
        3 * (64 + 2 * 12) * act_bits


def test_an_unknown_place_is_refused(gru):
    with pytest.raises(ValueError, match=r"^Activation memory must be one of auto, bram, not "
                                         r"'flash'$"):
        LstmEngine(gru, lanes=2, act_memory="flash")
    with pytest.raises(SettingError, match=r"^act_memory must be one of auto, bram, not 'lut'$"):
        RunConfig(model="lstm", act_memory="lut")


def test_the_mlp_refuses_it():
    with pytest.raises(SettingError) as e:
        RunConfig(model="mlp", act_memory="bram")
    assert str(e.value) == ("act_memory 'bram' puts the lanes' copies of the activations of the "
                            "recurrent engine and of the CNN's shared array in block RAM; the "
                            "MLP's engines keep no such copies: give 'auto'")
    assert RunConfig(model="mlp", act_memory="auto").act_memory == "auto"


def test_the_cnn_lanes_feature_copies_get_a_block_ram_when_asked(tmp_path):
    """The CNN's shared array: each lane's copy of the dense layer's features (128 words),
    LUT RAM on the ECP5 by cost, in a block RAM with ``"bram"``; the same schedule."""
    from slimgen.hw.cnn import CNN
    from slimgen.sim.testing import untrained_int_run
    int_model, _ = untrained_int_run("cnn", tmp_path)
    auto, bram = (CNN(int_model, lanes=8, act_memory=a) for a in ("auto", "bram"))
    assert bram.schedule.cycles_estimate() == auto.schedule.cycles_estimate()
    assert to_verilog(bram, "top").count('(* ram_style = "block" *)') == 8
    p_auto, p_bram = (predict(netlist_of(CNN(int_model, lanes=8, act_memory=a)), "ecp5")
                      for a in ("auto", "bram"))
    assert p_bram.bram == p_auto.bram + 8 and p_bram.dsp == p_auto.dsp
    assert p_auto.counts["lutram"] - p_bram.counts["lutram"] == 8 * 128 * 8
    assert p_bram.lc < p_auto.lc - 1000
    with pytest.raises(ValueError, match=r"^Activation memory must be one of auto, bram, not "
                                         r"'lutram'$"):
        CNN(int_model, lanes=8, act_memory="lutram")


def test_engines_without_lane_copies_refuse_it(tmp_path):
    """A description the MLP's engines or the compiler builds, and any dataflow pipeline."""
    from slimgen.models.net import make_network
    from slimgen.sim.testing import untrained_int_run
    int_model, _ = untrained_int_run("mlp", tmp_path / "mlp")
    config = SimpleNamespace(engine="auto", act_memory="bram", weight_memory="auto")
    with pytest.raises(ValueError) as e:
        make_network(int_model, config)
    assert str(e.value) == (f"--act-memory bram is for the lanes' copies of the activations in "
                            f"the recurrent engine and the CNN's shared array; "
                            f"{int_model.network.name} runs on the mlp preset's engine, which "
                            f"keeps no such copies: give --act-memory auto")
    cnn, _ = untrained_int_run("cnn", tmp_path / "cnn")
    with pytest.raises(ValueError) as e:
        make_network(cnn, SimpleNamespace(engine="dataflow", act_memory="bram",
                                          weight_memory="auto", lanes=8))
    assert str(e.value) == ("--act-memory bram is for the lanes' copies of the activations in "
                            "the recurrent engine and the CNN's shared array; the dataflow "
                            "pipeline keeps none: give --act-memory auto")


@pytest.mark.slow
def test_the_planner_weighs_the_activations_in_block_ram(gru):
    """On the ULX3S (block RAM to spare) every lane count is weighed with the activations
    where yosys puts them and in block RAM: the same cycles, fewer LUTs, a block RAM more a
    lane; a setting the user gave is kept; the plan's choice comes back from plan.json."""
    from slimgen.boards.build import get_board
    from slimgen.models import get_model_kind
    from slimgen.planner import planned_config, weigh
    kind, model = get_model_kind("lstm"), gru
    config = RunConfig(model="lstm", hidden=12, board="ulx3s-85f", objective="latency")
    board = get_board("ulx3s-85f")
    ones = [c for c in weigh(kind, model, config, board) if c.copies == 1]
    by = {(c.lanes, c.act_memory): c for c in ones}
    assert {m for _, m in by} == {"auto", "bram"}
    for (lanes, memory), c in by.items():
        if memory == "bram":
            a = by[lanes, "auto"]
            assert (c.cycles, c.interval, c.dsp) == (a.cycles, a.interval, a.dsp)
            assert c.bram == a.bram + lanes and c.lc < a.lc
    kept = weigh(kind, model, replace(config, act_memory="bram", board="icebreaker"),
                 get_board("icebreaker"))
    assert {c.act_memory for c in kept} == {"bram"}
    plan = {"planner": {"lanes": 4, "engine": "auto", "copies": 3, "act_memory": "bram"}}
    chosen = planned_config(replace(config, objective="throughput"), plan)
    assert (chosen.lanes, chosen.copies, chosen.act_memory) == (4, 3, "bram")
