"""The integer LSTM classifier as a model artifact (kind ``"int-lstm"``).

One :func:`slimgen.sw.artifact.save_artifact` file (versioned, checksummed, written whole)
holding everything :class:`slimgen.sw.lstm_golden.IntLSTMClassifier` computes with:

- manifest: ``dataset``, ``split_seed``, ``steps``, ``input_scale``, ``lstm_format`` (the
  :class:`LstmFormat` as a dict), ``multiplier`` and ``shift`` per gate, ``head`` (the head's
  ``in_bits``, ``in_signed``, ``weight_bits``), ``n_in``, ``n_hidden``, ``n_classes``, ``extra``;
- arrays (int64): ``lstm.W_<g>`` (H, n_in + H) and ``lstm.b_<g>`` (H,) for g in i, f, o, c;
  ``head.W`` (n_classes, H), ``head.b`` (n_classes,).

Loading checks the file (:func:`load_artifact`), every field and array against the widths the
format declares (:func:`check_int_lstm`), and then that its parts agree, raising
:class:`ArtifactError` naming what is wrong and the stage to rerun.
"""

import numpy as np

from .artifact import MAX_ACC_BITS, ArtifactError, Checks, load_artifact, save_artifact
from .fixed import MAX_SHIFT
from .lstm_golden import GATES, IntLSTM, IntLSTMClassifier, LstmFormat
from .sparse_golden import SparseLayer

__all__ = ["KIND", "save_int_lstm", "load_int_lstm", "check_int_lstm"]

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
    check = Checks(path, manifest)
    try:
        check_int_lstm(check, manifest, arrays)
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
    except ArtifactError:
        raise
    except (KeyError, ValueError, TypeError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
        raise check.error(f"its LSTM is inconsistent: {what}") from None
    layers = [(f"gate {g!r}", lstm.gate_layer((g,))) for g in GATES] + [("the head", head)]
    for what, layer in layers:
        if layer.acc_bits > MAX_ACC_BITS:
            raise check.error(f"{what} needs {layer.acc_bits}-bit accumulators for its weights "
                              f"and biases; slimgen builds at most {MAX_ACC_BITS}")
    return model, manifest


def check_int_lstm(check, manifest, arrays):
    """The fields and arrays of an ``"int-lstm"`` artifact, before its parts are put together
    (:class:`slimgen.sw.artifact.Checks`; a missing entry is a ``KeyError``, a bad
    ``lstm_format`` its own ``ValueError``)."""
    fmt = LstmFormat.from_dict(check.get(manifest, "lstm_format", "lstm_format"))
    for key in ("steps", "n_in", "n_hidden", "n_classes"):
        check.integer(key, check.get(manifest, key, key), 1, 4096)
    check.scale("input_scale", check.get(manifest, "input_scale", "input_scale"))
    for g in GATES:
        check.integer(f"multiplier.{g}", check.get(check.get(manifest, "multiplier", "multiplier"),
                                                   g, f"multiplier.{g}"),
                      1, (1 << fmt.multiplier_bits) - 1)
        check.integer(f"shift.{g}", check.get(check.get(manifest, "shift", "shift"), g,
                                              f"shift.{g}"), 1, MAX_SHIFT)
    head = check.get(manifest, "head", "head")
    fields = {k: check.get(head, k, f"head.{k}") for k in ("in_bits", "in_signed", "weight_bits")}
    if fields["weight_bits"] != fmt.head_weight_bits:
        raise check.bad_field("head.weight_bits", fields["weight_bits"],
                              f"{fmt.head_weight_bits}, the head's weight width "
                              f"(lstm_format.head_weight_bits)")
    if fields["in_bits"] != fmt.h_bits:
        raise check.bad_field("head.in_bits", fields["in_bits"], f"{fmt.h_bits}, the width of the "
                              f"hidden state (lstm_format.h_frac + 1)")
    if fields["in_signed"] is not True:
        raise check.bad_field("head.in_signed", fields["in_signed"],
                              "True: the hidden state is signed")
    widest = (-(1 << (MAX_ACC_BITS - 1)), (1 << (MAX_ACC_BITS - 1)) - 1,
              f"{MAX_ACC_BITS}-bit accumulators (the widest slimgen builds)")
    for g in GATES:
        bits, where = ((fmt.c_weight_bits, "lstm_format.c_weight_bits") if g == "c"
                       else (fmt.weight_bits, "lstm_format.weight_bits"))
        check.weights(f"lstm.W_{g}", check.get(arrays, f"lstm.W_{g}", f"lstm.W_{g}"), bits, where)
        check.within(f"lstm.b_{g}", check.get(arrays, f"lstm.b_{g}", f"lstm.b_{g}"), *widest)
    check.weights("head.W", check.get(arrays, "head.W", "head.W"), fmt.head_weight_bits,
                  "head.weight_bits")
    check.within("head.b", check.get(arrays, "head.b", "head.b"), *widest)
