"""Run settings are checked before a run folder is touched; a refused command changes nothing.

Each bad input is tried through ``slimgen.cli.main`` on a copy of one small trained run (MLP
64-8-10, one epoch, quantized and generated), with a snapshot of every file's bytes and
modification time before and after.
"""

import json
import shutil

import numpy as np
import pytest

from slimgen.cli import main


def snapshot(root):
    """Every file and folder under ``root``: its bytes (files) and its modification time."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None,
                                       p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "r"
    for stage in ("train", "quantize", "generate"):
        assert main([stage, "--run", str(run), "--epochs", "1", "--sizes", "64,8,10",
                     "--quiet"]) == 0
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(trained, copy)
    return copy


def refused(argv, run, capsys, code=1):
    """Run ``argv`` on ``run``; assert it fails with ``code``, changes nothing, prints one
    error line and no traceback; return that line."""
    before = snapshot(run)
    assert main(argv + ["--run", str(run)]) == code
    err = capsys.readouterr().err
    assert snapshot(run) == before
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["quantize", "--weight-bits", "0"],
     "slimgen quantize: error: --weight-bits must be an integer from 2 to 16, not 0"),
    (["train", "--board", "nosuch"],
     "slimgen train: error: --board must be one of icebreaker, ulx3s-85f, not 'nosuch'"),
    (["generate", "--lanes", "1000"],
     "slimgen generate: error: --lanes must be at most 5 for the folded MLP 64-8-10 (its widest "
     "layer's 10 outputs over its 2 layers), not 1000"),
    (["generate", "--engine", "dense", "--lanes", "11"],
     "slimgen generate: error: --lanes must be at most 10 for the MLP 64-8-10 on dense engines "
     "(a layer's lanes are at most its outputs), not 11"),
    (["generate", "--model", "cnn", "--lanes", "1000"],
     "slimgen generate: error: --lanes must be 4, 8 or 16 for the CNN (a multiple of α = 4 that "
     "divides α² = 16), not 1000"),
    (["generate", "--model", "lstm", "--hidden", "16", "--lanes", "17"],
     "slimgen generate: error: --lanes must be at most 16 for the LSTM (one lane per hidden "
     "unit at most), not 17"),
    (["quantize", "--method", "joint", "--bits", "99"],
     "slimgen quantize: error: --bits must be a number from 2 to 8 (the joint method's "
     "candidate widths 2, 3, 4, 6, 8), not 99.0"),
    (["train", "--seed", "-1"],
     "slimgen train: error: --seed must be a non-negative integer, not -1"),
    (["train", "--epochs", "0"],
     "slimgen train: error: --epochs must be a positive integer, not 0"),
    (["train", "--sparsity", "nan", "--method", "magnitude"],
     "slimgen train: error: --sparsity must be a number in [0, 1), not nan"),
    (["train", "--data", "mnist"],
     "slimgen train: error: --data must be 'digits', 'mnist1d' or 'mnist5k' (all but 'digits' "
     "with the data extra) or a path to an .npz file, not 'mnist'"),
    (["train", "--bits", "3"],
     "slimgen train: error: --bits is the joint method's target average weight bits; "
     "--method none does not use it (give --method joint, or leave --bits out)"),
    (["train", "--sparsity", "0.5"],
     "slimgen train: error: --sparsity is a compression method's target; --method none does "
     "not use it (give a --method, or leave --sparsity out)"),
    (["train", "--compress-epochs", "2"],
     "slimgen train: error: --compress-epochs is the epochs of a compression method; "
     "--method none does not use it (give a --method, or leave --compress-epochs out)"),
    (["train", "--method", "lstm_gates", "--model", "lstm", "--compress-epochs", "2"],
     "slimgen train: error: --compress-epochs is the epochs of a compression method; "
     "--method lstm_gates does not use it (it prunes at once, then fine-tunes: "
     "--finetune-epochs)"),
    (["train", "--hidden", "16"],
     "slimgen train: error: --hidden is the LSTM's hidden units; --model mlp does not use it"),
    (["train", "--model", "cnn", "--sizes", "64,16,10"],
     "slimgen train: error: --sizes is the MLP's layer sizes; --model cnn does not use it"),
    (["train", "--model", "lstm", "--engine", "dense"],
     "slimgen train: error: --engine is the engine choice of the MLP, the CNN and --net "
     "networks; --model lstm does not use it (its gates and head share sparse lanes)"),
    (["train", "--model", "cnn", "--layout", "banks"],
     "slimgen train: error: --layout must be 'rows' for the CNN (its shared array takes rows), "
     "not 'banks'"),
    (["train", "--method", "lstm_gates"],
     "slimgen train: error: --method 'lstm_gates' prunes LSTM and GRU gates; it needs --model "
     "lstm or a --net with an lstm or gru layer, not --model mlp"),
    (["train", "--sizes", "64,8,5"],
     "slimgen train: error: data 'digits': labels go up to 9 (10 classes), but the MLP "
     "64-8-5 has 5 outputs: make the last of --sizes at least 10"),
    (["train", "--sizes", "100,8,10"],
     "slimgen train: error: data 'digits': samples have 64 values, but the MLP 100-8-10 takes "
     "100: make the first of --sizes 64"),
])
def test_a_bad_setting_is_refused_before_anything_changes(run, capsys, argv, message):
    assert refused(argv, run, capsys) == message


@pytest.mark.parametrize("argv, first", [
    (["generate", "--model", "cnn"], "train"),
    (["generate", "--epochs", "3"], "train"),
    (["quantize", "--method", "joint", "--bits", "3"], "compress"),
    (["report", "--board", "ulx3s-85f", "--lanes", "2"], "generate"),
])
def test_a_stage_whose_inputs_a_change_would_remove_is_refused(run, capsys, argv, first):
    line = refused(argv, run, capsys)
    stage = argv[0]
    assert line.startswith(f"slimgen {stage}: error: settings [")
    assert line.endswith(f"change the outputs of {first}, which {stage} reads: run 'slimgen "
                         f"flow --run {run}' with these options (or 'slimgen {first} --run "
                         f"{run}' with them first); nothing was changed")


def test_a_stage_without_its_input_changes_nothing(trained, tmp_path, capsys):
    run = tmp_path / "r"
    shutil.copytree(trained, run)
    (run / "model.npz").unlink()
    line = refused(["generate", "--lanes", "2"], run, capsys)
    assert line == f"slimgen generate: error: {run}/model.npz does not exist: run 'slimgen " \
                   f"quantize --run {run}' first (or 'slimgen flow')"


@pytest.mark.parametrize("command", ["flow", "train", "quantize", "generate", "verify", "build",
                                     "report", "summary", "compress"])
def test_an_empty_run_folder_name_is_refused(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([command, "--run", ""]) == 1
    assert capsys.readouterr().err == f"slimgen {command}: error: --run must name a run " \
                                      f"folder (e.g. runs/default), not ''\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "summary", "compress"])
def test_a_run_folder_that_is_a_file_is_refused(command, tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    assert main([command, "--run", str(path)]) == 1
    assert capsys.readouterr().err == f"slimgen {command}: error: --run {path} is a file, " \
                                      f"not a run folder\n"
    assert path.read_text() == "x"


def test_summary_reads_and_never_writes(run, tmp_path, capsys):
    before = snapshot(run)
    assert main(["summary", "--run", str(run)]) == 0
    assert capsys.readouterr().out.startswith("float_accuracy")
    assert snapshot(run) == before
    typo = tmp_path / "typo"
    assert main(["summary", "--run", str(typo)]) == 1
    assert capsys.readouterr().err == f"slimgen summary: error: {typo} is not a run folder " \
                                      f"(it does not exist): run 'slimgen flow --run {typo}' " \
                                      f"to make one\n"
    assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["summary", "--run", str(empty)]) == 1
    assert capsys.readouterr().err == f"slimgen summary: error: {empty} is not a run folder " \
                                      f"(no config.json): run 'slimgen flow --run {empty}' " \
                                      f"to make one\n"
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("key, value, message", [
    ("seed", "0", "seed must be a non-negative integer, not '0' (a str)"),
    ("lr", "fast", "lr must be a positive number, not 'fast' (a str)"),
    ("sizes", [64, 32.7, 10], "sizes must be two or more positive integers, not [64, 32.7, 10]"),
    ("sizes", [64, True, 10], "sizes must be two or more positive integers, not [64, True, 10]"),
    ("epochs", 2.0, "epochs must be a positive integer, not 2.0 (a float)"),
    ("hidden", None, "hidden must be a positive integer, not None (a NoneType)"),
    ("weight_bits", "8", "weight_bits must be an integer from 2 to 16, not '8' (a str)"),
    ("act_bits", 17, "act_bits must be an integer from 2 to 16, not 17"),
    ("batch_size", 0, "batch_size must be a positive integer, not 0"),
    ("sparsity", True, "sparsity must be a number in [0, 1), not True (a bool)"),
    ("model", 3, "model must be one of mlp, cnn, lstm, net, not 3"),
])
def test_a_bad_stored_setting_names_the_file_the_setting_and_the_type(run, capsys, key, value,
                                                                       message):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, key: value}))
    line = refused(["train"], run, capsys)
    assert line == f"slimgen train: error: {run}/config.json is not a valid run " \
                   f"configuration: {message}"


def test_run_config_checks_every_field_where_it_is_built():
    from slimgen.flow import RunConfig, SettingError
    with pytest.raises(TypeError, match=r"^seed must be a non-negative integer, not '0' \(a "
                                        r"str\)$"):
        RunConfig(seed="0")
    with pytest.raises(SettingError, match=r"^lanes must be 4, 8 or 16 for the CNN"):
        RunConfig(model="cnn", lanes=3)
    with pytest.raises(ValueError, match=r"^board must be one of icebreaker, ulx3s-85f, "
                                         r"not 'nosuch'$"):
        RunConfig(board="nosuch")
    assert RunConfig(lr=1).lr == 1 and RunConfig(sparsity=0).sparsity == 0


def test_the_command_line_overrides_a_bad_value_of_the_config_file(tmp_path, capsys):
    run, cfg = tmp_path / "r", tmp_path / "settings.json"
    cfg.write_text(json.dumps({"epochs": 1, "lanes": 1000, "sizes": [64, 8, 10]}))
    assert main(["train", "--run", str(run), "--config", str(cfg), "--quiet"]) == 1
    assert capsys.readouterr().err == (
        f"slimgen train: error: --config {cfg}: lanes must be at most 5 for the folded MLP "
        f"64-8-10 (its widest layer's 10 outputs over its 2 layers), not 1000\n")
    assert not run.exists()
    assert main(["train", "--run", str(run), "--config", str(cfg), "--lanes", "2",
                 "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["lanes"] == 2


def test_an_unchanged_setting_leaves_config_json_alone(run, capsys):
    mtime = (run / "config.json").stat().st_mtime_ns
    assert main(["generate", "--run", str(run), "--quiet"]) == 0
    assert (run / "config.json").stat().st_mtime_ns == mtime


# ---- data against the model -------------------------------------------------------------------

def _npz(path, x, y):
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    """Small data sets: 12 samples of each class, pixels in [0, 1]."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)

    def make(name, shape, classes):
        y = np.repeat(np.arange(classes), 12)
        return _npz(d / name, rng.random((len(y), *shape)), y)
    return {
        "12x12": make("12x12.npz", (12, 12), 10),
        "100": make("v100.npz", (100,), 10),
        "15 classes": make("c15.npz", (8, 8), 15),
        "8x8": make("ok.npz", (8, 8), 10),
    }


@pytest.mark.parametrize("data, model, message", [
    ("12x12", "cnn", "samples are 12×12 images, but the CNN takes 8×8 images"),
    ("12x12", "lstm", "samples are 12 rows of 12 pixels, but the LSTM takes 8 rows of 8 pixels"),
    ("100", "mlp", "samples have 100 values, but the MLP 64-32-10 takes 64: make the first of "
                   "--sizes 100"),
    ("15 classes", "cnn", "labels go up to 14 (15 classes), but the CNN has 10 outputs"),
    ("15 classes", "lstm", "labels go up to 14 (15 classes), but the LSTM has 10 outputs"),
    ("15 classes", "mlp", "labels go up to 14 (15 classes), but the MLP 64-32-10 has 10 "
                          "outputs: make the last of --sizes at least 15"),
])
def test_data_the_model_cannot_take_is_refused_before_training(tmp_path, capsys, data_files,
                                                                data, model, message):
    run = tmp_path / "r"
    path = data_files[data]
    for command in ("train", "flow"):
        assert main([command, "--run", str(run), "--model", model, "--data", str(path),
                     "--epochs", "1", "--quiet"]) == 1
        assert capsys.readouterr().err == f"slimgen {command}: error: data '{path}': " \
                                          f"{message}\n"
        assert not run.exists()


def test_the_train_stage_checks_the_data_too(tmp_path, data_files):
    from slimgen.flow import FlowError, Run, RunConfig, run_stage
    run = Run(tmp_path / "r", RunConfig(model="cnn", data=str(data_files["12x12"]), epochs=1),
              progress=False, log=lambda msg: None)
    with pytest.raises(FlowError, match="samples are 12×12 images, but the CNN takes 8×8"):
        run_stage(run, "train")
    assert not (tmp_path / "r" / "train.json").exists()


def test_data_the_model_takes_trains(tmp_path, data_files, capsys):
    run = tmp_path / "r"
    assert main(["train", "--run", str(run), "--model", "lstm", "--hidden", "4",
                 "--lanes", "4", "--data", str(data_files["8x8"]), "--epochs", "1", "--quiet"]) == 0


# ---- interruptions and bugs -------------------------------------------------------------------

def test_ctrl_c_prints_one_line_and_a_half_done_stage_is_not_done(run, capsys, monkeypatch):
    from slimgen import flow

    def interrupted(r):
        (r.path("network.v")).write_text("// half\n")
        raise KeyboardInterrupt
    monkeypatch.setitem(flow._STAGE_FUNCS, "generate", interrupted)
    assert main(["generate", "--run", str(run), "--quiet"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == \
        "slimgen generate: interrupted; the run folder keeps every finished stage"
    assert not (run / "generate.json").exists() and not (run / "network.v").exists()
    assert (run / "quantize.json").exists() and (run / "model.npz").exists()
    assert "verilog_lines" not in json.loads((run / "summary.json").read_text())


def test_ctrl_c_before_a_stage_writes_changes_nothing(run, capsys, monkeypatch):
    from slimgen import flow

    def interrupted(r):
        raise KeyboardInterrupt
    monkeypatch.setitem(flow._STAGE_FUNCS, "generate", interrupted)
    before = snapshot(run)
    assert main(["generate", "--run", str(run), "--quiet"]) == 130
    assert snapshot(run) == before


def test_an_unexpected_exception_is_one_line_that_says_it_is_a_bug(run, capsys, monkeypatch):
    from slimgen import flow

    def broken(r):
        return 1 / 0
    monkeypatch.setitem(flow._STAGE_FUNCS, "generate", broken)
    monkeypatch.delenv("SLIMGEN_TRACEBACK", raising=False)
    assert main(["generate", "--run", str(run), "--quiet"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "slimgen generate: error: ZeroDivisionError: division by zero (this is a bug in "
        "slimgen: please report it with the command; SLIMGEN_TRACEBACK=1 shows the traceback)")
    monkeypatch.setenv("SLIMGEN_TRACEBACK", "1")
    with pytest.raises(ZeroDivisionError):
        main(["generate", "--run", str(run), "--quiet"])


# ---- slimgen compress --run -------------------------------------------------------------------

def test_compress_runs_the_flow_stage_on_a_run_folder(run, capsys):
    assert main(["compress", "--run", str(run), "--method", "magnitude", "--sparsity", "0.5",
                 "--compress-epochs", "1", "--finetune-epochs", "0", "--quiet"]) == 0
    out = capsys.readouterr()
    assert "settings ['compress_epochs', 'finetune_epochs', 'method', 'sparsity'] changed: " \
           "outputs of compress, quantize, generate, verify, build, report removed" in out.err
    assert (run / "compressed.npz").exists() and (run / "compress.json").exists()
    assert not (run / "model.npz").exists()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "magnitude" and abs(summary["sparsity"] - 0.5) < 0.02
    assert main(["quantize", "--run", str(run), "--quiet"]) == 0


def test_compress_with_a_run_takes_the_run_options_only(run, capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--run", str(run), "--in", "x.npz"])
    assert "unrecognized arguments: --in x.npz" in capsys.readouterr().err


def test_compress_without_a_run_is_the_artifact_tool(trained, tmp_path, capsys):
    out = tmp_path / "c.npz"
    assert main(["compress", "--in", str(trained / "float.npz"), "--out", str(out),
                 "--method", "magnitude", "--sparsity", "0.5", "--epochs", "1",
                 "--finetune-epochs", "0", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"].startswith("magnitude")
    assert out.exists()
