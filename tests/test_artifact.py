"""The model artifact (version 2): round trips of float models and of integer models of every
record kind, and clear errors for damaged, truncated, foreign and version-1 files."""

import json
import re
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from slimgen.sw.artifact import (VERSION, ArtifactError, load_artifact, load_float_model,
                                 load_int_network, save_artifact, save_float_model,
                                 save_int_network)
from slimgen.sw.artifact_records import record_arrays
from slimgen.sw.network import check_network
from slimgen.sw.nn import build_model
from slimgen.sw.quantize import QuantConfig, quantize_network

# Small descriptions that between them use every layer kind (conv2d with stride 2 and
# asymmetric 'same' padding, a relu record after an average pool, a GRU's b_hn, ...).
NETS = {
    "mlp": [{"type": "input", "shape": [12]}, {"type": "dense", "units": 6},
            {"type": "batchnorm"}, {"type": "relu"}, {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 3}],
    "conv2d": [{"type": "input", "shape": [8, 6, 2]},
               {"type": "conv2d", "channels": 3, "kernel": 3, "stride": 2},   # pad (0, 1)
               {"type": "batchnorm"}, {"type": "relu"},
               {"type": "maxpool", "size": 2, "stride": 1},
               {"type": "conv2d", "channels": 4, "kernel": 1, "padding": "valid",
                "bias": False},
               {"type": "avgpool", "size": 2, "stride": 1}, {"type": "relu"},
               {"type": "flatten"}, {"type": "dense", "units": 3}],
    "conv1d": [{"type": "input", "shape": [10, 2], "bits": 6},
               {"type": "conv1d", "channels": 4, "kernel": 3, "stride": 2}, {"type": "relu"},
               {"type": "maxpool", "size": 2},
               {"type": "conv1d", "channels": 3, "kernel": 3, "padding": 1},
               {"type": "global_avgpool"}, {"type": "dense", "units": 3}],
    "lstm": [{"type": "input", "shape": [6, 3], "bits": 5},
             {"type": "lstm", "hidden": 4, "sequences": True},
             {"type": "gru", "hidden": 3, "h_frac": 6}, {"type": "dense", "units": 3}],
    "gru": [{"type": "input", "shape": [5, 2]}, {"type": "conv1d", "channels": 3, "kernel": 2},
            {"type": "gru", "hidden": 3, "sequences": True, "gate_frac": 9},
            {"type": "flatten"}, {"type": "dense", "units": 4}, {"type": "relu"},
            {"type": "dense", "units": 2}],
    "logit_relu": [{"type": "input", "shape": [5], "bits": 4}, {"type": "dense", "units": 4},
                   {"type": "relu"}, {"type": "dense", "units": 3}, {"type": "relu"}],
}
KINDS = {"mlp": ["dense", "dense"],
         "conv2d": ["conv", "pool", "conv", "pool", "relu", "flatten", "dense"],
         "conv1d": ["conv", "pool", "conv", "pool", "dense"],
         "lstm": ["recurrent", "recurrent", "dense"],
         "gru": ["conv", "recurrent", "flatten", "dense", "dense"],
         "logit_relu": ["dense", "dense", "relu"]}


def quantized(name, *, per_channel=False, seed=0):
    """The integer model of ``NETS[name]``: an untrained float model, random calibration."""
    net = check_network({"name": name, "layers": NETS[name]})
    model = build_model(net.float_spec()[0], np.random.default_rng(seed))
    x = np.random.default_rng(seed + 1).random((20, net.n_inputs))
    return quantize_network(net, model, x, input_scale=1 / 16,
                            config=QuantConfig(per_channel=per_channel))


def assert_same_network(a, b):
    """Records, description, input format and golden outputs all identical."""
    assert a.network == b.network
    assert (a.input_scale, a.input_bits, a.config, a.input_order) == \
        (b.input_scale, b.input_bits, b.config, b.input_order)
    assert [r.kind for r in a.layers] == [r.kind for r in b.layers]
    for i, (ra, rb) in enumerate(zip(a.layers, b.layers)):
        assert json.dumps(ra.meta()) == json.dumps(rb.meta())
        arrays_a, arrays_b = record_arrays(i, ra), record_arrays(i, rb)
        assert arrays_a.keys() == arrays_b.keys()
        for k in arrays_a:
            np.testing.assert_array_equal(arrays_a[k], arrays_b[k])
    x = np.random.default_rng(5).integers(0, 1 << a.input_bits, (6, a.n_inputs))
    x[0] = 0
    x[1] = (1 << a.input_bits) - 1
    np.testing.assert_array_equal(a(x), b(x))


def save(path, int_net, **kw):
    save_int_network(path, int_net, dataset="digits", split_seed=5, **kw)
    return path


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("name", list(NETS))
def test_int_round_trip(tmp_path, name, per_channel):
    q = quantized(name, per_channel=per_channel)
    assert [r.kind for r in q.layers] == KINDS[name]
    back, manifest = load_int_network(save(tmp_path / "m.npz", q, extra={"model": "net"}))
    assert (manifest["version"], manifest["kind"], manifest["split_seed"], manifest["model"]) \
        == (VERSION, "int", 5, "net")
    assert_same_network(q, back)
    for r in back.of_kind("dense", "conv"):
        if per_channel and r.requant:       # the logits keep one scale
            assert isinstance(r.w_scale, np.ndarray) and r.w_scale.shape == (r.c_out,)
            assert isinstance(r.multiplier, np.ndarray) and r.multiplier.shape == (r.c_out,)
        else:
            assert isinstance(r.w_scale, float) and isinstance(r.multiplier, int)
    # Written whole: nothing but the file beside it.
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_gru_arrays_and_fields(tmp_path):
    manifest, arrays = load_artifact(save(tmp_path / "m.npz", quantized("gru")), "int")
    assert sorted(arrays) == ["layer0.W", "layer0.b", "layer1.W_n", "layer1.W_r", "layer1.W_z",
                              "layer1.b_hn", "layer1.b_n", "layer1.b_r", "layer1.b_z",
                              "layer3.W", "layer3.b", "layer4.W", "layer4.b"]
    assert all(a.dtype == np.int64 for a in arrays.values())
    assert manifest["layers"][1]["fmt"]["gate_frac"] == 9
    assert manifest["layers"][0]["pad"] == [[0, 1]]


@pytest.mark.parametrize("seed", range(40))
def test_random_int_network_round_trip(tmp_path, seed):
    random_network = pytest.importorskip("slimgen.sw.random_network")
    rng = np.random.default_rng(seed)
    net = random_network.random_description(rng)
    q = random_network.random_int_network(rng, net, density=None)
    back, _ = load_int_network(save(tmp_path / "m.npz", q))
    assert_same_network(q, back)


def test_float_round_trip_and_version_1(tmp_path):
    net = check_network({"name": "conv", "layers": NETS["conv2d"]})
    model = build_model(net.float_spec()[0], np.random.default_rng(1))
    save_float_model(tmp_path / "f.npz", model, dataset="digits", split_seed=5, network=net,
                     history=[{"epoch": 1}])
    back, manifest = load_float_model(tmp_path / "f.npz")
    assert (manifest["split_seed"], manifest["version"], manifest["network"]) == \
        (5, VERSION, net.to_dict())
    x = np.random.default_rng(2).random((3, 2, 8, 6))
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    # A version-1 float file (before the description) still loads.
    rewrite(tmp_path / "f.npz", tmp_path / "v1.npz",
            lambda m: (m.update(version=1), m.pop("network")))
    back, manifest = load_float_model(tmp_path / "v1.npz")
    assert manifest["version"] == 1 and "network" not in manifest
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz", "v1.npz"]


def rewrite(path, out, change_manifest=None, change_arrays=None):
    """Copy an artifact with its manifest or arrays changed, checksums left as they were."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    manifest = json.loads(arrays.pop("manifest").tobytes())
    if change_manifest:
        change_manifest(manifest)
    if change_arrays:
        change_arrays(arrays)
    blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    np.savez(out, manifest=blob, **arrays)
    return out


@pytest.fixture
def int_path(tmp_path):
    return save(tmp_path / "q.npz", quantized("mlp"))


def refused(path, message, load=load_int_network):
    with pytest.raises(ArtifactError) as e:
        load(path)
    assert str(e.value) == f"Model file {path}{message}"


def test_truncated_and_damaged_files(tmp_path, int_path):
    data = int_path.read_bytes()
    for cut in (len(data) // 2, 200, 10):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        with pytest.raises(ArtifactError, match=rf"^Model file {re.escape(str(tmp_path))}/cut.npz "
                                                rf"is damaged or truncated \(not a readable "
                                                rf"slimgen-artifact file\)"):
            load_int_network(tmp_path / "cut.npz")
    refused(tmp_path / "nothere.npz", " does not exist")

    with zipfile.ZipFile(tmp_path / "nomanifest.npz", "w") as z:
        z.writestr("a.npy", b"")
    with pytest.raises(ArtifactError, match=r"nomanifest.npz (is damaged|has no manifest)"):
        load_int_network(tmp_path / "nomanifest.npz")
    np.savez(tmp_path / "other.npz", manifest=np.frombuffer(b'{"format": "onnx"}', np.uint8))
    refused(tmp_path / "other.npz", " is of format 'onnx', expected 'slimgen-artifact'")
    np.savez(tmp_path / "list.npz", manifest=np.frombuffer(b'[1, 2]', np.uint8))
    refused(tmp_path / "list.npz", " has a damaged manifest: a JSON list, not an object")
    np.savez(tmp_path / "json.npz", manifest=np.frombuffer(b'{"format": ', np.uint8))
    with pytest.raises(ArtifactError, match=r"json.npz has a damaged manifest: Expecting value"):
        load_int_network(tmp_path / "json.npz")

    rewrite(int_path, tmp_path / "arrays.npz", lambda m: m.update(arrays={"layer0.W": 3}))
    refused(tmp_path / "arrays.npz", " has a damaged manifest: its 'arrays' entry must give the "
                                     "shape, dtype and sha256 of every array")


def test_mismatched_files(tmp_path, int_path):
    rewrite(int_path, tmp_path / "v3.npz", lambda m: m.update(version=3))
    refused(tmp_path / "v3.npz", " is version 3; this slimgen reads version 2")

    def flip(arrays):
        arrays["layer0.W"] = arrays["layer0.W"].copy()
        arrays["layer0.W"][0, 0] += 1
    rewrite(int_path, tmp_path / "flip.npz", change_arrays=flip)
    refused(tmp_path / "flip.npz", ": array 'layer0.W' does not match its manifest (expected "
                                   "shape [6, 12] int64, got [6, 12] int64, or its checksum "
                                   "differs)")
    rewrite(int_path, tmp_path / "gone.npz", change_arrays=lambda a: a.pop("layer1.b"))
    refused(tmp_path / "gone.npz", " does not match its manifest: missing arrays ['layer1.b'], "
                                   "unexpected arrays []")

    refused(int_path, " holds a model of kind 'int', expected kind 'float' ('float' comes from "
                      "train, 'int' from quantize)", load=load_float_model)
    net = check_network({"name": "mlp", "layers": NETS["mlp"]})
    save_float_model(tmp_path / "f.npz", build_model(net.float_spec()[0]), dataset="digits",
                     split_seed=0, network=net)
    refused(tmp_path / "f.npz", " holds a model of kind 'float', expected kind 'int' ('float' "
                                "comes from train, 'int' from quantize)")


@pytest.mark.parametrize("kind", ["int", "int-cnn", "int-lstm"])
def test_version_1_integer_files_are_refused_with_the_command(tmp_path, int_path, kind):
    path = rewrite(int_path, tmp_path / "model.npz", lambda m: m.update(version=1, kind=kind))
    refused(path, f" is a version 1 integer model (one format per model kind, before the "
                  f"network description); this slimgen reads version 2. Regenerate it: "
                  f"slimgen flow --run {tmp_path} --from quantize")


def test_save_artifact_never_leaves_half_a_file(tmp_path, monkeypatch):
    path = tmp_path / "a.npz"
    save_artifact(path, "int", {}, {"x": np.arange(3)})
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(path, "int", {}, {"x": np.arange(5)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]
    with pytest.raises(OSError, match="disk full"):
        save_int_network(tmp_path / "b.npz", quantized("mlp"), dataset="digits", split_seed=0)
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_input_order_round_trip(tmp_path):
    """The banks' input order rides on the integer artifact; a file without one keeps the
    natural order."""
    q = quantized("mlp")
    order = (3, 0, 7, 1, 6, 2, 5, 4, 8, 11, 10, 9)
    back, manifest = load_int_network(save(tmp_path / "q.npz", replace(q, input_order=order)))
    assert back.input_order == order and manifest["input_order"] == list(order)
    back, manifest = load_int_network(save(tmp_path / "plain.npz", q))
    assert back.input_order is None and "input_order" not in manifest


def test_save_takes_an_int_network_and_plain_extras(tmp_path):
    with pytest.raises(TypeError, match=r"^Model must be an IntNetwork, not NoneType$"):
        save(tmp_path / "m.npz", None)
    q = quantized("mlp")
    with pytest.raises(ValueError, match=r"^Extra manifest entries must not replace the "
                                         r"artifact's own: input_order, layers$"):
        save(tmp_path / "m.npz", q, extra={"layers": [], "input_order": [0], "model": "mlp"})
    assert list(tmp_path.iterdir()) == []
    # NumPy scalars in a record's fields are written as plain numbers
    first = replace(q.layers[0], in_scale=np.float32(0.0625), source=np.int16(1))
    back, manifest = load_int_network(save(tmp_path / "m.npz", replace(q, layers=(first,
                                                                               *q.layers[1:]))))
    assert manifest["layers"][0]["in_scale"] == 0.0625 and back.layers[0].source == 1
