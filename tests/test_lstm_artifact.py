"""The integer LSTM artifact: bit-exact round trip, and clear errors for bad files."""

import re

import numpy as np
import pytest

from slimgen.sw.artifact import ArtifactError, load_artifact, save_artifact, save_quantized_model
from slimgen.sw.lstm_artifact import load_int_lstm, save_int_lstm
from slimgen.sw.lstm_golden import IntLSTMClassifier, LstmFormat, random_int_lstm
from slimgen.sw.quant import QuantizedModel, random_dense_layer
from slimgen.sw.sparse_golden import SparseLayer


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    fmt = LstmFormat(weight_bits=6, h_frac=6)
    lstm = random_int_lstm(rng, 4, 5, fmt=fmt)
    head = SparseLayer(rng.integers(-127, 128, (3, 5)), rng.integers(-500, 500, 3),
                       in_bits=fmt.h_bits, in_signed=True, weight_bits=8, requant=False)
    return IntLSTMClassifier(lstm, head, steps=3, input_scale=1 / 16, extra={"note": "x"})


def _rewrite(src, dst, change):
    """Resave ``src`` as a valid artifact after ``change(manifest, arrays)``."""
    manifest, arrays = load_artifact(src, "int-lstm")
    change(manifest, arrays)
    for k in ("format", "version", "kind", "arrays"):
        manifest.pop(k)
    save_artifact(dst, "int-lstm", manifest, arrays)


def test_round_trip_is_bit_exact(tmp_path, model):
    save_int_lstm(tmp_path / "m.npz", model, dataset="digits", split_seed=7)
    back, manifest = load_int_lstm(tmp_path / "m.npz")
    assert manifest["kind"] == "int-lstm" and manifest["split_seed"] == 7
    assert back.lstm.fmt == model.lstm.fmt and back.steps == 3 and back.extra == {"note": "x"}
    assert (back.input_scale, back.input_bits, back.n_inputs, back.n_classes, back.logit_bits) \
        == (model.input_scale, model.input_bits, model.n_inputs, model.n_classes,
            model.logit_bits)
    x = np.random.default_rng(1).integers(0, 1 << model.input_bits, (20, model.n_inputs))
    np.testing.assert_array_equal(back(x), model(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_damaged_files(tmp_path, model):
    path = tmp_path / "m.npz"
    save_int_lstm(path, model, dataset="digits", split_seed=0)
    data = path.read_bytes()

    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=rf"^Model file {re.escape(str(cut))} is damaged or "
                                            rf"truncated \(not a readable slimgen-artifact file\)"):
        load_int_lstm(cut)

    with pytest.raises(ArtifactError, match=rf"^Model file {re.escape(str(tmp_path / 'no.npz'))}"
                                            rf" does not exist$"):
        load_int_lstm(tmp_path / "no.npz")

    mlp = tmp_path / "mlp.npz"
    save_quantized_model(mlp, QuantizedModel((random_dense_layer(np.random.default_rng(0), 4, 2),),
                                             1 / 16, 8), dataset="digits", split_seed=0)
    with pytest.raises(ArtifactError, match=rf"^Model file {re.escape(str(mlp))} holds a model "
                                            rf"of kind 'int', expected kind 'int-lstm'"):
        load_int_lstm(mlp)


@pytest.mark.parametrize("change,message", [
    (lambda m, a: a.__setitem__("lstm.W_f", a["lstm.W_f"][:, :-1]),
     "its LSTM is inconsistent: gate 'f' has W of shape [5, 8] and b of shape [5], expected "
     "[5, 9] and [5]"),
    (lambda m, a: a.__setitem__("head.W", a["head.W"][:2]),
     "its LSTM is inconsistent: the head's W has shape [2, 5], expected [3, 5]"),
    (lambda m, a: m["lstm_format"].__setitem__("table_bits", 1),
     "its LSTM is inconsistent: table_bits must be an integer from 3 to 12, not 1"),
    (lambda m, a: m["multiplier"].pop("o"),
     "its LSTM is inconsistent: missing entry 'multiplier.o'"),
    (lambda m, a: a.pop("lstm.b_c"), "its LSTM is inconsistent: missing entry 'lstm.b_c'"),
    (lambda m, a: a.__setitem__("lstm.W_i", a["lstm.W_i"] * 3),
     "array 'lstm.W_i' holds 60 at index (1, 0), outside [-31, 31], the range of 6-bit weights "
     "(lstm_format.weight_bits)"),
])
def test_mismatched_parts(tmp_path, model, change, message):
    save_int_lstm(tmp_path / "m.npz", model, dataset="digits", split_seed=0)
    bad = tmp_path / "bad.npz"
    _rewrite(tmp_path / "m.npz", bad, change)
    with pytest.raises(ArtifactError) as e:
        load_int_lstm(bad)
    assert str(e.value) == (f"Model file {bad}: {message}. Rerun the quantize stage to "
                            f"regenerate it (slimgen flow --run {tmp_path} --from quantize)")


def test_save_needs_an_lstm_classifier(tmp_path):
    with pytest.raises(TypeError, match=r"^Model must be an IntLSTMClassifier, not None$"):
        save_int_lstm(tmp_path / "m.npz", None, dataset="digits", split_seed=0)
