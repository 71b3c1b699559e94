"""The gate-pruned LSTM and a GRU description through ``slimgen flow`` up to verification:
every image of the digits test split through the generated Verilog of the recurrent
classifier, bit-exact against the integer golden model."""

import functools
import json

import pytest

from slimgen.cli import main

from .testing import require_simulator


@pytest.mark.sim
@pytest.mark.slow
def test_flow_lstm_every_test_image(tmp_path, monkeypatch):
    require_simulator("verilator")  # the LSTM kind verifies on Verilator: Icarus is too slow
    # A short method 2 (the flow has no setting for its rounds and epochs): same code path.
    from slimgen.sw.compress import lstm_gate_prune
    monkeypatch.setattr(lstm_gate_prune, "GatePruneConfig",
                        functools.partial(lstm_gate_prune.GatePruneConfig, steps=1,
                                          finetune_epochs=2))
    run = tmp_path / "run"
    rc = main(["flow", "--model", "lstm", "--method", "lstm_gates", "--epochs", "4",
               "--run", str(run), "--skip-build", "--quiet"])   # the kind's 8 lanes
    assert json.loads((run / "config.json").read_text())["sim"] == "verilator"
    assert rc == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["model"] == "lstm" and s["images_verified"] == 360 and s["hw_bit_exact"]
    assert s["hw_accuracy"] == s["int_accuracy"]
    assert [e["name"] for e in s["layers"]] == ["gates_ifo", "gate_c", "head", "elementwise"]
    ifo, c, head, ew = s["layers"]
    assert ifo["sparsity"] >= 0.85 and ifo["lanes"] == c["lanes"] == head["lanes"] == 8
    # Gates and head share the 8 lanes (zeros cost no multiply); the element-wise unit has
    # one or two multipliers (the planner's pick) for its 7 products per hidden unit and step.
    # The bound counts them all.
    n_ew = ew["lanes"]
    assert n_ew in (1, 2) and s["multipliers"] == 8 + n_ew
    assert ew["mults_per_inference"] == 8 * 32 * 7
    assert s["mults_per_inference"] == 8 * (ifo["nonzeros"] + c["nonzeros"]) + \
        head["nonzeros"] + ew["mults_per_inference"]
    assert s["cycles_lower_bound"] == -(-s["mults_per_inference"] // (8 + n_ew))
    assert s["cycles_lower_bound"] <= s["cycles_per_inference"] <= s["cycles_estimate"]
    assert s["latency_over_bound"] <= 1.25


@pytest.mark.sim
@pytest.mark.slow
def test_flow_gru_description_every_test_image(tmp_path):
    """examples/nets/gru.json (a GRU's last state, dropout, dense) through the flow: the
    recurrent engine with the GRU's element-wise unit, every test image bit-exact."""
    from pathlib import Path
    require_simulator("verilator")
    net = Path(__file__).resolve().parents[1] / "examples" / "nets" / "gru.json"
    run = tmp_path / "run"
    assert main(["flow", "--net", str(net), "--epochs", "4", "--lanes", "4", "--sim",
                 "verilator", "--run", str(run), "--skip-build", "--quiet"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["images_verified"] == 360 and s["hw_bit_exact"]
    assert s["hw_accuracy"] == s["int_accuracy"]
    assert [e["name"] for e in s["layers"]] == ["gates_rz", "gate_n", "head", "elementwise"]
    rz, n, head, ew = s["layers"]
    assert rz["lanes"] == n["lanes"] == head["lanes"] == 4 and ew["lanes"] in (1, 2)
    assert ew["mults_per_inference"] == 8 * 32 * 5
    assert s["mults_per_inference"] == 8 * (rz["nonzeros"] + n["nonzeros"]) + \
        head["nonzeros"] + ew["mults_per_inference"]
    assert s["cycles_lower_bound"] <= s["cycles_per_inference"] <= s["cycles_estimate"]
