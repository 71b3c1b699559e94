"""The LSTM through ``slimgen flow`` to verify: every digits test image through the generated
Verilog of the LSTM classifier, bit-exact against the integer golden model."""

import json

import pytest

from slimgen.cli import main


@pytest.mark.sim
@pytest.mark.slow
def test_flow_lstm_to_verify(tmp_path):
    from slimgen.sim.runner import default_simulator
    from slimgen.sim.testing import require_simulator
    require_simulator(default_simulator())
    run = tmp_path / "lstm"
    assert main(["flow", "--model", "lstm", "--run", str(run), "--epochs", "4", "--lanes", "8",
                 "--skip-build", "--quiet"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["model"] == "lstm" and s["images_verified"] == 360
    assert s["hw_bit_exact"] is True and s["hw_accuracy"] == s["int_accuracy"]
    assert [e["name"] for e in s["layers"]] == ["gates_ifo", "gate_c", "head"]
    assert s["multipliers"] == 8 + 1    # the gates' lanes and the head's
    assert s["cycles_per_inference"] > 0
