"""QONNX export and import (:mod:`slimgen.qonnx_io`, :mod:`slimgen.export_cli`): the exported
graph run by qonnx's ``execute_onnx`` against the golden model on the digits test split, the
import of Brevitas-style models bit for bit, and the refusals word for word.

The figures asserted are the ones measured (NumPy's kernels are pinned, so training is
deterministic): the presets' default quantization has scales that are not powers of two, and
float32 execution then rounds a value near a tie the other way now and then.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("qonnx")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from slimgen.qonnx_io import (DOMAIN, QonnxError, compare, export_checked,  # noqa: E402
                              import_qonnx, logit_scale, onnx_inputs, qonnx_agreement,
                              run_qonnx, strip_quantizers, to_qonnx)
from slimgen.sw.data import load_dataset  # noqa: E402
from slimgen.sw.network import check_network, preset, to_float_input  # noqa: E402
from slimgen.sw.nn import TrainConfig, build_model, train  # noqa: E402
from slimgen.sw.quantize import quantize_network  # noqa: E402

DATA = Path(__file__).parent / "data" / "qonnx"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", view="vector", seed=0)


def trained(net, digits, epochs=5):
    """A float model of ``net`` after a few epochs on the digits (seed 0)."""
    net = check_network(net)
    data = replace(digits, x=to_float_input(net, digits.x))
    model = build_model(net.float_spec()[0], np.random.default_rng(0))
    train(model, data, TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, seed=0),
          progress=False)
    return net, model


@pytest.fixture(scope="module")
def mlp(digits):
    return trained(preset("mlp"), digits)


@pytest.fixture(scope="module")
def cnn(digits):
    return trained(preset("cnn"), digits)


@pytest.fixture(scope="module")
def avg_cnn(digits):
    """conv → relu → avgpool → conv → relu → global_avgpool → dense."""
    conv = {"type": "conv2d", "kernel": 3}
    return trained({"name": "avg", "layers": [
        {"type": "input", "shape": [8, 8, 1]}, dict(conv, channels=4), {"type": "relu"},
        {"type": "avgpool", "size": 2}, dict(conv, channels=8), {"type": "relu"},
        {"type": "global_avgpool"}, {"type": "dense", "units": 10}]}, digits)


# ------------------------------------------------------------------ Brevitas-style models

def _pow2_above(v):
    return 2.0 ** np.ceil(np.log2(v))


def brevitas_style(net, model, x_train, *, act_bits=8, rounding="FLOOR", gemm=True,
                   per_channel=False, input_scale=2.0 ** -4):
    """A QONNX graph of a trained float model as Brevitas exports one: a Quant on the input
    (unsigned 8 bits), the float weights behind Quant nodes (8 bits, signed, narrow; bias at
    the accumulator's scale, 32 bits), Conv and Gemm (or MatMul + Add), a Quant after every
    Relu, the last layer's outputs as they are. Every scale a power of two: the weights' the
    smallest that holds max|W| (per tensor or per output channel), the activations' the
    smallest that holds their largest value on ``x_train``."""
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(x, name, scale, bits, signed, narrow=0, rm="ROUND"):
        nodes.append(helper.make_node(
            "Quant", [x, const(f"{name}_scale", scale), const(f"{name}_zeropt", 0.0),
                      const(f"{name}_bits", bits)], [name], name=name, domain=DOMAIN,
            signed=signed, narrow=narrow, rounding_mode=rm))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    shape = net.input_shape
    in_shape = [1, shape[-1], *shape[:-1]] if len(shape) > 1 else [1, shape[0]]
    s = input_scale
    t = quant("inp", "QuantIdentity_0", s, 8, 0)
    spec, origin = net.float_spec()
    a = to_float_input(net, x_train)
    for k, layer in enumerate(model.layers):
        a = layer.forward(a)
        if layer.kind in ("conv2d", "dense"):
            W, b = layer.params["W"], layer.params["b"]
            W = W if layer.kind == "conv2d" else W.T                   # (out, ...), as PyTorch
            if per_channel:
                s_w = _pow2_above(np.abs(W.reshape(len(W), -1)).max(axis=1) / 127)
                s_w_b = s_w.reshape((-1,) + (1,) * (W.ndim - 1))
            else:
                s_w = s_w_b = _pow2_above(np.abs(W).max() / 127)
            wq = quant(const(f"W{k}", W), f"QuantW_{k}", s_w_b, 8, 1, 1)
            bq = quant(const(f"b{k}", b), f"QuantB_{k}", s * s_w, 32, 1, 0)
            if layer.kind == "conv2d":
                t = node("Conv", [t, wq, bq], f"Conv_{k}", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1])
            elif gemm:
                t = node("Gemm", [t, wq, bq], f"Gemm_{k}", transB=1)
            else:
                wt = node("Transpose", [wq], f"Transpose_{k}", perm=[1, 0])
                t = node("Add", [node("MatMul", [t, wt], f"MatMul_{k}"), bq], f"Add_{k}")
        elif layer.kind == "relu":
            s = _pow2_above(a.max() / (2 ** act_bits - 1))
            t = quant(node("Relu", [t], f"Relu_{k}"), f"QuantReLU_{k}", s, act_bits, 0, 0,
                      rounding)
        elif layer.kind == "maxpool2d":
            t = node("MaxPool", [t], f"MaxPool_{k}", kernel_shape=[2, 2], strides=[2, 2])
        elif layer.kind in ("avgpool2d", "global_avgpool"):      # the mean at the same scale
            t = node("AveragePool", [t], f"AveragePool_{k}", kernel_shape=[2, 2],
                     strides=[2, 2]) if layer.kind == "avgpool2d" else \
                node("GlobalAveragePool", [t], f"GlobalAveragePool_{k}")
            t = quant(t, f"QuantAvg_{k}", s, act_bits, 0, 0, "HALF_UP")
            if layer.kind == "global_avgpool":
                t = node("Flatten", [t], f"Flatten_{k}", axis=1)
        elif layer.kind == "flatten":
            t = node("Flatten", [t], f"Flatten_{k}", axis=1)
    graph = helper.make_graph(
        nodes, net.name, [helper.make_tensor_value_info("inp", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, net.n_outputs])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                   helper.make_opsetid(DOMAIN, 1)])


# ------------------------------------------------------------------ export

def _quantized(net_model, digits):
    net, model = net_model
    return quantize_network(net, model, digits.part("train")[0], input_scale=1 / 16)


@pytest.mark.parametrize("name, figures", [
    # scales that are not powers of two: float32 rounds near ties, here in one activation of
    # the CNN's second convolution out of 184,320, which moves one sample's logits by 57
    ("mlp", {"argmax_agreement": 1.0, "logits_equal": 1.0, "max_logit_diff": 0.0}),
    ("cnn", {"argmax_agreement": 1.0, "logits_equal": 359 / 360, "max_logit_diff": 57.0}),
])
def test_export_presets_against_golden(name, figures, digits, request, tmp_path):
    q = _quantized(request.getfixturevalue(name), digits)
    x = digits.part("test")[0]
    got = export_checked(q, tmp_path / "m.onnx", x)
    assert got == {"logit_scale": got["logit_scale"], "input_layout": got["input_layout"],
                   "samples": 360, **figures}
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model)
    assert logit_scale(model) == got["logit_scale"]


@pytest.mark.parametrize("name", ["cnn", "avg_cnn"])
def test_export_is_bit_exact_with_power_of_two_scales(name, digits, request):
    """An integer model of power-of-two scales (imported from a Brevitas-style graph) exported
    again: execute_onnx gives the golden model's logits exactly, every value in float32."""
    src = brevitas_style(*request.getfixturevalue(name), digits.part("train")[0])
    q, _, _ = import_qonnx(src)
    x = digits.part("test")[0]
    model = to_qonnx(q)
    units = run_qonnx(model, onnx_inputs(q, x)) / logit_scale(model)
    assert compare(q, x, units) == {"samples": 360, "argmax_agreement": 1.0,
                                    "logits_equal": 1.0, "max_logit_diff": 0.0}


def test_export_graph_is_accepted_by_qonnx(mlp, digits, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup
    export_checked(_quantized(mlp, digits), tmp_path / "m.onnx")
    cleanup(str(tmp_path / "m.onnx"), out_file=str(tmp_path / "clean.onnx"))
    wrapper = ModelWrapper(str(tmp_path / "clean.onnx"))
    assert wrapper.check_all_tensor_shapes_specified()
    ops = [n.op_type for n in wrapper.graph.node]
    assert ops.count("Quant") == 1 + 2 * 2 + 1 + 1     # input, weights and biases, act, logits
    assert {"MatMul", "Add", "Relu"} <= set(ops)


def test_export_refuses_recurrent_layers(digits, tmp_path):
    net, model = trained(preset("lstm"), digits, epochs=1)
    q = quantize_network(net, model, digits.part("train")[0], input_scale=1 / 16)
    with pytest.raises(QonnxError) as e:
        export_checked(q, tmp_path / "m.onnx")
    assert str(e.value) == ("layer 1 (lstm) cannot be exported: QONNX has no recurrent "
                            "operator with the integer cell's fixed-point tables; export "
                            "supports conv1d, conv2d, dense, pools, flatten and relu")
    assert not list(tmp_path.iterdir())


def test_export_cli(tmp_path, capsys):
    from slimgen.export_cli import main
    from slimgen.flow import Run, run_flow
    from slimgen.settings import RunConfig
    run = Run(tmp_path / "r", RunConfig(epochs=2), progress=False, log=lambda m: None)
    run_flow(run, ("train", "compress", "quantize"))
    out = tmp_path / "out" / "m.onnx"
    assert main(["--run", str(run.root), "--onnx", str(out), "--json"]) == 0
    assert '"argmax_agreement": 1.0' in capsys.readouterr().out
    assert out.exists()
    assert main(["--run", str(tmp_path / "none"), "--onnx", str(tmp_path / "x.onnx")]) == 1
    assert main(["--run", str(run.root), "--onnx", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"slimgen export: error: {tmp_path / 'none'} is not a run folder (it does "
                   f"not exist): run 'slimgen flow --run {tmp_path / 'none'}' to make one",
                   f"slimgen export: error: --onnx {tmp_path} is a folder; give the file to "
                   f"write, e.g. {tmp_path / 'model.onnx'}"]
    assert not (tmp_path / "x.onnx").exists()


# ------------------------------------------------------------------ import

@pytest.mark.parametrize("name", ["mlp", "cnn", "avg_cnn"])
@pytest.mark.parametrize("options", [
    {"rounding": "FLOOR"}, {"rounding": "HALF_UP"}, {"rounding": "CEIL", "gemm": False},
    {"rounding": "FLOOR", "per_channel": True}, {"rounding": "HALF_UP", "act_bits": 4}])
def test_import_is_bit_exact(name, options, digits, request):
    """The imported integer model's logits equal execute_onnx's of the QONNX model (in units
    of the logits) on every test sample."""
    net, model = request.getfixturevalue(name)
    src = brevitas_style(net, model, digits.part("train")[0], **options)
    q, float_model, info = import_qonnx(src)
    x = digits.part("test")[0]
    assert qonnx_agreement(src, q, info, x) == {
        "samples": 360, "argmax_agreement": 1.0, "logits_equal": 1.0, "max_logit_diff": 0.0}
    weighted = q.of_kind("dense", "conv")
    assert [r.weight_bits for r in weighted[:-1]] == [8] * (len(weighted) - 1)
    # the logits take one scale: per-channel weights of the last layer at the finest of them
    assert np.ndim(weighted[-1].w_scale) == 0
    wider = {"mlp": 8, "cnn": 9, "avg_cnn": 9}[name] if options.get("per_channel") else 8
    assert weighted[-1].weight_bits == wider
    assert {r.out_bits for r in q.of_kind("dense", "conv") if r.requant} == \
        {options.get("act_bits", 8)}
    assert info["tied"] == []


def test_import_of_the_stored_model(digits):
    """tests/data/qonnx/mlp_floor.onnx: a Brevitas-style MLP 64-32-10 (FLOOR activations)
    written by :func:`write_data`."""
    src = str(DATA / "mlp_floor.onnx")
    q, _, info = import_qonnx(src)
    assert q.network.summary().splitlines() == [
        "  0 input          shape=[64]                         -> (64,)",
        "  1 dense          units=32                           -> (32,)",
        "  2 relu                                              -> (32,)",
        "  3 dense          units=10                           -> (10,)"]
    assert q.input_scale == 2.0 ** -4 and q.input_bits == 8
    assert info["nodes"] == ["node 'Gemm_0' (Gemm)", "node 'Relu_1' (Relu)",
                             "node 'Gemm_2' (Gemm)"]
    assert qonnx_agreement(src, q, info, digits.part("test")[0])["logits_equal"] == 1.0


@pytest.mark.parametrize("name, act_bits, figures", [
    # ROUND (half to even) accepted as half up: the logits differ wherever an activation
    # fell exactly halfway; the class rarely
    ("mlp", 8, {"argmax_agreement": 1.0, "logits_equal": 294 / 360, "max_logit_diff": 195.0}),
    ("mlp", 4, {"argmax_agreement": 1.0, "logits_equal": 358 / 360, "max_logit_diff": 85.0}),
    ("cnn", 8, {"argmax_agreement": 1.0, "logits_equal": 9 / 360, "max_logit_diff": 212.0}),
    ("cnn", 4, {"argmax_agreement": 357 / 360, "logits_equal": 210 / 360,
                "max_logit_diff": 113.0}),
])
def test_import_round_half_even_with_ties_up(name, act_bits, figures, digits, request):
    net, model = request.getfixturevalue(name)
    src = brevitas_style(net, model, digits.part("train")[0], rounding="ROUND",
                         act_bits=act_bits)
    q, _, info = import_qonnx(src, round_ties="up")
    got = qonnx_agreement(src, q, info, digits.part("test")[0])
    assert got == {"samples": 360, **figures}
    assert info["tied"][0] == "node 'QuantReLU_1' (Quant)"


def test_strip_quantizers_gives_the_float_model(mlp, digits):
    from slimgen.import_onnx import import_onnx
    net, model = mlp
    src = brevitas_style(net, model, digits.part("train")[0])
    plain = strip_quantizers(src)
    assert {n.op_type for n in plain.graph.node} == {"Identity", "Gemm", "Relu"}
    net2, float_model, _ = import_onnx(plain)
    _, dequantized, _ = import_qonnx(src)
    x = digits.part("test")[0]
    assert np.array_equal(float_model.forward(x), dequantized.forward(x))


def write_data():
    """Write tests/data/qonnx/mlp_floor.onnx: the MLP preset after 5 epochs (seed 0) as a
    Brevitas-style QONNX model with FLOOR activations (``python tests/test_qonnx.py``)."""
    digits = load_dataset("digits", view="vector", seed=0)
    net, model = trained(preset("mlp"), digits)
    src = brevitas_style(net, model, digits.part("train")[0])
    src.producer_name = "tests/test_qonnx.py"
    DATA.mkdir(parents=True, exist_ok=True)
    onnx.save(src, DATA / "mlp_floor.onnx")


# ------------------------------------------------------------------ a run

def test_quantize_stage_of_an_imported_run(digits, tmp_path):
    """A run imported from a QONNX model: the train stage's float.npz holds the dequantized
    weights, and the quantize stage writes the source's integer model as model.npz (never a
    quantization of float.npz), which the later stages load."""
    from dataclasses import replace as changed
    from slimgen.flow import FlowError, Run
    from slimgen.qonnx_io import float_import, quantize_stage
    from slimgen.settings import RunConfig
    from slimgen.stages import load_int_artifact
    from slimgen.sw.artifact import save_float_model
    source = str(DATA / "mlp_floor.onnx")
    network, model, _ = float_import(source)
    (tmp_path / "net.json").write_text(network.to_json())
    config = RunConfig(model="net", net=str(tmp_path / "net.json"), source=source)
    run = Run(tmp_path, config, progress=False, log=lambda m: None)
    save_float_model(run.path("float.npz"), model, dataset="digits", split_seed=0,
                     extra={"model": "net"}, network=network)
    figures = quantize_stage(run)
    assert {k: v for k, v in figures.items() if k.startswith("qonnx_")} == {
        "qonnx_samples": 360, "qonnx_argmax_agreement": 1.0, "qonnx_logits_equal": 1.0,
        "qonnx_max_logit_diff": 0.0}
    assert figures["weight_bits"] == [8, 8] and figures["round_ties"] == "refuse"
    q = load_int_artifact(run)
    assert np.array_equal(q.layers[0].W, import_qonnx(source)[0].layers[0].W)
    run.config = changed(config, method="magnitude")
    with pytest.raises(FlowError, match=r"whose integer model is taken as it is: compression "
                                        r"\(--method magnitude\) would not reach it"):
        quantize_stage(run)


# ------------------------------------------------------------------ refusals

def _stored():
    return onnx.load(DATA / "mlp_floor.onnx")


def _node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def _set(model, name, value):
    t = next(t for t in model.graph.initializer if t.name == name)
    t.CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))


def _drop(model, name, reader):
    """Take out node ``name``; ``reader`` reads its input instead."""
    node = _node(model, name)
    model.graph.node.remove(node)
    _node(model, reader).input[0] = node.input[0]


def _attr(model, name, key, value):
    next(a for a in _node(model, name).attribute if a.name == key).i = value


FLOAT = ("Or import it as a float model, its quantizers stripped ('slimgen import --float', "
         "strip_quantizers), and let slimgen quantize it")
REFUSALS = {
    "scale": (lambda m: _set(m, "QuantW_0_scale", 0.01),
              "node 'QuantW_0' (Quant): scale 0.00999999978 is not a power of two; slimgen's "
              "integer model reproduces QONNX bit for bit only with power-of-two scales "
              "(Brevitas: the FixedPoint quantizers, restrict_scaling_type POWER_OF_TWO). "
              + FLOAT),
    "zero point": (lambda m: _set(m, "QuantReLU_1_zeropt", 3.0),
                   "node 'QuantReLU_1' (Quant): zero point 3; slimgen's integer model is "
                   "symmetric (zero point 0). " + FLOAT),
    "round": (lambda m: next(a for a in _node(m, "QuantReLU_1").attribute
                             if a.name == "rounding_mode").__setattr__("s", b"ROUND"),
              "node 'QuantReLU_1' (Quant): rounds half to even (ROUND), and the values it rounds "
              "(the accumulators of node 'Gemm_0' (Gemm) over 2^6) can fall exactly halfway "
              "(output 0), where slimgen's requantization rounds up: the two would differ "
              "there. Export with rounding_mode FLOOR (or HALF_UP after a ReLU) for a bit-exact "
              "import, or accept halves rounded up (round_ties='up', 'slimgen import "
              "--round-ties up'). " + FLOAT),
    "float weights": (lambda m: _node(m, "Gemm_0").input.__setitem__(1, "W0"),
                      "node 'Gemm_0' (Gemm): its weights are not quantized (no Quant on them), "
                      "and slimgen's integer model needs integer weights. " + FLOAT),
    "float bias": (lambda m: _node(m, "Gemm_0").input.__setitem__(2, "b0"),
                   "node 'Gemm_0' (Gemm): its bias 0.0210482925 (output 0) is not a whole "
                   "multiple of the accumulator's scale (input scale · weight scale = "
                   "0.000488281); quantize the bias at that scale (Brevitas: Int32Bias). "
                   + FLOAT),
    "input": (lambda m: _drop(m, "QuantIdentity_0", "Gemm_0"),
              "the graph input is not quantized; slimgen's integer model takes integer input "
              "codes: put a Quant on it (Brevitas: QuantIdentity)"),
    "activation": (lambda m: _drop(m, "QuantReLU_1", "Gemm_2"),
                   "the outputs of node 'Gemm_0' (Gemm) are not quantized before node "
                   "'Gemm_2' (Gemm); slimgen requantizes every layer but the last: put an "
                   "activation quantizer after it (Brevitas: QuantReLU or QuantIdentity)"),
    "narrow": (lambda m: _attr(m, "QuantReLU_1", "narrow", 1),
               "node 'QuantReLU_1' (Quant): quantizes to 8 unsigned bit(s), narrow 1; "
               "slimgen's activations take every code of 2 to 16 bits (narrow 0; binary "
               "activations have no integer form)"),
    "operator": (lambda m: _node(m, "Relu_1").__setattr__("op_type", "Sigmoid"),
                 "node 'Relu_1' (Sigmoid): the operator Sigmoid is not supported; slimgen "
                 "imports Conv, Gemm, MatMul and an Add of a bias after them, "
                 "BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, "
                 "LSTM, GRU, Dropout, Identity, Reshape, Transpose, Squeeze, Unsqueeze and "
                 "Gather that only change the layout, and a final Softmax or LogSoftmax"),
    "custom operator": (lambda m: _node(m, "QuantReLU_1").__setattr__("op_type", "Trunc"),
                        "node 'QuantReLU_1' (Trunc): Trunc (Brevitas's quantized average "
                        "pool) has no integer form in slimgen; export the pool as AveragePool "
                        "followed by a Quant. " + FLOAT),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_import_refusals(case, tmp_path):
    """One message naming the node and why; the file is named as given."""
    change, message = REFUSALS[case]
    model = _stored()
    change(model)
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(QonnxError) as e:
        import_qonnx(str(tmp_path / "m.onnx"))
    assert str(e.value) == f"{tmp_path / 'm.onnx'}: {message}"


def test_import_refuses_batchnorm_before_the_quantizer(cnn, digits):
    src = brevitas_style(*cnn, digits.part("train")[0])
    conv = _node(src, "Conv_0")
    bn = helper.make_node("BatchNormalization", ["Conv_0", "g", "beta", "mean", "var"],
                          ["bn"], name="BatchNorm_0")
    for name, value in (("g", 1.0), ("beta", 0.0), ("mean", 0.0), ("var", 1.0)):
        src.graph.initializer.append(numpy_helper.from_array(np.full(4, value, np.float32),
                                                             name))
    src.graph.node.insert(list(src.graph.node).index(conv) + 1, bn)
    _node(src, "Relu_1").input[0] = "bn"
    with pytest.raises(QonnxError) as e:
        import_qonnx(src)
    assert str(e.value) == (
        "the QONNX model: node 'BatchNorm_0' (BatchNormalization) normalizes the accumulators "
        "of node 'Conv_0' (Conv) before they are quantized; the integer model needs it folded "
        "into the weights (fold it before export). " + FLOAT)


def test_import_refuses_a_float_model(tmp_path):
    with pytest.raises(QonnxError) as e:
        import_qonnx(strip_quantizers(_stored()))
    assert str(e.value) == ("the QONNX model has no quantizers (Quant, IntQuant, "
                            "BipolarQuant): it is a float model; import it with slimgen import")
    with pytest.raises(ValueError, match="round_ties must be 'refuse' or 'up', not 'down'"):
        import_qonnx(_stored(), round_ties="down")


if __name__ == "__main__":
    write_data()
