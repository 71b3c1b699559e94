"""The run report: self-contained HTML, Markdown with its PNGs, any subset of stages."""

import base64
import json
import re

import numpy as np
import pytest

from slimgen.report import ReportError, layer_rows, write_report
from slimgen.waveform_plot import VCDError, plot_waveform, read_vcd, write_vcd

pytest.importorskip("matplotlib")

CNN_SUMMARY = {
    "model": "cnn", "method": "balanced", "board": "icebreaker",
    "float_accuracy": 0.975, "compressed_accuracy": 0.969, "int_accuracy": 0.966,
    "hw_accuracy": 0.966, "images_verified": 360, "hw_bit_exact": True, "simulator": "icarus",
    "lc_used": 4100, "lc_total": 5280, "dsp_used": 8, "dsp_total": 8, "bram_used": 22,
    "bram_total": 30, "fmax_mhz": 17.3, "target_mhz": 12.0, "cycles_per_inference": 2400,
    "cycles_between_inferences": 2100, "inferences_per_second": 5714.3,
    "cycles_lower_bound": 1920, "latency_over_bound": 1.25, "bitstream": "build/slimgen.bin",
    "layers": [
        {"name": "conv1", "kind": "conv", "engine": "winograd F(2×2,3×3)", "shape": [4, 1, 3, 3],
         "weight_bits": 6, "sparsity": 0.0, "lanes": 4, "mults_direct": 9, "mults": 4,
         "cycles": 900},
        {"name": "conv2", "kind": "conv", "engine": "direct", "shape": [8, 4, 3, 3],
         "weight_bits": 4, "sparsity": 0.25, "lanes": 4, "mults_direct": 36, "mults": 36,
         "cycles": 1000},
        {"name": "fc", "kind": "sparse", "engine": "sparse rows", "shape": [10, 128],
         "weight_bits": 4, "sparsity": 0.75, "nonzeros_per_group": [80, 80, 80, 80],
         "lanes": 4, "mults_direct": 128, "mults": 32, "cycles": 200},
    ],
}


def _run(tmp_path, summary, config=None):
    root = tmp_path / "run"
    root.mkdir()
    (root / "config.json").write_text(json.dumps(config or {"data": "digits", "seed": 0,
                                                            "board": "icebreaker"}))
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def _vcd(path, cycles=40):
    signals = [("rst", 1), ("i__valid", 1), ("i__ready", 1), ("i__payload", 8), ("o__valid", 1),
               ("o__ready", 1), ("o_cls", 4), ("o_logit_cls", 19)]
    rows = []
    for c in range(cycles):
        inp = 2 <= c < 10
        out = c == cycles - 3
        rows.append([int(c < 1), int(inp), int(c < 10), (c * 3) if inp else None, int(out), 1,
                     7 if out else 0, (1 << 19) - 5 if out else 0])
    return write_vcd(path, signals, rows)


def _self_contained(text):
    assert "http://" not in text and "https://" not in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in text and "<script" not in text
    return srcs


def test_cnn_report_has_every_section(tmp_path):
    root = _run(tmp_path, CNN_SUMMARY)
    html_path, md_path = write_report(root, vcd=_vcd(tmp_path / "w.vcd"))
    text = html_path.read_text()
    srcs = _self_contained(text)
    for png in srcs:
        assert base64.b64decode(png.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for alt in ("accuracy", "groups", "mults", "layers", "resources", "timing", "waveform"):
        assert f'alt="{alt}"' in text
        assert (root / "report" / f"{alt}.png").exists()
    for phrase in ("96.6%", "winograd F(2×2,3×3)", "9 → 4 (2.25×)", "80 × 4", "4,100 of 5,280",
                   "17.3 MHz", "5,714", "iCEBreaker (iCE40UP5K)", "compression balanced",
                   "the network answers class 7 with logit -5 in cycle 37"):
        assert phrase in text, phrase
    md = md_path.read_text()
    assert "![waveform](report/waveform.png)" in md and "| conv1 | conv |" in md
    assert "| lower bound: multiplications over the multipliers in use | 1,920 |" in md
    assert "| latency over the lower bound | 1.25× |" in md
    assert (root / "waveform.vcd").exists()


def test_unbuilt_run_says_not_built(tmp_path):
    s = {k: v for k, v in CNN_SUMMARY.items() if not k.endswith(("_used", "_total"))
         and k not in ("fmax_mhz", "bitstream")}
    root = _run(tmp_path, s)
    html_path, md_path = write_report(root, record_waveform=False)
    text = html_path.read_text()
    _self_contained(text)
    assert "Not built: the run stopped before the build stage" in text
    assert 'alt="resources"' not in text
    assert "No waveform: not recorded for this report." in text
    assert "Not built" in md_path.read_text()


def test_empty_run_renders(tmp_path):
    root = _run(tmp_path, {"board": "ulx3s-85f"})
    html_path, _ = write_report(root)
    text = html_path.read_text()
    assert "No stage has reported an accuracy yet." in text
    assert "No waveform: not recorded: the run has no network.v (run 'slimgen generate')." in text
    assert "ULX3S (ECP5-85F)" in text


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ReportError, match=r"is not a run folder: it has neither config.json nor "
                                          r"summary.json"):
        write_report(tmp_path)


def test_damaged_summary(tmp_path):
    root = _run(tmp_path, {})
    (root / "summary.json").write_text("{")
    with pytest.raises(ReportError, match=r"summary.json is damaged"):
        write_report(root)


def _int_mlp():
    """A small untrained MLP 64-8-10, quantized."""
    from slimgen.sw.network import preset
    from slimgen.sw.nn import build_model
    from slimgen.sw.quantize import quantize_network
    net = preset("mlp", sizes=(64, 8, 10))
    model = build_model(net.float_spec()[0], np.random.default_rng(0))
    return quantize_network(net, model, np.random.default_rng(1).random((50, 64)),
                            input_scale=1 / 16)


def test_mlp_layers_from_model(tmp_path):
    from slimgen.sw.artifact import save_int_network
    q = _int_mlp()
    root = _run(tmp_path, {"lanes": [2, 2]})
    save_int_network(root / "model.npz", q, dataset="digits", split_seed=0)
    rows = layer_rows(root, {"lanes": [2, 2]})
    assert [(r["name"], r["shape"], r["lanes"], r["mults"]) for r in rows] == \
        [("dense0", [8, 64], 2, 64), ("dense1", [10, 8], 2, 8)]


def test_vcd_round_trip(tmp_path):
    wave = read_vcd(_vcd(tmp_path / "w.vcd"))
    assert len(wave.edges) == 40
    assert wave.cycles("i__payload")[:4] == [None, None, 6, 9]
    assert wave.cycles("o_cls")[37] == 7 and wave.traces["o_logit_cls"].width == 19
    fig = plot_waveform(wave, tmp_path / "w.png", signals=[("i__payload", "px", "dec", "i__valid")])
    assert fig is not None and (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(VCDError, match=r"The waveform has no signal 'nope'; it has clk, "):
        wave.cycles("nope")


def test_vcd_errors(tmp_path):
    with pytest.raises(VCDError, match=r"does not exist"):
        read_vcd(tmp_path / "missing.vcd")
    (tmp_path / "bad.vcd").write_text("hello")
    with pytest.raises(VCDError, match=r"is not a VCD: no \$enddefinitions"):
        read_vcd(tmp_path / "bad.vcd")
    with pytest.raises(ValueError, match=r"Signal names must be unique and not 'clk'"):
        write_vcd(tmp_path / "x.vcd", [("clk", 1)], [])
    with pytest.raises(ValueError, match=r"Sample 0 has 2 values for 1 signals"):
        write_vcd(tmp_path / "x.vcd", [("a", 1)], [(1, 0)])


@pytest.mark.sim
def test_recorded_waveform_of_a_network(tmp_path):
    """One inference through the Verilog of a tiny MLP on the simulator, drawn in the report."""
    from slimgen.hw.network import Network
    from slimgen.hw.verilog import to_verilog
    from slimgen.sim.runner import default_simulator
    from slimgen.sim.testing import require_simulator
    from slimgen.sim.waveform import record_inference_vcd
    sim = default_simulator()
    require_simulator(sim)  # skips locally without it; fails in CI
    q = _int_mlp()
    verilog = tmp_path / "network.v"
    verilog.write_text(to_verilog(Network(q, lanes=2), "network"))
    x = np.random.default_rng(2).integers(0, 17, 64)
    vcd = record_inference_vcd(verilog, q, x, tmp_path / "w.vcd", sim=sim)
    wave = read_vcd(vcd)
    valid = wave.cycles("o__valid")
    out = valid.index(1)
    golden = q(x[None])[0]
    assert wave.cycles("o_cls")[out] == int(np.argmax(golden))
    assert sum(v == 1 for v, r in zip(wave.cycles("i__valid"), wave.cycles("i__ready"))) >= 64
    root = _run(tmp_path, {"cycles_per_inference": out})
    html_path, _ = write_report(root, vcd=vcd)
    assert f"the network answers class {int(np.argmax(golden))}" in html_path.read_text()


def test_layer_without_weights_shows_blank_bits(tmp_path):
    """The LSTM's element-wise unit has multipliers but no weights: no "None" in its row."""
    layer = {"name": "elementwise", "kind": "lstm cell", "engine": "time-multiplexed",
             "shape": [32, 7], "weight_bits": None, "sparsity": None, "nonzeros": None,
             "nonzeros_per_group": None, "lanes": 2, "mults_direct": 7, "mults": 7.0,
             "cycles": 1280}
    root = _run(tmp_path, {"model": "lstm", "layers": [layer]})
    _, md_path = write_report(root, record_waveform=False)
    row = next(line for line in md_path.read_text().splitlines() if "| elementwise |" in line)
    assert "None" not in row and "| 2 | 7 → 7 | 1,280 |" in row


def test_agreement_rows_from_the_import_and_the_stages(tmp_path):
    from slimgen.report import _agreement
    (tmp_path / "import.json").write_text(json.dumps(
        {"source": "m.onnx", "agreement": {"max_relative_difference": 3.2e-7,
                                           "argmax_agreement": 1.0}}))
    rows = _agreement(tmp_path, {"int_float_agreement": 0.9972, "hw_bit_exact": False,
                                 "images_verified": 360})
    assert rows == [["float model vs its source (m.onnx)",
                     "outputs within 3.2e-07 relative, same class on 100.0%"],
                    ["integer (golden model) vs float", "same class on 99.7%"],
                    ["hardware vs integer", "logits DIFFER on 360 test samples"]]
    assert _agreement(tmp_path / "nothing", {}) == []


def test_the_plan_beside_the_build(tmp_path):
    """The resource model's prediction beside nextpnr's figures, the plan's table and every
    design the planner weighed."""
    s = dict(CNN_SUMMARY, lc_estimate=3690, dsp_estimate=8, bram_estimate=22)
    root = _run(tmp_path, s)
    candidate = {"lanes": 4, "engine": "auto", "multipliers": 4, "cycles": 2400,
                 "interval": 2400, "fps": 5000.0, "lc": 3690, "dsp": 8, "bram": 22, "over": []}
    plan = {"board": "icebreaker", "lc_name": "logic cells", "layers": [
        {"name": "conv1", "engine": "winograd F(2×2,3×3)", "lanes": 4, "cycles": 900,
         "lc_estimate": "shared", "dsp_estimate": "shared", "bram_estimate": "shared"}],
        "shared": {"lc_estimate": 3690, "dsp_estimate": 8, "bram_estimate": 22},
        "totals": {"cycles_estimate": 2400, "lc_estimate": 3690, "dsp_estimate": 8,
                   "bram_estimate": 22},
        "planner": {"objective": "latency", "why": "latency: 4 lanes, the only design",
                    "lanes": 4, "engine": "auto",
                    "candidates": [candidate, dict(candidate, lanes=8, multipliers=8,
                                                   over=[["dsp", 16, 8]])]}}
    (root / "plan.json").write_text(json.dumps(plan))
    _, md_path = write_report(root, record_waveform=False)
    md = md_path.read_text()
    assert "| logic cells | 4,100 of 5,280 | 3,690 | -10.0% |" in md
    assert "| DSP multipliers | 8 of 8 | 8 | exact |" in md
    assert "The planner chose: latency: 4 lanes, the only design." in md
    assert "| conv1 | winograd F(2×2,3×3) | 4 | 900 | shared | shared | shared |" in md
    assert "| total |  |  | 2,400 | 3,690 | 8 | 22 |" in md
    assert "| 8 | auto | 8 | 2,400 | 2,400 | 5,000 | 3,690 | 8 | 22 | no: dsp 16 of 8 |" in md
