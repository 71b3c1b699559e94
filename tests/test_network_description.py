"""The network description (slimgen.sw.network): shape inference of every layer kind, the
presets and their float specs, JSON files, and one clear NetworkError per bad description."""

import copy
import json

import numpy as np
import pytest

from slimgen.sw.network import (LAYER_FIELDS, RECURRENT_FORMAT, Network, NetworkError,
                                check_network, load_network, padding_amounts, preset)
from slimgen.sw.nn import cnn_spec, lstm_spec, mlp_spec
from slimgen.sw.random_network import random_description

KINDS = ", ".join(LAYER_FIELDS)


def inp(*shape, bits=8):
    return {"type": "input", "shape": list(shape), "bits": bits}


def dense(units):
    return {"type": "dense", "units": units}


def conv2d(channels, kernel, **fields):
    return {"type": "conv2d", "channels": channels, "kernel": kernel, **fields}


def conv1d(channels, kernel, **fields):
    return {"type": "conv1d", "channels": channels, "kernel": kernel, **fields}


FLAT = [{"type": "flatten"}, dense(2)]
IMAGE = inp(8, 8, 1)
SEQUENCE = inp(10, 3)
VECTOR = inp(6)


# ------------------------------------------------------------------ shape inference

@pytest.mark.parametrize("first, layer, shape_in, shape_out", [
    # 2-D convolution: "same" is ceil(size / stride), "valid" (size − k) // stride + 1,
    # a number p: (size + 2p − k) // stride + 1
    (IMAGE, conv2d(4, 3), (8, 8, 1), (8, 8, 4)),
    (IMAGE, conv2d(4, 3, stride=2), (8, 8, 1), (4, 4, 4)),
    (inp(7, 9, 2), conv2d(3, 4, stride=2, padding="same"), (7, 9, 2), (4, 5, 3)),
    (IMAGE, conv2d(2, 3, padding="valid"), (8, 8, 1), (6, 6, 2)),
    (IMAGE, conv2d(2, 3, stride=2, padding="valid"), (8, 8, 1), (3, 3, 2)),
    (inp(7, 7, 1), conv2d(5, 5, stride=2, padding=2), (7, 7, 1), (4, 4, 5)),
    (inp(5, 6, 3), conv2d(1, 3, padding=0), (5, 6, 3), (3, 4, 1)),
    (inp(3, 3, 1), conv2d(1, 7, padding=3), (3, 3, 1), (3, 3, 1)),
    (IMAGE, conv2d(2, 1, bias=False), (8, 8, 1), (8, 8, 2)),
    # 1-D convolution
    (SEQUENCE, conv1d(4, 3), (10, 3), (10, 4)),
    (inp(9, 2), conv1d(2, 4, stride=2), (9, 2), (5, 2)),
    (SEQUENCE, conv1d(5, 3, padding="valid"), (10, 3), (8, 5)),
    (SEQUENCE, conv1d(1, 3, stride=2, padding=1), (10, 3), (5, 1)),
    # pools: (size_in − size) // stride + 1, stride defaulting to the size
    (inp(8, 8, 2), {"type": "maxpool", "size": 2}, (8, 8, 2), (4, 4, 2)),
    (inp(9, 9, 2), {"type": "avgpool", "size": 3, "stride": 2}, (9, 9, 2), (4, 4, 2)),
    (inp(5, 7, 1), {"type": "maxpool", "size": 3, "stride": 1}, (5, 7, 1), (3, 5, 1)),
    (SEQUENCE, {"type": "maxpool", "size": 3}, (10, 3), (3, 3)),
    (SEQUENCE, {"type": "avgpool", "size": 2, "stride": 1}, (10, 3), (9, 3)),
    (inp(7, 5, 4), {"type": "global_avgpool"}, (7, 5, 4), (4,)),
    (SEQUENCE, {"type": "global_avgpool"}, (10, 3), (3,)),
    # recurrent: the last state, or every step's
    (SEQUENCE, {"type": "lstm", "hidden": 6}, (10, 3), (6,)),
    (SEQUENCE, {"type": "lstm", "hidden": 6, "sequences": True}, (10, 3), (10, 6)),
    (SEQUENCE, {"type": "gru", "hidden": 4}, (10, 3), (4,)),
    (SEQUENCE, {"type": "gru", "hidden": 4, "sequences": True}, (10, 3), (10, 4)),
    # flatten, dense and the layers that keep the shape
    (inp(4, 4, 8), {"type": "flatten"}, (4, 4, 8), (128,)),
    (SEQUENCE, {"type": "flatten"}, (10, 3), (30,)),
    (VECTOR, dense(5), (6,), (5,)),
    (IMAGE, {"type": "relu"}, (8, 8, 1), (8, 8, 1)),
    (SEQUENCE, {"type": "dropout", "rate": 0.5}, (10, 3), (10, 3)),
])
def test_shape_inference(first, layer, shape_in, shape_out):
    tail = [] if len(shape_out) == 1 else FLAT[:1]
    net = check_network([first, layer, *tail, dense(2)])
    assert net.shapes[:2] == (shape_in, shape_out)
    assert net.shapes[-1] == (2,) and net.n_outputs == 2


@pytest.mark.parametrize("layer, shape", [
    (conv2d(3, 3), (8, 8, 3)), (dense(4), (4,))])
def test_batchnorm_keeps_the_shape(layer, shape):
    first = IMAGE if layer["type"] == "conv2d" else VECTOR
    net = check_network([first, layer, {"type": "batchnorm"},
                         *(FLAT[:1] if len(shape) > 1 else []), dense(2)])
    assert net.shapes[2] == shape
    assert net.layers[2] == {"type": "batchnorm", "momentum": 0.9, "eps": 1e-5}


@pytest.mark.parametrize("size, kernel, stride, padding, amounts", [
    (8, 3, 1, "same", (1, 1)), (8, 4, 1, "same", (1, 2)), (8, 3, 2, "same", (0, 1)),
    (9, 3, 2, "same", (1, 1)), (5, 1, 2, "same", (0, 0)), (3, 7, 1, "same", (3, 3)),
    (8, 3, 2, "valid", (0, 0)), (8, 5, 2, 2, (2, 2))])
def test_padding_amounts(size, kernel, stride, padding, amounts):
    """TensorFlow's "same": total = max((⌈size/stride⌉ − 1)·stride + k − size, 0), the odd
    zero after."""
    assert padding_amounts(size, kernel, stride, padding) == amounts


def test_defaults_are_filled_in():
    net = check_network([SEQUENCE, conv1d(2, 3), {"type": "maxpool", "size": 2},
                         {"type": "gru", "hidden": 3}, dense(2)])
    assert net.layers[0] == inp(10, 3)
    assert net.layers[1] == {"type": "conv1d", "channels": 2, "kernel": 3, "stride": 1,
                             "padding": "same", "bias": True}
    assert net.layers[2] == {"type": "maxpool", "size": 2, "stride": 2}
    assert net.layers[3] == {"type": "gru", "hidden": 3, "sequences": False,
                             **{k: v[0] for k, v in RECURRENT_FORMAT.items()}}
    assert net.name == "network" and net.input_bits == 8 and net.n_inputs == 30
    assert net.weight_layers() == [1, 3, 4]


def test_the_description_given_is_not_changed():
    description = {"name": "x", "layers": [SEQUENCE, {"type": "avgpool", "size": 2}, *FLAT]}
    before = copy.deepcopy(description)
    check_network(description)
    assert description == before


def test_a_network_is_taken_as_it_is():
    net = preset("mlp")
    assert check_network(net) is net


# ------------------------------------------------------------------ presets

@pytest.mark.parametrize("name, shapes, spec", [
    ("mlp", ((64,), (32,), (32,), (10,)), mlp_spec()),
    ("cnn", ((8, 8, 1), (8, 8, 4), (8, 8, 4), (8, 8, 8), (8, 8, 8), (4, 4, 8), (128,), (10,)),
     cnn_spec(in_shape=(1, 8, 8), channels=(4, 8))),
    ("lstm", ((8, 8), (32,), (10,)), lstm_spec(8, 32, 10)),
])
def test_presets(name, shapes, spec):
    net = preset(name)
    assert isinstance(net, Network) and net.name == name
    assert net.shapes == shapes
    assert net.float_spec()[0] == spec


def test_preset_options_and_unknown_preset():
    assert preset("mlp", sizes=(16, 8, 4)).shapes == ((16,), (8,), (8,), (4,))
    assert preset("lstm", hidden=5).shapes == ((8, 8), (5,), (10,))
    assert preset("lstm").input_bits == 5
    with pytest.raises(NetworkError, match="^preset 'resnet' is not known; use one of mlp, "
                                           "cnn, lstm$"):
        preset("resnet")


# ------------------------------------------------------------------ JSON files

def _round_trip(net, path):
    path.write_text(net.to_json(), encoding="utf-8")
    return load_network(path)


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_json_round_trip_of_presets(name, tmp_path):
    net = preset(name)
    assert _round_trip(net, tmp_path / "net.json") == net


def test_json_round_trip_of_random_descriptions(tmp_path):
    for seed in range(40):
        net = random_description(np.random.default_rng(seed))
        again = _round_trip(net, tmp_path / f"random{seed}.json")
        assert again == net and again.summary() == net.summary()


def test_json_file_without_a_name_is_named_after_the_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text('{"layers": [{"type": "input", "shape": [4]}, {"type": "dense", '
                    '"units": 2}]}', encoding="utf-8")
    net = load_network(path)
    assert net.name == "tiny" and net.shapes == ((4,), (2,))


def _bad_file(tmp_path, content):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("content, message", [
    (b'{\n "layers": [\n  {"type": "input",, "shape": [4]}\n ]\n}\n',
     "is not valid JSON (line 3, column 20: Expecting property name enclosed in double "
     "quotes)"),
    (b'{"layers": [}', "is not valid JSON (line 1, column 13: Expecting value)"),
    (b"", "is not valid JSON (line 1, column 1: Expecting value)"),
    (b'\xff\xfe{"layers": []}', "is not a UTF-8 text file; a network description is JSON"),
    (None, "cannot read the network description: No such file or directory"),
    (b'[{"type": "input", "shape": [4]}, {"type": "dense", "units": 2}]',
     'must hold a JSON object with "layers"'),
    (b'"layers"', 'must hold a JSON object with "layers"'),
    (b'{"layers": [{"type": "input", "shape": [8, 8, 1]}, {"type": "conv2d", '
     b'"channels": 2, "kernel": 9}]}',
     "layer 1 (conv2d): kernel 9 is not supported; use 1 to 7"),
    (b'{"layers": []}', "network: layers must be a non-empty list, the first an input layer"),
])
def test_bad_json_file(tmp_path, content, message):
    path = _bad_file(tmp_path, content)
    with pytest.raises(NetworkError) as e:
        load_network(path)
    assert str(e.value) == f"{path}: {message}"
    assert e.value.__suppress_context__ or e.value.__context__ is None


def test_a_directory_is_not_a_description(tmp_path):
    with pytest.raises(NetworkError, match="cannot read the network description"):
        load_network(tmp_path)


def test_deeply_nested_json_file(tmp_path):
    path = _bad_file(tmp_path, b"[" * 100_000)
    with pytest.raises(NetworkError, match="is nested too deeply to be a network description"):
        load_network(path)


# ------------------------------------------------------------------ bad descriptions

BAD = {
    # the kind and its fields
    "unknown type": ([IMAGE, {"type": "conv3d", "channels": 2}, *FLAT],
                     f"layer 1: type 'conv3d' is not a layer kind; use one of {KINDS}"),
    "type not a string": ([IMAGE, {"type": 5}, *FLAT],
                          f"layer 1: type 5 is not a layer kind; use one of {KINDS}"),
    "unknown field": ([VECTOR, {"type": "dense", "units": 3, "unit": 3}],
                      "layer 1 (dense): field 'unit' is not known; dense takes units"),
    "field of a kind without fields": ([VECTOR, dense(3), {"type": "relu", "rate": 1}, dense(2)],
                                       "layer 2 (relu): field 'rate' is not known; relu takes "
                                       "none"),
    "field of flatten": ([IMAGE, {"type": "flatten", "order": "channels_first"}, dense(2)],
                         "layer 1 (flatten): field 'order' is not known; flatten takes none"),
    "missing units": ([VECTOR, {"type": "dense"}],
                      "layer 1 (dense): the field 'units' is missing"),
    "missing channels": ([IMAGE, {"type": "conv2d", "kernel": 3}, *FLAT],
                         "layer 1 (conv2d): the field 'channels' is missing"),
    "missing kernel": ([IMAGE, {"type": "conv2d", "channels": 3}, *FLAT],
                       "layer 1 (conv2d): the field 'kernel' is missing"),
    "missing hidden": ([SEQUENCE, {"type": "lstm"}, dense(2)],
                       "layer 1 (lstm): the field 'hidden' is missing"),
    "missing size": ([IMAGE, {"type": "maxpool", "stride": 2}, *FLAT],
                     "layer 1 (maxpool): the field 'size' is missing"),
    "missing rate": ([VECTOR, {"type": "dropout"}, dense(2)],
                     "layer 1 (dropout): the field 'rate' is missing"),
    "missing shape": ([{"type": "input", "bits": 8}, dense(2)],
                      "layer 0 (input): the field 'shape' is missing"),
    "missing type": ([VECTOR, {"units": 3}],
                     f"layer 1: the field 'type' is missing; use one of {KINDS}"),
    # wrong types
    "string for an int": ([VECTOR, dense("10")],
                          "layer 1 (dense): units must be an integer, not '10'"),
    "bool for an int": ([IMAGE, conv2d(True, 3), *FLAT],
                        "layer 1 (conv2d): channels must be an integer, not True"),
    "float kernel": ([IMAGE, conv2d(2, 3.0), *FLAT],
                     "layer 1 (conv2d): kernel must be an integer, not 3.0"),
    "null for an int": ([VECTOR, dense(None)],
                        "layer 1 (dense): units must be an integer, not None"),
    "float input size": ([inp(8.0), dense(2)],
                         "layer 0 (input): shape must be an integer, not 8.0"),
    "string shape": ([{"type": "input", "shape": "88"}, dense(2)],
                     "layer 0 (input): shape must be a list of 1 to 3 sizes: (n,), (length, "
                     "channels) or (height, width, channels), not '88'"),
    "padding name": ([IMAGE, conv2d(2, 3, padding="full"), *FLAT],
                     'layer 1 (conv2d): padding must be "same", "valid" or a number of '
                     "zeros, not 'full'"),
    "padding list": ([IMAGE, conv2d(2, 3, padding=[1, 1]), *FLAT],
                     'layer 1 (conv2d): padding must be "same", "valid" or a number of '
                     "zeros, not [1, 1]"),
    "bias not a bool": ([IMAGE, conv2d(2, 3, bias=1), *FLAT],
                        "layer 1 (conv2d): bias must be true or false, not 1"),
    "sequences not a bool": ([SEQUENCE, {"type": "gru", "hidden": 2, "sequences": "no"},
                              dense(2)],
                             "layer 1 (gru): sequences must be true or false, not 'no'"),
    "stride a bool": ([IMAGE, {"type": "maxpool", "size": 2, "stride": True}, *FLAT],
                      "layer 1 (maxpool): stride must be an integer, not True"),
    # out of range
    "kernel 9": ([IMAGE, conv2d(2, 9), *FLAT],
                 "layer 1 (conv2d): kernel 9 is not supported; use 1 to 7"),
    "kernel 0": ([SEQUENCE, conv1d(2, 0), *FLAT],
                 "layer 1 (conv1d): kernel 0 is not supported; use 1 to 7"),
    "stride 3": ([IMAGE, conv2d(2, 3, stride=3), *FLAT],
                 "layer 1 (conv2d): stride 3 is not supported; use 1 or 2"),
    "padding as wide as the kernel": ([IMAGE, conv2d(2, 3, padding=3), *FLAT],
                                      "layer 1 (conv2d): padding 3 is not supported; use 0 to "
                                      "kernel − 1 = 2"),
    "no units": ([VECTOR, dense(0)], "layer 1 (dense): units 0 is not supported; use 1 to "
                                     "65536"),
    "no channels": ([IMAGE, conv2d(0, 3), *FLAT],
                    "layer 1 (conv2d): channels 0 is not supported; use 1 to 65536"),
    "input bits 17": ([inp(4, bits=17), dense(2)],
                      "layer 0 (input): bits 17 is not supported; use 1 to 16"),
    "input size 0": ([inp(0, 3), dense(2)],
                     "layer 0 (input): shape 0 is not supported; use positive sizes"),
    "four input axes": ([inp(2, 2, 2, 2), dense(2)],
                        "layer 0 (input): shape must be a list of 1 to 3 sizes: (n,), (length, "
                        "channels) or (height, width, channels), not [2, 2, 2, 2]"),
    "pool size 0": ([IMAGE, {"type": "avgpool", "size": 0}, *FLAT],
                    "layer 1 (avgpool): size 0 is not supported; use 1 to 64"),
    "pool stride 0": ([IMAGE, {"type": "maxpool", "size": 2, "stride": 0}, *FLAT],
                      "layer 1 (maxpool): stride 0 is not supported; use 1 to 64"),
    "dropout rate 1": ([VECTOR, {"type": "dropout", "rate": 1}, dense(2)],
                       "layer 1 (dropout): rate must be a number from 0 to below 1, not 1"),
    "batchnorm momentum": ([VECTOR, dense(3), {"type": "batchnorm", "momentum": 1.5}],
                           "layer 2 (batchnorm): momentum must be a number from 0 to below 1, "
                           "not 1.5"),
    "batchnorm eps": ([VECTOR, dense(3), {"type": "batchnorm", "eps": 0}],
                      "layer 2 (batchnorm): eps must be a number above 0 and at most 1, not 0"),
    "no hidden units": ([SEQUENCE, {"type": "lstm", "hidden": 0}, dense(2)],
                        "layer 1 (lstm): hidden 0 is not supported; use 1 to 65536"),
    "table bits": ([SEQUENCE, {"type": "lstm", "hidden": 2, "table_bits": 13}, dense(2)],
                   "layer 1 (lstm): table_bits 13 is not supported; use 3 to 12"),
    "h_frac 0": ([SEQUENCE, {"type": "gru", "hidden": 2, "h_frac": 0}, dense(2)],
                 "layer 1 (gru): h_frac 0 is not supported; use 1 to 15"),
    "tanh_frac above gate_frac": ([SEQUENCE, {"type": "lstm", "hidden": 2, "gate_frac": 4,
                                              "c_bits": 8}, dense(2)],
                                  "layer 1 (lstm): tanh_frac 5 must be at most gate_frac 4"),
    "h_frac above gate_frac": ([SEQUENCE, {"type": "lstm", "hidden": 2, "h_frac": 9}, dense(2)],
                               "layer 1 (lstm): h_frac 9 must be at most gate_frac 8"),
    "c_bits below gate_frac + 2": ([SEQUENCE, {"type": "lstm", "hidden": 2, "c_bits": 9},
                                    dense(2)],
                                   "layer 1 (lstm): c_bits 9 must be at least gate_frac + 2 = "
                                   "10"),
    # shapes that cannot be
    "kernel larger than the input": ([inp(4, 4, 1), conv2d(2, 5, padding="valid"), *FLAT],
                                     "layer 1 (conv2d): kernel 5 is larger than its padded "
                                     "input (4, 4, 1) (padding 'valid'); use a kernel of at "
                                     "most 4 or more padding"),
    "kernel larger than the padded input": ([inp(3, 2), conv1d(1, 7, padding=1), *FLAT],
                                            "layer 1 (conv1d): kernel 7 is larger than its "
                                            "padded input (3, 2) (padding 1); use a kernel of "
                                            "at most 5 or more padding"),
    "pool larger than the input": ([IMAGE, conv2d(2, 3, stride=2, padding="valid"),
                                    {"type": "maxpool", "size": 4}, *FLAT],
                                   "layer 2 (maxpool): size 4 is larger than its input (3, 3, "
                                   "2); use at most 3"),
    "dense on an image": ([IMAGE, dense(10)],
                          "layer 1 (dense): takes a vector, but its input is (8, 8, 1); put a "
                          "flatten (or global_avgpool) before it"),
    "dense on a sequence": ([SEQUENCE, dense(10)],
                            "layer 1 (dense): takes a vector, but its input is (10, 3); put a "
                            "flatten (or global_avgpool) before it"),
    "conv2d on a sequence": ([SEQUENCE, conv2d(2, 3), *FLAT],
                             "layer 1 (conv2d): takes an image (height, width, channels), but "
                             "its input is (10, 3)"),
    "conv1d on an image": ([IMAGE, conv1d(2, 3), *FLAT],
                           "layer 1 (conv1d): takes a sequence (length, channels), but its "
                           "input is (8, 8, 1)"),
    "lstm on an image": ([IMAGE, {"type": "lstm", "hidden": 4}, dense(2)],
                         "layer 1 (lstm): takes a sequence (length, channels), but its input "
                         "is (8, 8, 1)"),
    "gru on a vector": ([VECTOR, {"type": "gru", "hidden": 4}, dense(2)],
                        "layer 1 (gru): takes a sequence (length, channels), but its input is "
                        "(6,)"),
    "pool on a vector": ([VECTOR, {"type": "maxpool", "size": 2}, dense(2)],
                         "layer 1 (maxpool): takes a sequence or an image, but its input is "
                         "(6,)"),
    "global pool on a vector": ([VECTOR, {"type": "global_avgpool"}, dense(2)],
                                "layer 1 (global_avgpool): takes a sequence or an image, but "
                                "its input is (6,)"),
    # order of the layers
    "batchnorm after relu": ([IMAGE, conv2d(2, 3), {"type": "relu"}, {"type": "batchnorm"},
                              *FLAT],
                             "layer 3 (batchnorm): must come right after a conv1d, conv2d or "
                             "dense layer (quantization folds it into that layer), not after "
                             "relu"),
    "batchnorm after the input": ([VECTOR, {"type": "batchnorm"}, dense(2)],
                                  "layer 1 (batchnorm): must come right after a conv1d, conv2d "
                                  "or dense layer (quantization folds it into that layer), not "
                                  "after input"),
    "batchnorm after lstm": ([SEQUENCE, {"type": "lstm", "hidden": 2}, {"type": "batchnorm"},
                              dense(2)],
                             "layer 2 (batchnorm): must come right after a conv1d, conv2d or "
                             "dense layer (quantization folds it into that layer), not after "
                             "lstm"),
    "ends in an image": ([IMAGE, conv2d(4, 3)],
                         "layer 1 (conv2d): the network must end in a vector of class scores, "
                         "but its output is (8, 8, 4); end with flatten and dense"),
    "ends in a sequence": ([SEQUENCE, {"type": "gru", "hidden": 2, "sequences": True}],
                           "layer 1 (gru): the network must end in a vector of class scores, "
                           "but its output is (10, 2); end with flatten and dense"),
    "no weight layer": ([IMAGE, {"type": "maxpool", "size": 2}, {"type": "flatten"}],
                        "network: has no layer with weights (conv1d, conv2d, dense, lstm, "
                        "gru)"),
    "input not first": ([dense(3), VECTOR],
                        'layer 0 (dense): the first layer must be the input, e.g. {"type": '
                        '"input", "shape": [8, 8, 1]}'),
    "two inputs": ([VECTOR, dense(3), VECTOR],
                   "layer 2 (input): only the first layer is the input"),
    "only an input": ([VECTOR], "network: has no layer with weights (conv1d, conv2d, dense, "
                                "lstm, gru)"),
    "empty layers": ([], "network: layers must be a non-empty list, the first an input "
                         "layer"),
    "layer not an object": ([VECTOR, "dense"],
                            "layer 1: must be an object with a \"type\", not 'dense'"),
    "layer a list": ([VECTOR, ["dense", 3]],
                     "layer 1: must be an object with a \"type\", not ['dense', 3]"),
}


@pytest.mark.parametrize("layers, message", list(BAD.values()), ids=list(BAD))
def test_bad_description(layers, message):
    """One NetworkError (no chained exception behind it), its message word for word."""
    with pytest.raises(NetworkError) as e:
        check_network({"name": "bad", "layers": layers})
    assert str(e.value) == message
    assert e.value.__context__ is None and e.value.__cause__ is None


@pytest.mark.parametrize("description, message", [
    ({"layers": [VECTOR, dense(2)], "size": 3},
     "network: field 'size' is not known; a description has \"name\" and \"layers\""),
    ({"name": "x"}, 'network: the field "layers" is missing'),
    ({"name": "", "layers": [VECTOR, dense(2)]},
     "network: name must be a non-empty string, not ''"),
    ({"name": 5, "layers": [VECTOR, dense(2)]}, "network: name must be a non-empty string, "
                                                "not 5"),
    ({"layers": {"0": VECTOR}}, "network: layers must be a non-empty list, the first an input "
                                "layer"),
    ({"layers": [VECTOR] + [{"type": "relu"}] * 300},
     "network: 301 layers; at most 256 are supported"),
])
def test_bad_network_fields(description, message):
    with pytest.raises(NetworkError) as e:
        check_network(description)
    assert str(e.value) == message


@pytest.mark.parametrize("kind", [["dense"], {"name": "dense"}])
def test_type_a_list_or_object(kind):
    with pytest.raises(NetworkError, match="^layer 1: type .* is not a layer kind"):
        check_network([VECTOR, {"type": kind, "units": 2}])


def test_every_kind_has_a_bad_description():
    """The table above refuses something in every layer kind."""
    named = {m.split("(")[1].split(")")[0] for _, m in BAD.values()
             if m.startswith("layer") and "(" in m.split(":")[0]}
    assert set(LAYER_FIELDS) - named == set()


def test_numpy_scalars_from_python_become_plain_values():
    net = check_network([{"type": "input", "shape": [np.int64(8)]},
                         {"type": "dense", "units": np.int64(3)},
                         {"type": "dropout", "rate": np.float32(0.5)}])
    assert type(net.layers[1]["units"]) is int and type(net.layers[0]["shape"][0]) is int
    assert json.loads(net.to_json())["layers"][1]["units"] == 3
