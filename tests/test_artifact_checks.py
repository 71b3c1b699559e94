"""Every array and manifest field of a float or integer artifact is checked when loaded: a file
with valid checksums but an inf weight, a weight of 2^40 in an 8-bit layer, ``input_bits`` 0,
records that do not chain or do not match their description is refused with one message naming
the file, the array or field, the bad value and what is allowed, and the stage to rerun. The
quantizer, for its part, refuses float models it cannot turn into integers."""

from dataclasses import replace

import numpy as np
import pytest

from slimgen.sw.artifact import (ArtifactError, load_artifact, load_float_model,
                                 load_int_network, save_artifact, save_float_model,
                                 save_int_network)
from slimgen.sw.fixed import multiplier_shift
from slimgen.sw.integer_model import IntNetwork, IntRelu
from slimgen.sw.network import check_network
from slimgen.sw.nn import build_model
from slimgen.sw.quantize import QuantConfig, quantize_network

from test_artifact import NETS, quantized

MLP_FIELDS = ("kind, multiplier, shift, relu, requant, in_bits, in_signed, out_bits, "
              "weight_bits, source, in_scale, w_scale, out_scale")


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
    net = check_network({"name": "mlp", "layers": NETS["mlp"]})
    model = build_model(net.float_spec()[0], np.random.default_rng(1))
    path = tmp_path / "float.npz"
    save_float_model(path, model, dataset="digits", split_seed=0, network=net)
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
        a["layer4.b"][1] = np.nan
    path = rewrite(float_path, tmp_path / "compressed.npz", "float", change)
    refused(load_float_model, path, "array 'layer4.b' holds nan at index 1; every value must be "
                                    "a finite number", "compress")


def test_non_numeric_array(tmp_path, float_path):
    path = rewrite(float_path, tmp_path / "bad.npz", "float",
                   lambda m, a: setitem(a, "layer0.b", a["layer0.b"].astype(complex)))
    refused(load_float_model, path, "array 'layer0.b' is of type complex128; a model's arrays "
                                    "hold real numbers", "train")


def test_float_network_description(tmp_path, float_path):
    path = rewrite(float_path, tmp_path / "bad.npz", "float",
                   lambda m, a: m["network"]["layers"][1].update(units=0))
    refused(load_float_model, path, "its network description (manifest field 'network') is "
                                    "wrong: layer 1 (dense): units 0 is not supported; use 1 to "
                                    "65536", "train")


def test_float_architecture_and_weights_disagree(tmp_path, float_path):
    path = rewrite(float_path, tmp_path / "bad.npz", "float", lambda m, a: a.pop("layer4.b"))
    with pytest.raises(ArtifactError, match=r"bad.npz: its architecture and weights do not "
                                            r"agree: "):
        load_float_model(path)


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


# ---- integer artifacts (model.npz from quantize) -----------------------------------------------
#
# mlp:    0 dense (source 1, ReLU fused after its batchnorm), 1 dense (source 5, the logits)
# conv2d: 0 conv (1, stride 2, pad (0, 1) on both axes, ReLU fused), 1 max pool (4),
#         2 conv (5, no bias, no ReLU: signed), 3 avg pool (6, signed), 4 relu (7),
#         5 flatten (8), 6 dense (9, logits)
# conv1d: 0 conv (1), 1 max pool (3), 2 conv (4, signed), 3 global avg pool (5), 4 dense (6)
# lstm:   0 lstm (1, every step), 1 gru (2, h_frac 6), 2 dense (3, logits, 7-bit inputs)
# gru:    0 conv1d (1), 1 gru (2, every step), 2 flatten (3), 3 dense (4, ReLU), 4 dense (6)

def _saved(tmp_path, int_net):
    save_int_network(tmp_path / "model.npz", int_net, dataset="digits", split_seed=0)
    return tmp_path / "model.npz"


@pytest.fixture(scope="module")
def int_nets():
    return {name: quantized(name) for name in NETS}


def _layer(i, key, value):
    return lambda m, a: setitem(m["layers"][i], key, value)


def _sub(i, key, sub, value):
    return lambda m, a: setitem(m["layers"][i][key], sub, value)


def _array(name, index, value):
    return lambda m, a: a[name].__setitem__(index, value)


def _drop_record(i):
    """Remove record i and its arrays; the later records' arrays move down one."""
    def change(m, a):
        del m["layers"][i]
        for name in sorted(a, key=lambda n: int(n.split(".")[0][5:])):
            k = int(name.split(".")[0][5:])
            if k == i:
                del a[name]
            elif k > i:
                a[f"layer{k - 1}.{name.split('.', 1)[1]}"] = a.pop(name)
    return change


def _int32(m, a):
    a["layer0.W"] = a["layer0.W"].astype(np.int32)


RANGE = "it must be an integer from"
ACC40 = "[-549755813888, 549755813887], the range of 40-bit accumulators (the widest slimgen " \
        "builds)"
LSTM_ARRAYS = "layer0.W_i, layer0.W_f, layer0.W_o, layer0.W_c, layer0.b_i, layer0.b_f, " \
              "layer0.b_o, layer0.b_c"
GRU_ARRAYS = "layer1.W_r, layer1.W_z, layer1.W_n, layer1.b_r, layer1.b_z, layer1.b_n, layer1.b_hn"
FMT = "h_frac, gate_frac, c_bits, table_bits, sigmoid_frac, tanh_frac"

INT_CASES = [
    # the model's fields
    ("mlp", lambda m, a: setitem(m, "input_bits", 0),
     f"manifest field 'input_bits' is 0; {RANGE} 1 to 16"),
    ("mlp", lambda m, a: setitem(m, "input_bits", 17),
     f"manifest field 'input_bits' is 17; {RANGE} 1 to 16"),
    ("mlp", lambda m, a: setitem(m, "input_bits", 8.5),
     f"manifest field 'input_bits' is 8.5; {RANGE} 1 to 16"),
    ("mlp", lambda m, a: setitem(m, "input_bits", True),
     f"manifest field 'input_bits' is True; {RANGE} 1 to 16"),
    ("mlp", lambda m, a: setitem(m, "input_bits", 7),
     "manifest field 'input_bits' is 7; it must be 8, the bits of its network's input layer"),
    ("mlp", lambda m, a: m.pop("input_bits"), "manifest field 'input_bits' is missing"),
    ("mlp", lambda m, a: setitem(m, "input_scale", 0),
     "manifest field 'input_scale' is 0; it must be a positive finite number"),
    ("mlp", lambda m, a: setitem(m, "input_scale", float("inf")),
     "manifest field 'input_scale' is inf; it must be a positive finite number"),
    ("mlp", lambda m, a: setitem(m, "input_scale", "x"),
     "manifest field 'input_scale' is 'x'; it must be a positive finite number"),
    ("mlp", lambda m, a: setitem(m, "input_scale", 10 ** 400),
     f"manifest field 'input_scale' is {10 ** 400}; it must be a positive finite number"),
    ("mlp", lambda m, a: setitem(m, "quant_config", 16),
     "manifest field 'quant_config' is 16; it must be an object with multiplier_bits"),
    ("mlp", lambda m, a: m["quant_config"].pop("multiplier_bits"),
     "manifest field 'quant_config.multiplier_bits' is missing"),
    ("mlp", lambda m, a: setitem(m["quant_config"], "multiplier_bits", 25),
     f"manifest field 'quant_config.multiplier_bits' is 25; {RANGE} 4 to 24"),
    ("mlp", lambda m, a: setitem(m, "layers", []),
     "manifest field 'layers' is []; it must be a list of one or more records"),
    ("mlp", lambda m, a: setitem(m, "layers", {"0": 1}),
     "manifest field 'layers' is {'0': 1}; it must be a list of one or more records"),
    ("mlp", lambda m, a: m.pop("layers"), "manifest field 'layers' is missing"),
    # the description
    ("mlp", lambda m, a: m.pop("network"), "manifest field 'network' is missing"),
    ("mlp", lambda m, a: setitem(m["network"], "layers", []),
     "its network description (manifest field 'network') is wrong: network: layers must be a "
     "non-empty list, the first an input layer"),
    ("conv2d", lambda m, a: setitem(m["network"]["layers"][1], "kernel", 9),
     "its network description (manifest field 'network') is wrong: layer 1 (conv2d): kernel 9 "
     "is not supported; use 1 to 7"),
    ("mlp", lambda m, a: setitem(m["network"]["layers"][5], "units", 4),
     "array 'layer1.W' has shape [3, 6]; it must be [4, 6], (outputs, inputs) of network layer "
     "5 (dense) on its 6 inputs"),
    ("mlp", lambda m, a: setitem(m["network"]["layers"][0], "bits", 6),
     "manifest field 'input_bits' is 8; it must be 6, the bits of its network's input layer"),
    # the input order
    ("mlp", lambda m, a: setitem(m, "input_order", list(range(11))),
     "manifest field 'input_order' is wrong: input order must have 12 entries (a permutation "
     "of range(12)), not 11"),
    ("mlp", lambda m, a: setitem(m, "input_order", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3]),
     "manifest field 'input_order' is wrong: input order must be a permutation of range(12); "
     "missing [11]"),
    ("mlp", lambda m, a: setitem(m, "input_order", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]),
     "manifest field 'input_order' is wrong: input order must be a permutation of range(12); "
     "missing [11], out of range [12]"),
    ("mlp", lambda m, a: setitem(m, "input_order", "ab"),
     "manifest field 'input_order' is wrong: input order must be a sequence of integers (a "
     "permutation of range(12)), not 'ab'"),
    # records: kinds and fields present
    ("mlp", lambda m, a: m["layers"].__setitem__(0, 3),
     "manifest field 'layers[0]' is 3; it must be an object with the record's kind and fields"),
    ("mlp", _layer(0, "kind", ["dense"]),
     "manifest field 'layers[0].kind' is ['dense']; it must be one of 'dense', 'conv', 'pool', "
     "'flatten', 'relu', 'recurrent'"),
    ("lstm", _layer(0, "cell", {}),
     "manifest field 'layers[0].cell' is {}; it must be 'lstm' or 'gru'"),
    ("mlp", _layer(0, "kind", "matmul"),
     "manifest field 'layers[0].kind' is 'matmul'; it must be one of 'dense', 'conv', 'pool', "
     "'flatten', 'relu', 'recurrent'"),
    ("mlp", lambda m, a: m["layers"][1].pop("shift"),
     f"manifest field 'layers[1].shift' is missing; a dense record has {MLP_FIELDS}"),
    ("mlp", _layer(0, "acc_bits", 18),
     f"manifest field 'layers[0].acc_bits' is not known; a dense record has {MLP_FIELDS}"),
    ("lstm", _layer(0, "cell", "rnn"),
     "manifest field 'layers[0].cell' is 'rnn'; it must be 'lstm' or 'gru'"),
    # dense and convolution fields
    ("mlp", _layer(0, "out_scale", float("inf")),
     "manifest field 'layers[0].out_scale' is inf; it must be a positive finite number"),
    ("mlp", _layer(1, "w_scale", float("nan")),
     "manifest field 'layers[1].w_scale' is nan; it must be a positive finite number"),
    ("mlp", _layer(0, "in_scale", -1.0),
     "manifest field 'layers[0].in_scale' is -1.0; it must be a positive finite number"),
    ("mlp", _layer(0, "w_scale", [1.0, 2.0]),
     "manifest field 'layers[0].w_scale' is [1.0, 2.0]; it must be a positive finite number or "
     "a list of 6 (one per output channel)"),
    ("mlp", _layer(0, "w_scale", [1.0] * 5 + [0.0]),
     "manifest field 'layers[0].w_scale[5]' is 0.0; it must be a positive finite number"),
    ("mlp", _layer(0, "weight_bits", 1),
     f"manifest field 'layers[0].weight_bits' is 1; {RANGE} 2 to 16"),
    ("mlp", _layer(0, "weight_bits", "8"),
     f"manifest field 'layers[0].weight_bits' is '8'; {RANGE} 2 to 16"),
    ("mlp", _layer(0, "in_bits", 0), f"manifest field 'layers[0].in_bits' is 0; {RANGE} 1 to 16"),
    ("mlp", _layer(0, "in_bits", 7),
     "manifest field 'layers[0].in_bits' is 7; it must be 8, the width of its input "
     "(input_bits)"),
    ("mlp", _layer(1, "in_bits", 6),
     "manifest field 'layers[1].in_bits' is 6; it must be 8, the width of its input "
     "(layers[0].out_bits)"),
    ("mlp", _layer(0, "in_signed", True),
     "manifest field 'layers[0].in_signed' is True; it must be False, as its input "
     "(input_bits) is unsigned"),
    ("mlp", _layer(0, "in_signed", 0),
     "manifest field 'layers[0].in_signed' is 0; it must be true or false"),
    ("mlp", _layer(0, "out_bits", 0), f"manifest field 'layers[0].out_bits' is 0; {RANGE} 1 to 16"),
    ("mlp", _layer(0, "out_bits", 17),
     f"manifest field 'layers[0].out_bits' is 17; {RANGE} 1 to 16"),
    ("mlp", _layer(1, "out_bits", 41),
     f"manifest field 'layers[1].out_bits' is 41; {RANGE} 1 to 40"),
    ("mlp", _layer(1, "out_bits", 12),
     "manifest field 'layers[1].out_bits' is 12; it must be 18, the exact accumulator width of "
     "its weights and biases (a record that does not requantize outputs its accumulators)"),
    ("mlp", _layer(0, "relu", "yes"),
     "manifest field 'layers[0].relu' is 'yes'; it must be true or false"),
    ("mlp", _layer(0, "relu", False),
     "manifest field 'layers[0].relu' is False; it must be True, as network layer 1 (dense) is "
     "followed by a relu"),
    ("conv2d", _layer(2, "relu", True),
     "manifest field 'layers[2].relu' is True; it must be False, as network layer 5 (conv2d) "
     "is not followed by a relu"),
    ("mlp", _layer(1, "relu", True),
     "manifest field 'layers[1].relu' is True; it must be False, as a record that does not "
     "requantize has no ReLU (a relu record follows it)"),
    ("mlp", _layer(0, "requant", 1),
     "manifest field 'layers[0].requant' is 1; it must be true or false"),
    ("mlp", _layer(0, "requant", False),
     "manifest field 'layers[0].requant' is False; it must be true: only the last weighted "
     "record keeps its accumulators (the logits, a relu record at most after them)"),
    ("mlp", _layer(0, "multiplier", 0),
     f"manifest field 'layers[0].multiplier' is 0; {RANGE} 1 to 65535"),
    ("mlp", _layer(0, "multiplier", 65536),
     f"manifest field 'layers[0].multiplier' is 65536; {RANGE} 1 to 65535"),
    ("mlp", _layer(0, "multiplier", 2.5),
     f"manifest field 'layers[0].multiplier' is 2.5; {RANGE} 1 to 65535"),
    ("mlp", _layer(0, "multiplier", True),
     f"manifest field 'layers[0].multiplier' is True; {RANGE} 1 to 65535"),
    ("mlp", _layer(0, "multiplier", [5, 6]),
     "manifest field 'layers[0].multiplier' is [5, 6]; it must be an integer from 1 to 65535 or "
     "a list of 6 (one per output channel)"),
    ("mlp", _layer(0, "multiplier", [5, 6, 7, 8, 0, 9]),
     f"manifest field 'layers[0].multiplier[4]' is 0; {RANGE} 1 to 65535"),
    ("mlp", _layer(0, "shift", 0), f"manifest field 'layers[0].shift' is 0; {RANGE} 1 to 62"),
    ("mlp", _layer(0, "shift", 63), f"manifest field 'layers[0].shift' is 63; {RANGE} 1 to 62"),
    ("mlp", _layer(0, "shift", 1.5), f"manifest field 'layers[0].shift' is 1.5; {RANGE} 1 to 62"),
    ("conv2d", _layer(0, "stride", 3), f"manifest field 'layers[0].stride' is 3; {RANGE} 1 to 2"),
    ("conv2d", _layer(0, "stride", 1),
     "manifest field 'layers[0].stride' is 1; it must be 2, the stride of network layer 1 "
     "(conv2d)"),
    ("conv2d", _layer(0, "pad", [[1, 1], [1, 1]]),
     "manifest field 'layers[0].pad' is [[1, 1], [1, 1]]; it must be [[0, 1], [0, 1]], the "
     "padding of network layer 1 (conv2d) ('same' on (8, 6))"),
    ("conv2d", _layer(0, "pad", [[0, 1]]),
     "manifest field 'layers[0].pad' is [[0, 1]]; it must be a list of 2 [before, after] pairs "
     "(one per spatial axis)"),
    ("conv2d", _layer(0, "pad", 1),
     "manifest field 'layers[0].pad' is 1; it must be a list of 2 [before, after] pairs (one "
     "per spatial axis)"),
    ("conv2d", _layer(0, "pad", [[0, -1], [0, 1]]),
     f"manifest field 'layers[0].pad[0][1]' is -1; {RANGE} 0 to 2"),
    ("conv2d", _layer(0, "pad", [[0, 1], [3, 1]]),
     f"manifest field 'layers[0].pad[1][0]' is 3; {RANGE} 0 to 2"),
    # pools
    ("conv2d", _layer(1, "op", "min"),
     "manifest field 'layers[1].op' is 'min'; it must be 'max' or 'avg'"),
    ("conv2d", _layer(1, "op", "avg"),
     "manifest field 'layers[1].op' is 'avg'; it must be 'max', as network layer 4 (maxpool) "
     "says"),
    ("conv2d", _layer(1, "dims", 3), f"manifest field 'layers[1].dims' is 3; {RANGE} 1 to 2"),
    ("conv2d", _layer(1, "dims", 1),
     "manifest field 'layers[1].dims' is 1; it must be 2, the spatial axes of its input "
     "(4, 3, 3)"),
    ("conv2d", _layer(1, "size", 0), f"manifest field 'layers[1].size' is 0; {RANGE} 1 to 64"),
    ("conv2d", _layer(1, "size", 3),
     "manifest field 'layers[1].size' is 3; it must be 2, the size of network layer 4 "
     "(maxpool)"),
    ("conv2d", _layer(1, "stride", 2),
     "manifest field 'layers[1].stride' is 2; it must be 1, the stride of network layer 4 "
     "(maxpool)"),
    ("conv2d", _layer(1, "stride", 65),
     f"manifest field 'layers[1].stride' is 65; {RANGE} 1 to 64"),
    ("conv2d", _layer(1, "global_", "no"),
     "manifest field 'layers[1].global_' is 'no'; it must be true or false"),
    ("conv2d", _layer(1, "global_", True),
     "manifest field 'layers[1].global_' is True; it must be False, as network layer 4 "
     "(maxpool) says"),
    ("conv1d", _layer(3, "global_", False),
     "manifest field 'layers[3].global_' is False; it must be True, as network layer 5 "
     "(global_avgpool) says"),
    ("conv2d", _layer(1, "bits", 9),
     "manifest field 'layers[1].bits' is 9; it must be 8, the width of its input "
     "(layers[0].out_bits)"),
    ("conv2d", _layer(1, "bits", 0), f"manifest field 'layers[1].bits' is 0; {RANGE} 1 to 16"),
    ("conv2d", _layer(1, "signed", True),
     "manifest field 'layers[1].signed' is True; it must be False, as its input "
     "(layers[0].out_bits) is unsigned"),
    ("conv2d", _layer(3, "multiplier", 0),
     f"manifest field 'layers[3].multiplier' is 0; {RANGE} 1 to 65535"),
    ("conv2d", _layer(3, "shift", 63), f"manifest field 'layers[3].shift' is 63; {RANGE} 1 to 62"),
    # relu records and the records after them
    ("conv2d", _layer(4, "bits", 7),
     "manifest field 'layers[4].bits' is 7; it must be 8, the width of its input "
     "(layers[3].bits)"),
    ("conv2d", _layer(4, "bits", 41), f"manifest field 'layers[4].bits' is 41; {RANGE} 1 to 40"),
    ("conv2d", _layer(6, "in_signed", True),
     "manifest field 'layers[6].in_signed' is True; it must be False, as its input "
     "(layers[4].bits) is unsigned"),
    ("conv1d", _layer(4, "in_signed", False),
     "manifest field 'layers[4].in_signed' is False; it must be True, as its input "
     "(layers[3].bits) is signed"),
    # recurrent fields
    ("lstm", _layer(0, "cell", "gru"),
     "manifest field 'layers[0].cell' is 'gru'; it must be 'lstm', as network layer 1 (lstm) "
     "says"),
    ("lstm", _sub(0, "fmt", "h_frac", 0),
     f"manifest field 'layers[0].fmt.h_frac' is 0; {RANGE} 1 to 15"),
    ("lstm", _sub(0, "fmt", "table_bits", 13),
     f"manifest field 'layers[0].fmt.table_bits' is 13; {RANGE} 3 to 12"),
    ("lstm", _sub(0, "fmt", "c_bits", 12.0),
     f"manifest field 'layers[0].fmt.c_bits' is 12.0; {RANGE} 4 to 32"),
    ("lstm", _sub(1, "fmt", "h_frac", 7),
     "manifest field 'layers[1].fmt.h_frac' is 7; it must be 6, the h_frac of network layer 2 "
     "(gru)"),
    ("lstm", lambda m, a: m["layers"][0]["fmt"].pop("tanh_frac"),
     "manifest field 'layers[0].fmt' is {'c_bits': 13, 'gate_frac': 8, 'h_frac': 7, "
     f"'sigmoid_frac': 4, 'table_bits': 8}}; it must be an object with {FMT}"),
    ("lstm", _sub(0, "multiplier", "i", 0),
     f"manifest field 'layers[0].multiplier.i' is 0; {RANGE} 1 to 65535"),
    ("lstm", _sub(0, "multiplier", "c", 2.5),
     f"manifest field 'layers[0].multiplier.c' is 2.5; {RANGE} 1 to 65535"),
    ("lstm", _sub(1, "multiplier", "hn", 5),
     "manifest field 'layers[1].multiplier' is {'hn': 5, 'n': 16499, 'r': 32315, 'z': 32427}; "
     "it must be an object with one entry per gate (r, z, n)"),
    ("lstm", _sub(0, "shift", "f", 100),
     f"manifest field 'layers[0].shift.f' is 100; {RANGE} 1 to 62"),
    ("lstm", _layer(0, "shift", 22),
     "manifest field 'layers[0].shift' is 22; it must be an object with one entry per gate "
     "(i, f, o, c)"),
    ("lstm", _layer(0, "weight_bits", 1),
     f"manifest field 'layers[0].weight_bits' is 1; {RANGE} 2 to 16"),
    ("lstm", _layer(0, "c_weight_bits", 17),
     f"manifest field 'layers[0].c_weight_bits' is 17; {RANGE} 2 to 16"),
    ("lstm", _layer(0, "sequences", "yes"),
     "manifest field 'layers[0].sequences' is 'yes'; it must be true or false"),
    ("lstm", _layer(0, "sequences", False),
     "manifest field 'layers[0].sequences' is False; it must be True, as network layer 1 "
     "(lstm) says"),
    ("lstm", _layer(0, "in_scale", 0.0),
     "manifest field 'layers[0].in_scale' is 0.0; it must be a positive finite number"),
    ("lstm", _layer(0, "in_bits", 6),
     "manifest field 'layers[0].in_bits' is 6; it must be 5, the width of its input "
     "(input_bits)"),
    ("lstm", _layer(1, "in_bits", 7),
     "manifest field 'layers[1].in_bits' is 7; it must be 8, the width of its input "
     "(layers[0].fmt.h_frac + 1)"),
    ("lstm", _layer(1, "in_signed", False),
     "manifest field 'layers[1].in_signed' is False; it must be True, as its input "
     "(layers[0].fmt.h_frac + 1) is signed"),
    ("lstm", _layer(2, "in_bits", 8),
     "manifest field 'layers[2].in_bits' is 8; it must be 7, the width of its input "
     "(layers[1].fmt.h_frac + 1)"),
    # the order of the records against the description
    ("mlp", _layer(0, "source", 0), f"manifest field 'layers[0].source' is 0; {RANGE} 1 to 5"),
    ("mlp", _layer(0, "source", "1"),
     f"manifest field 'layers[0].source' is '1'; {RANGE} 1 to 5"),
    ("mlp", _layer(0, "source", 2),
     "manifest field 'layers[0].source' is 2; it must be the index of a dense layer of its "
     "network description; network layer 2 (batchnorm) is not"),
    ("mlp", _layer(1, "source", 3), f"manifest field 'layers[1].source' is 3; {RANGE} 4 to 5"),
    ("mlp", _layer(0, "source", 5),
     "network layer 1 (dense) has no record: layers[0] comes from network layer 5"),
    ("mlp", _drop_record(0),
     "network layer 1 (dense) has no record: layers[0] comes from network layer 5"),
    ("conv2d", _drop_record(2),
     "network layer 5 (conv2d) has no record: layers[2] comes from network layer 6, layers[1] "
     "from network layer 4"),
    ("conv2d", _drop_record(4),
     "network layer 7 (relu) has no record: its input (layers[3].bits) is signed: it needs a "
     "relu record, or the ReLU fused into the layer before it"),
    ("conv1d", _drop_record(4),
     "network layer 6 (dense) has no record: the last record, layers[3], comes from network "
     "layer 5"),
    ("mlp", lambda m, a: (m["layers"][1].update(requant=True, out_bits=8),
                          m["layers"].append({"kind": "flatten", "source": 5})),
     "layers[2] has no description layer left: the network has 6 layers and layers[1] accounts "
     "for the last"),
    ("gru", lambda m, a: m["layers"].insert(4, {"kind": "relu", "bits": 8, "source": 5}),
     f"manifest field 'layers[4].source' is 5; {RANGE} 6 to 6"),
    ("logit_relu", _drop_record(2),
     "network layer 4 (relu) has no record: its input (the accumulators of layers[1]) is "
     "signed: it needs a relu record, or the ReLU fused into the layer before it"),
    ("logit_relu", _layer(2, "bits", 12),
     "manifest field 'layers[2].bits' is 12; it must be 17, the width of its input (the "
     "accumulators of layers[1])"),
    ("logit_relu", _layer(0, "requant", False),
     "manifest field 'layers[0].requant' is False; it must be true: only the last weighted "
     "record keeps its accumulators (the logits, a relu record at most after them)"),
    # arrays
    ("mlp", lambda m, a: a.pop("layer1.b"),
     "array 'layer1.b' is missing; layers[1] needs layer1.W, layer1.b"),
    ("lstm", lambda m, a: a.pop("layer1.b_hn"), f"array 'layer1.b_hn' is missing; layers[1] "
                                                f"needs {GRU_ARRAYS}"),
    ("lstm", lambda m, a: a.pop("layer0.W_o"), f"array 'layer0.W_o' is missing; layers[0] "
                                               f"needs {LSTM_ARRAYS}"),
    ("mlp", lambda m, a: setitem(a, "layer1.W_i", a["layer1.W"]),
     "array 'layer1.W_i' belongs to no record; its records use layer0.W, layer0.b, layer1.W, "
     "layer1.b"),
    ("conv2d", lambda m, a: setitem(a, "layer1.W", a["layer0.W"]),
     "array 'layer1.W' belongs to no record; its records use layer0.W, layer0.b, layer2.W, "
     "layer2.b, layer6.W, layer6.b"),
    ("mlp", _int32, "array 'layer0.W' is of type int32; an integer model's arrays are int64"),
    ("mlp", lambda m, a: setitem(a, "layer0.W", a["layer0.W"].astype(np.float64)),
     "array 'layer0.W' is of type float64; an integer model's arrays hold integers"),
    ("mlp", lambda m, a: setitem(a, "layer0.b", a["layer0.b"] > 0),
     "array 'layer0.b' is of type bool; an integer model's arrays hold integers"),
    ("mlp", lambda m, a: setitem(a, "layer1.b", np.full(3, np.inf)),
     "array 'layer1.b' holds inf at index 0; every value must be a finite number"),
    ("mlp", lambda m, a: setitem(a, "layer0.b", a["layer0.b"][:3]),
     "array 'layer0.b' has shape [3]; it must be [6], one bias per output of layer0.W"),
    ("mlp", lambda m, a: setitem(a, "layer0.W", a["layer0.W"][0]),
     "array 'layer0.W' has shape [12]; it must be [6, 12], (outputs, inputs) of network layer 1 "
     "(dense) on its 12 inputs"),
    ("mlp", lambda m, a: setitem(a, "layer0.W", a["layer0.W"][:, :-1]),
     "array 'layer0.W' has shape [6, 11]; it must be [6, 12], (outputs, inputs) of network "
     "layer 1 (dense) on its 12 inputs"),
    ("conv2d", lambda m, a: setitem(a, "layer0.W", a["layer0.W"][..., 0]),
     "array 'layer0.W' has shape [3, 2, 3]; it must be [3, 2, 3, 3], (out channels, in "
     "channels, *kernel) of network layer 1 (conv2d)"),
    ("conv2d", lambda m, a: setitem(a, "layer2.W", a["layer2.W"][:, :2]),
     "array 'layer2.W' has shape [4, 2, 1, 1]; it must be [4, 3, 1, 1], (out channels, in "
     "channels, *kernel) of network layer 5 (conv2d)"),
    ("lstm", lambda m, a: setitem(a, "layer0.W_f", a["layer0.W_f"][:, :-1]),
     "array 'layer0.W_f' has shape [4, 6]; it must be [4, 7], (hidden, inputs + hidden) of "
     "network layer 1 (lstm)"),
    ("lstm", lambda m, a: setitem(a, "layer1.b_hn", a["layer1.b_hn"][:2]),
     "array 'layer1.b_hn' has shape [2]; it must be [3], one bias per hidden unit of network "
     "layer 2 (gru)"),
    # weights within weight_bits, biases within the accumulator
    ("mlp", _array("layer0.W", (1, 2), 1 << 40),
     "array 'layer0.W' holds 1099511627776 at index (1, 2), outside [-127, 127], the range of "
     "8-bit weights (layers[0].weight_bits)"),
    ("mlp", _array("layer1.W", (2, 0), -128),
     "array 'layer1.W' holds -128 at index (2, 0), outside [-127, 127], the range of 8-bit "
     "weights (layers[1].weight_bits)"),
    ("mlp", lambda m, a: (setitem(m["layers"][0], "weight_bits", 4),
                          a["layer0.W"].__setitem__((0, 0), 8)),
     "array 'layer0.W' holds 8 at index (0, 0), outside [-7, 7], the range of 4-bit weights "
     "(layers[0].weight_bits)"),
    ("conv2d", _array("layer0.W", (1, 0, 2, 2), 1 << 40),
     "array 'layer0.W' holds 1099511627776 at index (1, 0, 2, 2), outside [-127, 127], the "
     "range of 8-bit weights (layers[0].weight_bits)"),
    ("lstm", _array("layer0.W_c", (1, 2), 200),
     "array 'layer0.W_c' holds 200 at index (1, 2), outside [-127, 127], the range of 8-bit "
     "weights (layers[0].c_weight_bits)"),
    ("lstm", _array("layer0.W_o", (0, 0), -128),
     "array 'layer0.W_o' holds -128 at index (0, 0), outside [-127, 127], the range of 8-bit "
     "weights (layers[0].weight_bits)"),
    ("mlp", _array("layer1.b", 2, 1 << 50),
     f"array 'layer1.b' holds 1125899906842624 at index 2, outside {ACC40}"),
    ("lstm", _array("layer0.b_i", 3, -(1 << 45)),
     f"array 'layer0.b_i' holds -35184372088832 at index 3, outside {ACC40}"),
    ("lstm", _array("layer1.b_hn", 0, 1 << 45),
     f"array 'layer1.b_hn' holds 35184372088832 at index 0, outside {ACC40}"),
    ("conv2d", _array("layer2.b", 1, 5),
     "array 'layer2.b' holds 5 at index 1; network layer 5 (conv2d) has no bias (bias false), "
     "so every entry must be 0"),
]


@pytest.mark.parametrize("name,change,message", INT_CASES)
def test_int_fields_and_arrays(tmp_path, int_nets, name, change, message):
    bad = rewrite(_saved(tmp_path, int_nets[name]), tmp_path / "bad.npz", "int", change)
    refused(load_int_network, bad, message, "quantize")


def test_accumulators_wider_than_the_hardware_builds(tmp_path, int_nets):
    """A bias that fits 40 bits but whose sums with the weights do not."""
    path = _saved(tmp_path, int_nets["mlp"])

    def dense(m, a):
        a["layer0.b"][0] = (1 << 39) - 1
        a["layer0.W"][0] = 127
    refused(load_int_network, rewrite(path, tmp_path / "dense.npz", "int", dense),
            "layers[0] needs 41-bit accumulators for its weights and biases; slimgen builds at "
            "most 40", "quantize")

    path = _saved(tmp_path, int_nets["lstm"])

    def gate(m, a):
        a["layer0.b_f"][0] = (1 << 39) - 1
        a["layer0.W_f"][0] = 100
    refused(load_int_network, rewrite(path, tmp_path / "gate.npz", "int", gate),
            "layers[0] gate 'f' needs 41-bit accumulators for its weights and biases; slimgen "
            "builds at most 40", "quantize")

    def gru(m, a):
        """The candidate's (W_x x + b_n) · 2^F + r · (W_h h + b_hn): 32-bit W_h h + b_hn, one
        bit for r's sum, F = 8 and one more: 42 bits."""
        a["layer1.W_n"][:] = 0
        a["layer1.b_n"][:] = 0
        a["layer1.b_hn"][:] = 0
        a["layer1.b_hn"][0] = 1 << 30
    refused(load_int_network, rewrite(path, tmp_path / "gru.npz", "int", gru),
            "layers[1] gate 'n' needs 42-bit accumulators for its weights and biases; slimgen "
            "builds at most 40", "quantize")


def test_requantization_products_beyond_int64(tmp_path, int_nets):
    """acc · M + 2^(shift−1) must stay an int64 in the golden model."""
    path = _saved(tmp_path, int_nets["mlp"])
    reach = (1 << 39) * ((1 << 24) - 1) + (1 << 61)

    def dense(m, a):
        m["quant_config"]["multiplier_bits"] = 24
        m["layers"][0].update(multiplier=(1 << 24) - 1, shift=62)
        a["layer0.W"][:] = 0
        a["layer0.b"][:] = (1 << 39) - 1
    refused(load_int_network, rewrite(path, tmp_path / "dense.npz", "int", dense),
            f"layers[0] requantizes 40-bit accumulators with multiplier 16777215 and shift 62: "
            f"acc · M + 2^(shift−1) can reach {reach}, beyond the golden model's 64-bit "
            f"integers", "quantize")

    path = _saved(tmp_path, int_nets["lstm"])

    def gru(m, a):
        m["quant_config"]["multiplier_bits"] = 24
        m["layers"][1]["multiplier"]["r"] = (1 << 24) - 1
        m["layers"][1]["shift"]["r"] = 62
        a["layer1.W_r"][:] = 0
        a["layer1.b_r"][:] = (1 << 39) - 1
    refused(load_int_network, rewrite(path, tmp_path / "gru.npz", "int", gru),
            f"layers[1] gate 'r' requantizes 40-bit accumulators with multiplier 16777215 and "
            f"shift 62: acc · M + 2^(shift−1) can reach {reach}, beyond the golden model's "
            f"64-bit integers", "quantize")

    path = _saved(tmp_path, int_nets["conv2d"])

    def pool(m, a):
        m["quant_config"]["multiplier_bits"] = 24
        m["layers"][3].update(multiplier=(1 << 24) - 1, shift=62)
    # four signed 8-bit values sum to 10 bits: 2^9 · M + 2^61 fits
    load_int_network(rewrite(path, tmp_path / "pool.npz", "int", pool))


def test_relu_record_on_unsigned_inputs(tmp_path):
    """A relu record has work only on signed values; the quantizer drops one on unsigned."""
    net = check_network([{"type": "input", "shape": [4, 4, 1]}, {"type": "maxpool", "size": 2},
                         {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 2}])
    model = build_model(net.float_spec()[0], np.random.default_rng(0))
    q = quantize_network(net, model, np.random.default_rng(1).random((8, 16)), input_scale=1 / 16)
    assert [r.kind for r in q.layers] == ["pool", "flatten", "dense"]
    load_int_network(_saved(tmp_path, q))
    pool, flatten, dense = q.layers
    bad = IntNetwork(net, (pool, IntRelu(8, source=2), flatten, dense), q.input_scale, 8,
                     q.config)
    save_int_network(tmp_path / "bad.npz", bad, dataset="digits", split_seed=0)
    refused(load_int_network, tmp_path / "bad.npz", "layers[1] is a relu on unsigned inputs "
                                                    "(layers[0].bits); a relu record is only for "
                                                    "signed ones", "quantize")


@pytest.mark.parametrize("name", list(NETS))
def test_valid_int_model_loads_unchanged(tmp_path, int_nets, name):
    path = _saved(tmp_path, int_nets[name])
    q, _ = load_int_network(path)
    same = rewrite(path, tmp_path / "same.npz", "int", lambda m, a: None)
    again, _ = load_int_network(same)
    x = np.random.default_rng(0).integers(0, 1 << q.input_bits, (5, q.n_inputs))
    np.testing.assert_array_equal(again(x), q(x))
    np.testing.assert_array_equal(again(x), int_nets[name](x))


# ---- the quantizer refuses float models it cannot turn into integers --------------------------

HINT = "float weights must be finite numbers; retrain the model"


def _float(name, seed=0):
    net = check_network({"name": name, "layers": NETS[name]})
    return net, build_model(net.float_spec()[0], np.random.default_rng(seed))


def _calib(net, n=10):
    return np.random.default_rng(1).random((n, net.n_inputs))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # the float forward pass
def test_quantizer_non_finite_weights():
    net, model = _float("conv2d")
    model.layers[4].params["W"][1, 0, 0, 0] = np.inf          # the conv2d of network layer 5
    with pytest.raises(ValueError) as e:
        quantize_network(net, model, _calib(net), input_scale=1 / 16)
    assert str(e.value) == (f"Cannot quantize layer 5 (conv2d): its W holds inf at index "
                            f"(1, 0, 0, 0); {HINT}")
    net, model = _float("conv2d")
    model.layers[1].params["gamma"][2] = np.nan               # batchnorm folded into layer 1
    with pytest.raises(ValueError, match=r"^Cannot quantize layer 2 \(batchnorm\): its gamma holds "
                                         r"nan at index 2; "):
        quantize_network(net, model, _calib(net), input_scale=1 / 16)
    net, model = _float("lstm")
    model.layers[0].params["U_f"][2, 3] = np.inf
    with pytest.raises(ValueError) as e:
        quantize_network(net, model, _calib(net), input_scale=1 / 16)
    assert str(e.value) == (f"Cannot quantize layer 1 (lstm): its U_f holds inf at index "
                            f"(2, 3); {HINT}")
    net, model = _float("gru")
    model.layers[2].params["b_hn"][1] = -np.inf
    with pytest.raises(ValueError) as e:
        quantize_network(net, model, _calib(net), input_scale=1 / 16)
    assert str(e.value) == f"Cannot quantize layer 2 (gru): its b_hn holds -inf at index 1; {HINT}"


def test_quantizer_non_finite_calibration_and_scale():
    net, model = _float("conv1d")
    x = _calib(net)
    x[0, 7] = -np.inf
    with pytest.raises(ValueError, match=r"^Cannot quantize: the calibration inputs hold -inf at "
                                         r"index \(0, 7\); they must be finite numbers$"):
        quantize_network(net, model, x, input_scale=1 / 16)
    for scale in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match=rf"^input_scale must be a positive finite number, "
                                             rf"not {scale}$"):
            quantize_network(net, model, _calib(net), input_scale=scale)


@pytest.mark.parametrize("ratio", [0.0, -2.0, np.nan, np.inf])
def test_multiplier_shift_needs_a_positive_finite_ratio(ratio):
    with pytest.raises(ValueError, match=rf"^Requantization ratio must be a positive finite "
                                         rf"number, not {ratio}$"):
        multiplier_shift(ratio, 16)


def test_quantized_models_load(tmp_path):
    """What the quantizer makes, its loader takes: per-channel scales and a bank order too."""
    net, model = _float("conv2d")
    q = quantize_network(net, model, _calib(net), input_scale=1 / 16,
                         config=QuantConfig(per_channel=True, act_bits=6, weight_bits=5),
                         input_order=tuple(reversed(range(net.n_inputs))))
    back, _ = load_int_network(_saved(tmp_path, q))
    assert back.input_order == q.input_order
    q = replace(q, input_order=None)
    load_int_network(_saved(tmp_path, q))
