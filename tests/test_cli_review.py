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
