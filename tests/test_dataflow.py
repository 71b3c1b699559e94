"""The dataflow pipeline's fast tests (:mod:`slimgen.hw.dataflow`): its stages, its cycle
model against Amaranth's simulator (bit-exact, inputs late and with gaps, a consumer not always
ready), and its refusals word for word. Verilator runs it on the fuzz cases
(``sim/test_fuzz.py``)."""

import numpy as np
import pytest

from slimgen.hw.compiler import compile_dataflow, compile_network
from slimgen.hw.dataflow import dataflow_cycles, stage_bounds
from slimgen.hw.engine import Engine
from slimgen.hw.program import build_programs
from slimgen.sim.fuzz import fuzz_case
from slimgen.sw.network import check_network
from slimgen.sw.random_network import random_inputs, random_int_network

from test_compiler import _simulate_paced


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stages_start_at_weighted_layers_and_end_direct(seed):
    case = fuzz_case(seed)
    programs = build_programs(case.int_net, lanes=1)
    bounds = stage_bounds(programs)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(programs)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    for start, stop in bounds:
        assert programs[start].op == "mac"
        assert all(p.op in ("max", "avg") for p in programs[start + 1:stop])
    hw = compile_dataflow(case.int_net, lanes=[2 + k for k in range(len(bounds))])
    assert hw.stage_lanes == [2 + k for k in range(len(bounds))]
    assert hw.multipliers == sum(hw.stage_lanes)
    assert [e["stage"] for e in hw.summary] == [k for k, (a, b) in enumerate(bounds)
                                                for _ in range(b - a)]
    for stage in hw.stages[:-1]:        # a stage's words go on in address order
        assert stage[-1].op != "wino" or stage[-1].pooled
    assert hw.interval == max(hw.stage_intervals)
    assert hw.bound == -(-hw.mults // hw.multipliers)


def test_a_convolution_that_ends_a_stage_runs_direct_and_says_why():
    """Case 80's convolution runs on F(2×2, 3×3) on the shared array; in the pipeline a
    dense layer follows it in the next stage, so it runs direct, and its entry says so."""
    case = fuzz_case(80)
    shared = compile_network(case.int_net, lanes=5)
    assert shared.summary[0]["algorithm"] != "direct"
    hw = compile_dataflow(case.int_net, lanes=5)
    first = hw.summary[0]
    assert first["algorithm"] == "direct" and first["stage"] == 0
    assert first["why"] == ("direct: it ends stage 0, whose outputs go to stage 1 in address "
                            "order")
    assert first["engine"] == "direct, dataflow stage 0"


def test_a_convolution_with_its_pool_in_the_drain_ends_a_stage_on_winograd():
    """The digits CNN's shape: the second convolution's max pool runs in its F(2×2, 3×3)
    drain, whose words come in address order, so it keeps its algorithm at the end of its
    stage; on Amaranth's simulator bit-exact, the model's latency, samples with gaps to a
    consumer not always ready."""
    rng = np.random.default_rng(37)
    net = check_network({"name": "cnn", "layers": [
        {"type": "input", "shape": [6, 6, 1], "bits": 4},
        {"type": "conv2d", "channels": 2, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "conv2d", "channels": 3, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "maxpool", "size": 2}, {"type": "flatten"}, {"type": "dense", "units": 4}]})
    int_net = random_int_network(rng, net)
    hw = compile_dataflow(int_net, lanes=[1, 3, 2])
    assert [[p.op for p in s] for s in hw.stages] == [["mac"], ["wino"], ["mac"]]
    assert hw.stages[1][0].pooled and hw.summary[2]["engine"] == \
        "max pool in conv1's drain, dataflow stage 1"
    x = random_inputs(rng, int_net, 4)
    logits, latency = _simulate_paced(hw, int_net, x[:1], idle=4)
    np.testing.assert_array_equal(logits, int_net(x[:1]))
    assert latency == hw.cycles
    hw = compile_dataflow(int_net, lanes=[1, 3, 2])
    logits, _ = _simulate_paced(hw, int_net, x, idle=2, gap=0.3, stall=0.5, seed=37)
    np.testing.assert_array_equal(logits, int_net(x))


def test_one_stage_is_the_engine():
    """A network with one weighted layer: the pipeline's model is the engine's."""
    case = fuzz_case(9)
    hw = compile_dataflow(case.int_net, lanes=3)
    engine = compile_network(case.int_net, lanes=3)
    assert len(hw.stages) == 1
    assert hw.cycles == engine.cycles and hw.interval == engine.interval


def test_the_latency_model_waits_for_the_stage_before():
    """Each stage's inputs come as the stage before writes them: the pipeline's latency is
    at least the sum of what each stage adds after its first input, and the interval is
    below the latency when there are two stages or more."""
    case = fuzz_case(0)
    hw = compile_dataflow(case.int_net, lanes=[1, 6, 6])
    latency, intervals = dataflow_cycles(hw.stages, case.int_net.n_inputs)
    assert latency == hw.cycles and intervals == hw.stage_intervals
    assert hw.interval < hw.cycles
    assert hw.cycles > max(intervals)


@pytest.mark.parametrize("seed", [0, 1, 3, 4])
def test_dataflow_bit_exact_with_the_counted_cycles(seed):
    """On Amaranth's simulator: a sample that starts late, its inputs one a cycle, takes
    exactly the model's latency; samples late, with gaps, to a consumer not always ready,
    are exact."""
    case = fuzz_case(seed, n=3)
    lanes = [1 + (seed + k) % 4 for k in range(len(stage_bounds(
        build_programs(case.int_net, lanes=1))))]
    hw = compile_dataflow(case.int_net, lanes=lanes)
    logits, latency = _simulate_paced(hw, case.int_net, case.x[:1], idle=5)
    np.testing.assert_array_equal(logits, case.int_net(case.x[:1]))
    assert latency == hw.cycles
    hw = compile_dataflow(case.int_net, lanes=lanes)
    logits, _ = _simulate_paced(hw, case.int_net, case.x, idle=3, gap=0.3, stall=0.4,
                                seed=seed)
    np.testing.assert_array_equal(logits, case.int_net(case.x))


@pytest.mark.parametrize("seed, copies", [(1, [2, 1, 3, 1]), (3, [1, 3, 2])])
def test_copies_take_samples_in_turn_bit_exact(seed, copies):
    """A stage on copies of its engine (:class:`slimgen.hw.dataflow.Replicas`): samples late,
    with gaps, to a consumer not always ready, exact and in order; one sample alone takes
    the latency of one copy."""
    case = fuzz_case(seed, n=7)
    hw = compile_dataflow(case.int_net, lanes=2, copies=copies)
    assert hw.multipliers == 2 * sum(copies) and hw.replicas == copies
    logits, _ = _simulate_paced(hw, case.int_net, case.x, idle=3, gap=0.2, stall=0.3,
                                seed=seed)
    np.testing.assert_array_equal(logits, case.int_net(case.x))
    hw = compile_dataflow(case.int_net, lanes=2, copies=copies)
    logits, latency = _simulate_paced(hw, case.int_net, case.x[:1], idle=5)
    assert latency == hw.cycles == compile_dataflow(case.int_net, lanes=2).cycles


def test_more_multipliers_never_lengthen_the_interval():
    """dataflow_lanes within its budget, its interval falling (or staying) as it grows."""
    from slimgen.hw.compiler import dataflow_lanes
    case = fuzz_case(3)
    last = None
    for budget in (3, 6, 12, 24):
        lanes, copies = dataflow_lanes(case.int_net, budget)
        hw = compile_dataflow(case.int_net, lanes=lanes, copies=copies)
        hw._MustUse__silence = True
        assert hw.multipliers <= budget
        assert last is None or hw.interval <= last
        last = hw.interval
    assert max(copies) > 1 or max(lanes) > 1


def test_refusals():
    case = fuzz_case(0)
    with pytest.raises(ValueError, match=r"^Give one lane count, or one per stage \(3: one "
                                         r"per weighted layer\), not 2$"):
        compile_dataflow(case.int_net, lanes=[2, 2])
    with pytest.raises(ValueError, match=r"^Lanes must be a positive integer, not 0$"):
        compile_dataflow(case.int_net, lanes=[2, 0, 2])
    with pytest.raises(ValueError, match=r"^Give one queue depth per stage but the last "
                                         r"\(2\), not 1$"):
        compile_dataflow(case.int_net, lanes=2, queues=[64])
    with pytest.raises(ValueError, match=r"^Give one replica count \(a positive integer\) per "
                                         r"stage \(3\), not \[1, 0, 1\]$"):
        compile_dataflow(case.int_net, lanes=2, copies=[1, 0, 1])
    programs = build_programs(case.int_net, lanes=4)[:1]
    with pytest.raises(ValueError, match=r"^The output queue must hold at least one group "
                                         r"of the last layer \(\d+ words\), not 0$"):
        Engine(programs, n_inputs=programs[0].n_in, input_bits=4, n_classes=2,
               logit_bits=8, queue=0)


@pytest.fixture(scope="module")
def cnn_dataflow(tmp_path_factory):
    """The CNN preset (untrained, quantized) through generate as a dataflow pipeline of 12
    lanes on the ULX3S."""
    from dataclasses import replace
    from slimgen.flow import Run, run_stage
    from slimgen.sim.testing import untrained_int_run
    root = tmp_path_factory.mktemp("dataflow")
    int_model, config = untrained_int_run("cnn", root)
    config = replace(config, engine="dataflow", lanes=12, board="ulx3s-85f")
    lines = []
    figures = run_stage(Run(root, config, progress=True, log=lines.append), "generate")
    return root, int_model, figures, lines


def test_generate_builds_the_pipeline_and_plans_each_stage(cnn_dataflow):
    import json
    from slimgen.hw.compiler import compile_dataflow, dataflow_lanes
    root, int_model, figures, lines = cnn_dataflow
    lanes, copies = dataflow_lanes(int_model, 12)
    hw = compile_dataflow(int_model, lanes=lanes, copies=copies)
    hw._MustUse__silence = True
    used = [P * R for P, R in zip(lanes, copies)]
    assert sum(used) <= 12 and len(lanes) == 3
    assert figures["multipliers"] == sum(used) == hw.multipliers
    assert figures["engines"] == [e["engine"] for e in hw.summary]
    assert all("dataflow stage" in e for e in figures["engines"])
    assert figures["cycles_estimate"] == hw.cycles
    assert figures["interval_estimate"] == hw.interval < hw.cycles
    stages = ", ".join(f"{P}" + (f" × {R} copies" if R > 1 else "")
                       for P, R in zip(lanes, copies))
    assert any(line.startswith(f"generate: dataflow pipeline of 3 stages on {stages} lanes")
               for line in lines)
    plan = json.loads((root / "plan.json").read_text())
    rows = plan["layers"]
    assert [r["stage"] for r in rows] == [e["stage"] for e in hw.summary]
    # each stage's engine is a module: its first layer holds its figures, a pool after it
    # in the same stage says shared
    firsts = [r for k, r in enumerate(rows) if k == 0 or rows[k - 1]["stage"] != r["stage"]]
    assert all(isinstance(r["lc_estimate"], int) and r["lc_estimate"] > 0 for r in firsts)
    assert [r["dsp_estimate"] for r in firsts] == used       # one DSP block a lane
    assert all(r["lc_estimate"] == "shared" for r in rows if r not in firsts)
    assert plan["totals"]["dsp_estimate"] == sum(used)


@pytest.mark.parametrize("model, message", [
    ("mlp", "'dataflow' (a pipeline of shared-array engines, one stage per weighted layer) "
            "is for --model cnn and --net networks without recurrent layers, not 'mlp'; the "
            "MLP's --engine dense is a pipeline of one engine per layer"),
    ("lstm", "is for --model cnn and --net networks without recurrent layers, not 'lstm'"),
])
def test_the_dataflow_engine_is_for_feed_forward_networks(model, message):
    from slimgen.settings import RunConfig, SettingError
    with pytest.raises(SettingError) as e:
        RunConfig(model=model, engine="dataflow")
    assert e.value.setting == "engine" and message in str(e.value)


def test_fewer_lanes_than_stages_is_one_message():
    case = fuzz_case(0)
    with pytest.raises(ValueError, match=r"^A dataflow pipeline of 3 stages \(one per weighted "
                                         r"layer\) needs at least 3 lanes, not 2$"):
        from slimgen.hw.compiler import dataflow_lanes
        dataflow_lanes(case.int_net, 2)


def test_generate_builds_copies_of_the_whole_design(tmp_path):
    """``copies``: the network top is that many copies taking samples in turn; generate's
    multipliers and DSP blocks are a copy's times them, the interval their mean, the latency
    a copy's."""
    import json
    from dataclasses import replace
    from slimgen.flow import Run, run_stage
    from slimgen.hw.dataflow import Replicas
    from slimgen.models import get_model_kind, make_hardware
    from slimgen.sim.testing import untrained_int_run
    int_model, config = untrained_int_run("lstm", tmp_path)
    one = run_stage(Run(tmp_path, replace(config, board="ulx3s-85f"), progress=False,
                        log=lambda s: None), "generate")
    plan_one = json.loads((tmp_path / "plan.json").read_text())
    three = replace(config, board="ulx3s-85f", copies=3)
    lines = []
    figures = run_stage(Run(tmp_path, three, progress=True, log=lines.append), "generate")
    top = make_hardware(get_model_kind("lstm"), int_model, three)
    assert isinstance(top, Replicas) and len(top.copies) == 3
    assert figures["copies"] == 3 and figures["multipliers"] == 3 * one["multipliers"]
    assert figures["cycles_estimate"] == one["cycles_estimate"]
    assert one["interval_estimate"] == one["cycles_estimate"] - 1
    assert figures["interval_estimate"] == top.interval == max(
        one["interval_estimate"] / 3, int_model.n_inputs)
    assert figures["cycles_lower_bound"] == one["cycles_lower_bound"]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["totals"]["dsp_estimate"] == 3 * plan_one["totals"]["dsp_estimate"]
    assert plan["totals"]["bram_estimate"] == 3 * plan_one["totals"]["bram_estimate"]
    assert any("3 copies of the design take samples in turn" in line for line in lines)
