"""An :class:`slimgen.sw.cnn_quant.IntCNN` as a model artifact of kind ``"int-cnn"``.

Manifest: ``dataset``, ``split_seed``, ``input_scale``, ``input_bits``, ``in_shape``, ``pool``,
``quant_config``, ``convs`` (each :meth:`QuantConv.meta`) and ``dense`` (each
:meth:`QuantDense.meta`). Arrays: ``conv<i>.W``, ``conv<i>.b``, ``dense<i>.W``, ``dense<i>.b``
(int64; the first dense layer's columns in the hardware's (y, x, c) order). Written whole and
checked on load by :mod:`slimgen.sw.artifact`.
"""

import numpy as np

from .artifact import ArtifactError, load_artifact, save_artifact
from .cnn_quant import IntCNN
from .conv_golden import QuantConv
from .quant import QuantConfig, QuantDense

__all__ = ["KIND", "save_int_cnn", "load_int_cnn"]

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
    try:
        convs = tuple(QuantConv(W=arrays[f"conv{i}.W"], b=arrays[f"conv{i}.b"], **meta)
                      for i, meta in enumerate(manifest["convs"]))
        dense = tuple(QuantDense(W=arrays[f"dense{i}.W"], b=arrays[f"dense{i}.b"], **meta)
                      for i, meta in enumerate(manifest["dense"]))
        model = IntCNN(convs, manifest["pool"], dense, tuple(manifest["in_shape"]),
                       manifest["input_scale"], manifest["input_bits"],
                       QuantConfig.from_dict(manifest["quant_config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ArtifactError(f"Model file {path}: its layers are inconsistent: {e}") from None
    return model, manifest
