"""plan.json: the generate stage's prediction per layer and in all (no synthesis)."""

import json

import pytest

from slimgen.boards.plan import SHARED, format_plan, make_plan
from slimgen.boards.resource_model import Prediction


def _sum(rows, key):
    return sum(r[key] for r in rows if r[key] != SHARED)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A run folder of the MLP preset (untrained, quantized) after its generate stage, on
    one dense engine per layer."""
    from dataclasses import replace
    from slimgen.flow import Run, run_stage
    from slimgen.sim.testing import untrained_int_run
    root = tmp_path_factory.mktemp("plan")
    _, config = untrained_int_run("mlp", root)
    config = replace(config, engine="dense")
    lines = []
    run = Run(root, config, progress=True, log=lines.append)
    figures = run_stage(run, "generate")
    return root, figures, lines


def test_generate_writes_the_plan_with_totals_that_sum_its_rows(generated):
    root, figures, lines = generated
    plan = json.loads((root / "plan.json").read_text())
    assert plan["board"] == "icebreaker" and plan["family"] == "ice40"
    assert [r["name"] for r in plan["layers"]] == [e["name"] for e in figures["layers"]]
    assert [r["lanes"] for r in plan["layers"]] == figures["lanes"]
    assert [r["cycles"] for r in plan["layers"]] == [e["cycles"] for e in figures["layers"]]
    t, sh = plan["totals"], plan["shared"]
    # the MLP's per-layer engines are modules of their own: every layer has its figures
    assert all(r["lc_estimate"] != SHARED for r in plan["layers"])
    for key in ("lc_estimate", "dsp_estimate", "bram_estimate"):
        assert t[key] == _sum(plan["layers"], key) + sh[key]
        assert sh[key] >= 0
    assert t["dsp_estimate"] == figures["multipliers"]      # one DSP block per lane
    assert t["cycles_estimate"] == figures["cycles_estimate"]
    assert t["interval_at_most"] == figures["cycles_estimate"]
    assert t["lc_estimate"] > 0 and t["bram_estimate"] > 0
    # printed: the table's total line holds the totals
    table = "\n".join(lines)
    assert "plan for icebreaker" in table
    total = next(line for line in table.splitlines() if line.startswith("total"))
    assert total.split()[1:] == [str(t["cycles_estimate"]), str(t["lc_estimate"]),
                                 str(t["dsp_estimate"]), str(t["bram_estimate"])]


def test_layers_on_shared_hardware_say_shared_and_the_shared_row_holds_it():
    from slimgen.boards.build import get_board
    prediction = Prediction("ice40", 1000, 4, 6, {}, {
        "": {"lc": 100, "dsp": 0, "bram": 0},
        "bridge": {"lc": 300, "dsp": 0, "bram": 0},
        "bridge.network": {"lc": 600, "dsp": 4, "bram": 6}})
    layers = [{"name": "conv0", "engine": "winograd, shared array", "lanes": 4, "cycles": 90},
              {"name": "dense0", "engine": "dense rows, shared array", "lanes": 4,
               "cycles": 40, "algorithm": "direct"}]
    plan = make_plan(layers, prediction, board=get_board("icebreaker"), cycles=130)
    assert [r["lc_estimate"] for r in plan["layers"]] == [SHARED, SHARED]
    assert plan["layers"][1]["algorithm"] == "direct"
    assert plan["shared"] == {"lc_estimate": 1000, "dsp_estimate": 4, "bram_estimate": 6}
    assert plan["totals"]["cycles_estimate"] == 130
    text = format_plan(plan)
    assert "shared" in text.splitlines()[2] and text.splitlines()[-2].split()[1:] == [
        "130", "1000", "4", "6"]


def test_the_report_shows_predicted_beside_measured_and_the_plan():
    from slimgen.boards.build import get_board
    from slimgen.report import _predicted, plan_rows
    assert _predicted(None, 100) == ["", ""]
    assert _predicted(8, 8) == ["8", "exact"]
    assert _predicted(1150, 1000) == ["1,150", "+15.0%"]
    assert _predicted(1900, 2000) == ["1,900", "-5.0%"]
    prediction = Prediction("ice40", 2500, 8, 6, {}, {
        "bridge": {"lc": 500, "dsp": 0, "bram": 0},
        "bridge.network.layer0": {"lc": 1400, "dsp": 4, "bram": 5},
        "bridge.network.layer0.core": {"lc": 100, "dsp": 0, "bram": 0},
        "bridge.network.layer1": {"lc": 500, "dsp": 4, "bram": 1}})
    layers = [{"name": "layer0", "engine": "dense", "lanes": 4, "cycles": 70},
              {"name": "layer1", "engine": "dense", "lanes": 4, "cycles": 20}]
    plan = make_plan(layers, prediction, board=get_board("icebreaker"), cycles=95)
    assert plan_rows(plan) == [
        ["layer0", "dense", "4", "70", "1,500", "4", "5"],
        ["layer1", "dense", "4", "20", "500", "4", "1"],
        ["shared", "control, shared array, UART bridge", "", "", "500", "0", "0"],
        ["total", "", "", "95", "2,500", "8", "6"]]
