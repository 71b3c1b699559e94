"""``slimgen flow --net net.json``: a network of the user's own through the software stages,
and every bad description refused with one message before anything is written."""

import json
import re

import pytest

from slimgen.cli import main

CNN1D = {"name": "cnn1d", "layers": [
    {"type": "input", "shape": [8, 8]},
    {"type": "conv1d", "channels": 8, "kernel": 3}, {"type": "batchnorm"}, {"type": "relu"},
    {"type": "maxpool", "size": 2}, {"type": "dropout", "rate": 0.1},
    {"type": "flatten"}, {"type": "dense", "units": 10}]}


def _write(tmp_path, description, name="net.json"):
    path = tmp_path / name
    path.write_text(description if isinstance(description, str) else json.dumps(description))
    return str(path)


def test_a_description_goes_through_train_compress_and_quantize(tmp_path):
    net = _write(tmp_path, CNN1D)
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", net, "--epochs", "12", "--method",
                 "magnitude", "--sparsity", "0.5", "--compress-epochs", "1",
                 "--finetune-epochs", "1", "--to", "quantize", "--quiet"]) == 0
    figures = {k: json.loads((run / f"{k}.json").read_text())
               for k in ("train", "compress", "quantize")}
    assert figures["train"]["float_accuracy"] > 0.8
    assert figures["quantize"]["int_accuracy"] > figures["compress"]["compressed_accuracy"] - 0.02
    assert 0.45 < figures["compress"]["sparsity"] < 0.55
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "net" and config["net"] == net
    assert not (run / "network.v").exists()
    # no preset engine takes a 1-D CNN: generate compiles it onto the shared array. The cost
    # model takes Winograd F(2, 3), whose tile of 2 is the max pool's window: the pool runs
    # in its drain (F(4, 3) makes fewer products, but the pool would take its own cycles)
    assert main(["generate", "--run", str(run), "--quiet"]) == 0
    generate = json.loads((run / "generate.json").read_text())
    assert generate["engines"][:2] == ["winograd F(2, 3) Toom-Cook, shared array",
                                       "max pool in conv0's drain, shared array"]
    why = generate["layers"][0]["why"]
    assert re.fullmatch(r"F\(2, 3\) Toom-Cook: \d+ cycles against \d+ direct \+ \d+ for the "
                        r"max pool after it \(\d+% fewer\), the fewest of 4 candidates, .*, "
                        r"the max pool in its drain", why), why
    plan = json.loads((run / "plan.json").read_text())
    assert plan["totals"]["lc_estimate"] <= 5280 * 0.9       # LC_SHARE of the board
    assert (run / "network.v").stat().st_size > 1000


@pytest.mark.parametrize("layers, engine", [
    ([{"type": "input", "shape": [64]}, {"type": "dense", "units": 16}, {"type": "batchnorm"},
      {"type": "relu"}, {"type": "dropout", "rate": 0.1}, {"type": "dense", "units": 10}],
     "direct, shared array"),
    ([{"type": "input", "shape": [8, 8, 1]}, {"type": "conv2d", "channels": 4, "kernel": 3},
      {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "size": 2},
      {"type": "flatten"}, {"type": "dense", "units": 10}], "winograd F(2×2, 3×3), shared array"),
    ([{"type": "input", "shape": [8, 8]}, {"type": "lstm", "hidden": 8},
      {"type": "dense", "units": 10}], "sparse, shared lanes"),
])
def test_a_description_an_engine_takes_generates_on_it(tmp_path, layers, engine):
    net = _write(tmp_path, {"name": "mine", "layers": layers})
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", net, "--epochs", "1", "--to", "generate",
                 "--quiet"]) == 0
    generate = json.loads((run / "generate.json").read_text())
    assert generate["engines"][0] == engine and (run / "network.v").stat().st_size > 1000


def test_a_changed_description_makes_train_stale(tmp_path, capsys):
    net = _write(tmp_path, {"layers": [{"type": "input", "shape": [64]},
                                       {"type": "dense", "units": 10}]})
    run = str(tmp_path / "run")
    assert main(["flow", "--run", run, "--net", net, "--epochs", "1", "--to", "quantize",
                 "--quiet"]) == 0
    _write(tmp_path, {"layers": [{"type": "input", "shape": [64]}, {"type": "dense", "units": 12},
                                 {"type": "relu"}, {"type": "dense", "units": 10}]})
    capsys.readouterr()
    assert main(["quantize", "--run", run, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "float.npz holds the net dense 64→10, but this run makes the net dense 64→12, " \
           "dense 12→10" in err and "--from train" in err


@pytest.mark.parametrize("text, message", [
    ({"layers": [{"type": "input", "shape": [8, 8, 1]},
                 {"type": "conv2d", "channels": 4, "kernel": 9}]},
     "layer 1 (conv2d): kernel 9 is not supported; use 1 to 7"),
    ({"layers": [{"type": "input", "shape": [64]}, {"type": "densr", "units": 3}]},
     "layer 1: type 'densr' is not a layer kind; use one of input, conv1d"),
    ({"layers": [{"type": "input", "shape": [8, 8, 1]}, {"type": "dense", "units": 10}]},
     "layer 1 (dense): takes a vector, but its input is (8, 8, 1); put a flatten"),
    ({"layers": [{"type": "input", "shape": [64]}, {"type": "dense"}]},
     "layer 1 (dense): the field 'units' is missing"),
    ({"layers": [{"type": "input", "shape": [64]}, {"type": "dense", "units": "10"}]},
     "layer 1 (dense): units must be an integer, not '10'"),
    ('{"layers": [', "is not valid JSON (line 1, column 13"),
])
def test_a_bad_description_is_refused_and_nothing_written(tmp_path, capsys, text, message):
    net = _write(tmp_path, text)
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", net, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"slimgen flow: error: --net '{net}' cannot "
                                                   f"be used: {net}: ") and message in err
    assert not run.exists()


def test_data_of_another_shape_is_refused(tmp_path, capsys):
    net = _write(tmp_path, {"layers": [{"type": "input", "shape": [8, 4]},
                                       {"type": "gru", "hidden": 4},
                                       {"type": "dense", "units": 10}]})
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", net, "--quiet"]) == 1
    assert capsys.readouterr().err == (
        "slimgen flow: error: data 'digits': samples have 64 values, but the network net takes "
        "inputs of shape [8, 4] (32 values)\n")
    assert not run.exists()


def test_net_and_model_conflict_and_to_before_from(tmp_path, capsys):
    net = _write(tmp_path, CNN1D)
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", net, "--model", "cnn"]) == 1
    assert "--net" in capsys.readouterr().err
    assert main(["flow", "--run", str(run), "--net", net, "--to", "train", "--from",
                 "quantize"]) == 1
    assert capsys.readouterr().err == ("slimgen flow: error: --from quantize comes after --to "
                                       "train: this flow stops before it\n")
    assert main(["flow", "--run", str(run), "--net", net, "--method", "lstm_gates"]) == 1
    assert "has no lstm or gru layer" in capsys.readouterr().err
    assert not run.exists()


def test_import_and_export_are_commands(tmp_path, capsys):
    """`slimgen import` (ONNX and QONNX) and `slimgen export` are wired into the command line."""
    from pathlib import Path
    data = Path(__file__).parent / "data"
    run = tmp_path / "run"
    assert main(["import", str(data / "onnx" / "mlp.onnx"), "--run", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "import_max_relative_difference" in out and (run / "import.json").exists()
    assert main(["flow", "--run", str(run), "--to", "quantize", "--quiet"]) == 0
    assert main(["export", "--run", str(run), "--onnx", str(tmp_path / "q.onnx")]) == 0
    assert (tmp_path / "q.onnx").stat().st_size > 1000
    qrun = tmp_path / "qrun"
    assert main(["import", str(data / "qonnx" / "mlp_floor.onnx"), "--run", str(qrun),
                 "--quiet"]) == 0
    assert main(["flow", "--run", str(qrun), "--to", "quantize", "--quiet"]) == 0
    figures = json.loads((qrun / "quantize.json").read_text())
    assert any(k.startswith("qonnx_") for k in figures)
    capsys.readouterr()
    assert main(["import", str(tmp_path / "missing.onnx"), "--run", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.startswith("slimgen import: error: ")
    assert not (tmp_path / "x").exists()


def test_generate_says_when_the_folded_lanes_are_fewer_than_asked(tmp_path, capsys):
    """Three dense layers at --lanes 4 would be 12 multipliers; the iCEBreaker has 8."""
    net = _write(tmp_path, {"name": "deep", "layers": [
        {"type": "input", "shape": [64]}, {"type": "dense", "units": 16}, {"type": "relu"},
        {"type": "dense", "units": 16}, {"type": "relu"}, {"type": "dense", "units": 10}]})
    run = tmp_path / "run"
    assert main(["flow", "--run", str(run), "--net", net, "--epochs", "1", "--to",
                 "generate"]) == 0
    captured = capsys.readouterr()
    assert ("generate: the folded array has 8 lanes, not 4 lanes × 3 layers = 12: at most "
            "the icebreaker's 8 DSP blocks") in captured.out + captured.err
    assert json.loads((run / "generate.json").read_text())["multipliers"] == 8
