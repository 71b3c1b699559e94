"""The example network descriptions (``examples/nets``) and bench/networks.py, which runs them
through train, compress and quantize."""

import importlib.util
from pathlib import Path

import pytest

from slimgen.sw.network import LAYER_FIELDS, load_network

ROOT = Path(__file__).resolve().parent.parent
NETS = sorted((ROOT / "examples" / "nets").glob("*.json"))
BENCH = ROOT / "bench" / "networks.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_networks", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_example_loads_and_every_layer_kind_but_lstm_appears():
    assert [p.stem for p in NETS] == ["cnn1d", "cnn3_dense2", "conv5x5", "conv_stride2", "gru",
                                      "mlp4"]
    kinds = set()
    for path in NETS:
        net = load_network(path)
        assert net.name == path.stem
        assert net.shapes[-1] == (10,) and net.n_inputs == 64
        kinds |= {layer["type"] for layer in net.layers[1:]}
    assert kinds == set(LAYER_FIELDS) - {"input", "lstm"}


def test_the_bench_runs_every_example(bench):
    assert sorted(bench.NETS) == [p.stem for p in NETS]


@pytest.mark.slow
def test_two_networks_through_the_bench(bench, tmp_path):
    for name in ("conv_stride2", "gru"):
        rows = bench.bench_network(name, seed=0, out=tmp_path, epochs=2, compress_epochs=1,
                                   finetune_epochs=1)
        assert [r["method"] for r in rows] == ["none", bench.NETS[name][1]]
        for r in rows:
            assert r["rc"] == 0, r.get("error")
            assert r["net"] == name and r["weights"] > 0
            for k in ("val_accuracy", "float_accuracy", "compressed_accuracy", "int_accuracy"):
                assert 0 <= r[k] <= 1, (k, r[k])
            assert isinstance(r["within_one_point"], bool)
        assert rows[0]["sparsity"] is None and 0 < rows[1]["sparsity"] < 1
        assert rows[0]["compressed_accuracy"] == rows[0]["float_accuracy"]
