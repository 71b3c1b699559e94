"""The integer LSTM classifier as a model artifact (kind ``"int-lstm"``).

One :func:`slimgen.sw.artifact.save_artifact` file (versioned, checksummed, written whole)
holding everything :class:`slimgen.sw.lstm_golden.IntLSTMClassifier` computes with:

- manifest: ``dataset``, ``split_seed``, ``steps``, ``input_scale``, ``lstm_format`` (the
  :class:`LstmFormat` as a dict), ``multiplier`` and ``shift`` per gate, ``head`` (the head's
  ``in_bits``, ``in_signed``, ``weight_bits``), ``n_in``, ``n_hidden``, ``n_classes``, ``extra``;
- arrays (int64): ``lstm.W_<g>`` (H, n_in + H) and ``lstm.b_<g>`` (H,) for g in i, f, o, c;
  ``head.W`` (n_classes, H), ``head.b`` (n_classes,).

Loading checks the file (:func:`load_artifact`) and then that its parts agree, raising
:class:`ArtifactError` naming what is wrong.
"""

import numpy as np

from .artifact import ArtifactError, load_artifact, save_artifact
from .lstm_golden import GATES, IntLSTM, IntLSTMClassifier, LstmFormat
from .sparse_golden import SparseLayer

__all__ = ["KIND", "save_int_lstm", "load_int_lstm"]

KIND = "int-lstm"


def save_int_lstm(path, model, *, dataset, split_seed, extra=None):
    """Write the :class:`IntLSTMClassifier` ``model`` to ``path``."""
    if not isinstance(model, IntLSTMClassifier):
        raise TypeError(f"Model must be an IntLSTMClassifier, not {model!r}")
    lstm, head = model.lstm, model.head
    manifest = {
        "dataset": dataset, "split_seed": int(split_seed),
        "steps": int(model.steps), "input_scale": float(model.input_scale),
        "lstm_format": lstm.fmt.to_dict(),
        "multiplier": {g: int(lstm.multiplier[g]) for g in GATES},
        "shift": {g: int(lstm.shift[g]) for g in GATES},
        "head": {"in_bits": int(head.in_bits), "in_signed": bool(head.in_signed),
                 "weight_bits": int(head.weight_bits)},
        "n_in": int(lstm.n_in), "n_hidden": int(lstm.n_hidden),
        "n_classes": int(model.n_classes),
        "extra": dict(model.extra, **(extra or {})),
    }
    arrays = {}
    for g in GATES:
        arrays[f"lstm.W_{g}"] = np.asarray(lstm.W[g], dtype=np.int64)
        arrays[f"lstm.b_{g}"] = np.asarray(lstm.b[g], dtype=np.int64)
    arrays["head.W"] = np.asarray(head.W, dtype=np.int64)
    arrays["head.b"] = np.asarray(head.b, dtype=np.int64)
    save_artifact(path, KIND, manifest, arrays)


def load_int_lstm(path):
    """``(model, manifest)`` from an ``"int-lstm"`` artifact."""
    manifest, arrays = load_artifact(path, KIND)
    try:
        fmt = LstmFormat.from_dict(manifest["lstm_format"])
        H, n_in = manifest["n_hidden"], manifest["n_in"]
        for g in GATES:
            W, b = arrays[f"lstm.W_{g}"], arrays[f"lstm.b_{g}"]
            if W.shape != (H, n_in + H) or b.shape != (H,):
                raise ValueError(f"gate {g!r} has W of shape {list(W.shape)} and b of shape "
                                 f"{list(b.shape)}, expected [{H}, {n_in + H}] and [{H}]")
        lstm = IntLSTM(fmt, {g: arrays[f"lstm.W_{g}"] for g in GATES},
                       {g: arrays[f"lstm.b_{g}"] for g in GATES},
                       {g: int(manifest["multiplier"][g]) for g in GATES},
                       {g: int(manifest["shift"][g]) for g in GATES})
        Wh = arrays["head.W"]
        if Wh.shape != (manifest["n_classes"], H):
            raise ValueError(f"the head's W has shape {list(Wh.shape)}, expected "
                             f"[{manifest['n_classes']}, {H}]")
        head = SparseLayer(Wh, arrays["head.b"], requant=False, **manifest["head"])
        model = IntLSTMClassifier(lstm, head, steps=int(manifest["steps"]),
                                  input_scale=float(manifest["input_scale"]),
                                  extra=dict(manifest.get("extra", {})))
    except (KeyError, ValueError, TypeError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
        raise ArtifactError(f"Model file {path}: its LSTM is inconsistent: {what}") from None
    return model, manifest
