"""The model artifact: round trips, and clear errors for every kind of bad file."""

import json
import zipfile

import numpy as np
import pytest

from slimgen.sw.artifact import (ArtifactError, load_float_model, load_quantized_model,
                                 save_artifact, save_float_model, save_quantized_model)
from slimgen.sw.nn import build_model, mlp_spec
from slimgen.sw.quant import QuantizedModel, random_dense_layer


@pytest.fixture
def qmodel():
    rng = np.random.default_rng(0)
    return QuantizedModel((random_dense_layer(rng, 8, 4), random_dense_layer(rng, 4, 3,
                                                                             requant=False)),
                          1 / 16, 8)


def test_round_trips(tmp_path, qmodel):
    model = build_model(mlp_spec((8, 4, 3)), np.random.default_rng(1))
    save_float_model(tmp_path / "f.npz", model, dataset="digits", split_seed=5)
    back, manifest = load_float_model(tmp_path / "f.npz")
    assert manifest["split_seed"] == 5 and manifest["version"] == 1
    x = np.random.default_rng(2).random((3, 8))
    np.testing.assert_array_equal(back.forward(x), model.forward(x))

    save_quantized_model(tmp_path / "q.npz", qmodel, dataset="digits", split_seed=5)
    qback, manifest = load_quantized_model(tmp_path / "q.npz")
    assert manifest["kind"] == "int"
    xq = np.random.default_rng(3).integers(0, 256, (4, 8))
    np.testing.assert_array_equal(qback(xq), qmodel(xq))
    assert [l.multiplier for l in qback.layers] == [l.multiplier for l in qmodel.layers]
    # Written whole: no temporary files left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz", "q.npz"]


def test_truncated_and_damaged_files(tmp_path, qmodel):
    path = tmp_path / "q.npz"
    save_quantized_model(path, qmodel, dataset="digits", split_seed=0)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"cut.npz is damaged or truncated"):
        load_quantized_model(tmp_path / "cut.npz")
    with pytest.raises(ArtifactError, match=r"nothere.npz does not exist"):
        load_quantized_model(tmp_path / "nothere.npz")


def _rewrite(path, out, change_manifest=None, change_arrays=None):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    manifest = json.loads(arrays.pop("manifest").tobytes())
    if change_manifest:
        change_manifest(manifest)
    if change_arrays:
        change_arrays(arrays)
    blob = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    np.savez(out, manifest=blob, **arrays)


def test_mismatched_files(tmp_path, qmodel):
    path = tmp_path / "q.npz"
    save_quantized_model(path, qmodel, dataset="digits", split_seed=0)

    _rewrite(path, tmp_path / "v2.npz", change_manifest=lambda m: m.update(version=2))
    with pytest.raises(ArtifactError, match=r"is version 2; this slimgen reads version 1$"):
        load_quantized_model(tmp_path / "v2.npz")

    def flip(arrays):
        arrays["layer0.W"] = arrays["layer0.W"].copy()
        arrays["layer0.W"][0, 0] += 1
    _rewrite(path, tmp_path / "flip.npz", change_arrays=flip)
    with pytest.raises(ArtifactError, match=r"array 'layer0.W' does not match its manifest"):
        load_quantized_model(tmp_path / "flip.npz")

    _rewrite(path, tmp_path / "gone.npz", change_arrays=lambda a: a.pop("layer1.b"))
    with pytest.raises(ArtifactError, match=r"missing arrays \['layer1.b'\]"):
        load_quantized_model(tmp_path / "gone.npz")

    def shrink(m):
        m["layers"][1]["multiplier"] = "x"
        del m["layers"][1]["shift"]
    _rewrite(path, tmp_path / "meta.npz", change_manifest=shrink)
    with pytest.raises(ArtifactError, match=r"its layers are inconsistent"):
        load_quantized_model(tmp_path / "meta.npz")

    with pytest.raises(ArtifactError, match=r"holds a model of kind 'int', expected kind "
                                            r"'float'"):
        load_float_model(path)

    with zipfile.ZipFile(tmp_path / "nomanifest.npz", "w") as z:
        z.writestr("a.npy", b"")
    with pytest.raises(ArtifactError, match=r"damaged|no manifest"):
        load_quantized_model(tmp_path / "nomanifest.npz")

    np.savez(tmp_path / "other.npz", manifest=np.frombuffer(b'{"format": "onnx"}', np.uint8))
    with pytest.raises(ArtifactError, match=r"is of format 'onnx', expected 'slimgen-artifact'"):
        load_quantized_model(tmp_path / "other.npz")


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


def test_input_order_round_trip_and_bad_orders(tmp_path, qmodel):
    """The banks' input order rides on the integer artifact; a file without one keeps the
    natural order; a wrong-length or non-permutation order is a clear error."""
    from dataclasses import replace
    order = (3, 0, 7, 1, 6, 2, 5, 4)
    path = tmp_path / "q.npz"
    save_quantized_model(path, replace(qmodel, input_order=order), dataset="digits",
                         split_seed=0)
    back, manifest = load_quantized_model(path)
    assert back.input_order == order and manifest["input_order"] == list(order)

    save_quantized_model(tmp_path / "plain.npz", qmodel, dataset="digits", split_seed=0)
    back, manifest = load_quantized_model(tmp_path / "plain.npz")
    assert back.input_order is None and "input_order" not in manifest

    _rewrite(path, tmp_path / "short.npz",
             change_manifest=lambda m: m.update(input_order=list(order[:-1])))
    with pytest.raises(ArtifactError, match=r"short.npz: Input order must have 8 entries \(a "
                                            r"permutation of range\(8\)\), not 7$"):
        load_quantized_model(tmp_path / "short.npz")
    _rewrite(path, tmp_path / "twice.npz",
             change_manifest=lambda m: m.update(input_order=[3, 0, 7, 1, 6, 2, 5, 3]))
    with pytest.raises(ArtifactError, match=r"twice.npz: Input order must be a permutation of "
                                            r"range\(8\); missing \[4\]$"):
        load_quantized_model(tmp_path / "twice.npz")
    _rewrite(path, tmp_path / "wide.npz",
             change_manifest=lambda m: m.update(input_order=[3, 0, 9, 1, 6, 2, 5, 4]))
    with pytest.raises(ArtifactError, match=r"missing \[7\], out of range \[9\]$"):
        load_quantized_model(tmp_path / "wide.npz")
    _rewrite(path, tmp_path / "text.npz", change_manifest=lambda m: m.update(input_order="ab"))
    with pytest.raises(ArtifactError, match=r"Input order must be a sequence of integers"):
        load_quantized_model(tmp_path / "text.npz")
