"""The Python API (``slimgen.project``, ``slimgen.open``): a tiny MLP end to end, a description
given as a dict, settings refused with one message and nothing written, an existing run opened,
and the command line giving the same figures."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import slimgen
from slimgen.cli import main
from slimgen.flow import FlowError
from slimgen.sw.data import load_dataset
from slimgen.sw.golden import argmax_first
from slimgen.sw.network import NetworkError
from slimgen.sw.quantize import quantize_inputs

QUIET = {"quiet": True, "log": lambda message: None}
CNN1D = {"name": "rows", "layers": [
    {"type": "input", "shape": [8, 8]},
    {"type": "conv1d", "channels": 4, "kernel": 3}, {"type": "batchnorm"}, {"type": "relu"},
    {"type": "maxpool", "size": 2}, {"type": "flatten"}, {"type": "dense", "units": 10}]}


def snapshot(root):
    """Every file under ``root`` with its bytes and modification time (None: no folder)."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None,
                                       p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def test_split():
    return load_dataset("digits", seed=0).part("test")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 64-16-10 MLP: two epochs, magnitude pruning to half, quantized; the results."""
    run = tmp_path_factory.mktemp("api") / "tiny"
    p = slimgen.project(run=run, network="mlp", sizes=[64, 16, 10], epochs=2, **QUIET)
    results = {"train": p.train(),
               "compress": p.compress(method="magnitude", sparsity=0.5, compress_epochs=1,
                                      finetune_epochs=1),
               "quantize": p.quantize()}
    return p, results


@pytest.fixture
def copy(tiny, tmp_path):
    """A copy of the tiny run's folder."""
    shutil.copytree(tiny[0].root, tmp_path / "tiny")
    return tmp_path / "tiny"


def test_the_stages_return_the_figures_they_record(tiny):
    p, r = tiny
    records = {st: json.loads((p.root / f"{st}.json").read_text()) for st in r}
    assert r["train"].float_accuracy == records["train"]["float_accuracy"] > 0.5
    assert r["train"].epochs == 2 and len(r["train"].history) == 2
    assert r["compress"].method == "magnitude" and 0.45 < r["compress"].sparsity < 0.55
    assert r["quantize"].int_accuracy == records["quantize"]["int_accuracy"]
    assert r["quantize"].weight_bits == (8, 8) and len(r["quantize"].acc_bits) == 2
    assert r["quantize"].figures["logit_bits"] == r["quantize"].logit_bits
    assert repr(r["train"]).splitlines()[:3] == [
        "TrainResult", f"  float_accuracy  {r['train'].float_accuracy:.4f}",
        f"  val_accuracy    {r['train'].val_accuracy:.4f}"]
    with pytest.raises(AttributeError):
        r["quantize"].int_accuracy = 1.0
    assert json.loads((p.root / "config.json").read_text())["method"] == "magnitude"


def test_predict_is_the_golden_model_and_agrees_with_quantize_json(tiny, test_split):
    p, r = tiny
    x, y = test_split
    m = p.int_model
    logits = m(quantize_inputs(x, m.input_scale, m.input_bits))
    assert np.array_equal(p.logits(x), logits)
    assert np.array_equal(p.predict(x), argmax_first(logits))
    assert np.mean(p.predict(x) == y) == r["quantize"].int_accuracy
    # the float model quantize started from: the compressed one
    assert np.mean(p.float_predict(x) == y) == r["compress"].compressed_accuracy


def test_trace_has_every_record_with_its_output(tiny, test_split):
    p, _ = tiny
    x = test_split[0][:5]
    trace = p.trace(x)
    m = p.int_model
    assert len(trace) == len(m.layers) and trace.names == ["dense_1", "dense_3"]
    assert [e.kind for e in trace] == [rec.kind for rec in m.layers]
    assert [e.output.shape for e in trace] == [(5, 16), (5, 10)]
    assert trace["dense_1"].output.min() >= 0 and trace[0].output.dtype == np.int64
    assert np.array_equal(trace[-1].output, p.logits(x))
    with pytest.raises(KeyError, match="no record named 'relu_2'; the records are dense_1"):
        trace["relu_2"]


@pytest.mark.parametrize("x, message", [
    (np.zeros((3, 65)), "x must hold samples of shape (n, 64) (the network mlp's input, "
                        "channels last), not (3, 65)"),
    (np.zeros(64), "x must hold samples of shape (n, 64)"),
    (np.full((2, 64), 16.0), "x must hold values in [0, 1] (pixels over their largest value, "
                             "as slimgen.sw.data gives them), not [16, 16]"),
    (np.array([[np.nan] * 64]), "x must be finite: sample 0 holds nan"),
    ([["a"] * 64], "x must be an array of numbers: samples of shape (n, 64), not list of <U1"),
])
def test_bad_samples_are_refused_with_one_message(tiny, x, message):
    with pytest.raises(ValueError) as e:
        tiny[0].predict(x)
    assert str(e.value) == message or str(e.value).startswith(message)


def test_generate_writes_the_verilog_and_summary_is_the_commands(copy, capsys):
    p = slimgen.open(copy, **QUIET)
    g = p.generate()
    assert g.verilog == str(copy / "network.v") and (copy / "network.v").exists()
    assert g.engines == ("sparse rows", "sparse rows") and g.multipliers == 8
    assert g.verilog_lines == (copy / "network.v").read_text().count("\n")
    capsys.readouterr()
    assert main(["summary", "--run", str(copy)]) == 0
    assert capsys.readouterr().out == repr(p.summary()) + "\n"
    assert p.summary().int_accuracy == p.summary()["int_accuracy"]


def test_open_reads_a_run_as_it_is(tiny, copy, test_split):
    before = snapshot(copy)
    p = slimgen.open(str(copy))
    assert p.config == tiny[0].config and p.network.shapes == ((64,), (16,), (16,), (10,))
    assert np.array_equal(p.predict(test_split[0]), tiny[0].predict(test_split[0]))
    assert "done: train, compress, quantize" in repr(p)
    assert snapshot(copy) == before
    with pytest.raises(FlowError, match=r"nosuch is not a run folder \(it does not exist\): "
                                        r"run 'slimgen flow --run .*nosuch' to make one"):
        slimgen.open(copy.parent / "nosuch")


def test_a_stage_before_its_input_names_the_stage_to_run(tmp_path):
    p = slimgen.project(run=tmp_path / "new", epochs=1, **QUIET)
    assert (tmp_path / "new" / "config.json").exists()
    with pytest.raises(FlowError, match=r"float.npz does not exist: run 'slimgen train --run "
                                        r".*new' first \(or 'slimgen flow'\)"):
        p.quantize()
    with pytest.raises(FlowError, match=r"model.npz does not exist: run 'slimgen quantize"):
        p.predict(np.zeros((1, 64)))


def test_a_description_as_a_dict_goes_through_quantize(tmp_path, test_split):
    run = tmp_path / "rows"
    p = slimgen.project(run=run, network=CNN1D, epochs=3, **QUIET)
    assert json.loads((run / "net.json").read_text())["name"] == "rows"
    assert p.config.model == "net" and p.config.net == str(run / "net.json")
    summary = p.flow(to="quantize")
    assert summary.int_accuracy == json.loads((run / "quantize.json").read_text())["int_accuracy"]
    x, y = test_split
    assert np.mean(p.predict(x) == y) == summary.int_accuracy
    # a sequence shaped as the network's input: the same samples
    assert np.array_equal(p.logits(x.reshape(-1, 8, 8)), p.logits(x))
    trace = p.trace(x[:2])
    net = p.int_model.network
    assert trace.names == ["conv1d_1", "maxpool_4", "flatten_5", "dense_6"]
    assert all(e.output.shape[1:] == net.shapes[e.source] for e in trace)
    # the same description again keeps the run; another one removes its outputs
    slimgen.project(run=run, network=CNN1D, **QUIET)
    assert (run / "quantize.json").exists()
    other = {**CNN1D, "layers": CNN1D["layers"][:1] + [{"type": "flatten"},
                                                       {"type": "dense", "units": 10}]}
    logged = []
    slimgen.project(run=run, network=other, quiet=True, log=logged.append)
    assert not (run / "train.json").exists() and "description changed" in logged[-1]


def test_a_data_sets_preset_is_named_as_a_network(tmp_path):
    run = tmp_path / "run"
    slimgen.project(run=run, network="mnist1d-cnn", data="mnist1d", **QUIET)
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["net"], config["data"]) == ("net", "mnist1d-cnn", "mnist1d")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 0}, FlowError, "epochs must be a positive integer, not 0"),
    ({"epoch": 3}, FlowError, "Unknown run settings ['epoch']; known: ['act_bits', "),
    ({"bits": 3.0}, FlowError, "bits is the joint method's target average weight bits; "
                               "method='none' does not use it (give method='joint', or leave "
                               "bits out)"),
    ({"network": "cnn", "sizes": [64, 10]}, FlowError,
     "sizes is the MLP's layer sizes; model='cnn' does not use it"),
    ({"network": "mlp", "model": "cnn"}, FlowError,
     "network='mlp' and model=...: give one of them"),
    ({"network": "nosuch"}, FlowError,
     "network 'nosuch' is neither a preset (mlp, cnn, lstm, mnist1d-cnn, mnist1d-gru, "
     "mnist1d-lstm, mnist1d-mlp, mnist-cnn) nor a network description file (.json)"),
    ({"network": {"layers": [{"type": "input", "shape": [8, 8, 1]},
                             {"type": "conv2d", "channels": 4, "kernel": 9}]}},
     NetworkError, "layer 1 (conv2d): kernel 9 is not supported; use 1 to 7"),
    ({"network": CNN1D, "epochs": -1}, FlowError, "epochs must be a positive integer, not -1"),
    ({"data": "nosuch.npz"}, FileNotFoundError, "Data file nosuch.npz does not exist"),
    ({"network": CNN1D, "method": "lstm_gates"}, FlowError,
     "method 'lstm_gates' prunes LSTM and GRU gates; the network rows ({r}/net.json) has no "
     "lstm or gru layer"),
    ({"run": ""}, ValueError, "The run folder must be named (e.g. runs/default), not ''"),
])
def test_bad_settings_are_refused_and_nothing_written(tmp_path, kwargs, error, message):
    kwargs = {"run": tmp_path / "r", **kwargs}
    with pytest.raises(error) as e:
        slimgen.project(**kwargs, **QUIET)
    assert str(e.value).startswith(message.format(r=tmp_path / "r")) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_stored_setting_the_new_ones_break_is_named(copy):
    before = snapshot(copy)
    with pytest.raises(FlowError) as e:
        slimgen.project(run=copy, sizes=[64, 2, 2], **QUIET)
    assert str(e.value) == (
        f"with sizes=[64, 2, 2], the stored lanes 4 ({copy / 'config.json'}) no longer fits: "
        f"lanes must be at most 2 for the MLP 64-2-2 on sparse engines (a layer's lanes are at "
        f"most its outputs), not 4; give lanes too")
    with pytest.raises(FlowError, match=r"compress\(\) takes method and bits, compress_epochs, "
                                        r"finetune_epochs, layout, sparsity, not epochs"):
        slimgen.open(copy).compress(epochs=3)
    with pytest.raises(FlowError, match="^method must be one of none, self_prune, "):
        slimgen.open(copy).compress(method="nosuch")
    assert snapshot(copy) == before


def test_a_refused_description_keeps_the_runs(tmp_path):
    run = tmp_path / "r"
    slimgen.project(run=run, network=CNN1D, **QUIET)
    before = snapshot(run)
    with pytest.raises(FlowError):
        slimgen.project(run=run, network={**CNN1D, "name": "other"}, epochs=0, **QUIET)
    assert snapshot(run) == before


def test_import_slimgen_stays_light_and_exports_the_api():
    code = ("import sys, slimgen; light = 'numpy' not in sys.modules; "
            "print(light, slimgen.project.__module__, slimgen.open.__module__, "
            "slimgen.FlowError.__name__, slimgen._determinism.PIN_RESULT is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "slimgen.api", "slimgen.api", "FlowError", "True"]


def test_an_onnx_model_becomes_a_project(tmp_path, test_split):
    pytest.importorskip("slimgen.import_cli")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    W, b = rng.normal(0, 0.3, (10, 64)).astype(np.float32), np.zeros(10, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
    path = tmp_path / "linear.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    p = slimgen.from_onnx(str(path), run=tmp_path / "imported", **QUIET)
    assert p.config.model == "net" and p.config.source == str(path)
    assert [layer["type"] for layer in p.network.layers] == ["input", "dense"]
    x, y = test_split
    assert np.array_equal(p.float_predict(x), np.argmax(x @ W.T.astype(np.float64), axis=1))
    q = p.quantize()
    assert np.mean(p.predict(x) == y) == q.int_accuracy
