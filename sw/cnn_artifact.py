"""An :class:`slimgen.sw.cnn_quant.IntCNN` as a model artifact of kind ``"int-cnn"``.

Manifest: ``dataset``, ``split_seed``, ``input_scale``, ``input_bits``, ``in_shape``, ``pool``,
``quant_config``, ``convs`` (each :meth:`QuantConv.meta`) and ``dense`` (each
:meth:`QuantDense.meta`). Arrays: ``conv<i>.W``, ``conv<i>.b``, ``dense<i>.W``, ``dense<i>.b``
(int64; the first dense layer's columns in the hardware's (y, x, c) order). Written whole and
checked on load by :mod:`slimgen.sw.artifact`, then field by field and array by array
(:func:`check_int_cnn`).
"""

import numpy as np

from .artifact import MAX_ACC_BITS, Checks, load_artifact, save_artifact
from .cnn_quant import IntCNN
from .conv_golden import QuantConv
from .fixed import MAX_SHIFT
from .quant import QuantConfig, QuantDense

__all__ = ["KIND", "save_int_cnn", "load_int_cnn", "check_int_cnn"]

KIND = "int-cnn"


def save_int_cnn(path, model, *, dataset, split_seed, extra=None):
    """Write ``model`` (an :class:`IntCNN`) to ``path``."""
    if not isinstance(model, IntCNN):
        raise TypeError(f"Model must be an IntCNN, not {model!r}")
    manifest = {
        "dataset": dataset, "split_seed": int(split_seed),
        "input_scale": float(model.input_scale), "input_bits": int(model.input_bits),
        "in_shape": list(model.in_shape), "pool": int(model.pool),
        "quant_config": model.config.to_dict(),
        "convs": [conv.meta() for conv in model.convs],
        "dense": [d.meta() for d in model.dense],
        **(extra or {}),
    }
    arrays = {}
    for name, layers in (("conv", model.convs), ("dense", model.dense)):
        for i, layer in enumerate(layers):
            arrays[f"{name}{i}.W"] = np.asarray(layer.W, dtype=np.int64)
            arrays[f"{name}{i}.b"] = np.asarray(layer.b, dtype=np.int64)
    save_artifact(path, KIND, manifest, arrays)


def load_int_cnn(path):
    """``(model, manifest)`` from an ``"int-cnn"`` artifact; :class:`ArtifactError` when the file
    is damaged, of another kind, or its layers do not fit together."""
    manifest, arrays = load_artifact(path, KIND)
    check_int_cnn(path, manifest, arrays)
    try:
        convs = tuple(QuantConv(W=arrays[f"conv{i}.W"], b=arrays[f"conv{i}.b"], **meta)
                      for i, meta in enumerate(manifest["convs"]))
        dense = tuple(QuantDense(W=arrays[f"dense{i}.W"], b=arrays[f"dense{i}.b"], **meta)
                      for i, meta in enumerate(manifest["dense"]))
        model = IntCNN(convs, manifest["pool"], dense, tuple(manifest["in_shape"]),
                       manifest["input_scale"], manifest["input_bits"],
                       QuantConfig.from_dict(manifest["quant_config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise Checks(path, manifest).error(f"its layers are inconsistent: {e}") from None
    return model, manifest


def check_int_cnn(path, manifest, arrays):
    """The fields and arrays of an ``"int-cnn"`` artifact
    (:class:`slimgen.sw.artifact.Checks`)."""
    check = Checks(path, manifest)

    def layer_list(key):
        layers = check.get(manifest, key, key)
        if not isinstance(layers, list) or not layers:
            raise check.bad_field(key, layers, "a list of one or more layers")
        return layers
    try:
        check.scale("input_scale", check.get(manifest, "input_scale", "input_scale"))
        bits = check.integer("input_bits", check.get(manifest, "input_bits", "input_bits"), 1, 16)
        shape = check.get(manifest, "in_shape", "in_shape")
        if not isinstance(shape, list) or len(shape) != 3:
            raise check.bad_field("in_shape", shape, "a list [channels, height, width]")
        for i, v in enumerate(shape):
            check.integer(f"in_shape[{i}]", v, 1, 4096)
        check.integer("pool", check.get(manifest, "pool", "pool"), 1, 4096)
        mb = check.get(check.get(manifest, "quant_config", "quant_config"), "multiplier_bits",
                       "quant_config.multiplier_bits")
        mb = check.integer("quant_config.multiplier_bits", mb, 4, 24)
        where = "input_bits"
        for i, meta in enumerate(layer_list("convs")):
            bits = _check_conv(check, i, meta, arrays, bits, where, mb)
            where = f"convs[{i}].out_bits"
        for i, meta in enumerate(layer_list("dense")):
            prefix = f"dense[{i}]"
            check.dense(prefix, meta, check.get(arrays, f"dense{i}.W", f"dense{i}.W"),
                        check.get(arrays, f"dense{i}.b", f"dense{i}.b"), f"dense{i}", bits,
                        where, mb)
            bits, where = meta["out_bits"], f"{prefix}.out_bits"
    except KeyError as e:
        raise check.error(f"its layers are inconsistent: missing entry {e}") from None


def _check_conv(check, i, meta, arrays, in_bits, in_where, multiplier_bits):
    """Convolution ``i``'s fields and arrays; returns its output width."""
    prefix = f"convs[{i}]"
    keys = ("multiplier", "shift", "relu", "requant", "in_bits", "out_bits", "weight_bits",
            "padding")
    f = {k: check.get(meta, k, f"{prefix}.{k}") for k in keys}
    W = check.get(arrays, f"conv{i}.W", f"conv{i}.W")
    b = check.get(arrays, f"conv{i}.b", f"conv{i}.b")
    for k in ("relu", "requant"):
        check.flag(f"{prefix}.{k}", f[k])
    wb = check.integer(f"{prefix}.weight_bits", f["weight_bits"], 2, 16)
    ib = check.integer(f"{prefix}.in_bits", f["in_bits"], 1, 16)
    if ib != in_bits:
        raise check.bad_field(f"{prefix}.in_bits", ib,
                              f"{in_bits}, the width of its input ({in_where})")
    check.integer(f"{prefix}.out_bits", f["out_bits"], 1, 16)
    check.integer(f"{prefix}.multiplier", f["multiplier"], 1, (1 << multiplier_bits) - 1)
    check.integer(f"{prefix}.shift", f["shift"], 1, MAX_SHIFT)
    if W.ndim != 4 or W.shape[2] != W.shape[3]:
        raise check.error(f"array 'conv{i}.W' has shape {list(W.shape)}; it must be (out "
                          f"channels, in channels, kernel, kernel)")
    check.integer(f"{prefix}.padding", f["padding"], 0, W.shape[2] - 1)
    check.shape(f"conv{i}.b", b, W.shape[:1], f"one bias per filter of conv{i}.W")
    check.weights(f"conv{i}.W", W, wb, f"{prefix}.weight_bits")
    check.within(f"conv{i}.b", b, -(1 << (MAX_ACC_BITS - 1)), (1 << (MAX_ACC_BITS - 1)) - 1,
                 f"{MAX_ACC_BITS}-bit accumulators (the widest slimgen builds)")
    acc_bits = QuantConv(W=W, b=b, **f).acc_bits
    if acc_bits > MAX_ACC_BITS:
        raise check.error(f"convolution {i} needs {acc_bits}-bit accumulators for its weights "
                          f"and biases; slimgen builds at most {MAX_ACC_BITS}")
    return f["out_bits"]
