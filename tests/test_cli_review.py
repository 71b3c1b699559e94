"""Bad input found in review of the CLI (issue 21): each refused with a message naming the bad
value or option and what would be right, and nothing in a run folder changed."""

import io
import json
import os
import subprocess
import sys

import pytest

from slimgen.cli import main
from slimgen.settings import RunConfig


def _run_folder(root, summary=None, **settings):
    """A run folder as the flow leaves it: config.json (and summary.json) only."""
    root.mkdir()
    (root / "config.json").write_text(json.dumps({**RunConfig().to_dict(), **settings}))
    if summary is not None:
        (root / "summary.json").write_text(json.dumps(summary))
    return root


def _error(capsys):
    return capsys.readouterr().err.strip()


# 1. stdout closed early


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_summary_into_a_closed_pipe_exits_quietly_with_141(tmp_path, extra):
    run = _run_folder(tmp_path / "r", summary={"float_accuracy": 0.9, "board": "icebreaker"})
    read, write = os.pipe()
    os.close(read)                              # the reader has gone (`| head -1` done)
    try:
        done = subprocess.run([sys.executable, "-m", "slimgen", "summary", "--run", str(run),
                               *extra], stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


class _ClosedStdout(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        raise io.UnsupportedOperation("fileno")


def test_every_command_exits_with_141_when_stdout_is_closed(tmp_path, capsys, monkeypatch):
    run = _run_folder(tmp_path / "r", summary={"float_accuracy": 0.9})
    monkeypatch.setattr(sys, "stdout", _ClosedStdout())
    assert main(["summary", "--run", str(run)]) == 141
    assert main(["compress", "--run", str(run), "--quiet"]) == 141   # a stage's summary
    assert "error" not in capsys.readouterr().err


# 2. a valid stored config.json is not blamed for a command-line conflict


def test_a_stored_setting_the_command_line_no_longer_fits_names_the_option(tmp_path, capsys):
    run = _run_folder(tmp_path / "r", sizes=[64, 8, 10], lanes=5)
    stored = (run / "config.json").read_text()
    assert main(["train", "--run", str(run), "--sizes", "64,8,8,10", "--epochs", "1"]) == 1
    assert _error(capsys) == (
        f"slimgen train: error: with --sizes 64,8,8,10, the stored lanes 5 ({run}/config.json) "
        f"no longer fits: lanes must be at most 4 for the folded MLP 64-8-8-10 (its widest "
        f"layer's 10 outputs over its 3 layers), not 5; give --lanes too")
    assert (run / "config.json").read_text() == stored
    assert main(["train", "--run", str(run), "--lanes", "1000"]) == 1
    assert _error(capsys).startswith("slimgen train: error: --lanes must be at most 5 ")


def test_a_stored_config_bad_alone_is_blamed(tmp_path, capsys):
    run = _run_folder(tmp_path / "r", sizes=[64, 8, 10], lanes=1000)
    assert main(["train", "--run", str(run), "--sizes", "64,100,10"]) == 1
    assert _error(capsys).startswith(f"slimgen train: error: {run}/config.json is not a valid "
                                     f"run configuration: lanes must be at most 5 ")


def test_a_config_file_setting_the_command_line_no_longer_fits(tmp_path, capsys):
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"sizes": [64, 8, 10], "lanes": 5}))
    assert main(["train", "--run", str(tmp_path / "r"), "--config", str(cfg),
                 "--sizes", "64,8,8,10"]) == 1
    assert _error(capsys).startswith(f"slimgen train: error: with --sizes 64,8,8,10, the lanes 5 "
                                     f"of --config {cfg} no longer fits: lanes must be at most 4")
    assert not (tmp_path / "r").exists()


# 3. empty option values


@pytest.mark.parametrize("argv, message", [
    (["--sizes", ""], "--sizes must be integers separated by commas (e.g. 64,32,10), not ''"),
    (["--config", ""], "--config must name a JSON file of run settings, not ''"),
])
def test_an_empty_value_is_refused(tmp_path, capsys, argv, message):
    run = _run_folder(tmp_path / "r", sizes=[64, 8, 10])
    assert main(["train", "--run", str(run), *argv]) == 1
    assert _error(capsys) == f"slimgen train: error: {message}"


# 4. a --config file's settings that the method or model would ignore


@pytest.mark.parametrize("settings, message", [
    ({"bits": 3}, "bits is the joint method's target average weight bits; --method none does "
                  "not use it (give --method joint, or remove bits from it)"),
    ({"sparsity": 0.5}, "sparsity is a compression method's target; --method none does not "
                        "use it (give a --method, or remove sparsity from it)"),
    ({"hidden": 16}, "hidden is the LSTM's hidden units; --model mlp does not use it"),
])
def test_config_file_settings_that_would_be_ignored_are_refused(tmp_path, capsys, settings,
                                                                message):
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps(settings))
    assert main(["train", "--run", str(tmp_path / "r"), "--config", str(cfg)]) == 1
    assert _error(capsys) == f"slimgen train: error: --config {cfg}: {message}"
    assert not (tmp_path / "r").exists()


def test_a_run_config_json_as_config_file_is_taken(tmp_path, capsys):
    # a run's config.json holds every setting; those at their defaults are not asked for
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({**RunConfig().to_dict(), "epochs": 1, "sizes": [64, 8, 10]}))
    assert main(["train", "--run", str(tmp_path / "r"), "--config", str(cfg), "--quiet"]) == 0


# 5. the compress stage on a folder that is not a run


@pytest.mark.parametrize("make", [False, True])
def test_compress_stage_outside_a_run_folder_is_refused(tmp_path, capsys, make):
    run = tmp_path / "new"
    if make:
        run.mkdir()
    assert main(["compress", "--run", str(run)]) == 1
    why = "no config.json" if make else "it does not exist"
    assert _error(capsys) == (f"slimgen compress: error: {run} is not a run folder ({why}): "
                              f"run 'slimgen flow --run {run}' to make one")
    assert run.exists() == make and not (run / "config.json").exists()


# 7. --help


def test_help_names_every_method(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "compression: none (default), self_prune, joint, balanced, sign, lstm_gates, " \
           "magnitude" in help_text


# 5 and 6. the compress tool (`slimgen compress --in F --out G`)


@pytest.fixture
def float_model(tmp_path):
    import numpy as np
    from slimgen.sw.artifact import save_float_model
    from slimgen.sw.nn import build_model, mlp_spec
    path = tmp_path / "float.npz"
    save_float_model(path, build_model(mlp_spec((64, 8, 10)), np.random.default_rng(0)),
                     dataset="digits", split_seed=0)
    return path


@pytest.mark.parametrize("argv, message", [
    # 5: where the output goes
    ([], "--in and --out are both needed: the float artifact to read and the compressed "
         "artifact to write (e.g. --in runs/NAME/float.npz --out pruned.npz); 'slimgen "
         "compress --run NAME' compresses a run folder in place"),
    (["--out", ""], "--out must name the file to write (an .npz file), not ''"),
    (["--out", "{tmp}"], "--out {tmp} is a folder: name the file to write in it, e.g. "
                         "{tmp}/compressed.npz"),
    (["--out", "{tmp}/new/"], "--out {tmp}/new/ is a folder: name the file to write in it, "
                              "e.g. {tmp}/new/compressed.npz"),
    (["--out", "{tmp}/run/compressed.npz"],
     "--out {tmp}/run/compressed.npz is a file of the run folder {tmp}/run, whose summary "
     "would then mix two models: compress the run with 'slimgen compress --run {tmp}/run "
     "--method magnitude', or write another file"),
    # 6: the options named, not the methods' internal settings
    (["--seed", "-1"], "--seed must be a non-negative integer, not -1"),
    (["--sparsity", "1.5"], "--sparsity must be a number in [0, 1), not 1.5"),
    (["--epochs", "0"], "--epochs must be a positive integer, not 0"),
    (["--finetune-epochs", "-1"], "--finetune-epochs must be a non-negative integer, not -1"),
    (["--q", "2"], "--q is not used by --method magnitude (only by lstm_gates): leave it out"),
    (["--gates", "io"], "--gates is not used by --method magnitude (only by lstm_gates): "
                        "leave it out"),
    (["--input-order", "tiled"], "--input-order is not used by --method magnitude (only by "
                                 "balanced): leave it out"),
    (["--bits", "3"], "--bits is not used by --method magnitude (only by joint): leave it out"),
])
def test_compress_tool_refusals(tmp_path, float_model, capsys, argv, message):
    _run_folder(tmp_path / "run")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = [] if not argv or argv[0] == "--out" else ["--out", str(tmp_path / "c.npz")]
    assert main(["compress", "--in", str(float_model), "--method", "magnitude", "--quiet",
                 *out, *argv]) == 1
    assert _error(capsys) == "slimgen compress: error: " + message.replace("{tmp}", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float.npz", "run"]
    assert not (tmp_path / "runs").exists() and not os.path.exists("runs/default/compressed.npz")


@pytest.mark.parametrize("method, argv, message", [
    ("joint", ["--bits", "9"], "--bits must be a number from 2 to 8 (the joint method's "
                               "candidate widths 2, 3, 4, 6, 8), not 9.0"),
    ("self_prune", ["--alpha-max-ratio", "0.1"],
     "--alpha-max-ratio must be a number ≥ 0.2 (the floor of every threshold's α/β), not 0.1"),
    ("lstm_gates", ["--gates", "xyz"], "--gates must be one or more of the gates i, f, o, r, z "
                                       "(an LSTM's i, f, o, a GRU's r, z), each once (e.g. ifo "
                                       "or io; the candidate c or n stays dense), not 'xyz'"),
    ("lstm_gates", ["--q", "1", "--sparsity", "0.5"],
     "--q and --sparsity both set how much lstm_gates prunes: give one"),
    ("lstm_gates", [], "--method lstm_gates prunes LSTM and GRU gates; {in} has no LSTM or "
                       "GRU layer (its layers: dense, relu, dense)"),
    ("balanced", ["--input-order", "tiled"],
     "--input-order places the first layer's inputs in the banks of --layout banks, not rows: "
     "give --layout banks, or leave it out"),
    ("sign", ["--distribution", "cauchy"],
     "--distribution must be one of halfnormal, uniform, exponential, not 'cauchy'"),
])
def test_compress_tool_names_the_option(tmp_path, float_model, capsys, method, argv, message):
    assert main(["compress", "--in", str(float_model), "--out", str(tmp_path / "c.npz"),
                 "--method", method, "--quiet", *argv]) == 1
    assert _error(capsys) == "slimgen compress: error: " + message.replace("{in}",
                                                                           str(float_model))
    assert not (tmp_path / "c.npz").exists()
