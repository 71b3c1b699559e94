"""The "int-cnn" artifact: round trip, and clear errors on damaged or mismatched files."""

import numpy as np
import pytest

from slimgen.sw.artifact import ArtifactError, save_artifact, load_artifact
from slimgen.sw.cnn_artifact import load_int_cnn, save_int_cnn
from slimgen.sw.cnn_quant import random_int_cnn
from slimgen.sw.quant import QuantConfig, QuantizedModel


@pytest.fixture
def model():
    return random_int_cnn(np.random.default_rng(0), (1, 6, 6), (2, 3), pool=2, n_classes=3)


def test_round_trip(tmp_path, model):
    path = tmp_path / "m.npz"
    save_int_cnn(path, model, dataset="digits", split_seed=7)
    back, manifest = load_int_cnn(path)
    assert manifest["kind"] == "int-cnn" and manifest["split_seed"] == 7
    x = np.random.default_rng(1).integers(0, 256, (5, model.n_inputs))
    np.testing.assert_array_equal(back(x), model(x))
    assert back.in_shape == model.in_shape and back.pool == model.pool
    assert [c.meta() for c in back.convs] == [c.meta() for c in model.convs]
    assert back.config == model.config


def test_truncated(tmp_path, model):
    path = tmp_path / "m.npz"
    save_int_cnn(path, model, dataset="digits", split_seed=0)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ArtifactError, match="is damaged or truncated"):
        load_int_cnn(path)


def test_other_kind(tmp_path):
    path = tmp_path / "m.npz"
    save_artifact(path, "int", {"layers": []}, {})
    with pytest.raises(ArtifactError, match="holds a model of kind 'int', expected kind 'int-cnn'"):
        load_int_cnn(path)


def test_inconsistent_layers(tmp_path, model):
    path = tmp_path / "m.npz"
    save_int_cnn(path, model, dataset="digits", split_seed=0)
    manifest, arrays = load_artifact(path, "int-cnn")
    arrays["dense0.W"] = arrays["dense0.W"][:, :-1]      # one input too few
    manifest = {k: v for k, v in manifest.items() if k not in ("arrays",)}
    save_artifact(path, "int-cnn", manifest, arrays)
    with pytest.raises(ArtifactError, match="its layers are inconsistent: Dense layer 0 takes "
                                            "26 inputs, not the 27 it gets"):
        load_int_cnn(path)


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_int_cnn(tmp_path / "none.npz")


def test_wrong_model_type(tmp_path):
    with pytest.raises(TypeError, match="Model must be an IntCNN"):
        save_int_cnn(tmp_path / "m.npz", QuantizedModel((), 1.0, 8, QuantConfig()),
                     dataset="digits", split_seed=0)
