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

__all__ = ["QonnxError", "DOMAIN", "OPSET", "to_qonnx", "export_qonnx", "export_checked",
           "onnx_inputs", "logit_scale", "run_qonnx", "compare", "is_qonnx", "strip_quantizers",
           "import_qonnx", "float_import", "qonnx_agreement", "quantize_stage"]

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
    refused); returns the model."""
    from slimgen.sw.artifact import write_bytes_atomic
    model = to_qonnx(int_net, batch=batch)
    _onnx().checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())
    return model


def export_checked(int_net, path, x=None):
    """:func:`export_qonnx`, the graph first run on the samples ``x`` (flat channels-last
    floats; None: no check) against the golden model (:func:`compare`); returns the
    figures (``logit_scale``, ``input_layout`` and the comparison's)."""
    from slimgen.sw.artifact import write_bytes_atomic
    model = to_qonnx(int_net)
    _onnx().checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    figures = {"logit_scale": logit_scale(model), "input_layout": props["slimgen.input_layout"]}
    if x is not None:
        units = run_qonnx(model, onnx_inputs(int_net, x)) / logit_scale(model)
        figures.update(compare(int_net, x, np.rint(units)))
    write_bytes_atomic(path, model.SerializeToString())
    return figures


def compare(int_net, x, logits):
    """How ``logits`` (n, classes), in units of the integer model's logits, agree with the
    golden model on the samples ``x`` (flat channels-last floats): ``{"samples",
    "argmax_agreement", "logits_equal" (the fraction of samples whose logits are all equal),
    "max_logit_diff"}``."""
    from slimgen.sw.quantize import quantize_inputs
    x = np.asarray(x, dtype=np.float64)
    gold = int_net(quantize_inputs(x, int_net.input_scale, int_net.input_bits))
    logits = np.asarray(logits, dtype=np.float64).reshape(gold.shape)
    return {"samples": int(len(x)),
            "argmax_agreement": float(np.mean(logits.argmax(1) == gold.argmax(1))),
            "logits_equal": float(np.mean(np.all(logits == gold, axis=1))),
            "max_logit_diff": float(np.abs(logits - gold).max(initial=0.0))}


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


# ------------------------------------------------------------------ import

QUANT_OPS = ("Quant", "IntQuant", "BipolarQuant", "Trunc")
_FLOAT_PATH = ("Or import it as a float model, its quantizers stripped ('slimgen import "
               "--float', strip_quantizers), and let slimgen quantize it")


class _Quantizer:
    """One Quant / IntQuant / BipolarQuant node: ``text`` (how messages name it), ``scale``
    (float64, any shape), ``bits``, ``signed``, ``narrow``, ``rounding``."""

    def __init__(self, text, scale, bits, signed, narrow, rounding):
        self.text, self.scale, self.bits = text, scale, bits
        self.signed, self.narrow, self.rounding = signed, narrow, rounding


def _text(node):
    return f"node '{node.name}' ({node.op_type})"


def _is_pow2(a):
    a = np.asarray(a, dtype=np.float64)
    return bool(np.all(np.isfinite(a) & (a > 0)) and np.all(np.frexp(a)[0] == 0.5))


def _quantizer(node, consts, exact):
    """The :class:`_Quantizer` of a quantization node; with ``exact`` every parameter checked
    against what the integer model reproduces exactly."""
    from onnx import helper
    text = _text(node)
    if node.op_type == "Trunc":
        raise QonnxError(f"{text}: Trunc (Brevitas's quantized average pool) has no integer "
                         f"form in slimgen; export the pool as AveragePool followed by a Quant. "
                         f"{_FLOAT_PATH}")

    def const(i, what):
        name = node.input[i] if len(node.input) > i else ""
        if name not in consts:
            raise QonnxError(f"{text}: its {what} ({name!r}) must be a constant (an "
                             f"initializer)")
        return np.asarray(consts[name], dtype=np.float64)
    scale = const(1, "scale")
    if exact and not _is_pow2(scale):
        bad = scale.ravel()[np.argmax(~(np.frexp(scale.ravel())[0] == 0.5))]
        raise QonnxError(f"{text}: scale {bad:.9g} is not a power of two; slimgen's integer "
                         f"model reproduces QONNX bit for bit only with power-of-two scales "
                         f"(Brevitas: the FixedPoint quantizers, restrict_scaling_type "
                         f"POWER_OF_TWO). {_FLOAT_PATH}")
    if node.op_type == "BipolarQuant":
        return _Quantizer(text, scale, 1, True, False, "ROUND")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = (rounding.decode() if isinstance(rounding, bytes) else rounding).upper()
    bits = const(3, "bit width")
    q = _Quantizer(text, scale, int(bits) if bits.size == 1 else -1,
                   bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0)), rounding)
    if exact:
        zeropt = const(2, "zero point")
        if zeropt.any():
            z = zeropt.ravel()[np.argmax(zeropt.ravel() != 0)]
            raise QonnxError(f"{text}: zero point {z:g}; slimgen's integer model is symmetric (zero point 0). "
                             f"{_FLOAT_PATH}")
        if bits.size != 1 or bits.ravel()[0] != q.bits or not 1 <= q.bits <= 64:
            raise QonnxError(f"{text}: bit width {bits.ravel().tolist()}; a quantizer takes "
                             f"one whole number of bits")
    return q


def _dequantize(node, q, consts):
    """The float32 output of a quantization node on a constant, as qonnx computes it."""
    from qonnx.custom_op.general.bipolar_quant import binary_quant
    from qonnx.custom_op.general.intquant import int_quant
    x = np.asarray(consts[node.input[0]], dtype=np.float32)
    s = np.asarray(consts[node.input[1]], dtype=np.float32)
    if node.op_type == "BipolarQuant":
        return binary_quant(x, s).astype(np.float32)
    z = np.asarray(consts[node.input[2]], dtype=np.float32)
    return np.asarray(int_quant(x, s, z, np.asarray(consts[node.input[3]], np.float32),
                                q.signed, q.narrow, q.rounding), dtype=np.float32)


def _load(path_or_model):
    """``(model, where)``: a copy of the ModelProto and how messages name it."""
    onnx = _onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(path_or_model)
        return model, "the QONNX model"
    from slimgen.import_onnx import OnnxImportError, _read
    try:
        return _read(path_or_model)
    except OnnxImportError as e:
        raise QonnxError(str(e)) from None


def is_qonnx(path_or_model):
    """Whether a model has QONNX quantization nodes (Quant, IntQuant, BipolarQuant, Trunc)."""
    model, _ = _load(path_or_model)
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


def _strip(model, exact):
    """The model with its quantizers gone: a quantizer of a constant becomes the constant it
    computes (the dequantized weights), one of an activation an Identity (nodes without a
    unique name named ``<op>_<index>``). Returns ``(model, weights, acts)``: the quantizer of
    each dequantized initializer, and of each activation tensor it quantized."""
    from onnx import numpy_helper
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    names = set()
    for k, node in enumerate(g.node):
        if not node.name or node.name in names:
            node.name = f"{node.op_type}_{k}"
        names.add(node.name)
        if node.op_type == "Constant" and node.attribute:
            from onnx import helper
            value = helper.get_attribute_value(node.attribute[0])
            consts[node.output[0]] = numpy_helper.to_array(value) \
                if hasattr(value, "dims") else np.asarray(value)
    weights, acts, nodes = {}, {}, []
    for node in g.node:
        if node.op_type not in QUANT_OPS:
            nodes.append(node)
            continue
        if node.op_type == "Trunc" and not exact:
            q = None
        else:
            q = _quantizer(node, consts, exact)
        if node.input[0] in consts and q is not None:
            value = _dequantize(node, q, consts)
            consts[node.output[0]] = value
            g.initializer.append(numpy_helper.from_array(value, node.output[0]))
            weights[node.output[0]] = q
        else:
            if node.input[0] in acts:
                raise QonnxError(f"{_text(node)} quantizes {node.input[0]!r} a second time "
                                 f"({acts[node.input[0]].text} does too); slimgen takes one "
                                 f"quantizer per tensor")
            acts[node.input[0]] = q
            from onnx import helper
            nodes.append(helper.make_node("Identity", [node.input[0]], [node.output[0]],
                                          name=node.name))
    del g.node[:]
    g.node.extend(nodes)
    used = {name for node in g.node for name in node.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    listed = [i for i in g.input if i.name in used or i.name not in consts]
    del g.input[:]
    g.input.extend(listed)
    domains = {node.domain for node in g.node} | {"", "ai.onnx"}
    imports = [o for o in model.opset_import if o.domain in domains]
    del model.opset_import[:]
    model.opset_import.extend(imports)
    return model, weights, acts


def strip_quantizers(path_or_model):
    """The float model of a QONNX model (an ``onnx.ModelProto``): every quantizer of a weight
    replaced by the dequantized weights it computes, every quantizer of an activation (and
    Trunc) by an Identity; what :func:`slimgen.import_onnx.import_onnx` imports."""
    model, _ = _load(path_or_model)
    return _strip(model, exact=False)[0]


def _grain(rows):
    """Per row of ``rows`` (float64, (n, ...)), the largest power of two that divides every
    entry exactly (0 for a row of zeros)."""
    a = np.abs(rows.reshape(len(rows), -1))
    m, e = np.frexp(a)
    ints = (m * 2.0 ** 53).astype(np.int64)
    low = np.log2(np.where(ints > 0, ints & -ints, 1)).astype(np.int64)
    exp = np.where(a > 0, e - 53 + low, np.iinfo(np.int64).max)
    best = exp.min(axis=1)
    found = best < np.iinfo(np.int64).max
    return np.where(found, 2.0 ** np.where(found, best, 0), 0.0)


def _tie_possible(w, b, k):
    """Whether ``b + Σ w·x`` (integers x) can be ``2^(k−1)`` modulo ``2^k``: the sums reach
    b plus every multiple of ``2^t``, t the number of factors 2 of gcd(w) (at most k)."""
    w = np.abs(np.asarray(w, dtype=np.int64)).ravel()
    w = w[w != 0]
    t = k
    if w.size:
        g = int(np.gcd.reduce(w))
        t = min(k, (g & -g).bit_length() - 1)
    return (int(b) - (1 << (k - 1))) % (1 << t) == 0


def _log2(ratio):
    return np.frexp(np.asarray(ratio, dtype=np.float64))[1] - 1


class _Integer:
    """The integer model of a stripped QONNX graph: its description and float weights (by
    :func:`slimgen.import_onnx.import_onnx`) and the quantizers :func:`_strip` took out."""

    def __init__(self, net, float_model, info, model, weights, acts, round_ties):
        g = model.graph
        self.net, self.ties, self.weights = net, round_ties, weights
        self.nodes = info["nodes"]                  # the node of each description layer 1..
        self.by_text = {_text(n): n for n in g.node}
        self.producer = {o: n for n in g.node for o in n.output}
        self.consts = {t.name for t in g.initializer}
        _, origin = net.float_spec()
        self.params = {i: float_model.layers[j].params for j, i in enumerate(origin) if i}
        from slimgen.sw.network import float_layout
        self.layouts = float_layout(net)
        index = {t: i + 1 for i, t in enumerate(self.nodes)}
        start = next(i.name for i in g.input if i.name not in self.consts)
        self.acts = {}                              # description layer → its quantizer
        for tensor, q in acts.items():
            j = self.layer_of(tensor, index, start)
            if j in self.acts:
                raise QonnxError(f"{q.text} and {self.acts[j].text} both quantize the output "
                                 f"of {self.where(j)}; slimgen takes one quantizer per tensor")
            self.acts[j] = q
        self.desc, self.keep, self.records = [], [], []
        self.perm, self.mb, self.tied = None, 16, []

    def layer_of(self, tensor, index, start):
        """The description layer whose output ``tensor`` is (0: the input)."""
        while tensor != start:
            node = self.producer[tensor]
            if _text(node) in index:
                return index[_text(node)]
            tensor = next(n for n in node.input if n and n not in self.consts)
        return 0

    def where(self, j):
        return self.nodes[j - 1] if j else "the graph input"

    def add(self, entry, old):
        self.desc.append(entry)
        self.keep.append(old)
        return len(self.desc) - 1

    # ------------------------------------------------------------------ the walk

    def build(self):
        from slimgen.sw.integer_model import IntNetwork
        from slimgen.sw.network import check_network
        L = self.net.layers
        q = self.acts.get(0)
        if q is None:
            raise QonnxError("the graph input is not quantized; slimgen's integer model takes "
                             "integer input codes: put a Quant on it (Brevitas: QuantIdentity)")
        if q.rounding not in ("ROUND", "HALF_EVEN") or np.size(q.scale) != 1 or \
                (q.narrow and not q.signed) or q.bits - q.signed < 1:
            raise QonnxError(f"{q.text}: quantizes the input with {q.bits} "
                             f"{'signed' if q.signed else 'unsigned'} bits, narrow "
                             f"{int(q.narrow)}, rounding {q.rounding}, scale of shape "
                             f"{list(np.shape(q.scale))}; slimgen's input codes are "
                             f"clip(round(x / scale), 0, 2^bits − 1) with one scale, rounded "
                             f"half to even (ROUND), narrow 0 (signed codes of non-negative "
                             f"data take one bit less)")
        self.s, self.bits, self.signed = float(q.scale), q.bits - q.signed, False
        self.add(dict(L[0], bits=self.bits), 0)
        i = 1
        while i < len(L):
            kind = L[i]["type"]
            if kind in ("conv1d", "conv2d", "dense"):
                i = self.weighted(i)
                continue
            if kind in ("avgpool", "global_avgpool"):
                self.avgpool(i)
            elif kind in ("maxpool", "relu", "flatten"):
                getattr(self, kind)(i)
            elif kind != "dropout":
                why = ("its integer cell uses slimgen's own fixed-point tables" if
                       kind in ("lstm", "gru") else "it must be folded into the layer before it")
                raise QonnxError(f"{self.where(i)} makes a {kind} layer, which has no "
                                 f"quantized form in a QONNX import ({why}). {_FLOAT_PATH}")
            i += 1
        net = check_network({"name": self.net.name, "layers": self.desc})
        config = {"multiplier_bits": self.mb, "source": "qonnx",
                  "weight_bits": max(r.weight_bits for r in self.records if hasattr(r, "W")),
                  "act_bits": max([r.out_bits for r in self.records
                                   if getattr(r, "requant", False)] or [self.bits]),
                  "per_channel": any(np.ndim(getattr(r, "w_scale", 0)) for r in self.records)}
        return IntNetwork(net, tuple(self.records), float(self.acts[0].scale),
                          self.acts[0].bits - self.acts[0].signed, config), net

    def identity(self, j):
        """A quantizer after a layer that does not requantize must change nothing."""
        q = self.acts.get(j)
        if q is None:
            return
        lo, hi = (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if self.signed \
            else (0, (1 << self.bits) - 1)
        q_lo = -(1 << (q.bits - 1)) + q.narrow if q.signed else 0
        q_hi = (1 << (q.bits - q.signed)) - 1 - (q.narrow and not q.signed)
        if np.size(q.scale) != 1 or float(q.scale) != self.s or q_lo > lo or q_hi < hi:
            raise QonnxError(f"{q.text} requantizes the output of {self.where(j)} (scale "
                             f"{self.s:g}, {self.bits} {'signed' if self.signed else 'unsigned'}"
                             f" bits) to scale {np.ravel(q.scale)[0]:g}, {q.bits} "
                             f"{'signed' if q.signed else 'unsigned'} bits; slimgen requantizes "
                             f"only after convolution, dense and average-pool layers")

    def maxpool(self, i):
        from slimgen.sw.integer_model import IntPool
        layer = self.net.layers[i]
        src = self.add(dict(layer), i)
        self.records.append(IntPool("max", len(self.net.shapes[i - 1]) - 1, layer["size"],
                                    layer["stride"], bits=self.bits, signed=self.signed,
                                    source=src))
        self.identity(i)

    def relu(self, i):
        from slimgen.sw.integer_model import IntRelu
        src = self.add({"type": "relu"}, i)
        if self.signed:
            self.records.append(IntRelu(self.bits, source=src))
            self.signed = False
        self.identity(i)

    def flatten(self, i):
        from slimgen.sw.integer_model import IntFlatten
        shape = self.net.shapes[i - 1]
        if len(shape) > 1 and self.layouts[i - 1] == "channels":
            self.perm = flatten_permutation(shape)
        self.records.append(IntFlatten(source=self.add({"type": "flatten"}, i)))
        self.identity(i)

    # ------------------------------------------------------------------ requantization

    def requant(self, ratio, q):
        """``(M, shift)`` with ``M / 2^shift`` exactly the power-of-two ``ratio`` (one, or one
        per output channel with one shift)."""
        from slimgen.sw.fixed import multiplier_shift
        ratio = np.asarray(ratio, dtype=np.float64)
        top = int(_log2(ratio.max()))
        mb = max(16, top + 3)
        try:
            if mb > 24:
                raise ValueError(f"the accumulators' scale is 2^{top} times its scale; at most "
                                 f"2^21 fits slimgen's 24-bit multipliers")
            _, shift = multiplier_shift(float(ratio.max()), mb)
        except ValueError as e:
            raise QonnxError(f"{q.text}: {e}") from None
        M = np.rint(ratio * 2.0 ** shift).astype(np.int64)
        if M.min() < 1:
            raise QonnxError(f"{q.text}: the per-channel weight scales before it span more "
                             f"than 2^{shift} (one shift serves every channel)")
        self.mb = max(self.mb, mb)
        return (int(M) if M.ndim == 0 else M), shift

    def rounding(self, q, relu, k, W, b, what):
        """The bias change per output that makes slimgen's round-half-up of ``acc · 2^−k``
        round as ``q`` does (after a ReLU when ``relu``), or a refusal."""
        mode = q.rounding
        if relu:
            mode = {"DOWN": "FLOOR", "UP": "CEIL"}.get(mode, mode)
        adjust = np.zeros(len(b), dtype=np.int64)
        for c, kc in enumerate(np.broadcast_to(k, (len(b),))):
            kc = int(kc)
            if kc <= 0 or (mode == "HALF_UP" and relu):
                continue                              # whole numbers, or the same rounding
            half = 1 << (kc - 1)
            shifted = mode in ("FLOOR", "CEIL") or (mode == "HALF_DOWN" and relu)
            if shifted and W is None:
                raise QonnxError(f"{q.text}: rounding {q.rounding} of {what} over 2^{kc} has "
                                 f"no integer form in slimgen's average pool (it has no bias "
                                 f"to shift); HALF_UP on unsigned values does")
            if mode == "FLOOR":
                adjust[c] = -half                     # floor(v) = floor(v − 1/2 + 1/2)
            elif mode == "CEIL":
                adjust[c] = half - 1                  # ceil(a/2^k) = floor((a + 2^k − 1)/2^k)
            elif shifted:
                adjust[c] = -1                        # ceil(v − 1/2) = floor((a − 1) / 2^k + 1/2)
            elif mode in ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN"):
                if W is not None and not _tie_possible(W[c], b[c], kc):
                    continue
                if self.ties == "up":
                    self.tied.append(q.text)
                    continue
                how = {"ROUND": "half to even", "HALF_EVEN": "half to even",
                       "HALF_UP": "halves away from zero", "HALF_DOWN": "halves toward zero"}
                raise QonnxError(
                    f"{q.text}: rounds {how[mode]} ({q.rounding}), and the values it rounds "
                    f"({what} over 2^{kc}) can fall exactly halfway (output {c}), where "
                    f"slimgen's requantization rounds up: the two would differ there. Export "
                    f"with rounding_mode FLOOR (or HALF_UP after a ReLU) for a bit-exact "
                    f"import, or accept halves rounded up (round_ties='up', 'slimgen import "
                    f"--round-ties up'). {_FLOAT_PATH}")
            else:
                raise QonnxError(f"{q.text}: rounding {q.rounding} of {what} has no integer "
                                 f"form in slimgen (FLOOR, CEIL, HALF_UP or ROUND do)")
        return adjust

    def avgpool(self, i):
        from slimgen.sw.integer_model import IntPool
        layer, shape = self.net.layers[i], self.net.shapes[i - 1]
        glob = layer["type"] == "global_avgpool"
        dims = len(shape) - 1
        count = math.prod(shape[:-1]) if glob else layer["size"] ** dims
        q = self.acts.get(i)
        if q is None:
            raise QonnxError(f"{self.where(i)}: its means are not quantized; slimgen's average "
                             f"pool requantizes the window's sum: put a Quant after it")
        ratio = self.s / (count * np.asarray(q.scale, dtype=np.float64))
        if np.size(q.scale) != 1 or not _is_pow2(ratio):
            raise QonnxError(f"{q.text}: quantizes the mean of {count} values of scale "
                             f"{self.s:g} at scale {np.ravel(q.scale)[0]:g}; slimgen's average "
                             f"pool is exact for a window of a power-of-two size (and one scale)")
        if q.signed != self.signed or q.bits != self.bits or q.narrow:
            raise QonnxError(f"{q.text}: quantizes the means to {q.bits} "
                             f"{'signed' if q.signed else 'unsigned'} bits (narrow "
                             f"{int(q.narrow)}), but its input is {self.bits} "
                             f"{'signed' if self.signed else 'unsigned'} bits; slimgen's "
                             f"average pool keeps its input's width")
        self.rounding(q, not self.signed, -_log2(ratio), None, np.zeros(1, np.int64),
                      f"the window sums of {self.where(i)}")
        M, shift = self.requant(ratio, q)
        src = self.add(dict(layer), i)
        self.records.append(IntPool("avg", dims, 1 if glob else layer["size"],
                                    1 if glob else layer["stride"], glob, self.bits,
                                    self.signed, M, shift, source=src))
        self.s = float(q.scale)

    # ------------------------------------------------------------------ conv and dense

    def weight_quantizer(self, i):
        """The quantizer of layer i's weights (through layout-only constant nodes), or None."""
        name = self.by_text[self.nodes[i - 1]].input[1]
        while name not in self.weights:
            node = self.producer.get(name)
            if node is None or node.op_type not in ("Transpose", "Identity", "Reshape",
                                                    "Squeeze", "Unsqueeze", "Cast", "Flatten"):
                return None
            name = node.input[0]
        return self.weights[name]

    def block(self, i):
        """``(end, q, relu, pools)``: the last description layer of layer i's block (up to its
        quantizer and a ReLU right after it), the quantizer, whether a ReLU is in it, and the
        max pools before the quantizer (max commutes with the monotone requantization)."""
        L = self.net.layers
        end, q, relu, pools = i, self.acts.get(i), False, []
        while q is None and end + 1 < len(L) and \
                L[end + 1]["type"] in ("relu", "maxpool", "dropout", "batchnorm"):
            end += 1
            kind = L[end]["type"]
            if kind == "batchnorm":
                raise QonnxError(f"{self.where(end)} normalizes the accumulators of "
                                 f"{self.where(i)} before they are quantized; the integer "
                                 f"model needs it folded into the weights (fold it before "
                                 f"export). {_FLOAT_PATH}")
            relu |= kind == "relu"
            if kind == "maxpool":
                pools.append(end)
            q = self.acts.get(end)
        if q is not None and end + 1 < len(L) and L[end + 1]["type"] == "relu":
            end, relu = end + 1, True                 # Quant, then Relu
        return end, q, relu, pools

    def weighted(self, i):
        from slimgen.sw.integer_model import IntConv, IntDense, range_acc_bits, act_range
        from slimgen.sw.network import padding_amounts
        L, layer, text = self.net.layers, self.net.layers[i], self.where(i)
        end, q, relu, pools = self.block(i)
        last = all(l["type"] in ("relu", "dropout") for l in L[end + 1:])
        if q is None and not (last and not pools):
            raise QonnxError(f"the outputs of {text} are not quantized before "
                             f"{self.where(end + 1)}; slimgen requantizes every layer but the "
                             f"last: put an activation quantizer after it (Brevitas: QuantReLU "
                             f"or QuantIdentity)")
        wq = self.weight_quantizer(i)
        if wq is None:
            raise QonnxError(f"{text}: its weights are not quantized (no Quant on them), "
                             f"and slimgen's integer model needs integer weights. {_FLOAT_PATH}")
        p = self.params[i]
        dense = layer["type"] == "dense"
        W = p["W"].T if dense else p["W"]                            # (n_out, ...)
        b = p.get("b", np.zeros(len(W)))
        if np.size(wq.scale) == 1:
            s_w = float(np.ravel(wq.scale)[0])
        else:                                   # per channel: each row's own power of two
            s_w = np.where(_grain(W) > 0, _grain(W), float(np.max(wq.scale)))
            if q is None or np.all(s_w == s_w[0]):
                s_w = float(s_w.min())          # the logits: one scale
        s_b = np.reshape(s_w, (-1,) + (1,) * (W.ndim - 1)) if np.ndim(s_w) else s_w
        codes = W / s_b
        if not np.array_equal(codes, np.rint(codes)):
            raise QonnxError(f"{text}: its weights are not whole multiples of their scale "
                             f"({wq.text})")
        Wq = np.rint(codes).astype(np.int64)
        wb = max(2, wq.bits + (not wq.signed))
        while np.abs(Wq).max(initial=0) > (1 << (wb - 1)) - 1:
            wb += 1
        if wb > 16:
            raise QonnxError(f"{wq.text}: its weights take {wb} bits; slimgen's take 2 to 16")
        s_acc = self.s * np.asarray(s_w)
        bq = b / s_acc
        if not np.array_equal(bq, np.rint(bq)):
            c = int(np.argmax(bq != np.rint(bq)))
            raise QonnxError(f"{text}: its bias {b[c]:.9g} (output {c}) is not a whole multiple "
                             f"of the accumulator's scale (input scale · weight scale = "
                             f"{np.ravel(s_acc)[c % np.size(s_acc)]:g}); quantize the bias at "
                             f"that scale (Brevitas: Int32Bias). {_FLOAT_PATH}")
        bq = np.rint(bq).astype(np.int64)
        if dense and self.perm is not None:
            Wq = Wq[:, self.perm]
        self.perm = None
        common = dict(in_bits=self.bits, in_signed=self.signed, weight_bits=wb,
                      in_scale=self.s, w_scale=s_w)
        if not dense:
            pad = tuple(padding_amounts(n, layer["kernel"], layer["stride"], layer["padding"])
                        for n in self.net.shapes[i - 1][:-1])
            common.update(stride=layer["stride"], pad=pad)
        cls = IntDense if dense else IntConv
        acc_bits = range_acc_bits(Wq, bq, *act_range(self.bits, self.signed))
        if q is not None and last and q.signed and np.size(q.scale) == 1 and not pools and \
                np.all(float(q.scale) == s_acc) and q.bits >= acc_bits:
            q = None                            # the logits on their own grid: nothing to do
        entry = dict(layer)
        if q is None:                           # the logits: the accumulators
            src = self.add(entry, i)
            rec = cls(Wq, bq, 1, 1, False, False, out_bits=acc_bits, out_scale=float(s_acc),
                      source=src, **common)
            self.records.append(rec)
            if relu:
                from slimgen.sw.integer_model import IntRelu
                self.records.append(IntRelu(acc_bits, source=self.add({"type": "relu"}, end)))
            return end + 1
        return self.requantized(i, end, q, relu, pools, entry, cls, Wq, bq, s_acc, common)

    def requantized(self, i, end, q, relu, pools, entry, cls, Wq, bq, s_acc, common):
        from slimgen.sw.integer_model import IntPool
        if np.size(q.scale) != 1:
            raise QonnxError(f"{q.text}: has one scale per channel; slimgen's activations "
                             f"have one scale per tensor")
        if not 2 <= q.bits <= 16 or (q.narrow and not (relu and q.signed)):
            raise QonnxError(f"{q.text}: quantizes to {q.bits} "
                             f"{'signed' if q.signed else 'unsigned'} bit(s), narrow "
                             f"{int(q.narrow)}; slimgen's activations take every code of "
                             f"2 to 16 bits (narrow 0; binary activations have no integer "
                             f"form)")
        relu_out = relu or not q.signed
        out_bits = q.bits - 1 if (relu and q.signed) else q.bits
        ratio = s_acc / float(q.scale)
        bq = bq + self.rounding(q, relu_out, -_log2(ratio), Wq, bq,
                                f"the accumulators of {self.where(i)}")
        M, shift = self.requant(ratio, q)
        if entry.get("bias") is False and bq.any():
            entry["bias"] = True                # the rounding's half step is a bias
        src = self.add(entry, i)
        try:
            rec = cls(Wq, bq, M, shift, relu_out, True, out_bits=out_bits,
                      out_scale=float(q.scale), source=src, **common)
        except ValueError as e:
            raise QonnxError(f"{self.where(i)}: {e}") from None
        self.records.append(rec)
        if relu_out:
            self.add({"type": "relu"}, end if relu else i)
        for j in pools:
            layer = self.net.layers[j]
            self.records.append(IntPool("max", len(self.net.shapes[j - 1]) - 1, layer["size"],
                                        layer["stride"], bits=out_bits, signed=not relu_out,
                                        source=self.add(dict(layer), j)))
        self.s, self.bits, self.signed = float(q.scale), out_bits, not relu_out
        return end + 1


def import_qonnx(path_or_model, *, name=None, round_ties="refuse"):
    """``(int_net, float_model, info)`` from a QONNX model (a path or an ``onnx.ModelProto``)
    whose quantizers the integer model reproduces exactly.

    The quantizers are taken out (:func:`strip_quantizers`), the float graph left is read by
    :func:`slimgen.import_onnx.import_onnx` (its description and dequantized weights), and
    each quantizer becomes part of the integer model:

    - the input's ``Quant`` (ROUND, one scale): ``input_scale`` and ``input_bits`` (a signed
      input on non-negative data takes one bit less);
    - a weight's ``Quant`` / ``BipolarQuant``: the integer weights ``W / s_w`` with its bit
      width (one more when it is not narrow and uses −2^(b−1)), ``s_w`` per tensor or per
      output channel; the bias must be a whole multiple of ``s_acc = s_in · s_w``;
    - an activation's ``Quant`` after a convolution or dense layer (a ``Relu`` or ``MaxPool``
      between them may come first: both commute with it): the requantization, its ReLU when a
      ``Relu`` precedes or follows it or when it is unsigned, ``M / 2^shift = s_acc / s_y``;
      after an average pool, the pool's; elsewhere it must change nothing. The last layer's
      accumulators are the logits (a ``Quant`` on their own grid may follow).

    Exact means: every scale a power of two (then ``M / 2^shift`` equals the ratio of scales),
    zero points 0, activations of one scale, and the rounding of ``acc · 2^−k`` reproducible
    by slimgen's ``floor(v + 1/2)``: FLOOR and CEIL by a bias change of ``−2^(k−1)`` or
    ``2^(k−1) − 1``, HALF_UP as it is on the non-negative values after a ReLU, and any mode
    when ``k ≤ 0`` (whole numbers). ROUND (half to even, Brevitas's default) differs where
    ``acc · 2^−k`` is exactly halfway, which can happen unless every weight of the output has
    more factors 2 than its bias lets through (:func:`_tie_possible`); such a quantizer is
    refused, or with ``round_ties="up"`` accepted with halves rounded up (``info["tied"]``
    names them). Anything else raises :class:`QonnxError` naming the node and why.
    """
    if round_ties not in ("refuse", "up"):
        raise ValueError(f"round_ties must be 'refuse' or 'up', not {round_ties!r}")
    from pathlib import Path
    from slimgen.import_onnx import OnnxImportError, import_onnx
    from slimgen.sw.network import NetworkError
    model, where = _load(path_or_model)
    if not any(n.op_type in QUANT_OPS for n in model.graph.node):
        raise QonnxError(f"{where} has no quantizers (Quant, IntQuant, BipolarQuant): it is a "
                         f"float model; import it with slimgen import")
    if name is None:
        name = Path(path_or_model).stem if isinstance(path_or_model, (str, Path)) else \
            (model.graph.name or "qonnx")
    try:
        stripped, weights, acts = _strip(model, exact=True)
        try:
            net, float_model, info = import_onnx(stripped, name=name)
        except OnnxImportError as e:
            text = str(e)
            if text.startswith("the ONNX model"):
                text = where + text[len("the ONNX model"):]
            for q in acts.values():                # the quantizers it read as Identity
                text = text.replace(q.text.rsplit(" (", 1)[0] + " (Identity)", q.text)
            raise QonnxError(text) from None
        builder = _Integer(net, float_model, info, stripped, weights, acts, round_ties)
        int_net, new = builder.build()
    except (QonnxError, NetworkError) as e:
        text = str(e)
        raise QonnxError(text if text.startswith(where) else f"{where}: {text}") from None
    nodes = [info["nodes"][k - 1] if k else "the graph input" for k in builder.keep[1:]]
    info = dict(info, nodes=nodes, tied=sorted(set(builder.tied)), round_ties=round_ties,
                source=where)
    return int_net, _float_model(new, builder.keep, builder.params), info


def _float_model(net, keep, params):
    """The float model of the integer model's description ``net`` with the dequantized
    weights (``keep[i]``: the imported layer that new layer i comes from)."""
    from slimgen.sw.nn import build_model
    spec, origin = net.float_spec()
    model = build_model(spec, np.random.default_rng(0))
    for j, i in enumerate(origin):
        if i is None or keep[i] not in params:
            continue
        for key, value in model.layers[j].params.items():
            value[...] = params[keep[i]].get(key, 0.0)
    return model


# ------------------------------------------------------------------ a run of an imported model

def float_import(source, *, name=None, round_ties="refuse"):
    """``(network, float_model, info)`` of a QONNX model as
    :func:`slimgen.import_onnx.import_onnx` gives them for a float one: the description of
    its integer model (what a run's ``net.json`` holds) and the dequantized weights (its
    ``float.npz``); every refusal of :func:`import_qonnx` happens here."""
    int_net, model, info = import_qonnx(source, name=name, round_ties=round_ties)
    return int_net.network, model, info


def _logit_scale(int_net):
    """The real value of one unit of the integer model's logits."""
    last = [r for r in int_net.layers if r.kind in ("dense", "conv", "pool")][-1]
    return float(last.out_scale) if hasattr(last, "out_scale") else 1.0


def qonnx_agreement(source, int_net, info, x):
    """The integer model against qonnx's ``execute_onnx`` of its QONNX source on the samples
    ``x`` (flat channels-last floats), the source's outputs in units of the logits
    (:func:`compare`)."""
    from slimgen.import_onnx import onnx_input
    model, _ = _load(source)
    out = run_qonnx(model, onnx_input(np.asarray(x), int_net.network, info))
    return compare(int_net, x, out.astype(np.float64) / _logit_scale(int_net))


def quantize_stage(run):
    """The quantize stage of a run imported from a QONNX model (``config.source``): its
    ``model.npz`` is the source's integer model (:func:`import_qonnx`), never a quantization
    of ``float.npz``; the figures add how it agrees with qonnx's execution of the source on
    the test split (``qonnx_*``)."""
    import os
    from slimgen.flow import FlowError
    from slimgen.sw.artifact import ArtifactError, load_int_network, save_int_network
    from slimgen.sw.golden import argmax_first
    from slimgen.sw.network import load_network, to_float_input
    from slimgen.sw.nn import evaluate
    c = run.config
    ties = getattr(c, "round_ties", "refuse")
    if c.method != "none":
        raise FlowError(f"{run.root} holds a model imported from the QONNX model {c.source}, "
                        f"whose integer model is taken as it is: compression (--method "
                        f"{c.method}) would not reach it; use --method none, or import the "
                        f"float model (slimgen import --float) to compress and quantize it")
    net = load_network(c.net)
    try:
        int_net, model, info = import_qonnx(c.source, name=net.name, round_ties=ties)
    except QonnxError as e:
        raise FlowError(str(e)) from None
    if int_net.network.to_dict() != net.to_dict():
        raise FlowError(f"{c.source} holds another network than {c.net}: rerun the train "
                        f"stage ('slimgen flow --run {run.root} --from train')")
    tmp = run.path(".model.new.npz")
    try:
        save_int_network(tmp, int_net, dataset=c.data, split_seed=c.seed,
                         extra={"model": c.model, "imported_from": str(c.source)})
        load_int_network(tmp)
    except ArtifactError as e:
        tmp.unlink(missing_ok=True)
        raise FlowError(f"the integer model of {c.source} is one slimgen cannot take "
                        f"({str(e).split(': ', 1)[-1].split('. Rerun the', 1)[0]}); model.npz "
                        f"was not written") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, run.path("model.npz"))
    x, y = run.dataset("vector").part("test")
    x_q, _ = run.test_inputs(int_net)
    classes = argmax_first(int_net(x_q))
    agreement = qonnx_agreement(c.source, int_net, info, x)
    if agreement["logits_equal"] < 1 and ties == "refuse":
        run.log(f"quantize: the integer model's logits differ from qonnx's execution of "
                f"{c.source} on {1 - agreement['logits_equal']:.1%} of the test samples (up "
                f"to {agreement['max_logit_diff']:g}); expected equal: please report it")
    weighted = int_net.of_kind("dense", "conv")
    return {"int_accuracy": float(np.mean(classes == y)),
            "int_float_agreement": float(np.mean(
                classes == argmax_first(model.forward(to_float_input(int_net.network, x))))),
            "float_dequantized_accuracy": evaluate(model, to_float_input(int_net.network, x), y),
            "act_bits": int(int_net.config["act_bits"]), "logit_bits": int_net.logit_bits,
            "weight_bits": [int(r.weight_bits) for r in weighted],
            "acc_bits": [int(r.acc_bits) for r in weighted],
            "imported_from": str(c.source), "round_ties": ties, "tied": info["tied"],
            **{f"qonnx_{k}": v for k, v in agreement.items()}}
