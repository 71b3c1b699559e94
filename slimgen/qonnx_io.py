"""QONNX export and import of slimgen's integer model (:class:`~slimgen.sw.integer_model
.IntNetwork`), the format of Brevitas, FINN and hls4ml: standard ONNX operators on float
tensors, with ``Quant`` nodes (domain ``qonnx.custom_op.general``) where values are quantized.
QONNX's ``Quant(x, s, z, b)`` (:mod:`qonnx.custom_op.general.intquant`) is ::

    Quant(x) = s · (round(clip(x / s + z, lo, hi)) − z)
    [lo, hi] = [0, 2^b − 1] unsigned, [−2^(b−1) (+1 narrow), 2^(b−1) − 1] signed,
    round: ROUND (half to even), HALF_UP (half away from zero), FLOOR, CEIL, ...

Export (:func:`to_qonnx`, :func:`export_qonnx`). The graph computes the golden model's
arithmetic (:mod:`slimgen.sw.golden`) on real values, channels-first as ONNX has it:

- input ``x`` (batch, c, *spatial) (or (batch, n)): ``Quant(x, input_scale, 0, input_bits,
  unsigned, ROUND)``, the codes of :func:`slimgen.sw.quantize.quantize_inputs` (``np.rint``
  rounds half to even too);
- convolution and dense: ``Conv`` or ``MatMul`` + ``Add``, weights and bias initializers behind
  a ``Quant`` (weights ``W·s_w``, ``weight_bits``, signed, narrow; bias ``b·s_acc``,
  ``acc_bits``, signed) at the accumulator's scale ``s_acc = s_in · s_w``;
- requantization ``y = sat(relu(floor(acc · M / 2^shift + 1/2)))``: a ``Quant`` at the output
  scale ``s_out = s_acc · 2^shift / M`` (so that ``acc_real / s_out = acc · M / 2^shift``):
  after a ``Relu``, unsigned with HALF_UP (half up on the non-negative values it keeps); signed,
  ``Add(s_out / 2)`` then FLOOR. Average pools likewise (``AveragePool`` gives sum / count);
  max pools and ReLUs as they are; a flatten is ``Flatten``, and the dense layer after it takes
  its inputs channels-first (its weight columns permuted back);
- the logits: the last layer's accumulators times ``s_acc``, snapped to that grid by a last
  ``Quant`` (``acc_bits``, signed): divide by ``s_acc`` (model metadata
  ``slimgen.logit_scale``) for the golden model's integer logits.

With power-of-two scales every value above is exact in float32 (as long as accumulators stay
below 2^24) and the graph is bit-exact; otherwise the products and ``acc_real / s_out`` round
in float32 and a value within about 10⁻⁶ of a rounding tie may round the other way. Per-channel
weight scales keep the output at the layer's one ``out_scale`` (the ratio ``s_in·s_w[c] /
s_out`` then stands for ``M[c] / 2^shift``). Recurrent layers are refused: QONNX has no operator
with the integer cell's table arithmetic.

Import (:func:`import_qonnx`): see its docstring.
"""

import json
import math

import numpy as np

from slimgen.sw.quantize import flatten_permutation

__all__ = ["QonnxError", "DOMAIN", "OPSET", "to_qonnx", "export_qonnx", "onnx_inputs",
           "logit_scale", "run_qonnx"]

DOMAIN = "qonnx.custom_op.general"
OPSET = 13


class QonnxError(ValueError):
    """A model that cannot cross between slimgen and QONNX; the message says which node or
    layer, why, and what would work."""


def _onnx():
    """The ``onnx`` package, or a :class:`QonnxError` saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise QonnxError("QONNX import and export need the onnx extra: pip install "
                         "'slimgen[onnx]' (onnx, onnxruntime, qonnx)") from None
    return onnx


def _f32(v):
    """A scale as the float32 value the graph stores (a float, or an array)."""
    a = np.asarray(v, dtype=np.float32)
    return float(a) if a.ndim == 0 else a


class _Builder:
    """Nodes and initializers of one graph, with fresh names."""

    def __init__(self):
        self.onnx = _onnx()
        self.nodes, self.inits, self.count = [], [], {}

    def name(self, stem):
        n = self.count[stem] = self.count.get(stem, -1) + 1
        return f"{stem}{n}"

    def const(self, stem, value):
        name = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(
            np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op, inputs, stem=None, *, domain="", **attrs):
        out = self.name(stem or op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=f"{op}_{out}",
                                                     domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, *, signed, narrow=False, rounding="ROUND", stem="q"):
        """``Quant(x, scale, 0, bits)``; ``scale`` a float or a broadcastable array."""
        return self.node("Quant", [x, self.const("scale", scale), self.const("zeropt", 0.0),
                                   self.const("bitwidth", float(bits))], stem, domain=DOMAIN,
                         signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def requant(self, x, scale, bits, *, relu):
        """``sat(relu(floor(x / scale + 1/2)))`` on ``bits`` bits, unsigned after the ReLU."""
        if relu:
            return self.quant(self.node("Relu", [x]), scale, bits, signed=False,
                              rounding="HALF_UP", stem="act")
        half = self.node("Add", [x, self.const("half", np.float32(scale) / 2)])
        return self.quant(half, scale, bits, signed=True, rounding="FLOOR", stem="act")


def _weights(g, rec, s_in, perm):
    """The weight and bias tensors of a dense or convolution record, and ``s_acc``."""
    s_w = _f32(rec.w_scale)
    per_channel = np.ndim(s_w) > 0
    if rec.kind == "dense":
        W = rec.W if perm is None else _unpermute(rec.W, perm)
        W, shape = W.T, (1, -1)                                   # (n_in, n_out) for MatMul
    else:
        W, shape = rec.W, (-1,) + (1,) * (rec.W.ndim - 1)         # (c_out, c_in, *k)
    s_w_b = np.reshape(s_w, shape) if per_channel else s_w
    Wq = g.quant(g.const("W", W * np.float64(s_w_b)), s_w_b, rec.weight_bits, signed=True,
                 narrow=True, stem="w")
    s_acc = _f32(np.float64(s_in) * np.asarray(s_w, dtype=np.float64))
    bq = g.quant(g.const("b", rec.b * np.float64(s_acc)), s_acc, rec.acc_bits, signed=True,
                 stem="bias")
    return Wq, bq, s_acc


def _unpermute(W, perm):
    """Dense weights over channels-last inputs → over channels-first ones (``W_cf[:, perm] =
    W_cl``, see :func:`slimgen.sw.quantize.flatten_permutation`)."""
    out = np.zeros_like(W)
    out[:, perm] = W
    return out


def _weighted(g, rec, x, s_in, perm):
    """Conv or MatMul + Add, then the requantization; returns ``(tensor, scale)``."""
    Wq, bq, s_acc = _weights(g, rec, s_in, perm)
    if rec.kind == "dense":
        acc = g.node("Add", [g.node("MatMul", [x, Wq]), bq], "acc")
    else:
        k = list(rec.W.shape[2:])
        pads = [p[0] for p in rec.pad] + [p[1] for p in rec.pad]
        acc = g.node("Conv", [x, Wq, bq], "acc", kernel_shape=k, strides=[rec.stride] * len(k),
                     pads=pads)
    if not rec.requant:                           # the logits, snapped to the accumulator grid
        return g.quant(acc, s_acc, rec.acc_bits, signed=True, stem="logits"), s_acc
    if np.ndim(s_acc) or np.ndim(rec.multiplier):
        s_out = _f32(rec.out_scale)               # per channel: the layer's one output scale
    else:
        s_out = _f32(np.float64(s_acc) * 2.0 ** rec.shift / rec.multiplier)
    return g.requant(acc, s_out, rec.out_bits, relu=rec.relu), s_out


def _pool(g, rec, x, s, shape):
    """MaxPool, or AveragePool / GlobalAveragePool then the requantization."""
    if rec.global_:
        mean = g.node("GlobalAveragePool", [x])
        count = math.prod(shape[:-1])
    elif rec.op == "max":
        return g.node("MaxPool", [x], kernel_shape=[rec.size] * rec.dims,
                      strides=[rec.stride] * rec.dims), s
    else:
        mean = g.node("AveragePool", [x], kernel_shape=[rec.size] * rec.dims,
                      strides=[rec.stride] * rec.dims)
        count = rec.size ** rec.dims
    s_out = _f32(np.float64(s) * 2.0 ** rec.shift / (rec.multiplier * count))
    y = g.requant(mean, s_out, rec.bits, relu=not rec.signed)
    return (g.node("Flatten", [y], axis=1) if rec.global_ else y), s_out


def to_qonnx(int_net, *, batch=1):
    """The QONNX ``onnx.ModelProto`` of an :class:`~slimgen.sw.integer_model.IntNetwork`
    (see the module docstring), input ``x`` of shape ``(batch, c, *spatial)`` or ``(batch,
    n)``, output ``logits`` ``(batch, n_classes)``; :class:`QonnxError` for a network it
    cannot express."""
    onnx = _onnx()
    net = int_net.network
    for rec in int_net.layers:
        if rec.kind == "recurrent":
            j = rec.source
            raise QonnxError(f"layer {j} ({net.layers[j]['type']}) cannot be exported: QONNX has "
                             f"no recurrent operator with the integer cell's fixed-point tables; "
                             f"export supports conv1d, conv2d, dense, pools, flatten and relu")
    g = _Builder()
    shape0 = net.input_shape
    in_shape = [batch, shape0[-1], *shape0[:-1]] if len(shape0) > 1 else [batch, shape0[0]]
    s = _f32(int_net.input_scale)
    x = g.quant("x", s, int_net.input_bits, signed=False, stem="xq")
    perm = None
    for rec in int_net.layers:
        shape = net.shapes[rec.source - 1]                  # channels-last, before the layer
        if rec.kind in ("dense", "conv"):
            x, s = _weighted(g, rec, x, s, perm if rec.kind == "dense" else None)
            perm = None
        elif rec.kind == "pool":
            x, s = _pool(g, rec, x, s, shape)
        elif rec.kind == "flatten":
            perm = flatten_permutation(shape) if len(shape) > 1 else None
            x = g.node("Flatten", [x], axis=1)
        else:                                               # relu
            x = g.node("Relu", [x])
    g.nodes.append(onnx.helper.make_node("Identity", [x], ["logits"], name="Identity_logits"))
    graph = onnx.helper.make_graph(
        g.nodes, net.name,
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, in_shape)],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT,
                                            [batch, net.n_outputs])], g.inits)
    model = onnx.helper.make_model(graph, producer_name="slimgen", opset_imports=[
        onnx.helper.make_opsetid("", OPSET), onnx.helper.make_opsetid(DOMAIN, 1)])
    layout = "(batch, channels, " + ", ".join(("height", "width")[:len(shape0) - 1] if
                                                len(shape0) == 3 else ("length",)) + ")" \
        if len(shape0) > 1 else "(batch, features)"
    onnx.helper.set_model_props(model, {
        "slimgen.logit_scale": repr(float(s)),
        "slimgen.input_layout": layout,
        "slimgen.network": json.dumps(net.to_dict())})
    model.doc_string = (f"slimgen integer model of {net.name}: input {layout} in [0, 1] (the "
                        f"channels-last samples transposed), logits / slimgen.logit_scale = "
                        f"the golden model's integer logits")
    return _shapes(model)


def _shapes(model):
    """``model`` with every tensor's shape (qonnx's shape inference, which knows Quant)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    return ModelWrapper(model).transform(InferShapes()).model


def export_qonnx(int_net, path, *, batch=1):
    """Write :func:`to_qonnx` of ``int_net`` to ``path`` whole (nothing written when it is
    refused)."""
    from slimgen.sw.artifact import write_bytes_atomic
    model = to_qonnx(int_net, batch=batch)
    _onnx().checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())
    return model


def onnx_inputs(int_net, x):
    """Flat channels-last samples (n, n_inputs) → the graph's input layout, float32."""
    shape = int_net.network.input_shape
    x = np.asarray(x, dtype=np.float32).reshape(len(x), *shape)
    return x if len(shape) == 1 else np.moveaxis(x, -1, 1)


def logit_scale(model):
    """The real value of one integer logit unit of an exported model."""
    props = {p.key: p.value for p in model.metadata_props}
    return float(props["slimgen.logit_scale"])


def run_qonnx(model, x):
    """Run ``model`` (an ``onnx.ModelProto`` with one input and output) on ``x`` (its input
    layout) with qonnx's ``execute_onnx``, all samples as one batch (the batch size changed by
    qonnx's cleanup)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model
    wrapper = cleanup_model(ModelWrapper(model), override_inpsize=len(x))
    name_in, name_out = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    return execute_onnx(wrapper, {name_in: np.asarray(x, dtype=np.float32)})[name_out]
