"""The planner (``--objective``, ``--fps``): the lanes chosen for an objective within the
board, every design it weighed in plan.json, the build on the chosen lanes, and its refusals
word for word."""

import json
import re
from dataclasses import replace

import pytest

from slimgen.flow import FlowError, Run, run_stage
from slimgen.planner import Candidate, PlanError, pick, weigh
from slimgen.settings import RunConfig, SettingError


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """The MLP preset (untrained, quantized) in a run folder, and its integer model."""
    from slimgen.sim.testing import untrained_int_run
    from slimgen.stages import load_int_artifact
    from slimgen.boards.build import get_board
    from slimgen.models import get_model_kind
    root = tmp_path_factory.mktemp("planner")
    _, config = untrained_int_run("mlp", root)
    int_model = load_int_artifact(Run(root, config, progress=False, log=lambda s: None))
    # the designs do not depend on the objective: weighed once for every test here
    candidates = weigh(get_model_kind("mlp"), int_model, replace(config, objective="latency"),
                       get_board(config.board))
    return root, config, candidates


def _plan(mlp_run, **settings):
    from slimgen.boards.build import get_board
    _, config, candidates = mlp_run
    config = replace(config, **settings)
    return pick(candidates, config, get_board(config.board)) + (candidates,)


def test_each_objective_picks_its_best_design_among_those_that_fit(mlp_run):
    chosen, why, candidates = _plan(mlp_run, objective="latency")
    fitting = [c for c in candidates if c.fits]
    assert len(fitting) >= 2 and any(not c.fits for c in candidates)
    # the folded MLP's cycles fall with its lanes until the UP5K's 8 DSP blocks are used
    assert chosen.cycles == min(c.cycles for c in fitting) and chosen.dsp <= 8
    assert chosen.engine == "auto"      # the folded array: no words for the engine
    assert why.startswith(f"latency: {chosen.lanes} lanes ({chosen.multipliers} multipliers), "
                          f"{chosen.cycles:,} cycles per inference, the best of "
                          f"{len(fitting)} designs that fit the icebreaker")
    small, why, _ = _plan(mlp_run, objective="area")
    assert small.lc == min(c.lc for c in fitting) and small.lc < chosen.lc
    # the smallest design that reaches a rate the smallest one cannot
    target = (small.fps + chosen.fps) / 2
    mid, why, _ = _plan(mlp_run, objective="area", fps=target)
    assert small.fps < target <= mid.fps and mid.lc == min(
        c.lc for c in fitting if c.fps >= target)
    assert why.endswith(f"at {target:,.10g} inferences/s or more")
    fast, _, _ = _plan(mlp_run, objective="throughput")
    assert fast.interval == min(c.interval for c in fitting)
    # on the folded array (the compiler's engine) the next inference's first input comes as
    # the result goes (its exact cycles and interval, compared with the simulator in
    # sim/test_network.py); one dense engine per layer is a pipeline whose interval is its
    # slowest stage's; both shorter than the latency
    from slimgen.hw.compiler import compile_network
    from slimgen.stages import load_int_artifact
    root, config, _ = mlp_run
    int_model = load_int_artifact(Run(root, config, progress=False, log=lambda s: None))
    assert {c.engine for c in candidates} == {"auto", "dense"}
    for c in candidates:
        assert c.fps == pytest.approx(12e6 / c.interval)
        assert c.interval < c.cycles
        if c.engine == "auto":
            folded = compile_network(int_model, lanes=c.multipliers)
            folded._MustUse__silence = True          # its figures only
            assert (c.cycles, c.interval) == (folded.cycles, folded.interval)
    # on the UP5K's 8 DSP blocks the folded array (every layer on all of them) still wins
    assert fast.engine == "auto"


def test_an_unreachable_rate_and_a_board_too_small_say_by_how_much(mlp_run):
    best = max((c for c in mlp_run[2] if c.fits), key=lambda c: c.fps)
    with pytest.raises(PlanError, match=rf"^fps 1,000,000: the fastest design that fits the "
                                        rf"icebreaker gives {best.fps:,.0f} inferences/s "
                                        rf"\({best.lanes} lanes, an interval of "
                                        rf"{best.interval:,} cycles at 12 MHz\); ask for at "
                                        rf"most that, or a bigger board$"):
        _plan(mlp_run, objective="throughput", fps=1e6)


@pytest.mark.slow
def test_generate_builds_the_chosen_lanes_and_plan_json_lists_every_design(mlp_run):
    root, config, _ = mlp_run
    run = Run(root, replace(config, objective="area", fps=20000.0), progress=False,
              log=lambda s: None)
    figures = run_stage(run, "generate")
    plan = json.loads((root / "plan.json").read_text())
    planner = plan["planner"]
    assert planner["objective"] == "area" and planner["fps"] == 20000.0
    chosen = [c for c in planner["candidates"]
              if (c["lanes"], c["engine"]) == (planner["lanes"], planner["engine"])][0]
    assert chosen["fps"] >= 20000 and not chosen["over"]
    assert figures["planner"] == {k: v for k, v in planner.items() if k != "candidates"}
    # the design generated is the chosen one: its cycles and multipliers are the plan's
    assert figures["cycles_estimate"] == chosen["cycles"] == plan["totals"]["cycles_estimate"]
    assert figures["multipliers"] == chosen["multipliers"]
    assert plan["totals"]["lc_estimate"] == chosen["lc"]
    # a pipeline's interval is exact and shorter than its latency (Network.latency)
    if planner["engine"] == "dense":
        assert plan["totals"]["interval_estimate"] == chosen["interval"] < chosen["cycles"]
    from slimgen.stages import _hardware_config
    assert (_hardware_config(run).lanes, _hardware_config(run).engine) == (planner["lanes"],
                                                                     planner["engine"])


@pytest.mark.slow
def test_a_plan_error_reaches_the_user_as_one_message(mlp_run):
    root, config, _ = mlp_run
    run = Run(root, replace(config, objective="latency", fps=1e7), progress=False,
              log=lambda s: None)
    with pytest.raises(FlowError, match=r"^generate: fps 10,000,000: the fastest design"):
        run_stage(run, "generate")


@pytest.mark.parametrize("settings, name, message", [
    ({"objective": "speed"}, "objective", "must be one of latency, throughput, area, not "
                                          "'speed'"),
    ({"objective": "area", "fps": 0}, "fps", "must be a positive number of inferences per "
                                             "second"),
    ({"objective": "area", "fps": float("nan")}, "fps", "must be a positive number"),
    ({"fps": 100.0}, "fps", "is a target for the planner; give --objective latency, "
                            "throughput or area with it"),
])
def test_bad_planner_settings(settings, name, message):
    with pytest.raises(SettingError) as e:
        RunConfig(**settings)
    assert e.value.setting == name and message in str(e.value)


def test_candidate_record():
    c = Candidate(4, "auto", 8, 344, 344, 1920, 8, 10, (("dsp", 12, 8),), 34883.72)
    assert not c.fits
    assert c.to_dict()["over"] == [["dsp", 12, 8]] and c.to_dict()["fps"] == 34883.7


def test_no_design_that_fits_says_what_the_smallest_needs():
    from slimgen.boards.build import get_board
    board = get_board("icebreaker")
    big = Candidate(2, "auto", 4, 900, 900, 6000, 9, 40,
                    (("lc", 6000, 4752), ("dsp", 9, 8), ("bram", 40, 30)), 13333.3)
    config = RunConfig(objective="area")
    with pytest.raises(PlanError) as e:
        pick([big, replace(big, lanes=4, lc=7000)], config, board)
    assert str(e.value) == (
        "no design fits the icebreaker: the smallest (2 lanes) needs 6,000 logic cells of the "
        "4,752 planned (90 % of the board's), 9 DSP blocks of 8, 40 block RAMs of 30; take a "
        "bigger board or a smaller network")


def test_the_ecp5_plans_seven_tenths_of_its_luts():
    """Routing slows near a full ECP5 (bench/README.md, stops 34 and 35): the planner's share of the
    ULX3S-85F's LUTs is 70 %, of the UP5K's logic cells 90 %."""
    from slimgen.boards.build import get_board
    from slimgen.boards.resource_model import planned_lc
    from slimgen.planner import _over
    ulx3s, icebreaker = get_board("ulx3s-85f"), get_board("icebreaker")
    assert (planned_lc(ulx3s), planned_lc(icebreaker)) == (58548, 4752)
    assert _over(ulx3s, {"lc": 58548, "dsp": 156, "bram": 208}) == ()
    assert _over(ulx3s, {"lc": 71891, "dsp": 120, "bram": 108}) == (("lc", 71891, 58548),)
    big = Candidate(8, "auto", 108, 3832, 319.25, 71891, 120, 108, (("lc", 71891, 58548),), 1e5)
    with pytest.raises(PlanError, match=re.escape(
            "71,891 LUTs of the 58,548 planned (70 % of the board's)")):
        pick([big], RunConfig(objective="throughput", board="ulx3s-85f"), ulx3s)


@pytest.mark.slow
def test_the_command_line_sets_and_clears_the_objective(mlp_run, tmp_path, capsys):
    import shutil
    from slimgen.cli import main
    root = tmp_path / "run"
    shutil.copytree(mlp_run[0], root)
    assert main(["generate", "--run", str(root), "--objective", "area", "--fps", "20000",
                 "--quiet"]) == 0
    stored = json.loads((root / "config.json").read_text())
    assert (stored["objective"], stored["fps"]) == ("area", 20000.0)
    assert json.loads((root / "plan.json").read_text())["planner"]["objective"] == "area"
    assert main(["generate", "--run", str(root), "--objective", "none", "--quiet"]) == 0
    stored = json.loads((root / "config.json").read_text())
    assert (stored["objective"], stored["fps"]) == (None, None)
    assert "planner" not in json.loads((root / "plan.json").read_text())
    capsys.readouterr()
    assert main(["generate", "--run", str(root), "--fps", "5"]) != 0
    assert capsys.readouterr().err.strip().endswith(
        "--fps is a target for the planner; give --objective latency, throughput or area "
        "with it")


@pytest.mark.parametrize("where, expected", [
    ("cli", "--lanes is chosen by the planner with --objective area (leave --lanes out, or "
            "give --objective none to choose it yourself)"),
    ("api", "lanes is chosen by the planner with objective='area' (leave lanes out, or give "
            "objective=None to choose it yourself)"),
])
def test_lanes_given_with_an_objective_is_refused(where, expected, tmp_path, capsys):
    """The planner chooses the lanes: a --lanes given with --objective would be ignored."""
    if where == "cli":
        from slimgen.cli import main
        assert main(["generate", "--run", str(tmp_path / "run"), "--objective", "area",
                     "--lanes", "8"]) != 0
        assert capsys.readouterr().err.strip().endswith(expected)
    else:
        from slimgen import api
        with pytest.raises(FlowError) as e:
            api.project(tmp_path / "run", objective="area", lanes=8)
        assert str(e.value) == expected
    assert not (tmp_path / "run" / "config.json").exists()


def test_copies_of_a_design_add_its_network_share_and_divide_its_interval():
    """The planner's copies (throughput): the network's own resources times the copies, the
    UART bridge once, the interval their mean but never below one input word a cycle; the
    last count weighed is the first that does not fit."""
    from slimgen.boards.build import get_board
    from slimgen.planner import _copies
    board = get_board("icebreaker")                      # 8 DSP blocks
    c = Candidate(2, "auto", 2, 1000, 999, 1500, 2, 4, (), board.clock_hz / 999)
    share = {"lc": 1000, "dsp": 2, "bram": 3}
    out = _copies(c, share, 64, board)
    assert [v.copies for v in out] == [2, 3, 4, 5]
    two = out[0]
    assert (two.multipliers, two.lc, two.dsp, two.bram) == (4, 2500, 4, 7)
    assert two.interval == 499.5 and two.cycles == 1000 and two.fits
    assert out[2].dsp == 8 and out[2].fits and not out[3].fits      # 5 copies: 10 DSP
    assert ("dsp", 10, 8) in out[3].over
    # one input word a cycle: copies past interval / n_inputs gain nothing
    fast = Candidate(1, "auto", 1, 100, 99, 100, 0, 0, (), board.clock_hz / 99)
    out = _copies(fast, {"lc": 10, "dsp": 0, "bram": 0}, 64, board)
    assert [v.interval for v in out] == [64]


def test_copies_chosen_are_predicted_whole_and_chosen_again_if_over(monkeypatch):
    """A design of several copies is predicted as built (its distributor and collector are
    not in one copy's share); over the planned logic it is replaced by that prediction and
    the next best is taken, and the log says so."""
    import slimgen.planner as planner
    from slimgen.boards.build import get_board
    board = get_board("ulx3s-85f")                       # 58,548 LUTs planned
    one = Candidate(8, "auto", 9, 3832, 3832, 6132, 10, 9, (), board.clock_hz / 3832)
    ten = replace(one, copies=10, multipliers=90, interval=383.1, lc=58251, dsp=100, bram=90,
                  fps=board.clock_hz / 383.1)
    six = replace(one, lanes=16, copies=6, multipliers=102, interval=396.5, lc=56333,
                  dsp=108, bram=102, fps=board.clock_hz / 396.5)
    whole = {10: 59173, 6: 56890}          # the GRU description's as predicted whole
    monkeypatch.setattr(planner, "weigh", lambda *a, **k: [one, ten, six])
    monkeypatch.setattr(planner, "_replicated", lambda kind, m, cfg, c, b: replace(
        c, lc=whole[c.copies], over=planner._over(b, {"lc": whole[c.copies], "dsp": c.dsp,
                                                      "bram": c.bram})))
    said = []
    config = RunConfig(objective="throughput", board="ulx3s-85f")
    chosen, candidates, why = planner.plan_lanes(None, None, config, board, log=said.append)
    assert (chosen.lanes, chosen.copies, chosen.lc) == (16, 6, 56890)
    assert [c.lc for c in candidates] == [6132, 59173, 56890]
    assert said == ["plan: 10 copies of 8 lanes predicted whole: 59,173 LUTs, over the "
                    "58,548 planned; choosing again"]
    assert "6 copies" in why
