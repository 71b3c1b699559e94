"""The network description: a sequential list of layers, shapes inferred from the input, that
every stage of the flow reads (training, compression, quantization, the golden model, the
artifact, and the hardware compiler after them).

A description is plain data, the same from a JSON file, from Python or from a preset::

    {"name": "cnn",
     "layers": [{"type": "input", "shape": [8, 8, 1], "bits": 8},
                {"type": "conv2d", "channels": 4, "kernel": 3},
                {"type": "relu"},
                {"type": "maxpool", "size": 2},
                {"type": "flatten"},
                {"type": "dense", "units": 10}]}

Shapes are channels-last, as a sample streams into the hardware: a vector ``(n,)``, a sequence
``(length, channels)``, an image ``(height, width, channels)``. A data sample is the flat
vector of that shape in raster order, channel fastest. Layer kinds and their fields
(:data:`LAYER_FIELDS`; defaults in brackets):

- ``input``: ``shape``, ``bits`` [8] (width of the unsigned input codes);
- ``conv1d`` (sequence) / ``conv2d`` (image): ``channels``, ``kernel`` (1 to 7), ``stride``
  [1] (1 or 2), ``padding`` ["same"] (``"same"``, ``"valid"`` or a number of zeros on each
  side), ``bias`` [true]. ``"same"`` gives ``ceil(size / stride)`` outputs, the padding split
  as TensorFlow does: ``before = total // 2``, ``after = total − before``;
- ``maxpool`` / ``avgpool`` (1-D on sequences, 2-D on images): ``size``, ``stride`` [size];
  ``⌊(size_in − size) / stride⌋ + 1`` outputs; ``global_avgpool``: the mean over all positions;
- ``dense``: ``units`` (on a vector: flatten first), ``relu``, ``flatten``, ``dropout``:
  ``rate`` (training only), ``batchnorm``: ``momentum`` [0.9], ``eps`` [1e-5] (right after a
  convolution or dense layer, into which quantization folds it);
- ``lstm`` / ``gru``: ``hidden``, ``sequences`` [false] (every step's state out rather than the
  last), and the integer cell's fixed-point format (:data:`RECURRENT_FORMAT`).

:func:`check_network` validates a description and names the layer and field of any error
("layer 3 (conv2d): kernel 9 is not supported; use 1 to 7"); :func:`infer_shapes` gives every
layer's output shape; :func:`float_spec` the spec of the float training model
(:func:`slimgen.sw.nn.build_model`, channels-first inside); :func:`preset` the built-in
networks.
"""

import json
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Network", "NetworkError", "LAYER_FIELDS", "RECURRENT_FORMAT", "PRESETS",
           "DATA_PRESETS", "check_network", "load_network", "preset", "padding_amounts"]

MAX_UNITS = 1 << 16          # channels, units, hidden sizes
MAX_INPUT = 1 << 20          # values in one input sample
MAX_LAYERS = 256

# The integer recurrent cell's fixed-point format (slimgen.sw.quantize): name: (default, lo, hi)
RECURRENT_FORMAT = {"h_frac": (7, 1, 15), "gate_frac": (8, 2, 15), "c_bits": (13, 4, 32),
                    "table_bits": (8, 3, 12), "sigmoid_frac": (4, 0, 12),
                    "tanh_frac": (5, 0, 12)}

_CONV = {"channels": None, "kernel": None, "stride": 1, "padding": "same", "bias": True}
_POOL = {"size": None, "stride": None}
_RNN = {"hidden": None, "sequences": False, **{k: v[0] for k, v in RECURRENT_FORMAT.items()}}
# kind: {field: default (None: required)}
LAYER_FIELDS = {
    "input": {"shape": None, "bits": 8},
    "conv1d": _CONV, "conv2d": _CONV,
    "maxpool": _POOL, "avgpool": _POOL, "global_avgpool": {},
    "dense": {"units": None},
    "relu": {}, "flatten": {}, "dropout": {"rate": None},
    "batchnorm": {"momentum": 0.9, "eps": 1e-5},
    "lstm": _RNN, "gru": _RNN,
}
WEIGHT_KINDS = ("conv1d", "conv2d", "dense", "lstm", "gru")


class NetworkError(ValueError):
    """A description that cannot be built; the message names the layer and the field."""


def _where(i, kind):
    return f"layer {i} ({kind})" if isinstance(kind, str) and kind in LAYER_FIELDS \
        else f"layer {i}"


def _int(i, kind, name, v, lo, hi, what=None):
    if isinstance(v, np.integer):
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise NetworkError(f"{_where(i, kind)}: {name} must be an integer, not {v!r}")
    if not lo <= v <= hi:
        raise NetworkError(f"{_where(i, kind)}: {name} {v} is not supported; use "
                           f"{what or f'{lo} to {hi}'}")
    return v


def _shape_str(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def padding_amounts(size, kernel, stride, padding):
    """``(before, after)`` zeros of one spatial axis for a padding setting."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    return padding, padding


def _conv_out(size, kernel, stride, before, after):
    return (size + before + after - kernel) // stride + 1


@dataclass(frozen=True)
class Network:
    """A checked description: ``layers`` (tuple of dicts with every field filled in, the first
    one the ``input``), ``shapes`` (every layer's output shape, channels-last), ``name``."""
    name: str
    layers: tuple
    shapes: tuple

    @property
    def input_shape(self):
        return self.shapes[0]

    @property
    def input_bits(self):
        return self.layers[0]["bits"]

    @property
    def n_inputs(self):
        return math.prod(self.shapes[0])

    @property
    def n_outputs(self):
        return self.shapes[-1][0]

    def weight_layers(self):
        """Indices of the layers with weights (convolutions, dense, recurrent), in order."""
        return [i for i, layer in enumerate(self.layers) if layer["type"] in WEIGHT_KINDS]

    def to_dict(self):
        """The description with every default filled in (what :func:`check_network` takes)."""
        return {"name": self.name, "layers": [dict(layer) for layer in self.layers]}

    def to_json(self):
        return json.dumps(self.to_dict(), indent=1)

    def summary(self):
        """One line per layer: index, kind, the fields that are not defaults, output shape."""
        lines = []
        for i, (layer, shape) in enumerate(zip(self.layers, self.shapes)):
            kind = layer["type"]
            fields = ", ".join(f"{k}={v}" for k, v in layer.items()
                               if k != "type" and v != LAYER_FIELDS[kind].get(k, ...))
            lines.append(f"{i:3d} {kind:<14s} {fields:<34s} -> {_shape_str(shape)}")
        return "\n".join(lines)

    def float_spec(self):
        return float_spec(self)


def _fill(i, entry):
    """The entry with its kind checked, unknown fields refused and defaults filled in."""
    if not isinstance(entry, dict):
        raise NetworkError(f"layer {i}: must be an object with a \"type\", not {entry!r}")
    kind = entry.get("type")
    if kind is None:
        raise NetworkError(f"layer {i}: the field 'type' is missing; use one of "
                           f"{', '.join(LAYER_FIELDS)}")
    if not isinstance(kind, str) or kind not in LAYER_FIELDS:
        raise NetworkError(f"layer {i}: type {kind!r} is not a layer kind; use one of "
                           f"{', '.join(LAYER_FIELDS)}")
    fields = LAYER_FIELDS[kind]
    unknown = [k for k in entry if k != "type" and k not in fields]
    if unknown:
        known = ", ".join(fields) or "none"
        raise NetworkError(f"{_where(i, kind)}: field {unknown[0]!r} is not known; "
                           f"{kind} takes {known}")
    out = {"type": kind}
    for name, default in fields.items():
        if name in entry:
            v = entry[name]     # NumPy scalars from Python code become plain JSON values
            out[name] = v.item() if isinstance(v, np.generic) else v
        elif default is None and not (kind in ("maxpool", "avgpool") and name == "stride"):
            raise NetworkError(f"{_where(i, kind)}: the field {name!r} is missing")
        else:
            out[name] = default
    return out


def _check_input(layer):
    shape = layer["shape"]
    if not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= 3:
        raise NetworkError(f"layer 0 (input): shape must be a list of 1 to 3 sizes: (n,), "
                           f"(length, channels) or (height, width, channels), not {shape!r}")
    for v in shape:
        _int(0, "input", "shape", v, 1, MAX_INPUT, "positive sizes")
    if math.prod(shape) > MAX_INPUT:
        raise NetworkError(f"layer 0 (input): shape {_shape_str(shape)} holds "
                           f"{math.prod(shape)} values; at most {MAX_INPUT} are supported")
    _int(0, "input", "bits", layer["bits"], 1, 16)
    layer["shape"] = [int(v) for v in shape]
    return tuple(layer["shape"])


def _conv(i, layer, shape):
    kind = layer["type"]
    dims = 1 if kind == "conv1d" else 2
    if len(shape) != dims + 1:
        want = "a sequence (length, channels)" if dims == 1 else \
            "an image (height, width, channels)"
        raise NetworkError(f"{_where(i, kind)}: takes {want}, but its input is "
                           f"{_shape_str(shape)}")
    _int(i, kind, "channels", layer["channels"], 1, MAX_UNITS)
    k = _int(i, kind, "kernel", layer["kernel"], 1, 7)
    s = _int(i, kind, "stride", layer["stride"], 1, 2, "1 or 2")
    p = layer["padding"]
    if p not in ("same", "valid"):
        if isinstance(p, bool) or not isinstance(p, int):
            raise NetworkError(f"{_where(i, kind)}: padding must be \"same\", \"valid\" or a "
                               f"number of zeros, not {p!r}")
        _int(i, kind, "padding", p, 0, k - 1, f"0 to kernel − 1 = {k - 1}")
    if not isinstance(layer["bias"], bool):
        raise NetworkError(f"{_where(i, kind)}: bias must be true or false, "
                           f"not {layer['bias']!r}")
    out = []
    for size in shape[:-1]:
        before, after = padding_amounts(size, k, s, p)
        if size + before + after < k:
            raise NetworkError(f"{_where(i, kind)}: kernel {k} is larger than its padded "
                               f"input {_shape_str(shape)} (padding {p!r}); use a kernel of "
                               f"at most {size + before + after} or more padding")
        out.append(_conv_out(size, k, s, before, after))
    return (*out, layer["channels"])


def _pool(i, layer, shape):
    kind = layer["type"]
    if len(shape) not in (2, 3):
        raise NetworkError(f"{_where(i, kind)}: takes a sequence or an image, but its input "
                           f"is {_shape_str(shape)}")
    size = _int(i, kind, "size", layer["size"], 1, 64)
    if layer["stride"] is None:
        layer["stride"] = size
    stride = _int(i, kind, "stride", layer["stride"], 1, 64)
    if any(d < size for d in shape[:-1]):
        raise NetworkError(f"{_where(i, kind)}: size {size} is larger than its input "
                           f"{_shape_str(shape)}; use at most {min(shape[:-1])}")
    return (*((d - size) // stride + 1 for d in shape[:-1]), shape[-1])


def _recurrent(i, layer, shape):
    kind = layer["type"]
    if len(shape) != 2:
        raise NetworkError(f"{_where(i, kind)}: takes a sequence (length, channels), but its "
                           f"input is {_shape_str(shape)}")
    h = _int(i, kind, "hidden", layer["hidden"], 1, MAX_UNITS)
    if not isinstance(layer["sequences"], bool):
        raise NetworkError(f"{_where(i, kind)}: sequences must be true or false, not "
                           f"{layer['sequences']!r}")
    for name, (_, lo, hi) in RECURRENT_FORMAT.items():
        _int(i, kind, name, layer[name], lo, hi)
    if layer["tanh_frac"] > layer["gate_frac"]:
        raise NetworkError(f"{_where(i, kind)}: tanh_frac {layer['tanh_frac']} must be at most "
                           f"gate_frac {layer['gate_frac']}")
    if layer["h_frac"] > layer["gate_frac"]:
        raise NetworkError(f"{_where(i, kind)}: h_frac {layer['h_frac']} must be at most "
                           f"gate_frac {layer['gate_frac']}")
    if kind == "lstm" and layer["c_bits"] < layer["gate_frac"] + 2:
        raise NetworkError(f"{_where(i, kind)}: c_bits {layer['c_bits']} must be at least "
                           f"gate_frac + 2 = {layer['gate_frac'] + 2}")
    return (shape[0], h) if layer["sequences"] else (h,)


def _layer_shape(i, layer, shape, prev):
    kind = layer["type"]
    if kind in ("conv1d", "conv2d"):
        return _conv(i, layer, shape)
    if kind in ("maxpool", "avgpool"):
        return _pool(i, layer, shape)
    if kind == "global_avgpool":
        if len(shape) not in (2, 3):
            raise NetworkError(f"{_where(i, kind)}: takes a sequence or an image, but its "
                               f"input is {_shape_str(shape)}")
        return (shape[-1],)
    if kind == "dense":
        if len(shape) != 1:
            raise NetworkError(f"{_where(i, kind)}: takes a vector, but its input is "
                               f"{_shape_str(shape)}; put a flatten (or global_avgpool) "
                               f"before it")
        _int(i, kind, "units", layer["units"], 1, MAX_UNITS)
        return (layer["units"],)
    if kind == "flatten":
        return (math.prod(shape),)
    if kind == "dropout":
        r = layer["rate"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1:
            raise NetworkError(f"{_where(i, kind)}: rate must be a number from 0 to below 1, "
                               f"not {r!r}")
        return shape
    if kind == "batchnorm":
        if prev not in ("conv1d", "conv2d", "dense"):
            raise NetworkError(f"{_where(i, kind)}: must come right after a conv1d, conv2d or "
                               f"dense layer (quantization folds it into that layer), not "
                               f"after {prev}")
        m, e = layer["momentum"], layer["eps"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise NetworkError(f"{_where(i, kind)}: momentum must be a number from 0 to "
                               f"below 1, not {m!r}")
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 < e <= 1:
            raise NetworkError(f"{_where(i, kind)}: eps must be a number above 0 and at most "
                               f"1, not {e!r}")
        return shape
    if kind in ("lstm", "gru"):
        return _recurrent(i, layer, shape)
    return shape   # relu


def check_network(description, *, name=None):
    """A :class:`Network` from a description (a dict with ``layers``, or the list of layers),
    or :class:`NetworkError` naming the first layer and field that is wrong."""
    if isinstance(description, Network):
        return description
    if isinstance(description, dict):
        unknown = [k for k in description if k not in ("name", "layers")]
        if unknown:
            raise NetworkError(f"network: field {unknown[0]!r} is not known; a description "
                               f"has \"name\" and \"layers\"")
        if "layers" not in description:
            raise NetworkError("network: the field \"layers\" is missing")
        name = description.get("name", name)
        layers = description["layers"]
    else:
        layers = description
    name = "network" if name is None else name
    if not isinstance(name, str) or not name:
        raise NetworkError(f"network: name must be a non-empty string, not {name!r}")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise NetworkError("network: layers must be a non-empty list, the first an input layer")
    if len(layers) > MAX_LAYERS:
        raise NetworkError(f"network: {len(layers)} layers; at most {MAX_LAYERS} are supported")
    filled = [_fill(i, entry) for i, entry in enumerate(layers)]
    if filled[0]["type"] != "input":
        raise NetworkError(f"layer 0 ({filled[0]['type']}): the first layer must be the input, "
                           f"e.g. {{\"type\": \"input\", \"shape\": [8, 8, 1]}}")
    shapes = [_check_input(filled[0])]
    for i, layer in enumerate(filled[1:], 1):
        if layer["type"] == "input":
            raise NetworkError(f"layer {i} (input): only the first layer is the input")
        shapes.append(_layer_shape(i, layer, shapes[-1], filled[i - 1]["type"]))
    if len(shapes[-1]) != 1:
        raise NetworkError(f"layer {len(filled) - 1} ({filled[-1]['type']}): the network must "
                           f"end in a vector of class scores, but its output is "
                           f"{_shape_str(shapes[-1])}; end with flatten and dense")
    if not any(layer["type"] in WEIGHT_KINDS for layer in filled):
        raise NetworkError("network: has no layer with weights (conv1d, conv2d, dense, lstm, "
                           "gru)")
    return Network(name, tuple(filled), tuple(shapes))


def load_network(path):
    """A :class:`Network` from a JSON file, or the data preset ``path`` names
    (:data:`DATA_PRESETS`: ``--net mnist1d-cnn`` as ``--net file.json``; a name of it always
    means the preset, as ``--data digits`` always means the built-in digits);
    :class:`NetworkError` names the file and what is wrong."""
    if isinstance(path, str) and path in DATA_PRESETS:
        return preset(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise NetworkError(f"{path}: cannot read the network description: "
                           f"{e.strerror or e}") from None
    except UnicodeDecodeError:
        raise NetworkError(f"{path}: is not a UTF-8 text file; a network description is "
                           f"JSON") from None
    try:
        description = json.loads(text)
    except json.JSONDecodeError as e:
        raise NetworkError(f"{path}: is not valid JSON (line {e.lineno}, column {e.colno}: "
                           f"{e.msg})") from None
    except RecursionError:
        raise NetworkError(f"{path}: is nested too deeply to be a network description") \
            from None
    if not isinstance(description, dict):
        raise NetworkError(f"{path}: must hold a JSON object with \"layers\"")
    stem = str(path).rsplit("/", 1)[-1].rsplit(".", 1)[0] or "network"
    try:
        return check_network(description, name=stem)
    except NetworkError as e:
        raise NetworkError(f"{path}: {e}") from None


# ------------------------------------------------------------------ the float training model

def float_layout(net):
    """The float model's tensor layout after every layer: ``"vector"``, ``"channels"``
    (channels-first (c, *spatial), what convolutions and pooling take) or ``"steps"``
    ((T, features), what recurrent layers take). The input of a sequence is laid out as the
    first layer that cares about the order needs it."""
    kinds = [layer["type"] for layer in net.layers]
    layouts = []
    shape = net.shapes[0]
    if len(shape) == 1:
        layout = "vector"
    elif len(shape) == 3:
        layout = "channels"
    else:
        first = next((k for k in kinds[1:] if k in ("conv1d", "maxpool", "avgpool",
                                                     "global_avgpool", "lstm", "gru",
                                                     "flatten")), "flatten")
        layout = "steps" if first in ("lstm", "gru", "flatten") else "channels"
    layouts.append(layout)
    for kind, shape in zip(kinds[1:], net.shapes[1:]):
        if len(shape) == 1:
            layout = "vector"
        elif kind in ("conv1d", "conv2d", "maxpool", "avgpool"):
            layout = "channels"
        elif kind in ("lstm", "gru"):
            layout = "steps"
        layouts.append(layout)
    return layouts


def input_view(net):
    """How the data's flat samples are shaped for the float model: ``("vector", None)``,
    ``("channels", shape)`` or ``("steps", shape)`` (see :func:`to_float_input`)."""
    return float_layout(net)[0]


def to_float_input(net, x):
    """Flat samples (n, n_inputs) in channels-last raster order → the float model's input:
    (n, n_inputs), (n, c, *spatial) or (n, T, features)."""
    layout = input_view(net)
    shape = net.input_shape
    if layout == "vector":
        return x.reshape(len(x), -1)
    x = x.reshape(len(x), *shape)
    if layout == "steps":
        return x
    return x.transpose(0, len(shape), *range(1, len(shape)))


def float_spec(net):
    """The spec of the float model (:func:`slimgen.sw.nn.build_model`): channels-first
    convolution and pooling, (T, features) recurrent layers, a ``swap_axes`` where a sequence
    goes from one to the other. Returns ``(spec, origin)`` with ``origin[j]`` the description
    layer that model layer j comes from (None for an inserted ``swap_axes``)."""
    layouts = float_layout(net)
    spec, origin = [], []
    for i, layer in enumerate(net.layers[1:], 1):
        kind, shape_in, layout_in = layer["type"], net.shapes[i - 1], layouts[i - 1]
        channels = shape_in[-1]
        want = {"conv1d": "channels", "maxpool": "channels", "avgpool": "channels",
                "global_avgpool": "channels", "lstm": "steps", "gru": "steps"}.get(kind)
        if want and len(shape_in) == 2 and layout_in != want:
            spec.append({"type": "swap_axes"})
            origin.append(None)
        spec.append(_float_layer(layer, shape_in, channels))
        origin.append(i)
    return spec, origin


def _float_layer(layer, shape_in, channels):
    kind = layer["type"]
    if kind in ("conv1d", "conv2d"):
        k, s = layer["kernel"], layer["stride"]
        pads = [padding_amounts(size, k, s, layer["padding"]) for size in shape_in[:-1]]
        if all(a == b == pads[0][0] for a, b in pads):
            padding = pads[0][0]
        else:
            padding = list(pads[0]) if kind == "conv1d" else [list(p) for p in pads]
        entry = {"type": kind, "c_in": channels, "c_out": layer["channels"], "kernel": k,
                 "stride": s, "padding": padding}
        if not layer["bias"]:
            entry["bias"] = False
        return entry
    if kind in ("maxpool", "avgpool"):
        entry = {"type": f"{kind}{len(shape_in) - 1}d", "kernel": layer["size"]}
        if layer["stride"] != layer["size"]:
            entry["stride"] = layer["stride"]
        return entry
    if kind == "dense":
        return {"type": "dense", "n_in": shape_in[0], "n_out": layer["units"]}
    if kind == "batchnorm":
        return {"type": "batchnorm", "n_channels": channels, "momentum": layer["momentum"],
                "eps": layer["eps"]}
    if kind == "dropout":
        return {"type": "dropout", "rate": layer["rate"]}
    if kind in ("lstm", "gru"):
        return {"type": kind, "n_in": channels, "n_hidden": layer["hidden"],
                "return_sequences": layer["sequences"]}
    return {"type": kind}     # relu, flatten, global_avgpool


# ------------------------------------------------------------------ presets

def _mlp(sizes=(64, 32, 10), input_bits=8):
    layers = [{"type": "input", "shape": [sizes[0]], "bits": input_bits}]
    for j, units in enumerate(sizes[1:]):
        layers.append({"type": "dense", "units": units})
        if j < len(sizes) - 2:
            layers.append({"type": "relu"})
    return {"name": "mlp", "layers": layers}


def _cnn(channels=(4, 8), input_bits=8):
    """conv3x3 1→4 → conv3x3 4→8 → max-pool 2 → dense 128→10 on the 8×8 digits."""
    layers = [{"type": "input", "shape": [8, 8, 1], "bits": input_bits}]
    for c in channels:
        layers += [{"type": "conv2d", "channels": c, "kernel": 3}, {"type": "relu"}]
    layers += [{"type": "maxpool", "size": 2}, {"type": "flatten"},
               {"type": "dense", "units": 10}]
    return {"name": "cnn", "layers": layers}


def _lstm(hidden=32, input_bits=5, h_frac=7):
    """The digits' 8 rows as 8 steps of 8 pixels (codes 0..16: 5 bits), the last state to a
    dense classifier."""
    return {"name": "lstm", "layers": [{"type": "input", "shape": [8, 8], "bits": input_bits},
                                       {"type": "lstm", "hidden": hidden, "h_frac": h_frac},
                                       {"type": "dense", "units": 10}]}


def _mnist1d_cnn(channels=(25, 25, 25), input_bits=8):
    """MNIST-1D (40 points, one channel) as a 1-D CNN: convolutions of kernel 5, 3, 3 (stride
    1, 'same'), each with ReLU and a max-pool of 2 (40 → 20 → 10 → 5 positions), flatten
    (5 · 25 = 125 features, as the paper's CNN) and dense 10."""
    layers = [{"type": "input", "shape": [40, 1], "bits": input_bits}]
    for c, k in zip(channels, (5, 3, 3)):
        layers += [{"type": "conv1d", "channels": c, "kernel": k}, {"type": "relu"},
                   {"type": "maxpool", "size": 2}]
    layers += [{"type": "flatten"}, {"type": "dense", "units": 10}]
    return {"name": "mnist1d-cnn", "layers": layers}


def _mnist1d_gru(hidden=32, input_bits=8):
    """MNIST-1D as a GRU of ``hidden`` units over the 40 points, its last state into dense 10
    (the LSTM preset's structure with a GRU cell)."""
    return {"name": "mnist1d-gru", "layers": [
        {"type": "input", "shape": [40, 1], "bits": input_bits},
        {"type": "gru", "hidden": hidden}, {"type": "dense", "units": 10}]}


def _mnist1d_lstm(hidden=32, input_bits=8):
    """MNIST-1D as an LSTM of ``hidden`` units over the 40 points, its last state into dense
    10 (the structure of the LSTM engine)."""
    return {"name": "mnist1d-lstm", "layers": [
        {"type": "input", "shape": [40, 1], "bits": input_bits},
        {"type": "lstm", "hidden": hidden}, {"type": "dense", "units": 10}]}


def _mnist1d_mlp(sizes=(40, 100, 64, 10), dropout=0.1, input_bits=8):
    """MNIST-1D as an MLP: dense layers with batch normalization (folded into them when
    quantizing), ReLU and dropout (training only), the last giving the logits (the structure
    of the MLP engines)."""
    layers = [{"type": "input", "shape": [sizes[0]], "bits": input_bits}]
    for j, units in enumerate(sizes[1:]):
        layers.append({"type": "dense", "units": units})
        if j < len(sizes) - 2:
            layers += [{"type": "batchnorm"}, {"type": "relu"}]
            if dropout:
                layers.append({"type": "dropout", "rate": dropout})
    return {"name": "mnist1d-mlp", "layers": layers}


def _mnist_cnn(channels=(4, 4), dropout=0.25, input_bits=8):
    """MNIST 28×28 as a small CNN: 3×3 'same' convolutions with ReLU, one max-pool of 2
    (28 → 14), flatten (14 · 14 · 4 = 784 features), dropout in training, dense 10 (the
    structure of the CNN engine)."""
    layers = [{"type": "input", "shape": [28, 28, 1], "bits": input_bits}]
    for c in channels:
        layers += [{"type": "conv2d", "channels": c, "kernel": 3}, {"type": "relu"}]
    layers += [{"type": "maxpool", "size": 2}, {"type": "flatten"}]
    if dropout:
        layers.append({"type": "dropout", "rate": dropout})
    layers.append({"type": "dense", "units": 10})
    return {"name": "mnist-cnn", "layers": layers}


PRESETS = {"mlp": _mlp, "cnn": _cnn, "lstm": _lstm}
#: Presets for the data sets beyond the digits (MNIST-1D, MNIST 28×28: slimgen.sw.data), used
#: as descriptions (``--net``); kept apart from the model kinds' presets above, which the
#: command line's ``--model`` and the API's ``network=`` name.
DATA_PRESETS = {"mnist1d-cnn": _mnist1d_cnn, "mnist1d-gru": _mnist1d_gru,
                "mnist1d-lstm": _mnist1d_lstm, "mnist1d-mlp": _mnist1d_mlp,
                "mnist-cnn": _mnist_cnn}


def preset(name, **options):
    """The built-in network ``name`` of :data:`PRESETS` or :data:`DATA_PRESETS` (mlp:
    ``sizes``; mnist1d-mlp: ``sizes``, ``dropout``; cnn, mnist1d-cnn: ``channels``; mnist-cnn:
    ``channels``, ``dropout``; lstm: ``hidden``, ``h_frac``; mnist1d-gru, mnist1d-lstm:
    ``hidden``; all: ``input_bits``)."""
    if name in DATA_PRESETS:
        return check_network(DATA_PRESETS[name](**options))
    if name not in PRESETS:
        raise NetworkError(f"preset {name!r} is not known; use one of {', '.join(PRESETS)}")
    return check_network(PRESETS[name](**options))
