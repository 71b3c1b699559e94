"""Every array and manifest field of a float or integer MLP artifact is checked when loaded
(issue 21): a file with valid checksums but an inf weight, a weight of 2^40 in an 8-bit layer or
``input_bits`` 0 is refused with one message naming the file, the array or field, the bad value
and what is allowed, and the stage to rerun."""

import numpy as np
import pytest

from slimgen.sw.artifact import (ArtifactError, load_artifact, load_float_model,
                                 load_quantized_model, save_artifact, save_float_model,
                                 save_quantized_model)
from slimgen.sw.nn import build_model, mlp_spec
from slimgen.sw.quant import QuantizedModel, random_dense_layer


def rewrite(src, dst, kind, change):
    """Resave ``src`` as ``dst`` with correct checksums after ``change(manifest, arrays)``."""
    manifest, arrays = load_artifact(src, kind)
    change(manifest, arrays)
    for k in ("format", "version", "kind", "arrays"):
        manifest.pop(k)
    save_artifact(dst, kind, manifest, arrays)
    return dst


def hint(path, stage):
    return (f"Rerun the {stage} stage to regenerate it (slimgen flow --run {path.parent} "
            f"--from {stage})")


def refused(load, path, message, stage):
    """``load(path)`` raises exactly ``Model file {path}: {message}. {hint}``."""
    with pytest.raises(ArtifactError) as e:
        load(path)
    assert str(e.value) == f"Model file {path}: {message}. {hint(path, stage)}"


def setitem(d, key, value):
    d[key] = value


# ---- float artifacts (float.npz from train, compressed.npz from compress) ----------------------

@pytest.fixture
def float_path(tmp_path):
    model = build_model(mlp_spec((8, 4, 3)), np.random.default_rng(1))
    path = tmp_path / "float.npz"
    save_float_model(path, model, dataset="digits", split_seed=0)
    return path


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_float_weight_not_finite(tmp_path, float_path, bad):
    def change(m, a):
        a["layer0.W"][2, 1] = bad
    path = rewrite(float_path, tmp_path / "bad.npz", "float", change)
    refused(load_float_model, path, f"array 'layer0.W' holds {bad} at index (2, 1); every value "
                                    f"must be a finite number", "train")


def test_compressed_weight_not_finite_names_the_compress_stage(tmp_path, float_path):
    def change(m, a):
        m["compression"] = {"method": "magnitude"}
        a["layer2.b"][1] = np.nan
    path = rewrite(float_path, tmp_path / "compressed.npz", "float", change)
    refused(load_float_model, path, "array 'layer2.b' holds nan at index 1; every value must be "
                                    "a finite number", "compress")


def test_non_numeric_array(tmp_path, float_path):
    path = rewrite(float_path, tmp_path / "bad.npz", "float",
                   lambda m, a: setitem(a, "layer0.b", a["layer0.b"].astype(complex)))
    refused(load_float_model, path, "array 'layer0.b' is of type complex128; a model's arrays "
                                    "hold real numbers", "train")


@pytest.mark.parametrize("field,value,message", [
    ("act_bits", 0, "manifest field 'compression.act_bits' is 0; it must be an integer from 2 "
                    "to 16"),
    ("layer_weight_bits", [8, 1], "manifest field 'compression.layer_weight_bits[1]' is 1; it "
                                  "must be an integer from 2 to 16"),
    ("layer_weight_bits", 8, "manifest field 'compression.layer_weight_bits' is 8; it must be "
                             "a list of bit widths"),
])
def test_compression_fields(tmp_path, float_path, field, value, message):
    path = rewrite(float_path, tmp_path / "compressed.npz", "float",
                   lambda m, a: setitem(m, "compression", {"method": "joint", field: value}))
    refused(load_float_model, path, message, "compress")


def test_valid_compression_fields_load(tmp_path, float_path):
    path = rewrite(float_path, tmp_path / "compressed.npz", "float", lambda m, a: setitem(
        m, "compression", {"method": "joint", "act_bits": 6, "layer_weight_bits": [4, 8],
                           "input_order": None}))
    load_float_model(path)


# ---- integer MLP artifacts (model.npz from quantize) -------------------------------------------

@pytest.fixture
def int_path(tmp_path):
    rng = np.random.default_rng(0)
    qmodel = QuantizedModel((random_dense_layer(rng, 8, 4),
                             random_dense_layer(rng, 4, 3, requant=False)), 1 / 16, 8)
    path = tmp_path / "model.npz"
    save_quantized_model(path, qmodel, dataset="digits", split_seed=0)
    return path


def _layer(i, key, value):
    return lambda m, a: setitem(m["layers"][i], key, value)


INT_CASES = [
    # model fields
    (lambda m, a: setitem(m, "input_bits", 0),
     "manifest field 'input_bits' is 0; it must be an integer from 1 to 16"),
    (lambda m, a: setitem(m, "input_bits", 17),
     "manifest field 'input_bits' is 17; it must be an integer from 1 to 16"),
    (lambda m, a: setitem(m, "input_bits", 8.5),
     "manifest field 'input_bits' is 8.5; it must be an integer from 1 to 16"),
    (lambda m, a: setitem(m, "input_bits", True),
     "manifest field 'input_bits' is True; it must be an integer from 1 to 16"),
    (lambda m, a: setitem(m, "input_scale", 0),
     "manifest field 'input_scale' is 0; it must be a positive finite number"),
    (lambda m, a: setitem(m, "input_scale", float("inf")),
     "manifest field 'input_scale' is inf; it must be a positive finite number"),
    (lambda m, a: setitem(m, "input_scale", "x"),
     "manifest field 'input_scale' is 'x'; it must be a positive finite number"),
    (lambda m, a: setitem(m, "layers", []),
     "manifest field 'layers' is []; it must be a list of one or more layers"),
    # layer fields
    (_layer(0, "out_scale", float("inf")),
     "manifest field 'layers[0].out_scale' is inf; it must be a positive finite number"),
    (_layer(1, "w_scale", float("nan")),
     "manifest field 'layers[1].w_scale' is nan; it must be a positive finite number"),
    (_layer(0, "in_scale", -1.0),
     "manifest field 'layers[0].in_scale' is -1.0; it must be a positive finite number"),
    (_layer(0, "weight_bits", 1),
     "manifest field 'layers[0].weight_bits' is 1; it must be an integer from 2 to 16"),
    (_layer(0, "in_bits", 0),
     "manifest field 'layers[0].in_bits' is 0; it must be an integer from 1 to 16"),
    (_layer(0, "in_bits", 7),
     "manifest field 'layers[0].in_bits' is 7; it must be 8, the width of its input "
     "(input_bits)"),
    (_layer(1, "in_bits", 6),
     "manifest field 'layers[1].in_bits' is 6; it must be 8, the width of its input "
     "(layers[0].out_bits)"),
    (_layer(0, "out_bits", 0),
     "manifest field 'layers[0].out_bits' is 0; it must be an integer from 1 to 16"),
    (_layer(1, "out_bits", 12),
     "manifest field 'layers[1].out_bits' is 12; it must be 18, the accumulator width "
     "(layers[1].acc_bits) of a layer that does not requantize"),
    (_layer(0, "relu", "yes"),
     "manifest field 'layers[0].relu' is 'yes'; it must be true or false"),
    (_layer(0, "multiplier", 0),
     "manifest field 'layers[0].multiplier' is 0; it must be an integer from 1 to 65535"),
    (_layer(0, "multiplier", 65536),
     "manifest field 'layers[0].multiplier' is 65536; it must be an integer from 1 to 65535"),
    (_layer(0, "shift", 0),
     "manifest field 'layers[0].shift' is 0; it must be an integer from 1 to 62"),
    (_layer(0, "acc_bits", 41),
     "manifest field 'layers[0].acc_bits' is 41; it must be an integer from 1 to 40"),
    (_layer(0, "acc_bits", 18),
     "manifest field 'layers[0].acc_bits' is 18; it must be an integer from 19 (the exact "
     "accumulator width of its weights and biases) to 40"),
    (_layer(0, "acc_bits", 16),
     "array 'layer0.b' holds -59173 at index 0, outside [-32768, 32767], the range of 16-bit "
     "accumulators (layers[0].acc_bits)"),
    (_layer(0, "acc_bits", 0),
     "manifest field 'layers[0].acc_bits' is 0; it must be an integer from 1 to 40"),
    # arrays
    (lambda m, a: a["layer0.W"].__setitem__((1, 2), 1 << 40),
     "array 'layer0.W' holds 1099511627776 at index (1, 2), outside [-127, 127], the range of "
     "8-bit weights (layers[0].weight_bits)"),
    (lambda m, a: a["layer1.W"].__setitem__((2, 0), -128),
     "array 'layer1.W' holds -128 at index (2, 0), outside [-127, 127], the range of 8-bit "
     "weights (layers[1].weight_bits)"),
    (lambda m, a: a["layer1.b"].__setitem__(2, 1 << 50),
     "array 'layer1.b' holds 1125899906842624 at index 2, outside [-131072, 131071], the range "
     "of 18-bit accumulators (layers[1].acc_bits)"),
    (lambda m, a: setitem(a, "layer0.W", a["layer0.W"].astype(np.float64)),
     "array 'layer0.W' is of type float64; an integer model's arrays hold integers"),
    (lambda m, a: setitem(a, "layer0.b", a["layer0.b"][:3]),
     "array 'layer0.b' has shape [3]; it must be [4], one bias per row of layer0.W"),
    (lambda m, a: setitem(a, "layer0.W", a["layer0.W"][0]),
     "array 'layer0.W' has shape [8]; it must be a matrix (outputs, inputs)"),
]


@pytest.mark.parametrize("change,message", INT_CASES)
def test_int_mlp_fields_and_arrays(tmp_path, int_path, change, message):
    path = rewrite(int_path, tmp_path / "bad.npz", "int", change)
    refused(load_quantized_model, path, message, "quantize")


def test_acc_bits_below_the_exact_width(tmp_path, int_path):
    """A bias that fits the declared width but whose sums do not: the hardware would wrap."""
    def change(m, a):
        m["layers"][0]["acc_bits"] = 19
        a["layer0.b"][:] = 10000
        a["layer0.W"][0, :] = 127       # 10000 + 8 · 127 · 255 = 269080 needs 20 bits
    path = rewrite(int_path, tmp_path / "bad.npz", "int", change)
    refused(load_quantized_model, path, "manifest field 'layers[0].acc_bits' is 19; it must be "
                                        "an integer from 20 (the exact accumulator width of its "
                                        "weights and biases) to 40", "quantize")


def test_valid_int_model_loads_unchanged(tmp_path, int_path):
    qmodel, _ = load_quantized_model(int_path)
    same = rewrite(int_path, tmp_path / "same.npz", "int", lambda m, a: None)
    again, _ = load_quantized_model(same)
    x = np.random.default_rng(0).integers(0, 256, (5, 8))
    np.testing.assert_array_equal(again(x), qmodel(x))
