"""The CLI and the flow: stage order, files, summary, and clear errors."""

import json

import pytest

from slimgen.cli import main


def test_stage_without_its_input_says_what_to_run(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["quantize", "--run", str(run)]) == 1
    err = capsys.readouterr().err
    assert f"slimgen quantize: error: {run}/float.npz does not exist: run 'slimgen train " \
           f"--run {run}' first (or 'slimgen flow')" in err


def test_bad_options_are_refused(tmp_path, capsys):
    assert main(["train", "--run", str(tmp_path / "r"), "--sizes", "64,x,10"]) == 1
    assert "--sizes must be integers separated by commas, not '64,x,10'" in capsys.readouterr().err
    assert main(["train", "--run", str(tmp_path / "r"), "--lanes", "0"]) == 1
    assert "lanes must be a positive integer, not 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--sim", "modelsim"])


def test_damaged_config_is_reported(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text('{"epochs": 3, "colour": "red"}')
    assert main(["train", "--run", str(run)]) == 1
    assert "Unknown run settings ['colour']" in capsys.readouterr().err


def test_train_and_quantize_write_their_files(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--run", str(run), "--epochs", "3", "--quiet"]) == 0
    assert main(["quantize", "--run", str(run), "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) >= {"float_accuracy", "int_accuracy", "train_seconds"}
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert (run / "float.npz").exists() and (run / "model.npz").exists()
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("float_accuracy")


@pytest.mark.sim
@pytest.mark.slow
def test_flow_to_verify(tmp_path, capsys):
    from slimgen.sim.runner import default_simulator
    from slimgen.sim.testing import require_simulator
    require_simulator(default_simulator())
    run = tmp_path / "r"
    assert main(["flow", "--run", str(run), "--epochs", "20", "--skip-build", "--quiet"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["hw_bit_exact"] is True and s["images_verified"] == 360
    assert s["hw_accuracy"] == s["int_accuracy"]
    assert s["cycles_per_inference"] > 0
    assert (run / "network.v").read_text().startswith("/*") or "module network" in \
        (run / "network.v").read_text()


def test_changed_settings_invalidate_later_stages(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--run", str(run), "--epochs", "2", "--quiet"]) == 0
    assert main(["quantize", "--run", str(run), "--quiet"]) == 0
    # A new lane count does not touch train and quantize...
    assert main(["quantize", "--run", str(run), "--lanes", "2", "--quiet"]) == 0
    assert (run / "float.npz").exists() and (run / "model.npz").exists()
    # ...a new epoch count removes everything from train on.
    assert main(["generate", "--run", str(run), "--epochs", "3", "--quiet"]) == 1
    assert not (run / "float.npz").exists() and not (run / "quantize.json").exists()
    err = capsys.readouterr().err
    assert "settings ['epochs'] changed: outputs of train, compress, quantize, generate, " \
           "verify, build, report removed; rerun them" in err
    assert "settings ['lanes'] changed: outputs of generate, verify, build, report removed" in err
    summary = json.loads((run / "summary.json").read_text())
    assert "float_accuracy" not in summary
