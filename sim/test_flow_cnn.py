"""The CNN through the whole flow up to verification: every image of the digits test split
through the generated Verilog of the compressed CNN on the simulator, bit-exact."""

import json

import pytest

from slimgen.cli import main

from .testing import require_simulator


@pytest.mark.sim
@pytest.mark.slow
def test_flow_cnn_every_test_image(tmp_path):
    # Verilator: 360 images of about 1,900 cycles, twice (alone, then streamed), in under a
    # minute; Icarus takes minutes (it runs the same network on random images in test_cnn)
    require_simulator("verilator")
    run = tmp_path / "run"
    # the kind's defaults: balanced compression, the iCEBreaker, Verilator; a short training
    # and compression (same code path)
    rc = main(["flow", "--model", "cnn", "--epochs", "8", "--compress-epochs", "4",
               "--finetune-epochs", "4", "--run", str(run), "--skip-build", "--quiet"])
    assert rc == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["model"] == "cnn" and s["images_verified"] == 360 and s["hw_bit_exact"]
    assert (s["method"], s["board"], s["simulator"]) == ("balanced", "icebreaker", "verilator")
    assert s["hw_accuracy"] == s["int_accuracy"]
    kinds = [e["kind"] for e in s["layers"]]
    assert kinds == ["conv", "conv", "dense"]
    conv1 = s["layers"][1]
    # α² = 16 products per 2×2 output tile and non-zero filter: 4 per output and filter
    assert conv1["algorithm"] == "F(2×2, 3×3)"
    assert conv1["mults"] == 4 * conv1["nonzero_filters"] / 8
    assert s["layers"][2]["engine"].startswith("sparse")
    # every layer on the same lanes: the bound counts them once, and latency stays near it
    assert s["multipliers"] == 4 and s["lanes"] == [4, 4, 4]
    assert s["cycles_lower_bound"] == -(-s["mults_per_inference"] // s["multipliers"])
    assert s["latency_over_bound"] <= 1.25
    # the schedule's cycle models, exact through the flow: an image alone, and streamed
    assert s["cycles_per_inference"] == s["cycles_estimate"]
    plan = json.loads((run / "plan.json").read_text())
    assert s["cycles_between_inferences"] == plan["totals"]["interval_estimate"]
