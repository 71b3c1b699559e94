"""ONNX import: a sequential ONNX model as a network description (:mod:`slimgen.sw.network`)
and its float weights, checked against onnxruntime.

    network, model, info = import_onnx("model.onnx")
    figures = check_agreement("model.onnx", network, model, x_test, info=info)

The model is read with the ``onnx`` package (opsets 7 to the newest it knows; older files are
upgraded to 7 with ``onnx.version_converter``), checked (``onnx.checker``), its shapes inferred
(``onnx.shape_inference``), and its graph walked from the one input to the one output, every
node's output read by the next node only (constant subgraphs are folded first). Operators:

=============================  ===========================================================
ONNX                           description
=============================  ===========================================================
Conv (1-D, 2-D), + Add bias    ``conv1d`` / ``conv2d`` (square kernel 1–7, stride 1 or 2,
                               group 1, dilation 1, pads ``"same"``/``"valid"``/symmetric)
Gemm, MatMul (+ Add bias)      ``dense`` (``W = alpha·B`` or ``alpha·Bᵀ``, ``b = beta·C``)
BatchNormalization             ``batchnorm`` with its running statistics
Relu                           ``relu``
MaxPool, AveragePool           ``maxpool``, ``avgpool`` (no padding)
GlobalAveragePool              ``global_avgpool``
Flatten, Reshape to (N, −1)    ``flatten`` (nothing on a vector)
LSTM (iofc), GRU (zrh,         ``lstm``, ``gru``: forward, one layer, no peepholes; Y: every
linear_before_reset=1)         step (``sequences``), Y_h: the last state
Transpose, Squeeze, ...        nothing: they only change the layout
Dropout, Identity              nothing
final Softmax, LogSoftmax      nothing (the argmax is the same)
=============================  ===========================================================

Layout. Each ONNX tensor's axes are labelled with the description axis they hold (``"N"`` the
batch, None an axis of size 1 that holds nothing), so transposes only relabel: a channels-first
(N, C, H, W) tensor holds the description's (H, W, C), and the float model, channels-first
inside, takes the convolution weights as they are. Until a node fixes the input's layout (a
convolution or pooling: (N, C, spatial); a recurrent layer: its ``layout``; a dense layer or a
flatten: as it is), transposes and reshapes are remembered, so that a flat channels-last data
sample can be put into the graph's input layout (:func:`onnx_input`). A flatten whose element
order is not the float model's (after an NHWC transpose, as Keras exports have) permutes the
next dense layer's rows.

Anything else raises :class:`OnnxImportError`, whose message names the node (name and operator)
and says what is supported.
"""

import math
from pathlib import Path

import numpy as np

__all__ = ["OnnxImportError", "import_onnx", "check_agreement", "onnx_input", "SUPPORTED",
           "MIN_OPSET"]

MIN_OPSET = 7
SUPPORTED = ("Conv, Gemm, MatMul and an Add of a bias after them, BatchNormalization, Relu, "
             "MaxPool, AveragePool, GlobalAveragePool, Flatten, LSTM, GRU, Dropout, Identity, "
             "Reshape, Transpose, Squeeze, Unsqueeze and Gather that only change the layout, "
             "and a final Softmax or LogSoftmax")
_SEQUENTIAL = ("slimgen imports sequential graphs: one input, one output, each node's output "
               "read by the next node only (constants may come in anywhere)")


class OnnxImportError(ValueError):
    """An ONNX model slimgen cannot import; the message names the node and what is supported."""


def _node_name(node, index):
    name = f"'{node.name}'" if node.name else f"#{index}"
    return f"node {name} ({node.op_type})"


# ------------------------------------------------------------------ reading the file

def _read(path_or_model):
    """``(model, where)``: the ModelProto and how messages name it."""
    import onnx
    if isinstance(path_or_model, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(path_or_model)
        return model, "the ONNX model"
    path = Path(path_or_model)
    where = f"{path}"
    if path.is_dir():
        raise OnnxImportError(f"{where} is a folder, not an ONNX model file (.onnx)")
    try:
        return onnx.load(str(path)), where
    except FileNotFoundError:
        raise OnnxImportError(f"{where} does not exist") from None
    except OSError as e:
        raise OnnxImportError(f"{where} cannot be read: {e.strerror or e}") from None
    except Exception as e:      # protobuf's DecodeError and friends
        raise OnnxImportError(f"{where} is not an ONNX model (a protobuf ModelProto): "
                              f"{type(e).__name__}: {e}") from None


def _opset(model):
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def _need_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ModuleNotFoundError as e:
        raise OnnxImportError(f"ONNX import needs the packages onnx and onnxruntime ({e}): "
                              f"pip install 'slimgen[onnx]'") from None


def load_checked(path_or_model):
    """``(model, where, opset)``: read, upgraded to :data:`MIN_OPSET` when older, checked and
    with its shapes inferred; :class:`OnnxImportError` for anything unreadable or invalid."""
    _need_onnx()
    import onnx
    from onnx import checker, shape_inference, version_converter
    model, where = _read(path_or_model)
    opset = _opset(model)
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        raise OnnxImportError(f"{where} imports no version of the standard ONNX operator set "
                              f"(domain ''); slimgen imports opsets {MIN_OPSET} to {newest}")
    if opset > newest:
        raise OnnxImportError(f"{where} is of opset {opset}, newer than this onnx package "
                              f"knows ({newest}); upgrade onnx, or export at opset "
                              f"{MIN_OPSET} to {newest}")
    try:
        checker.check_model(model)
    except Exception as e:
        raise OnnxImportError(f"{where} is not a valid ONNX model (onnx.checker: "
                              f"{str(e).strip().splitlines()[0]})") from None
    if opset < MIN_OPSET:
        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:
            raise OnnxImportError(f"{where} is of opset {opset}, which onnx's version "
                                  f"converter cannot upgrade to {MIN_OPSET} ({e}); export at "
                                  f"opset {MIN_OPSET} to {newest}") from None
    try:
        model = shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:
        raise OnnxImportError(f"{where}: its shapes are inconsistent (onnx.shape_inference: "
                              f"{str(e).strip().splitlines()[0]})") from None
    return model, where, _opset(model)


# ------------------------------------------------------------------ constants

def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold(node, index, values, opset):
    """The outputs of a node whose inputs are all constants, by onnx's reference evaluator."""
    from onnx.reference import ReferenceEvaluator
    if node.op_type.startswith("Random") or node.op_type == "Multinomial":
        raise OnnxImportError(f"{_node_name(node, index)}: draws random numbers; slimgen "
                              f"imports deterministic graphs")
    try:
        run = ReferenceEvaluator(node, opsets={"": opset})
        outs = run.run(None, {name: values[name] for name in node.input if name})
    except Exception as e:
        raise OnnxImportError(f"{_node_name(node, index)}: computes a constant slimgen cannot "
                              f"evaluate ({type(e).__name__}: {e})") from None
    return dict(zip(node.output, (np.asarray(o) for o in outs)))


# ------------------------------------------------------------------ the graph walk

_DESC_AXES = {1: "F", 2: "LC", 3: "HWC"}
# The batch size a Shape of a tensor with a dynamic batch is folded with (a prime no layer
# size is likely to be): a Reshape target holding it keeps the batch.
_BATCH = 9973


class _Walk:
    """The walk along the chain of nodes: the current tensor's sizes (``dims``, None at the
    batch axis) and, once the input's layout is known, its axis labels; the description layers
    made so far with their weights."""

    def __init__(self, graph, opset, where):
        self.graph, self.opset, self.where = graph, opset, where
        self.values = {}                    # constant name → array
        self.layers = []                    # [entry, node text, weights]
        self.labels = None                  # None until the input's layout is fixed
        self.path = []                      # layout ops from the graph input, until then
        self.desc = None                    # the description's current shape
        self.flat = None                    # (shape, axes order) of a pending flatten
        self.bias_target = None             # layer an Add of a constant may add its bias to
        self.final = None                   # a final Softmax / LogSoftmax
        self.dropped = []
        self.shape_derived = set()          # constants computed from a tensor's shape

    # -------------------------------------------------------------- helpers

    def error(self, text):
        return OnnxImportError(f"{self.where}: {self.here}: {text}")

    def const(self, name, what):
        if name not in self.values:
            raise self.error(f"its {what} ({name!r}) must be a constant (an initializer), not "
                             f"a tensor computed from the input")
        return self.values[name]

    def weight(self, name, what):
        a = self.const(name, what)
        if not np.issubdtype(a.dtype, np.floating):
            raise self.error(f"its {what} ({name!r}) holds {a.dtype} values; weights must be "
                             f"floating-point numbers")
        bad = ~np.isfinite(a)
        if bad.any():
            i = tuple(int(v) for v in np.unravel_index(np.argmax(bad), a.shape))
            raise self.error(f"its {what} ({name!r}) holds {a[i]} at index {list(i)}; every "
                             f"weight must be a finite number")
        if name in self.shape_derived and a.any():
            raise self.error(f"its {what} ({name!r}) is computed from the batch size; slimgen "
                             f"takes weights that are constants")
        return a.astype(np.float64)

    def optional(self, node, k):
        return node.input[k] if len(node.input) > k and node.input[k] else None

    def layout_text(self, labels=None):
        labels = self.labels if labels is None else labels
        names = _DESC_AXES.get(len(self.desc), "")
        return "(" + ", ".join("N" if l == "N" else "1" if l is None else names[l]
                               for l in labels) + ")"

    def emit(self, entry, weights=None):
        self.layers.append([entry, self.here, weights])
        return len(self.layers) - 1

    def used_outputs(self, node):
        return [k for k, name in enumerate(node.output) if name in self.used]

    def only_output(self, node, k=0):
        used = self.used_outputs(node)
        if used and used != [k]:
            raise self.error(f"its output {node.output[used[-1]]!r} is used; slimgen takes its "
                             f"output {k} ({node.output[k]!r}) only")
        return node.output[k]

    # -------------------------------------------------------------- the input's layout

    def resolve(self, labels):
        """Fix the layout: ``labels`` of the current tensor (no None), which becomes the
        description's input."""
        if self.dims.index(None) != labels.index("N"):
            raise self.error(f"expects the batch on axis {labels.index('N')}, but it is on axis "
                             f"{self.dims.index(None)} of its input")
        rank = len(labels) - 1
        desc = [0] * rank
        for l, d in zip(labels, self.dims):
            if l != "N":
                desc[l] = d
        self.labels, self.desc = list(labels), tuple(desc)
        self.input = {"labels": list(labels), "path": [list(map(_plain, op)) for op in self.path],
                      "shape": list(self.desc)}

    def need_channels(self):
        """A convolution's or pooling's input: (N, C, spatial...)."""
        rank = len(self.dims)
        if self.labels is None:
            if rank not in (3, 4):
                raise self.error(f"takes (N, C, L) or (N, C, H, W), but its input has "
                                 f"{rank} axes")
            self.resolve(["N", 1, 0] if rank == 3 else ["N", 2, 0, 1])
        d = len(self.desc) - 1
        if d not in (1, 2) or self.labels != ["N", d] + list(range(d)):
            raise self.error(f"takes its input channels-first, (N, C, L) or (N, C, H, W), but "
                             f"it is laid out as {self.layout_text()}; slimgen supports "
                             f"1-D and 2-D layers on channels-first tensors")
        return d

    def need_vector(self):
        if self.labels is None:
            if len(self.dims) != 2:
                raise self.error(f"takes a matrix (N, features), but its input has "
                                 f"{len(self.dims)} axes")
            self.resolve(["N", 0])
        if self.labels != ["N", 0]:
            raise self.error(f"takes (N, features), but its input is laid out as "
                             f"{self.layout_text()}; flatten it first")

    # -------------------------------------------------------------- the walk

    def run(self):
        g = self.graph
        inits = {t.name for t in g.initializer}
        from onnx import numpy_helper
        for t in g.initializer:
            self.values[t.name] = numpy_helper.to_array(t)
        inputs = [i for i in g.input if i.name not in inits]
        if len(inputs) != 1 or len(g.output) != 1:
            raise OnnxImportError(
                f"{self.where}: the graph has {len(inputs)} input(s) "
                f"({', '.join(i.name for i in inputs) or 'none'}) and {len(g.output)} "
                f"output(s); {_SEQUENTIAL}")
        self.input_info = _value_shape(inputs[0], self.where)
        self.dims = [None if d == "N" else d for d in self.input_info["shape"]]
        self.batch = self.input_info["batch"]
        out_name = g.output[0].name
        chain = self.fold_constants()
        self.used = {name for _, node in chain for name in node.input if name} | {out_name}
        readers = {}
        for k, node in chain:
            for name in dict.fromkeys(node.input):
                if name and name not in self.values:
                    readers.setdefault(name, []).append((k, node))
        current, seen = inputs[0].name, set()
        while True:
            users = readers.get(current, [])
            if current == out_name:
                if users:
                    k, node = users[0]
                    raise OnnxImportError(f"{self.where}: the graph's output {current!r} is "
                                          f"also read by {_node_name(node, k)}; {_SEQUENTIAL}")
                break
            if len(users) > 1:
                (k1, n1), (k2, n2) = users[:2]
                raise OnnxImportError(f"{self.where}: the tensor {current!r} is read by "
                                      f"{_node_name(n1, k1)} and {_node_name(n2, k2)} (a "
                                      f"branch or a skip connection); {_SEQUENTIAL}")
            if not users:
                raise OnnxImportError(f"{self.where}: the tensor {current!r} is read by no "
                                      f"node and is not the graph's output {out_name!r}; "
                                      f"{_SEQUENTIAL}")
            k, node = users[0]
            self.here = _node_name(node, k)
            others = [n for n in node.input if n and n not in self.values and n != current]
            if others or list(node.input).count(current) > 1:
                raise self.error(f"reads {current!r} and the computed tensor "
                                 f"{(others or [current])[0]!r} (a merge or a skip "
                                 f"connection); {_SEQUENTIAL}")
            if self.final is not None:
                raise OnnxImportError(f"{self.where}: {self.final_node} comes before "
                                      f"{self.here}; slimgen takes a Softmax or LogSoftmax "
                                      f"only as the graph's last node")
            seen.add(k)
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                raise self.error(f"the operator {node.op_type} is not supported; slimgen "
                                 f"imports {SUPPORTED}")
            was_target = self.bias_target
            self.bias_target = None
            current = handler(node, _attrs(node), was_target)
        left = [(k, n) for k, n in chain if k not in seen]
        if left:
            k, node = left[0]
            raise OnnxImportError(f"{self.where}: {_node_name(node, k)} is not on the chain "
                                  f"from the input to the output; {_SEQUENTIAL}")
        self.here = f"the graph's output {out_name!r}"
        if self.labels is None:
            self.need_vector()
        if self.labels != ["N", 0]:
            raise self.error(f"is laid out as {self.layout_text()}; slimgen needs the class "
                             f"scores as (N, classes)")

    def fold_constants(self):
        """Fold every node whose inputs are constants, and the Shape of a tensor whose sizes
        shape inference knows (the batch stands in as :data:`_BATCH`: PyTorch builds a
        recurrent layer's zero initial state from the input's batch size); return the other
        nodes ``(index, node)`` in order."""
        g = self.graph
        shapes = {v.name: v.type.tensor_type.shape for v in (*g.input, *g.value_info)
                  if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")}
        chain = []
        for k, node in enumerate(g.node):
            self.here = _node_name(node, k)
            if node.domain not in ("", "ai.onnx"):
                raise self.error(f"is of the operator domain {node.domain!r}; slimgen imports "
                                 f"the standard ONNX operators: {SUPPORTED}")
            inputs = [name for name in node.input if name]
            if node.op_type == "Shape" and node.input[0] in shapes:
                dims = [d.dim_value if d.HasField("dim_value") else None
                        for d in shapes[node.input[0]].dim]
                if None not in dims[1:]:
                    a = _attrs(node)
                    full = np.array([_BATCH if d is None else d for d in dims], np.int64)
                    self.values[node.output[0]] = full[a.get("start", 0):a.get("end", None)]
                    self.shape_derived.add(node.output[0])
                    continue
            if node.op_type == "Constant" or (inputs and all(n in self.values for n in inputs)):
                self.values.update(_fold(node, k, self.values, self.opset))
                if any(n in self.shape_derived for n in inputs):
                    self.shape_derived.update(node.output)
            else:
                chain.append((k, node))
        return chain

    # -------------------------------------------------------------- operators

    def op_Identity(self, node, a, target):
        self.dropped.append(self.here)
        self.bias_target = target
        return node.output[0]

    def op_Dropout(self, node, a, target):
        mode = self.optional(node, 2)
        if mode is not None and bool(np.asarray(self.const(mode, "training_mode")).any()):
            raise self.error("is in training mode; slimgen imports inference graphs")
        self.dropped.append(self.here)
        return self.only_output(node)

    def op_Relu(self, node, a, target):
        self.emit({"type": "relu"})
        return node.output[0]

    def op_Conv(self, node, a, target):
        d = self.need_channels()
        W = self.weight(node.input[1], "weight W")
        if W.ndim != d + 2:
            raise self.error(f"has a weight of shape {list(W.shape)} on a {d}-D input; "
                             f"slimgen supports 1-D and 2-D convolutions")
        c_out, c_in, kernel = W.shape[0], W.shape[1], W.shape[2:]
        if a.get("group", 1) != 1:
            raise self.error(f"is a group convolution (group {a['group']}); slimgen supports "
                             f"group 1")
        if any(v != 1 for v in a.get("dilations", [1] * d)):
            raise self.error(f"has dilations {list(a['dilations'])}; slimgen supports "
                             f"dilation 1")
        if c_in != self.desc[-1]:
            raise self.error(f"has weights for {c_in} input channels, but its input has "
                             f"{self.desc[-1]}")
        k = kernel[0]
        if any(v != k for v in kernel) or not 1 <= k <= 7:
            raise self.error(f"has a {'×'.join(map(str, kernel))} kernel; slimgen supports "
                             f"square kernels of 1 to 7")
        strides = list(a.get("strides", [1] * d))
        s = strides[0]
        if any(v != s for v in strides) or s not in (1, 2):
            raise self.error(f"has strides {strides}; slimgen supports stride 1 or 2, the "
                             f"same on every axis")
        pads = _pads(a, self.desc[:-1], k, s)
        padding = self.padding(pads, k, s)
        b = self.optional(node, 2)
        weights = {"W": W, "b": self.weight(b, "bias B") if b else np.zeros(c_out)}
        if b and weights["b"].shape != (c_out,):
            raise self.error(f"has a bias of shape {list(weights['b'].shape)}; it must be "
                             f"({c_out},)")
        out = [(n + p0 + p1 - k) // s + 1 for n, (p0, p1) in zip(self.desc[:-1], pads)]
        self.bias_target = self.emit({"type": f"conv{d}d", "channels": int(c_out),
                                      "kernel": int(k), "stride": int(s), "padding": padding,
                                      "bias": bool(b)}, weights)
        self.desc = (*out, int(c_out))
        self.dims = [None, int(c_out), *out]
        return node.output[0]

    def padding(self, pads, k, s):
        """The description's padding for ``pads`` ((before, after) per spatial axis)."""
        from slimgen.sw.network import padding_amounts
        if all(p == (0, 0) for p in pads):
            return "valid"
        if all(p == padding_amounts(n, k, s, "same") for p, n in zip(pads, self.desc[:-1])):
            return "same"
        p = pads[0][0]
        if all(pair == (p, p) for pair in pads) and p <= k - 1:
            return int(p)
        raise self.error(f"pads its input by {[list(p) for p in pads]} ((before, after) per "
                         f"axis); the description pads the same number of zeros on every side "
                         f"(0 to kernel − 1 = {k - 1}), or 'same' as TensorFlow and ONNX's "
                         f"SAME_UPPER do (the odd zero after)")

    def op_Add(self, node, a, target):
        name = next(n for n in node.input if n in self.values)
        if target is None:
            raise self.error("adds a constant that is not the bias of a Conv, Gemm or MatMul "
                             "right before it; slimgen imports an Add only as such a bias")
        c = self.weight(name, "constant")
        shape = [1 if v is None else v for v in self.dims]
        entry, _, weights = self.layers[target]
        channels = weights["b"].shape[0]
        try:
            full = np.broadcast_to(c, shape) if c.ndim <= len(shape) else None
        except ValueError:
            full = None
        if full is None or np.broadcast_shapes(c.shape, tuple(shape)) != tuple(shape):
            raise self.error(f"adds a constant of shape {list(c.shape)} to a tensor of shape "
                             f"{_shape_text(self.dims)}; a bias has one value per channel")
        first = full[(0, slice(None)) + (0,) * (len(shape) - 2)]
        if not np.array_equal(full, np.broadcast_to(
                first.reshape((1, channels) + (1,) * (len(shape) - 2)), shape)):
            raise self.error(f"adds a constant of shape {list(c.shape)} that differs along "
                             f"other axes than the channels'; a bias has one value per channel")
        weights["b"] = weights["b"] + first
        if "bias" in entry:
            entry["bias"] = True
        self.bias_target = target
        return node.output[0]

    def dense(self, W, b):
        n_in, n_out = W.shape
        if n_in != self.desc[0]:
            raise self.error(f"has weights for {n_in} inputs, but its input has "
                             f"{self.desc[0]} features")
        weights = {"W": W, "b": b, "flat": self.flat}
        self.flat = None
        self.bias_target = self.emit({"type": "dense", "units": int(n_out)}, weights)
        self.desc, self.dims = (int(n_out),), [None, int(n_out)]

    def op_Gemm(self, node, a, target):
        if node.input[0] in self.values:
            raise self.error("multiplies a constant by the input; slimgen takes the input "
                             "times a constant matrix")
        self.need_vector()
        if a.get("transA", 0):
            raise self.error("has transA 1 on its input; slimgen supports transA 0")
        B = self.weight(node.input[1], "matrix B")
        if B.ndim != 2:
            raise self.error(f"has a B of shape {list(B.shape)}; it must be a matrix")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        W = alpha * (B.T if a.get("transB", 0) else B)
        c = self.optional(node, 2)
        b = np.zeros(W.shape[1])
        if c:
            C = self.weight(c, "bias C")
            try:
                b = beta * np.broadcast_to(C, (1, W.shape[1]))[0]
            except ValueError:
                raise self.error(f"has a C of shape {list(C.shape)}; slimgen takes one bias "
                                 f"per output: ({W.shape[1]},) or (1, {W.shape[1]})") from None
        self.dense(W, b.astype(np.float64))
        return node.output[0]

    def op_MatMul(self, node, a, target):
        if node.input[0] in self.values:
            raise self.error("multiplies a constant by the input; slimgen takes the input "
                             "times a constant matrix")
        self.need_vector()
        W = self.weight(node.input[1], "matrix B")
        if W.ndim != 2:
            raise self.error(f"has a B of shape {list(W.shape)}; it must be a matrix")
        self.dense(W, np.zeros(W.shape[1]))
        return node.output[0]

    def op_BatchNormalization(self, node, a, target):
        if self.labels is None and len(self.dims) > 2:
            self.need_channels()
        elif self.labels is None:
            self.need_vector()
        d = len(self.desc) - 1
        if self.labels not in (["N", 0], ["N", d, *range(d)]):
            raise self.error(f"normalizes axis 1 of a tensor laid out as {self.layout_text()}; "
                             f"slimgen takes it on the channels, (N, C, ...)")
        if a.get("training_mode", 0) or a.get("spatial", 1) != 1:
            raise self.error("is in training mode or not spatial; slimgen imports inference "
                             "batch normalization over the channels")
        self.only_output(node)
        names = ("scale", "B", "input_mean", "input_var")
        gamma, beta, mean, var = (self.weight(n, what) for n, what in zip(node.input[1:5], names))
        eps, momentum = (_float32(a.get(k, v)) for k, v in (("epsilon", 1e-5), ("momentum", 0.9)))
        if not 0 < eps <= 1:
            raise self.error(f"has epsilon {eps}; slimgen supports above 0 to 1")
        if (var < 0).any():
            raise self.error("has a negative variance; every input_var must be at least 0")
        self.emit({"type": "batchnorm", "eps": eps, "momentum": momentum if 0 <= momentum < 1
                   else 0.9}, {"gamma": gamma, "beta": beta, "running_mean": mean,
                               "running_var": var})
        return node.output[0]

    def pool(self, node, a, kind):
        d = self.need_channels()
        self.only_output(node)
        kernel = list(a.get("kernel_shape", []))
        k = kernel[0]
        if any(v != k for v in kernel):
            raise self.error(f"has a {'×'.join(map(str, kernel))} window; slimgen supports "
                             f"square windows")
        strides = list(a.get("strides", [1] * d))
        s = strides[0]
        if any(v != s for v in strides):
            raise self.error(f"has strides {strides}; slimgen supports the same stride on "
                             f"every axis")
        if any(v != 1 for v in a.get("dilations", [1] * d)) or a.get("storage_order", 0):
            raise self.error("has dilations or a column-major storage order; slimgen "
                             "supports neither")
        if any(p != (0, 0) for p in _pads(a, self.desc[:-1], k, s)):
            raise self.error("pads its input; slimgen supports pooling without padding")
        out = [(n - k) // s + 1 for n in self.desc[:-1]]
        if a.get("ceil_mode", 0) and out != [-(-(n - k) // s) + 1 for n in self.desc[:-1]]:
            raise self.error("has ceil_mode 1, which takes a partial window at the border; "
                             "slimgen supports ceil_mode 0")
        if not 1 <= k <= 64 or not 1 <= s <= 64:
            raise self.error(f"has window {k} and stride {s}; slimgen supports 1 to 64")
        self.emit({"type": kind, "size": int(k), "stride": int(s)})
        self.desc = (*out, self.desc[-1])
        self.dims = [None, self.desc[-1], *out]
        return node.output[0]

    def op_MaxPool(self, node, a, target):
        return self.pool(node, a, "maxpool")

    def op_AveragePool(self, node, a, target):
        return self.pool(node, a, "avgpool")

    def op_GlobalAveragePool(self, node, a, target):
        d = self.need_channels()
        self.emit({"type": "global_avgpool"})
        self.desc = (self.desc[-1],)
        self.dims = [None, self.desc[0]] + [1] * d
        self.labels = ["N", 0] + [None] * d
        return node.output[0]

    def flatten(self):
        if self.labels is None:
            rank = len(self.dims)
            self.resolve(["N", 2, 0, 1] if rank == 4 else ["N", *range(rank - 1)])
        if self.labels[0] != "N":
            raise self.error(f"flattens a tensor laid out as {self.layout_text()}; the batch "
                             f"must come first")
        if len(self.desc) > 1:
            order = [l for l in self.labels if l not in ("N", None)]
            self.emit({"type": "flatten"})
            self.flat = (self.desc, order)
            self.desc = (math.prod(self.desc),)
        self.labels, self.dims = ["N", 0], [None, self.desc[0]]

    def op_Flatten(self, node, a, target):
        axis = a.get("axis", 1)
        if axis < 0:
            axis += len(self.dims)
        if axis != 1 or self.dims[0] is not None:
            raise self.error(f"flattens from axis {a.get('axis', 1)}; slimgen takes a "
                             f"flatten of everything but the batch (axis 1, the batch first)")
        self.flatten()
        return node.output[0]

    def relayout(self, out_dims, kind):
        """Reshape, Squeeze, Unsqueeze to ``out_dims`` (None: the batch): before the input's
        layout is fixed, remembered; after it, only size-1 axes of no meaning come and go."""
        if self.labels is None:
            if len(out_dims) == 2:
                self.flatten()
            else:
                self.path.append(("reshape", list(self.dims)))
                self.dims = list(out_dims)
            return
        if list(out_dims) == self.dims:
            return
        if len(out_dims) == 2 and out_dims[0] is None and self.labels[0] == "N":
            self.flatten()
            return
        kept = [(d, l) for d, l in zip(self.dims, self.labels) if d != 1 or l == "N"]
        dropped = [l for d, l in zip(self.dims, self.labels) if d == 1 and l != "N"]
        if [d for d in out_dims if d != 1] != [d for d, _ in kept] or \
                any(l is not None for l in dropped):
            raise self.error(f"{kind} a tensor {_shape_text(self.dims)} laid out as "
                             f"{self.layout_text()} to {_shape_text(out_dims)}, which changes "
                             f"its layout; slimgen takes reshapes that flatten to (N, −1) or "
                             f"only add or remove axes of size 1")
        it = iter(l for _, l in kept)
        self.labels = [None if d == 1 else next(it) for d in out_dims]
        self.dims = list(out_dims)

    def op_Reshape(self, node, a, target):
        shape = [int(v) for v in self.const(node.input[1], "shape").ravel()]
        if node.input[1] in self.shape_derived and self.batch is None and shape[:1] == [_BATCH]:
            shape[0] = -1           # x.view(x.size(0), -1)
        self.relayout(self.reshaped(shape, a.get("allowzero", 0)), "reshapes")
        return node.output[0]

    def reshaped(self, shape, allowzero):
        """The reshape target with the batch as None, or an error when it moves the batch."""
        dims = self.dims
        out = [dims[i] if v == 0 and not allowzero and i < len(dims) else v
               for i, v in enumerate(shape)]
        known = math.prod(d for d in dims if d is not None)
        if None not in out and out and (out[0] == -1 or out[0] == self.batch):
            out[0] = None          # the batch: copied (0), inferred (−1) or its static size
        if -1 in out:
            rest = math.prod(v for v in out if v not in (None, -1))
            if rest > 0 and known % rest == 0:
                out[out.index(-1)] = known // rest
        if out.count(None) != 1 or out[0] is not None or dims[0] is not None or \
                math.prod(v for v in out if v is not None) != known or \
                any(v is not None and v < 1 for v in out):
            raise self.error(f"reshapes {_shape_text(dims)} to {shape}; slimgen takes "
                             f"reshapes that keep the batch as the first axis")
        return out

    def op_Squeeze(self, node, a, target):
        axes = self.axes(node, a)
        if axes is None:
            if self.batch == 1:
                raise self.error("squeezes every axis of size 1, the batch of 1 too; give "
                                 "its axes")
            axes = [i for i, d in enumerate(self.dims) if d == 1]
        if any(self.dims[i] != 1 for i in axes):
            raise self.error(f"squeezes axes {axes} of {_shape_text(self.dims)}, which are "
                             f"not all of size 1 (the batch is not squeezed)")
        self.relayout([d for i, d in enumerate(self.dims) if i not in axes], "squeezes")
        return node.output[0]

    def op_Unsqueeze(self, node, a, target):
        axes = self.axes(node, a, len(self.dims) + len(self.axes(node, a) or []))
        dims = list(self.dims)
        for i in sorted(axes):
            dims.insert(i, 1)
        self.relayout(dims, "unsqueezes")
        return node.output[0]

    def axes(self, node, a, rank=None):
        if "axes" in a:
            axes = list(a["axes"])
        elif self.optional(node, 1):
            axes = [int(v) for v in self.const(node.input[1], "axes").ravel()]
        else:
            return None
        rank = len(self.dims) if rank is None else rank
        return [v + rank if v < 0 else v for v in axes]

    def op_Transpose(self, node, a, target):
        perm = list(a.get("perm", range(len(self.dims) - 1, -1, -1)))
        if self.labels is None:
            self.path.append(("transpose", perm))
        else:
            self.labels = [self.labels[p] for p in perm]
        self.dims = [self.dims[p] for p in perm]
        return node.output[0]

    def op_Gather(self, node, a, target):
        index = self.const(node.input[1], "indices")
        axis = a.get("axis", 0)
        axis += len(self.dims) if axis < 0 else 0
        if index.ndim != 0 or self.labels is None or not 0 <= axis < len(self.dims):
            raise self.error("gathers; slimgen takes a Gather of one index that removes an "
                             "axis of size 1, or takes a recurrent layer's last step")
        i, label, size = int(index), self.labels[axis], self.dims[axis]
        last = self.layers[-1][0] if self.layers else {}
        if label is None and i in (0, -1):
            pass
        elif label == 0 and len(self.desc) == 2 and last.get("type") in ("lstm", "gru") \
                and last["sequences"] and i in (-1, size - 1):
            last["sequences"] = False       # the last step of every step: the last state
            self.desc = (self.desc[1],)
            self.labels[self.labels.index(1)] = 0
        else:
            raise self.error(f"takes index {i} of the axis {axis} of a tensor laid out as "
                             f"{self.layout_text()}; slimgen takes a Gather of one index that "
                             f"removes an axis of size 1, or a recurrent layer's last step")
        del self.labels[axis], self.dims[axis]
        return node.output[0]

    def op_Softmax(self, node, a, target):
        self.need_vector()
        if a.get("axis", 1 if self.opset < 13 else -1) not in (1, -1):
            raise self.error(f"normalizes axis {a['axis']}; slimgen drops a final softmax "
                             f"over the classes (axis 1)")
        self.final, self.final_node = node.op_type, self.here
        self.dropped.append(self.here)
        return node.output[0]

    op_LogSoftmax = op_Softmax

    def op_LSTM(self, node, a, target):
        return self.recurrent(node, a, "lstm", 4)

    def op_GRU(self, node, a, target):
        return self.recurrent(node, a, "gru", 3)

    def recurrent(self, node, a, kind, gates):
        layout = a.get("layout", 0)
        want = [0, "N", 1] if layout == 0 else ["N", 0, 1]
        if self.labels is None:
            if len(self.dims) != 3:
                raise self.error(f"takes a sequence of 3 axes, but its input has "
                                 f"{len(self.dims)}")
            self.resolve(want)
        if self.labels != want or len(self.desc) != 2:
            raise self.error(f"with layout {layout} takes its input as "
                             f"{'(T, N, F)' if layout == 0 else '(N, T, F)'}, but it is laid "
                             f"out as {self.layout_text()}")
        if a.get("direction", b"forward") not in (b"forward", "forward"):
            raise self.error(f"runs {a['direction'].decode()}; slimgen supports forward")
        defaults = ([b"Sigmoid", b"Tanh", b"Tanh"] if kind == "lstm" else [b"Sigmoid", b"Tanh"])
        if [v if isinstance(v, bytes) else v.encode() for v in a.get("activations", defaults)] \
                != defaults or "clip" in a or a.get("input_forget", 0) or \
                "activation_alpha" in a or "activation_beta" in a:
            raise self.error(f"has other activations, a clip or a coupled input and forget "
                             f"gate; slimgen supports the default {kind.upper()} cell")
        if kind == "gru" and a.get("linear_before_reset", 0) != 1:
            raise self.error("has linear_before_reset 0; slimgen supports the GRU as PyTorch "
                             "exports it, linear_before_reset 1")
        W = self.weight(node.input[1], "input weights W")
        R = self.weight(node.input[2], "recurrent weights R")
        F = self.desc[1]
        H = int(a.get("hidden_size", R.shape[-1]))
        if W.shape != (1, gates * H, F) or R.shape != (1, gates * H, H):
            raise self.error(f"has W {list(W.shape)} and R {list(R.shape)}; slimgen supports "
                             f"one direction, [1, {gates}·{H}, {F}] and [1, {gates}·{H}, {H}]")
        b = self.optional(node, 3)
        B = self.weight(b, "biases B") if b else np.zeros((1, 2 * gates * H))
        if B.shape != (1, 2 * gates * H):
            raise self.error(f"has B {list(B.shape)}; it must be [1, {2 * gates * H}]")
        lens = self.optional(node, 4)
        if lens and not (self.const(lens, "sequence_lens") == self.desc[0]).all():
            raise self.error("has sequences of other lengths than the input's; slimgen runs "
                             "every step")
        for k, what in ((5, "initial_h"), (6, "initial_c"), (7, "peepholes P")):
            name = self.optional(node, k)
            if name and self.weight(name, what).any():
                raise self.error(f"has a non-zero {what}; slimgen supports a zero initial state "
                                 f"and no peepholes")
        used = self.used_outputs(node)
        if len(used) != 1 or used[0] > 1:
            which = ", ".join(node.output[k] for k in used) or "none"
            raise self.error(f"has its outputs {which} used; slimgen takes either Y (every "
                             f"step) or Y_h (the last state)")
        sequences = used[0] == 0
        T = self.desc[0]
        self.emit({"type": kind, "hidden": H, "sequences": sequences},
                  _gate_weights(kind, W[0], R[0], B[0], H))
        self.desc = (T, H) if sequences else (H,)
        if sequences:
            self.labels = [0, None, "N", 1] if layout == 0 else ["N", 0, None, 1]
            self.dims = [T, 1, None, H] if layout == 0 else [None, T, 1, H]
        else:
            self.labels = [None, "N", 0] if layout == 0 else ["N", None, 0]
            self.dims = [1, None, H] if layout == 0 else [None, 1, H]
        return node.output[used[0]]


def _gate_weights(kind, W, R, B, H):
    """The nn layer's parameters from ONNX's stacked gates (LSTM: i, o, f, c; GRU: z, r, h),
    each block (H, ·) transposed to the layer's (·, H)."""
    blocks = lambda M: [M[k * H:(k + 1) * H] for k in range(len(M) // H)]  # noqa: E731
    Wg, Rg, Wb, Rb = blocks(W), blocks(R), blocks(B[:len(B) // 2]), blocks(B[len(B) // 2:])
    if kind == "lstm":
        order = {"i": 0, "o": 1, "f": 2, "c": 3}
        p = {}
        for g, k in order.items():
            p[f"W_{g}"], p[f"U_{g}"], p[f"b_{g}"] = Wg[k].T, Rg[k].T, Wb[k] + Rb[k]
        return p
    p = {}
    for g, k in (("z", 0), ("r", 1), ("n", 2)):
        p[f"W_{g}"], p[f"U_{g}"] = Wg[k].T, Rg[k].T
    p["b_z"], p["b_r"] = Wb[0] + Rb[0], Wb[1] + Rb[1]
    p["b_n"], p["b_hn"] = Wb[2], Rb[2]
    return p


def _pads(a, sizes, k, s):
    """(before, after) zeros per spatial axis from ``pads`` or ``auto_pad``."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    d = len(sizes)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for n in sizes:
            total = max((-(-n // s) - 1) * s + k - n, 0)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * d
    pads = list(a.get("pads", [0] * (2 * d)))
    return [(int(pads[i]), int(pads[i + d])) for i in range(d)]


def _float32(v):
    """An attribute's float32 as the shortest decimal that gives it back (1e-05, not
    9.999999747378752e-06)."""
    return float(str(np.float32(v)))


def _plain(v):
    return [None if x is None else int(x) for x in v] if isinstance(v, list) else v


def _shape_text(dims):
    return "(" + ", ".join("N" if d is None else str(d) for d in dims) + ")"


def _value_shape(value, where):
    """The graph input's name, shape (``"N"`` at the batch axis) and static batch size."""
    t = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not t.HasField("shape"):
        raise OnnxImportError(f"{where}: the graph input {value.name!r} has no tensor shape; "
                              f"export the model with its input shape")
    from onnx import TensorProto
    if t.elem_type not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
        raise OnnxImportError(f"{where}: the graph input {value.name!r} is of type "
                              f"{TensorProto.DataType.Name(t.elem_type)}; slimgen imports "
                              f"models with a floating-point input")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    dynamic = [i for i, d in enumerate(dims) if d is None]
    if not dims or dynamic not in ([], [0]):
        raise OnnxImportError(f"{where}: the graph input {value.name!r} has the shape "
                              f"{_shape_text(dims).replace('N', '?')}; slimgen takes a batch "
                              f"first and every other size fixed, e.g. (N, 1, 8, 8)")
    batch = dims[0]
    return {"name": value.name, "shape": ["N"] + dims[1:], "batch": batch,
            "elem_type": int(t.elem_type)}


# ------------------------------------------------------------------ the public functions

def import_onnx(path_or_model, *, name=None):
    """``(network, model, info)`` from an ONNX model (a path or a ``ModelProto``).

    ``network``: the :class:`~slimgen.sw.network.Network`; ``model``: the float
    :class:`~slimgen.sw.nn.Sequential` of its :func:`~slimgen.sw.network.float_spec` with the
    ONNX weights; ``info``: plain data about the source (``opset``, ``producer_name``,
    ``producer_version``, ``input`` (name, shape, static ``batch``, ``layout`` for
    :func:`onnx_input`), ``output``, ``final`` (a dropped Softmax/LogSoftmax or None), the node
    of every layer (``nodes``) and the nodes dropped (``dropped``)).

    Raises :class:`OnnxImportError` naming the node and what is supported.
    """
    from slimgen.sw.network import NetworkError, check_network
    model, where, opset = load_checked(path_or_model)
    walk = _Walk(model.graph, opset, where)
    walk.run()
    if name is None:
        name = Path(path_or_model).stem if isinstance(path_or_model, (str, Path)) else \
            (model.graph.name or "onnx")
    layers = [{"type": "input", "shape": list(walk.input["shape"])}]
    layers += [entry for entry, _, _ in walk.layers]
    try:
        net = check_network({"name": name or "onnx", "layers": layers})
    except NetworkError as e:
        text = str(e)
        if text.startswith("layer ") and text.split()[1].isdigit():
            i = int(text.split()[1])
            if 1 <= i <= len(walk.layers):
                raise OnnxImportError(f"{where}: {walk.layers[i - 1][1]} makes {text}") \
                    from None
        raise OnnxImportError(f"{where}: makes a network description slimgen cannot take: "
                              f"{text}") from None
    float_model = _float_model(net, walk.layers)
    info = {"opset": opset, "ir_version": int(model.ir_version),
            "producer_name": model.producer_name, "producer_version": model.producer_version,
            "graph_name": model.graph.name,
            "input": dict(walk.input_info, layout=walk.input),
            "output": model.graph.output[0].name, "final": walk.final,
            "nodes": [text for _, text, _ in walk.layers], "dropped": walk.dropped}
    return net, float_model, info


def _float_model(net, layers):
    """The float model of ``net`` with the imported weights (a flatten's order permuting the
    next dense layer's rows where ONNX flattened in another order than the float model)."""
    from slimgen.sw.network import float_layout
    from slimgen.sw.nn import build_model
    spec, origin = net.float_spec()
    model = build_model(spec)
    layouts = float_layout(net)
    flatten_at = None
    for j, i in enumerate(origin):
        if i is None:
            continue
        entry, _, weights = layers[i - 1]
        layer = model.layers[j]
        if entry["type"] == "flatten":
            flatten_at = layouts[i - 1]
        if weights is None:
            continue
        weights = dict(weights)
        flat = weights.pop("flat", None)
        if flat is not None:
            weights["W"] = _permute_rows(weights["W"], *flat, flatten_at)
        for key, value in weights.items():
            if key == "b" and key not in layer.params:
                continue            # a convolution without bias (all zeros)
            target = layer.params[key] if key in layer.params else layer.buffers[key]
            assert target.shape == value.shape, (entry, key, target.shape, value.shape)
            target[...] = value
    return model


def _permute_rows(W, shape, order, layout):
    """W's rows in the float model's flatten order. ONNX flattened the description axes in
    ``order`` (memory order); the float model flattens channels-first (``layout`` "channels")
    or in the description's own order ("steps")."""
    ndim = len(shape)
    float_axes = [ndim - 1, *range(ndim - 1)] if layout == "channels" else list(range(ndim))
    index = np.arange(math.prod(shape)).reshape([shape[a] for a in float_axes])
    index = index.transpose(np.argsort(float_axes))        # [description multi-index] → row
    rows = index.transpose(order).ravel()                  # ONNX row i → float row rows[i]
    out = np.empty_like(W)
    out[rows] = W
    return out


def onnx_input(x, network, info):
    """Flat channels-last samples ``x`` (n, n_inputs) in the graph input's layout (float32)."""
    layout = info["input"]["layout"]
    n = len(x)
    labels = layout["labels"]
    d = np.asarray(x).reshape(n, *network.input_shape)
    perm = [0 if l == "N" else 1 + l for l in labels]
    t = d.transpose(perm)
    for op, arg in reversed(layout["path"]):
        if op == "transpose":
            t = t.transpose(np.argsort(arg))
        else:
            t = t.reshape([n if v is None else v for v in arg])
    from onnx.helper import tensor_dtype_to_np_dtype
    return np.ascontiguousarray(t, dtype=tensor_dtype_to_np_dtype(info["input"]["elem_type"]))


def _runtime(model, where):
    """``(run, name)``: a function of the input array that runs ``model``, by onnxruntime, or
    by onnx's reference evaluator where onnxruntime cannot (an LSTM with ``layout`` 1)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 4
    inits = {t.name for t in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in inits)
    try:
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        return (lambda x: session.run(None, {name: x})[0]), "onnxruntime"
    except Exception as e:
        why = str(e).strip().splitlines()[0]
    from onnx.reference import ReferenceEvaluator
    try:
        evaluator = ReferenceEvaluator(model)
    except Exception as e:
        raise OnnxImportError(f"{where}: neither onnxruntime ({why}) nor onnx's reference "
                              f"evaluator ({e}) runs it, so its import cannot be checked") \
            from None
    return (lambda x: evaluator.run(None, {name: x})[0]), "onnx.reference"


def check_agreement(onnx_model, network, float_model, x, *, info=None):
    """How closely the float model computes what the ONNX model does on the samples ``x``
    (flat, channels-last, as the data set holds them): onnxruntime (float32) on ``x`` in the
    graph's input layout against the float model (float64) on ``to_float_input(network, x)``.

    Returns ``{"max_relative_difference": max|a − b| / max|b|, "argmax_agreement": the fraction of
    samples with the same largest output, "samples": n, "runtime": "onnxruntime"}`` with ``b``
    onnxruntime's outputs (a dropped final Softmax or LogSoftmax applied to the float model's
    outputs first). A model onnxruntime does not run (an LSTM with ``layout`` 1) is run by
    onnx's reference evaluator instead (``"runtime": "onnx.reference"``).
    """
    from slimgen.sw.network import to_float_input
    model, where, _ = load_checked(onnx_model)
    if info is None:
        _, _, info = import_onnx(model)
    run, runtime = _runtime(model, where)
    x = np.asarray(x, dtype=np.float64)
    batch = info["input"]["batch"]
    feed = onnx_input(x, network, info)
    if batch is None:
        b = run(feed)
    else:
        parts = []
        for i in range(0, len(x), batch):
            chunk = feed[i:i + batch]
            pad = batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            parts.append(run(chunk)[:batch - pad])
        b = np.concatenate(parts)
    b = np.asarray(b, dtype=np.float64).reshape(len(x), -1)
    a = float_model.forward(to_float_input(network, x))
    if info["final"]:
        a = a - a.max(axis=1, keepdims=True)
        a = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
        if info["final"] == "Softmax":
            a = np.exp(a)
    scale = float(np.abs(b).max())
    diff = float(np.abs(a - b).max())
    return {"max_relative_difference": diff / scale if scale else diff,
            "argmax_agreement": float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1))),
            "samples": int(len(x)), "runtime": runtime}
