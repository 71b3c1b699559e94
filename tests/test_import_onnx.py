"""ONNX import (``slimgen.import_onnx``, ``slimgen import``): graphs built with ``onnx.helper``
for every supported operator, at opsets from 7 to the newest, against onnxruntime; the committed
PyTorch models and the ONNX Model Zoo's MNIST; every unsupported case refused with one message
naming the node; the run folder the command writes, and the flow that goes on from it."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from slimgen.import_onnx import OnnxImportError, check_agreement, import_onnx  # noqa: E402

DATA = Path(__file__).parent / "data" / "onnx"
NEWEST = onnx.defs.onnx_opset_version()


def _w(*shape, seed=0, scale=0.5):
    return np.random.default_rng(seed + sum(shape)).normal(0, scale, shape).astype(np.float32)


def _model(nodes, consts, in_shape, opset=13, out_shape=None):
    """A graph from input ``x`` of ``in_shape`` to the last node's first output."""
    inits = [numpy_helper.from_array(np.asarray(v) if np.asarray(v).dtype.kind == "i" else
                                     np.asarray(v, np.float32), k) for k, v in consts.items()]
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model) if out_shape is None else model


def _node(op, inputs, output, name=None, **attrs):
    return helper.make_node(op, inputs, [output] if isinstance(output, str) else output,
                            name=name or output if isinstance(output, str) else name, **attrs)


def _squeeze(opset, inp, out, axes, consts):
    if opset < 13:
        return _node("Squeeze", [inp], out, axes=axes)
    consts[f"{out}_axes"] = np.array(axes, np.int64)
    return _node("Squeeze", [inp, f"{out}_axes"], out)


def _agree(model, n=16, x=None):
    """Import ``model`` and check it against onnxruntime on ``n`` random samples."""
    network, float_model, info = import_onnx(model)
    if x is None:
        x = np.random.default_rng(1).uniform(0, 1, (n, network.n_inputs))
    figures = check_agreement(model, network, float_model, x, info=info)
    assert figures["max_relative_difference"] <= 1e-5, figures
    assert figures["argmax_agreement"] == 1.0, figures
    return network, info, figures


def _kinds(network):
    return [layer["type"] for layer in network.layers[1:]]


def _head(consts, inp, n_in, n_out=10, name="fc"):
    consts[f"{name}_W"], consts[f"{name}_b"] = _w(n_out, n_in), _w(n_out)
    return _node("Gemm", [inp, f"{name}_W", f"{name}_b"], name, transB=1)


# ------------------------------------------------------------------ operators

@pytest.mark.parametrize("opset", [7, 9, 11, 13, 17, 21, NEWEST])
def test_gemm_with_transb_alpha_beta_and_bias_shapes(opset):
    consts = {"B1": _w(12, 20), "C1": _w(20), "B2": _w(10, 20), "C2": _w(1, 10)}
    nodes = [_node("Gemm", ["x", "B1", "C1"], "g1", alpha=0.5, beta=2.0),
             _node("Relu", ["g1"], "r"),
             _node("Gemm", ["r", "B2", "C2"], "g2", transB=1)]
    network, _, _ = _agree(_model(nodes, consts, ["N", 12], opset))
    assert _kinds(network) == ["dense", "relu", "dense"]
    assert network.input_shape == (12,)


@pytest.mark.parametrize("opset", [7, 13, NEWEST])
def test_matmul_and_an_add_of_its_bias_either_way_round(opset):
    consts = {"W1": _w(12, 16), "b1": _w(16), "W2": _w(16, 10), "b2": _w(1, 10)}
    nodes = [_node("MatMul", ["x", "W1"], "m1"), _node("Add", ["b1", "m1"], "a1"),
             _node("Relu", ["a1"], "r"), _node("MatMul", ["r", "W2"], "m2"),
             _node("Add", ["m2", "b2"], "a2")]
    network, _, _ = _agree(_model(nodes, consts, ["N", 12], opset))
    assert _kinds(network) == ["dense", "relu", "dense"]


@pytest.mark.parametrize("kernel, stride, pads, padding", [
    (3, 1, {"pads": [1, 1, 1, 1]}, "same"),
    (5, 1, {"pads": [1, 1, 1, 1]}, 1),
    (3, 1, {"pads": [0, 0, 0, 0]}, "valid"),
    (3, 2, {"auto_pad": "SAME_UPPER"}, "same"),
    (4, 2, {"auto_pad": "SAME_LOWER"}, "same"),
    (2, 1, {"pads": [0, 0, 1, 1]}, "same"),
    (1, 1, {}, "valid"),
    (7, 2, {"pads": [3, 3, 3, 3]}, 3),
    (3, 1, {"auto_pad": "VALID"}, "valid"),
])
def test_conv2d_paddings_strides_and_kernels(kernel, stride, pads, padding):
    consts = {"W": _w(4, 2, kernel, kernel), "B": _w(4)}
    nodes = [_node("Conv", ["x", "W", "B"], "conv", kernel_shape=[kernel, kernel],
                   strides=[stride, stride], **pads), _node("Relu", ["conv"], "r"),
             _node("Flatten", ["r"], "flat")]
    out = (8 + sum(pads.get("pads", [0] * 4)[::2]) - kernel) // stride + 1 \
        if "auto_pad" not in pads or pads["auto_pad"] == "VALID" else -(-8 // stride)
    if pads.get("auto_pad") == "VALID":
        out = (8 - kernel) // stride + 1
    nodes.append(_head(consts, "flat", 4 * out * out))
    network, _, _ = _agree(_model(nodes, consts, ["N", 2, 8, 8], 11))
    conv = network.layers[1]
    assert (conv["kernel"], conv["stride"], conv["padding"]) == (kernel, stride, padding)
    assert network.input_shape == (8, 8, 2) and network.shapes[1] == (out, out, 4)


@pytest.mark.parametrize("opset", [7, 13, NEWEST])
def test_conv_without_bias_and_with_an_add_of_a_bias_per_channel(opset):
    consts = {"W1": _w(3, 1, 3, 3), "W2": _w(5, 3, 3, 3), "b2": _w(5, 1, 1)}
    nodes = [_node("Conv", ["x", "W1"], "c1", pads=[1, 1, 1, 1]), _node("Relu", ["c1"], "r1"),
             _node("Conv", ["r1", "W2"], "c2"), _node("Add", ["c2", "b2"], "a2"),
             _node("Relu", ["a2"], "r2"), _node("Flatten", ["r2"], "flat")]
    nodes.append(_head(consts, "flat", 5 * 4 * 4))
    network, _, _ = _agree(_model(nodes, consts, ["N", 1, 6, 6], opset))
    assert [network.layers[i]["bias"] for i in (1, 3)] == [False, True]


@pytest.mark.parametrize("opset", [7, 11, NEWEST])
def test_conv1d_max_and_average_pooling(opset):
    consts = {"W1": _w(6, 3, 3), "B1": _w(6), "W2": _w(4, 6, 3)}
    nodes = [_node("Conv", ["x", "W1", "B1"], "c1", pads=[1, 1]), _node("Relu", ["c1"], "r1"),
             _node("MaxPool", ["r1"], "p1", kernel_shape=[2], strides=[2]),
             _node("Conv", ["p1", "W2"], "c2", strides=[2]),
             _node("AveragePool", ["c2"], "p2", kernel_shape=[2], strides=[1]),
             _node("Flatten", ["p2"], "flat")]
    nodes.append(_head(consts, "flat", 4 * 1))
    network, _, _ = _agree(_model(nodes, consts, ["N", 3, 12], opset))
    assert network.input_shape == (12, 3)
    assert _kinds(network) == ["conv1d", "relu", "maxpool", "conv1d", "avgpool", "flatten",
                               "dense"]
    assert network.shapes[-3] == (1, 4)


def test_pooling_2d_with_stride_other_than_window():
    consts = {"W": _w(3, 2, 3, 3)}
    nodes = [_node("Conv", ["x", "W"], "c", pads=[1, 1, 1, 1]),
             _node("MaxPool", ["c"], "mp", kernel_shape=[3, 3], strides=[2, 2]),
             _node("AveragePool", ["mp"], "ap", kernel_shape=[2, 2]),
             _node("Flatten", ["ap"], "flat")]
    nodes.append(_head(consts, "flat", 3 * 3 * 3))
    network, _, _ = _agree(_model(nodes, consts, ["N", 2, 9, 9], 13))
    assert [(l.get("size"), l.get("stride")) for l in network.layers[2:4]] == [(3, 2), (2, 1)]


@pytest.mark.parametrize("opset", [7, 9, 15, NEWEST])
def test_batchnorm_after_conv_and_after_gemm(opset):
    rng = np.random.default_rng(3)
    bn = lambda c: [_w(c), _w(c), _w(c), rng.uniform(0.5, 2, c).astype(np.float32)]  # noqa
    consts = {"W": _w(4, 1, 3, 3), "B": _w(4)}
    consts.update(zip(("s1", "b1", "m1", "v1"), bn(4)))
    consts.update(zip(("s2", "b2", "m2", "v2"), bn(10)))
    attrs = {"spatial": 1} if opset < 9 else {}
    nodes = [_node("Conv", ["x", "W", "B"], "conv", pads=[1, 1, 1, 1]),
             _node("BatchNormalization", ["conv", "s1", "b1", "m1", "v1"], "bn1",
                   epsilon=1e-3, **attrs),
             _node("Relu", ["bn1"], "r"), _node("Flatten", ["r"], "flat"),
             _head(consts, "flat", 4 * 5 * 5),
             _node("BatchNormalization", ["fc", "s2", "b2", "m2", "v2"], "bn2", **attrs)]
    network, _, _ = _agree(_model(nodes, consts, ["N", 1, 5, 5], opset))
    assert _kinds(network) == ["conv2d", "batchnorm", "relu", "flatten", "dense", "batchnorm"]
    assert network.layers[2]["eps"] == 1e-3 and network.layers[6]["eps"] == 1e-5


@pytest.mark.parametrize("opset, tail", [(11, "flatten"), (13, "reshape"), (11, "squeeze"),
                                         (13, "squeeze"), (NEWEST, "squeeze")])
def test_global_average_pooling_then_flatten_reshape_or_squeeze(opset, tail):
    consts = {"W": _w(6, 3, 3, 3), "shape": np.array([0, -1], np.int64)}
    nodes = [_node("Conv", ["x", "W"], "conv"), _node("Relu", ["conv"], "r"),
             _node("GlobalAveragePool", ["r"], "gap")]
    if tail == "flatten":
        nodes.append(_node("Flatten", ["gap"], "v"))
    elif tail == "reshape":
        nodes.append(_node("Reshape", ["gap", "shape"], "v"))
    else:
        nodes.append(_squeeze(opset, "gap", "v", [2, 3], consts))
    nodes.append(_head(consts, "v", 6))
    network, _, _ = _agree(_model(nodes, consts, ["N", 3, 7, 7], opset))
    assert _kinds(network) == ["conv2d", "relu", "global_avgpool", "dense"]


def test_an_nhwc_model_with_transposes_as_keras_exports_them():
    """Input (N, H, W, C), transposed to NCHW for the convolution and back before the
    flatten: the dense layer's rows are permuted into the float model's (C, H, W) order."""
    consts = {"W": _w(3, 2, 3, 3), "B": _w(3), "shape": np.array([-1, 6 * 6 * 3], np.int64),
              "M": _w(6 * 6 * 3, 10), "b": _w(10)}
    nodes = [_node("Transpose", ["x"], "nchw", perm=[0, 3, 1, 2]),
             _node("Conv", ["nchw", "W", "B"], "conv", pads=[1, 1, 1, 1]),
             _node("Relu", ["conv"], "r"), _node("Transpose", ["r"], "nhwc", perm=[0, 2, 3, 1]),
             _node("Reshape", ["nhwc", "shape"], "flat"), _node("MatMul", ["flat", "M"], "mm"),
             _node("Add", ["mm", "b"], "logits")]
    network, info, _ = _agree(_model(nodes, consts, ["N", 6, 6, 2], 13))
    assert network.input_shape == (6, 6, 2) and _kinds(network)[-2:] == ["flatten", "dense"]
    assert info["input"]["layout"]["path"] == [["transpose", [0, 3, 1, 2]]]


def test_a_reshape_of_the_input_from_a_vector_to_an_image():
    consts = {"shape": np.array([-1, 2, 8, 8], np.int64), "W": _w(4, 2, 3, 3)}
    nodes = [_node("Reshape", ["x", "shape"], "img"), _node("Conv", ["img", "W"], "conv"),
             _node("Relu", ["conv"], "r"), _node("Flatten", ["r"], "flat")]
    nodes.append(_head(consts, "flat", 4 * 6 * 6))
    network, _, _ = _agree(_model(nodes, consts, ["N", 128], 13))
    assert network.input_shape == (8, 8, 2)


def test_a_flatten_by_the_batch_size_as_x_view_x_size_0_exports_it():
    """Shape → Gather(0) → Unsqueeze → Concat(·, [-1]) → Reshape: the Shape reads the tensor
    too, yet it is folded (the batch stands in), so the graph stays sequential."""
    consts = {"W": _w(3, 1, 3, 3), "zero": np.array(0, np.int64),
              "minus1": np.array([-1], np.int64), "axes": np.array([0], np.int64)}
    nodes = [_node("Conv", ["x", "W"], "conv"), _node("Relu", ["conv"], "r"),
             _node("Shape", ["r"], "shape"), _node("Gather", ["shape", "zero"], "n", axis=0),
             _node("Unsqueeze", ["n", "axes"], "n1"),
             _node("Concat", ["n1", "minus1"], "target", axis=0),
             _node("Reshape", ["r", "target"], "flat")]
    nodes.append(_head(consts, "flat", 3 * 4 * 4))
    network, _, _ = _agree(_model(nodes, consts, ["N", 1, 6, 6], 13))
    assert _kinds(network) == ["conv2d", "relu", "flatten", "dense"]


@pytest.mark.parametrize("opset, final", [(7, "Softmax"), (11, "LogSoftmax"), (12, "Softmax"),
                                          (13, "LogSoftmax"), (NEWEST, "Softmax")])
def test_dropout_and_identity_dropped_and_a_final_softmax(opset, final):
    consts = {}
    if opset >= 12:
        consts["ratio"] = np.array(0.3, np.float32)
        dropout = _node("Dropout", ["h", "ratio"], "d")
    else:
        dropout = _node("Dropout", ["h"], "d", ratio=0.3)
    nodes = [_head(consts, "x", 12, 16, "h"), dropout, _node("Identity", ["d"], "i"),
             _node("Relu", ["i"], "r"), _head(consts, "r", 16), _node(final, ["fc"], "p")]
    network, info, _ = _agree(_model(nodes, consts, ["N", 12], opset))
    assert _kinds(network) == ["dense", "relu", "dense"]
    assert info["final"] == final
    assert info["dropped"] == ["node 'd' (Dropout)", "node 'i' (Identity)",
                               f"node 'p' ({final})"]


def _lstm_consts(kind, F, H, seed=0):
    gates = 4 if kind == "LSTM" else 3
    return {"W": _w(1, gates * H, F, seed=seed), "R": _w(1, gates * H, H, seed=seed + 1),
            "B": _w(1, 2 * gates * H, seed=seed + 2)}


@pytest.mark.parametrize("opset", [7, 14, NEWEST])
@pytest.mark.parametrize("output", ["Y_h", "Y"])
def test_lstm_batch_first_as_pytorch_exports_it(opset, output):
    T, F, H = 6, 5, 7
    consts = _lstm_consts("LSTM", F, H)
    consts["h0"] = np.zeros((1, 1, H), np.float32)
    outputs = ["y", ""] if output == "Y" else ["", "y"]
    nodes = [_node("Transpose", ["x"], "tnf", perm=[1, 0, 2]),
             helper.make_node("LSTM", ["tnf", "W", "R", "B", "", "h0"], outputs, name="lstm",
                              hidden_size=H)]
    if output == "Y":       # (T, 1, N, H) → (N, T, H), flattened
        nodes += [_squeeze(opset, "y", "ys", [1], consts),
                  _node("Transpose", ["ys"], "nth", perm=[1, 0, 2]),
                  _node("Flatten", ["nth"], "v")]
    else:                   # (1, N, H) → (N, H)
        nodes.append(_squeeze(opset, "y", "v", [0], consts))
    nodes.append(_head(consts, "v", T * H if output == "Y" else H))
    network, _, _ = _agree(_model(nodes, consts, [1, T, F], opset))
    assert network.input_shape == (T, F)
    assert network.layers[1]["sequences"] is (output == "Y")


def test_lstm_with_layout_1_is_checked_with_the_reference_evaluator():
    T, F, H = 4, 3, 5
    consts = _lstm_consts("LSTM", F, H)
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["", "y"], name="lstm",
                              hidden_size=H, layout=1),
             _squeeze(14, "y", "v", [1], consts)]
    nodes.append(_head(consts, "v", H))
    _, _, figures = _agree(_model(nodes, consts, ["N", T, F], 14))
    assert figures["runtime"] == "onnx.reference"


@pytest.mark.parametrize("opset", [7, 14, NEWEST])
def test_gru_every_step_then_its_last_step(opset):
    T, F, H = 6, 5, 7
    consts = _lstm_consts("GRU", F, H, seed=4)
    consts["last"] = np.array(-1, np.int64)
    nodes = [_node("Transpose", ["x"], "tnf", perm=[1, 0, 2]),
             helper.make_node("GRU", ["tnf", "W", "R", "B"], ["y"], name="gru", hidden_size=H,
                              linear_before_reset=1),
             _squeeze(opset, "y", "ys", [1], consts),
             _node("Transpose", ["ys"], "nth", perm=[1, 0, 2]),
             _node("Gather", ["nth", "last"], "v", axis=1)]
    nodes.append(_head(consts, "v", H))
    network, _, _ = _agree(_model(nodes, consts, ["N", T, F], opset))
    assert network.layers[1] == {**network.layers[1], "type": "gru", "sequences": False}


def test_conv1d_into_an_lstm():
    """(N, C, L) convolved, then time-major into an LSTM: the float model swaps the axes."""
    consts = {"Wc": _w(6, 4, 3), **_lstm_consts("LSTM", 6, 8)}
    nodes = [_node("Conv", ["x", "Wc"], "conv", pads=[1, 1]), _node("Relu", ["conv"], "r"),
             _node("Transpose", ["r"], "lnc", perm=[2, 0, 1]),
             helper.make_node("LSTM", ["lnc", "W", "R", "B"], ["", "y"], name="lstm",
                              hidden_size=8),
             _squeeze(13, "y", "v", [0], consts)]
    nodes.append(_head(consts, "v", 8))
    network, _, _ = _agree(_model(nodes, consts, ["N", 4, 10], 13))
    assert network.input_shape == (10, 4) and _kinds(network) == ["conv1d", "relu", "lstm",
                                                                   "dense"]
    assert "swap_axes" in [entry["type"] for entry in network.float_spec()[0]]


def test_an_opset_6_model_is_upgraded():
    consts = {"W": _w(64, 10), "b": _w(10)}
    graph = helper.make_graph(
        [_node("Relu", ["x"], "r"), _node("Gemm", ["r", "W", "b"], "y", broadcast=1)], "old",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
         for n, s in (("x", [1, 64]), ("W", [64, 10]), ("b", [10]))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    model.ir_version = 3
    network, info, _ = _agree(model)
    assert info["opset"] == 7 and _kinds(network) == ["relu", "dense"]


# ------------------------------------------------------------------ the committed models

_DIGITS = {"mlp": ["dense", "batchnorm", "relu", "dense"],
           "cnn": ["conv2d", "relu", "maxpool", "conv2d", "relu", "flatten", "dense"],
           "cnn1d": ["conv1d", "relu", "avgpool", "flatten", "dense"],
           "lstm": ["lstm", "dense"], "gru": ["gru", "dense"]}


@pytest.mark.parametrize("name", list(_DIGITS))
def test_the_pytorch_models_import_and_agree_on_the_digits(name):
    from slimgen.sw.data import load_digits
    x, y = load_digits(seed=0).part("test")
    network, info, figures = _agree(str(DATA / f"{name}.onnx"), x=x)
    assert _kinds(network) == _DIGITS[name]
    assert info["producer_name"] == "pytorch" and figures["runtime"] == "onnxruntime"


def test_the_model_zoo_mnist_agrees_on_its_test_data():
    path = str(DATA / "mnist-8.onnx")
    x = numpy_helper.to_array(onnx.load_tensor(str(DATA / "mnist-8" / "input_0.pb")))
    expected = numpy_helper.to_array(onnx.load_tensor(str(DATA / "mnist-8" / "output_0.pb")))
    network, info, figures = _agree(path, x=x.reshape(1, -1))   # C = 1: NCHW = channels-last
    assert network.input_shape == (28, 28, 1) and info["opset"] == 8
    assert _kinds(network) == ["conv2d", "relu", "maxpool", "conv2d", "relu", "maxpool",
                               "flatten", "dense"]
    _, model, _ = import_onnx(path)
    from slimgen.sw.network import to_float_input
    out = model.forward(to_float_input(network, x.reshape(1, -1).astype(np.float64)))
    assert np.abs(out - expected).max() / np.abs(expected).max() <= 1e-5


# ------------------------------------------------------------------ refusals

def _conv_model(**attrs):
    kernel = attrs.pop("kernel", (3, 3))
    consts = {"W": _w(4, attrs.pop("c_in", 2), *kernel)}
    nodes = [_node("Conv", ["x", "W"], "conv", **attrs), _node("Flatten", ["conv"], "flat")]
    return nodes, consts, ["N", 2, 8, 8]


def _case(name):
    """(model, message) of a refused case."""
    consts = {}
    if name == "operator":
        nodes = [_head(consts, "x", 12, 8, "h"), _node("Sigmoid", ["h"], "act")]
        return _model(nodes, consts, ["N", 12]), \
            "node 'act' (Sigmoid): the operator Sigmoid is not supported; slimgen imports " \
            "Conv, Gemm, MatMul"
    conv = {"group": ({"group": 2, "c_in": 1}, "is a group convolution (group 2); slimgen "
                                               "supports group 1"),
            "dilation": ({"dilations": [2, 2]}, "has dilations [2, 2]; slimgen supports "
                                                "dilation 1"),
            "kernel": ({"kernel": (9, 9)}, "has a 9×9 kernel; slimgen supports square kernels "
                                           "of 1 to 7"),
            "square": ({"kernel": (3, 5)}, "has a 3×5 kernel"),
            "stride": ({"strides": [3, 3]}, "has strides [3, 3]; slimgen supports stride 1 or "
                                            "2"),
            "pads": ({"pads": [1, 0, 0, 1]}, "pads its input by [[1, 0], [0, 1]] ((before, "
                                             "after) per axis); the description pads"),
            "same_lower": ({"kernel": (2, 2), "auto_pad": "SAME_LOWER"},
                           "pads its input by [[1, 0], [1, 0]]")}
    if name in conv:
        attrs, message = conv[name]
        nodes, consts, shape = _conv_model(**attrs)
        return _model(nodes, consts, shape), f"node 'conv' (Conv): {message}"
    if name == "pool_pads":
        nodes, consts, shape = _conv_model(pads=[1, 1, 1, 1])
        nodes.insert(1, _node("MaxPool", ["conv"], "pool", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                              strides=[2, 2]))
        nodes[2] = _node("Flatten", ["pool"], "flat")
        return _model(nodes, consts, shape), \
            "node 'pool' (MaxPool): pads its input; slimgen supports pooling without padding"
    if name == "skip":
        consts.update(W1=_w(2, 2, 3, 3), W2=_w(2, 2, 3, 3))
        nodes = [_node("Conv", ["x", "W1"], "c1", pads=[1, 1, 1, 1]), _node("Relu", ["c1"], "r"),
                 _node("Conv", ["r", "W2"], "c2", pads=[1, 1, 1, 1]),
                 _node("Add", ["r", "c2"], "add"), _node("Flatten", ["add"], "flat")]
        return _model(nodes, consts, ["N", 2, 8, 8]), \
            "the tensor 'r' is read by node 'c2' (Conv) and node 'add' (Add) (a branch or a " \
            "skip connection); slimgen imports sequential graphs"
    if name == "dynamic":
        return _model([_node("Relu", ["x"], "r")], {}, ["N", "T", 8]), \
            "the graph input 'x' has the shape (?, ?, 8); slimgen takes a batch first and " \
            "every other size fixed"
    if name == "nan":
        W = _w(12, 8)
        W[3, 4] = np.nan
        consts["B"] = W
        return _model([_node("Gemm", ["x", "B"], "fc")], consts, ["N", 12]), \
            "node 'fc' (Gemm): its matrix B ('B') holds nan at index [3, 4]; every weight " \
            "must be a finite number"
    if name in ("bidirectional", "linear_before_reset", "peephole", "cell_state"):
        kind = "GRU" if name == "linear_before_reset" else "LSTM"
        consts.update(_lstm_consts(kind, 4, 3))
        inputs, outputs, attrs = ["x", "W", "R", "B"], ["", "y"], {"hidden_size": 3}
        if name == "bidirectional":
            attrs["direction"] = "bidirectional"
            consts.update({k: np.concatenate([v, v]) for k, v in consts.items()})
        if name == "peephole":
            consts["P"] = np.ones((1, 9), np.float32)
            inputs += ["", "", "", "P"]
        if name == "cell_state":
            outputs = ["", "", "y"]
        nodes = [_node("Transpose", ["x"], "tnf", perm=[1, 0, 2]),
                 helper.make_node(kind, ["tnf", *inputs[1:]], outputs, name="rnn", **attrs),
                 _squeeze(13, "y", "v", [0], consts) if name != "bidirectional" else
                 _node("Flatten", ["y"], "v")]
        message = {"bidirectional": "runs bidirectional; slimgen supports forward",
                   "linear_before_reset": "has linear_before_reset 0; slimgen supports the GRU "
                                          "as PyTorch exports it",
                   "peephole": "has a non-zero peepholes P; slimgen supports a zero initial "
                               "state and no peepholes",
                   "cell_state": "has its outputs y used; slimgen takes either Y (every step) "
                                 "or Y_h (the last state)"}[name]
        return _model(nodes, consts, ["N", 5, 4]), f"node 'rnn' ({kind}): {message}"
    if name == "batchnorm_after_relu":
        consts.update(s=_w(8), b=_w(8), m=_w(8), v=np.ones(8, np.float32))
        nodes = [_head(consts, "x", 12, 8, "h"), _node("Relu", ["h"], "r"),
                 _node("BatchNormalization", ["r", "s", "b", "m", "v"], "bn")]
        return _model(nodes, consts, ["N", 12]), \
            "node 'bn' (BatchNormalization) makes layer 3 (batchnorm): must come right after " \
            "a conv1d, conv2d or dense layer"
    if name == "softmax_first":
        nodes = [_head(consts, "x", 12, 8, "h"), _node("Softmax", ["h"], "sm", axis=1),
                 _head(consts, "sm", 8)]
        return _model(nodes, consts, ["N", 12]), \
            "node 'sm' (Softmax) comes before node 'fc' (Gemm); slimgen takes a Softmax or " \
            "LogSoftmax only as the graph's last node"
    if name == "add":
        consts["c"] = _w(8)
        nodes = [_head(consts, "x", 12, 8, "h"), _node("Relu", ["h"], "r"),
                 _node("Add", ["r", "c"], "add")]
        return _model(nodes, consts, ["N", 12]), \
            "node 'add' (Add): adds a constant that is not the bias of a Conv, Gemm or MatMul"
    if name == "reshape":
        nodes, consts, shape = _conv_model(pads=[1, 1, 1, 1])
        consts["shape"] = np.array([0, 8, 4, 8], np.int64)
        nodes[1] = _node("Reshape", ["conv", "shape"], "rs")
        return _model(nodes, consts, shape), \
            "node 'rs' (Reshape): reshapes a tensor (N, 4, 8, 8) laid out as (N, C, H, W) to " \
            "(N, 8, 4, 8), which changes its layout"
    if name == "domain":
        node = helper.make_node("FusedGemm", ["x"], ["y"], name="fused", domain="com.microsoft")
        model = _model([node], {}, ["N", 12], out_shape=["N", 4])
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return model, "node 'fused' (FusedGemm): is of the operator domain 'com.microsoft'"
    if name == "conv3d":
        consts["W"] = _w(2, 1, 3, 3, 3)
        return _model([_node("Conv", ["x", "W"], "conv")], consts, ["N", 1, 5, 5, 5]), \
            "node 'conv' (Conv): takes (N, C, L) or (N, C, H, W), but its input has 5 axes"
    raise AssertionError(name)


REFUSED = ["operator", "group", "dilation", "kernel", "square", "stride", "pads", "same_lower",
           "pool_pads", "skip", "dynamic", "nan", "bidirectional", "linear_before_reset",
           "peephole", "cell_state", "batchnorm_after_relu", "softmax_first", "add", "reshape",
           "domain", "conv3d"]


@pytest.mark.parametrize("name", REFUSED)
def test_an_unsupported_model_is_refused_with_one_message_naming_the_node(name):
    model, message = _case(name)
    with pytest.raises(OnnxImportError) as e:
        import_onnx(model)
    text = str(e.value)
    assert text.startswith("the ONNX model: ") and "\n" not in text
    assert message in text, text


def test_files_that_are_not_onnx_models(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf")
    with pytest.raises(OnnxImportError, match=r"notes.onnx is not an ONNX model \(a protobuf "
                                              r"ModelProto\)"):
        import_onnx(bad)
    with pytest.raises(OnnxImportError, match=r"missing.onnx does not exist"):
        import_onnx(tmp_path / "missing.onnx")


# ------------------------------------------------------------------ the command

def _import(capsys, *argv):
    from slimgen.import_cli import main
    capsys.readouterr()
    status = main(["import", *map(str, argv), "--quiet"])
    return status, capsys.readouterr()


def test_import_writes_the_run_folder_and_the_flow_goes_on(tmp_path, capsys):
    from slimgen.cli import main as slimgen
    from slimgen.sw.artifact import load_float_model
    source = tmp_path / "cnn.onnx"
    shutil.copy(DATA / "cnn.onnx", source)
    run = tmp_path / "run"
    status, out = _import(capsys, source, "--run", run)
    assert status == 0, out.err
    assert {p.name for p in run.iterdir()} >= {"net.json", "config.json", "float.npz",
                                               "train.json", "import.json"}
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["net"], config["source"], config["data"], config["seed"]) \
        == ("net", str(run / "net.json"), str(source), "digits", 0)
    train = json.loads((run / "train.json").read_text())
    assert train["float_accuracy"] > 0.95 and train["imported_from"] == str(source)
    assert train["import_max_relative_difference"] <= 1e-5
    assert train["import_argmax_agreement"] == 1.0
    record = json.loads((run / "import.json").read_text())
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert (record["opset"], record["producer_name"]) == (13, "pytorch")
    agreement = record["agreement"]
    assert agreement["samples"] == 360 and agreement["max_relative_difference"] <= 1e-5
    _, manifest = load_float_model(run / "float.npz")
    assert manifest["network"] == json.loads((run / "net.json").read_text())
    # the flow continues from the imported model: compress (fine-tuning on the data), quantize
    assert slimgen(["flow", "--run", str(run), "--to", "quantize", "--method", "magnitude",
                    "--sparsity", "0.5", "--finetune-epochs", "1", "--quiet"]) == 0
    quantize = json.loads((run / "quantize.json").read_text())
    assert quantize["int_accuracy"] > 0.9
    assert json.loads((run / "train.json").read_text())["float_accuracy"] == \
        train["float_accuracy"]
    # --from train imports again (never trains from a random start)
    assert slimgen(["flow", "--run", str(run), "--to", "train", "--from", "train",
                    "--quiet"]) == 0
    again = json.loads((run / "train.json").read_text())
    assert again["float_accuracy"] == train["float_accuracy"] and "epochs" not in again
    assert not (run / "compressed.npz").exists()
    # a source gone is named
    source.unlink()
    capsys.readouterr()
    assert slimgen(["flow", "--run", str(run), "--to", "train", "--from", "train",
                    "--quiet"]) == 1
    assert "cnn.onnx, the ONNX model this run was imported from, does not exist" in \
        capsys.readouterr().err


def test_an_imported_lstm_goes_through_lstm_gates_compression(tmp_path, capsys):
    from slimgen.cli import main as slimgen
    run = tmp_path / "run"
    status, out = _import(capsys, DATA / "lstm.onnx", "--run", run)
    assert status == 0, out.err
    assert slimgen(["flow", "--run", str(run), "--to", "quantize", "--method", "lstm_gates",
                    "--finetune-epochs", "1", "--quiet"]) == 0
    assert json.loads((run / "quantize.json").read_text())["int_accuracy"] > 0.8


def _npz(tmp_path, n_features, n_classes):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.uniform(0, 1, (200, n_features)), y=np.arange(200) % n_classes)
    return path


@pytest.mark.parametrize("case", ["unsupported", "size", "classes", "missing", "seed", "data"])
def test_a_refused_import_writes_nothing(tmp_path, capsys, case):
    run = tmp_path / "run"
    source, extra = DATA / "mlp.onnx", []
    if case == "unsupported":
        model, _ = _case("operator")
        source = tmp_path / "sigmoid.onnx"
        onnx.save(model, source)
        message = "sigmoid.onnx: node 'act' (Sigmoid): the operator Sigmoid is not supported"
    elif case == "size":
        source = DATA / "mnist-8.onnx"
        message = "data 'digits': samples have 64 values, but the network mnist-8 takes " \
                  "inputs of shape [28, 28, 1] (784 values)"
    elif case == "classes":
        extra = ["--data", _npz(tmp_path, 64, 12)]
        message = "labels go up to 11 (12 classes), but the network mlp has 10 outputs"
    elif case == "missing":
        source = tmp_path / "none.onnx"
        message = "none.onnx does not exist"
    elif case == "seed":
        extra = ["--seed", "-1"]
        message = "--seed must be a non-negative integer, not -1"
    else:
        extra = ["--data", "digits.csv"]
        message = ("--data must be 'digits', 'mnist1d' or 'mnist5k' (all but 'digits' with the "
                   "data extra) or a path to an .npz file, not 'digits.csv'")
    status, out = _import(capsys, source, "--run", run, *extra)
    assert status == 1
    assert out.err.startswith("slimgen import: error: ") and out.err.count("\n") == 1
    assert message in out.err, out.err
    assert not run.exists()


def test_source_is_a_setting_of_net_runs_only():
    from slimgen.settings import RunConfig, SettingError
    with pytest.raises(SettingError, match=r"source is the ONNX model a network was imported "
                                           r"from \('slimgen import'\); it needs model 'net', "
                                           r"not 'mlp'"):
        RunConfig(source="model.onnx")
