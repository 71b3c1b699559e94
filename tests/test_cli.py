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
    assert "--sizes must be integers separated by commas (e.g. 64,32,10), not '64,x,10'" \
        in capsys.readouterr().err
    assert main(["train", "--run", str(tmp_path / "r"), "--sizes", ""]) == 1
    assert "--sizes must be integers separated by commas (e.g. 64,32,10), not ''" in capsys.readouterr().err
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
    # ...a new epoch count would remove everything from train on: a later stage alone is
    # refused and nothing is removed...
    trained = (run / "float.npz").read_bytes()
    assert main(["generate", "--run", str(run), "--epochs", "3", "--quiet"]) == 1
    assert (run / "float.npz").read_bytes() == trained and (run / "quantize.json").exists()
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    # ...train runs with it and removes the outputs of every later stage.
    assert main(["train", "--run", str(run), "--epochs", "3", "--quiet"]) == 0
    assert not (run / "model.npz").exists() and not (run / "quantize.json").exists()
    err = capsys.readouterr().err
    assert "settings ['epochs'] change the outputs of train, which generate reads" in err
    assert "settings ['epochs'] changed: outputs of train, compress, quantize, generate, " \
           "verify, build, report removed; rerun them" in err
    assert "settings ['lanes'] changed: outputs of generate, verify, build, report removed" in err
    summary = json.loads((run / "summary.json").read_text())
    assert "int_accuracy" not in summary and summary["epochs"] == 3


def test_config_file_sets_and_command_line_overrides(tmp_path, capsys):
    run, cfg = tmp_path / "r", tmp_path / "settings.json"
    cfg.write_text(json.dumps({"epochs": 2, "lanes": 2, "method": "magnitude",
                               "compress_epochs": 3, "finetune_epochs": 0}))
    assert main(["train", "--run", str(run), "--config", str(cfg), "--lanes", "8", "--quiet"]) == 0
    stored = json.loads((run / "config.json").read_text())
    assert (stored["epochs"], stored["lanes"]) == (2, 8)
    assert (stored["compress_epochs"], stored["finetune_epochs"]) == (3, 0)


@pytest.mark.parametrize("text, message", [
    (None, "no such file"),
    ("{not json", "is not a JSON file of run settings"),
    ("[1, 2]", 'must hold one JSON object of settings, e.g. {"model": "cnn", "lanes": 4}, '
               "not a list"),
    ('{"colour": "red"}', "Unknown run settings ['colour']"),
    ('{"compress_epochs": 0}', "compress_epochs must be an integer"),
])
def test_bad_config_file_is_refused_and_nothing_written(tmp_path, capsys, text, message):
    run, cfg = tmp_path / "r", tmp_path / "settings.json"
    if text is not None:
        cfg.write_text(text)
    assert main(["train", "--run", str(run), "--config", str(cfg), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"--config {cfg}" in err and message in err
    assert not (run / "float.npz").exists()


def _run(root, **settings):
    from slimgen.flow import Run, RunConfig
    logs = []
    return Run(root, RunConfig(**settings), progress=False, log=logs.append), logs


def test_compression_epochs_invalidate_compress_not_train(tmp_path):
    from slimgen.flow import run_flow
    settings = dict(epochs=2, method="magnitude", compress_epochs=1, finetune_epochs=1)
    run, _ = _run(tmp_path / "r", **settings)
    run_flow(run, ("train", "compress", "quantize"))
    trained = (tmp_path / "r" / "float.npz").stat().st_mtime_ns
    run, logs = _run(tmp_path / "r", **{**settings, "finetune_epochs": 2})
    assert "settings ['finetune_epochs'] changed: outputs of compress, quantize, generate, " \
           "verify, build, report removed; rerun them" in logs
    assert not (tmp_path / "r" / "compressed.npz").exists()
    run_flow(run, ("train", "compress", "quantize"))
    assert (tmp_path / "r" / "float.npz").stat().st_mtime_ns == trained
    assert "== train == done with these settings, kept (--from train reruns it)" in logs
    assert "== compress ==" in logs and "== quantize ==" in logs


def test_flow_keeps_done_stages_and_reruns_from_a_stage(tmp_path):
    from slimgen.flow import run_flow
    run, logs = _run(tmp_path / "r", epochs=2)
    run_flow(run, ("train", "compress", "quantize"))
    quantized = (tmp_path / "r" / "quantize.json").read_text()
    logs.clear()
    run_flow(run, ("train", "compress", "quantize"))
    assert [m for m in logs if m.startswith("== ")] == [
        f"== {st} == done with these settings, kept (--from {st} reruns it)"
        for st in ("train", "compress", "quantize")]
    logs.clear()
    run_flow(run, ("train", "compress", "quantize"), rerun_from="compress")
    assert [m for m in logs if m.startswith("== ")] == [
        "== train == done with these settings, kept (--from train reruns it)",
        "== compress ==", "== quantize =="]
    # same seed, same bits: the rerun quantizes to the same figures
    rerun = json.loads((tmp_path / "r" / "quantize.json").read_text())
    first = json.loads(quantized)
    assert {k: v for k, v in rerun.items() if not k.endswith("_seconds")} == \
           {k: v for k, v in first.items() if not k.endswith("_seconds")}
    with pytest.raises(ValueError, match="--from must be one of train, compress"):
        run_flow(run, rerun_from="synthesis")


def test_rerunning_a_stage_drops_the_figures_of_later_ones(tmp_path):
    from slimgen.flow import run_stage
    run, _ = _run(tmp_path / "r", epochs=2)
    for stage in ("train", "compress", "quantize"):
        run_stage(run, stage)
    run_stage(run, "train")
    assert not (tmp_path / "r" / "quantize.json").exists()
    assert not (tmp_path / "r" / "model.npz").exists()
    assert "int_accuracy" not in run.summary()


def test_missing_compression_names_the_command_that_makes_it(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--run", str(run), "--epochs", "1", "--method", "magnitude",
                 "--quiet"]) == 0
    assert main(["quantize", "--run", str(run), "--quiet"]) == 1
    assert f"{run}/compressed.npz does not exist: run 'slimgen compress --run {run}' first " \
           f"(or 'slimgen flow')" in capsys.readouterr().err
