"""The model artifact: one versioned file that carries a model between the stages.

Format (``FORMAT`` = "slimgen-artifact", ``VERSION`` = 2): a NumPy ``.npz`` (zip) holding

- ``manifest``: UTF-8 JSON as a uint8 array, with ``format``, ``version``, ``kind``
  (``"float"`` for a trained model, ``"int"`` for a quantized one), the network description
  (``network``, :mod:`slimgen.sw.network`), the data set name and split seed, and the shape,
  dtype and SHA-256 of every array; a float artifact adds the float model's ``spec``, an
  integer one every record of the integer model (``layers``: its kind and fields, see
  :mod:`slimgen.sw.integer_model`), ``input_scale``, ``input_bits`` and ``quant_config``;
- the arrays, named ``layer<i>.<name>`` (``W``, ``b``; a recurrent cell's ``W_<gate>``,
  ``b_<gate>``).

An integer artifact may carry ``input_order`` (a permutation of the inputs: where each input
sits in the banks of a sparse MAC array); without it the order is the natural one. Version 1
float files load (their ``spec`` is the model); version 1 integer files (one format per model
kind) are refused with the command that regenerates them.

Files are written whole: to a temporary file in the same folder, then renamed over the target.
Loading checks everything and raises :class:`ArtifactError` naming what is wrong: the file's
integrity (checksums), then its contents (:class:`Checks`) — every float finite, every integer
within the bit width its manifest declares (weights within ``weight_bits``, biases within the
accumulator), every manifest field within its range — and says which stage to rerun.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from .fixed import MAX_SHIFT, signed_range, symmetric_max
from .golden import accumulator_bits, forward
from .integer_model import (IntConv, IntDense, IntFlatten, IntNetwork, IntPool, IntRecurrent,
                            IntRelu, RecurrentFormat)
from .network import NetworkError, check_network
from .quantize import first_index

__all__ = [
    "ArtifactError", "FORMAT", "VERSION", "save_artifact", "load_artifact",
    "save_float_model", "load_float_model", "save_int_network", "load_int_network",
    "write_bytes_atomic", "Checks", "MAX_ACC_BITS",
]

FORMAT = "slimgen-artifact"
VERSION = 2

# Widest accumulator: |acc · M| < 2^39 · 2^24 keeps the golden model's int64 products exact.
MAX_ACC_BITS = 40


class ArtifactError(ValueError):
    """A model file that cannot be used: damaged, truncated, of another version or kind."""


def _sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def write_bytes_atomic(path, data):
    """Write ``data`` to ``path`` whole: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the usual mode for new files.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_artifact(path, kind, manifest, arrays):
    """Write an artifact of ``kind`` with a manifest (JSON-able dict) and named arrays."""
    manifest = dict(manifest, format=FORMAT, version=VERSION, kind=kind)
    manifest["arrays"] = {name: {"shape": list(a.shape), "dtype": str(a.dtype),
                                 "sha256": _sha256(a)} for name, a in arrays.items()}
    blob = np.frombuffer(json.dumps(manifest, indent=1, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, manifest=blob, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def load_artifact(path, kind):
    """``(manifest, arrays)`` of the artifact at ``path``, which must be of ``kind``."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"Model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {name: f[name] for name in f.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise ArtifactError(f"Model file {path} is damaged or truncated (not a readable "
                            f"{FORMAT} file): {e}") from None
    if "manifest" not in contents:
        raise ArtifactError(f"Model file {path} has no manifest; it is not a {FORMAT} file")
    try:
        manifest = json.loads(contents.pop("manifest").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"Model file {path} has a damaged manifest: {e}") from None
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"Model file {path} is of format {manifest.get('format')!r}, "
                            f"expected {FORMAT!r}")
    version = manifest.get("version")
    if version == 1 and kind == "int":
        raise ArtifactError(f"Model file {path} is a version 1 integer model (one format per "
                            f"model kind, before the network description); this slimgen reads "
                            f"version {VERSION}. Regenerate it: slimgen flow --run {path.parent} "
                            f"--from quantize")
    if version not in (1, VERSION):
        raise ArtifactError(f"Model file {path} is version {version!r}; this "
                            f"slimgen reads version {VERSION}")
    if manifest.get("kind") != kind:
        raise ArtifactError(f"Model file {path} holds a model of kind {manifest.get('kind')!r}, "
                            f"expected kind {kind!r} ('float' comes from train, 'int' from "
                            f"quantize)")
    expected = manifest.get("arrays", {})
    if set(expected) != set(contents):
        missing = sorted(set(expected) - set(contents))
        extra = sorted(set(contents) - set(expected))
        raise ArtifactError(f"Model file {path} does not match its manifest: missing arrays "
                            f"{missing}, unexpected arrays {extra}")
    for name, a in contents.items():
        e = expected[name]
        if list(a.shape) != e["shape"] or str(a.dtype) != e["dtype"] or _sha256(a) != e["sha256"]:
            raise ArtifactError(f"Model file {path}: array {name!r} does not match its manifest "
                                f"(expected shape {e['shape']} {e['dtype']}, got "
                                f"{list(a.shape)} {a.dtype}, or its checksum differs)")
    check = Checks(path, manifest)
    for name, a in contents.items():
        check.finite(name, a)
        if kind != "float" and not np.issubdtype(a.dtype, np.integer):
            raise check.error(f"array {name!r} is of type {a.dtype}; an integer model's arrays "
                              f"hold integers")
    return manifest, contents


def regenerate_stage(manifest):
    """The flow stage that writes an artifact like this one."""
    if manifest.get("kind") == "float":
        return "compress" if "compression" in manifest else "train"
    return "quantize"


class Checks:
    """Range checks of one artifact's manifest fields and arrays.

    Each method returns the checked value or raises :class:`ArtifactError` with the file, the
    field (``where``, as ``layers[0].shift``) or array, the bad value, what is allowed, and the
    stage that regenerates the file.
    """

    def __init__(self, path, manifest):
        self.path = Path(path)
        self.stage = regenerate_stage(manifest)

    def error(self, text):
        return ArtifactError(f"Model file {self.path}: {text}. Rerun the {self.stage} stage to "
                             f"regenerate it (slimgen flow --run {self.path.parent} "
                             f"--from {self.stage})")

    def bad_field(self, where, value, allowed):
        return self.error(f"manifest field {where!r} is {value!r}; it must be {allowed}")

    @staticmethod
    def get(d, key, where):
        """``d[key]``; a missing entry is a ``KeyError`` naming ``where`` (the caller reports
        it as an inconsistent file)."""
        if not isinstance(d, dict) or key not in d:
            raise KeyError(where)
        return d[key]

    def integer(self, where, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.bad_field(where, value, f"an integer from {lo} to {hi}")
        return value

    def flag(self, where, value):
        if not isinstance(value, bool):
            raise self.bad_field(where, value, "true or false")
        return value

    def scale(self, where, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (np.isfinite(value) and value > 0):
            raise self.bad_field(where, value, "a positive finite number")
        return float(value)

    def finite(self, name, a):
        """Arrays hold real numbers, and floats are finite."""
        if a.dtype != bool and not np.issubdtype(a.dtype, np.integer) \
                and not np.issubdtype(a.dtype, np.floating):
            raise self.error(f"array {name!r} is of type {a.dtype}; a model's arrays hold real "
                             f"numbers")
        if np.issubdtype(a.dtype, np.floating):
            bad = ~np.isfinite(a)
            if bad.any():
                i = first_index(bad)
                raise self.error(f"array {name!r} holds {a[i]} at index {i}; every value must "
                                 f"be a finite number")

    def within(self, name, a, lo, hi, what):
        """Every entry of the integer array ``a`` in [lo, hi]; ``what`` says whose range."""
        bad = (a < lo) | (a > hi)
        if bad.any():
            i = first_index(bad)
            raise self.error(f"array {name!r} holds {a[i]} at index {i}, outside [{lo}, {hi}], "
                             f"the range of {what}")

    def weights(self, name, W, bits, where):
        """``W`` within the symmetric range of ``bits``-bit weights."""
        q = symmetric_max(bits)
        self.within(name, W, -q, q, f"{bits}-bit weights ({where})")

    def accumulators(self, name, b, bits, where):
        """``b`` within the range of ``bits``-bit signed accumulators."""
        self.within(name, b, *signed_range(bits), f"{bits}-bit accumulators ({where})")

    def shape(self, name, a, shape, why):
        if list(a.shape) != list(shape):
            raise self.error(f"array {name!r} has shape {list(a.shape)}; it must be "
                             f"{list(shape)}, {why}")

    def dense(self, prefix, meta, W, b, name, in_bits, in_where, multiplier_bits):
        """A :class:`QuantDense`'s fields and arrays (``name`` = the arrays' stem, ``in_bits``
        the width of its input, declared by ``in_where``)."""
        def field(key):
            return self.get(meta, key, f"{prefix}.{key}")
        for key in ("multiplier", "shift", "relu", "requant", "in_bits", "out_bits",
                    "weight_bits", "acc_bits", "in_scale", "w_scale", "out_scale"):
            field(key)      # every entry present before any is judged
        for key in ("in_scale", "w_scale", "out_scale"):
            self.scale(f"{prefix}.{key}", field(key))
        requant = self.flag(f"{prefix}.requant", field("requant"))
        self.flag(f"{prefix}.relu", field("relu"))
        wb = self.integer(f"{prefix}.weight_bits", field("weight_bits"), 2, 16)
        ib = self.integer(f"{prefix}.in_bits", field("in_bits"), 1, 16)
        if ib != in_bits:
            raise self.bad_field(f"{prefix}.in_bits", ib, f"{in_bits}, the width of its input "
                                                          f"({in_where})")
        acc = self.integer(f"{prefix}.acc_bits", field("acc_bits"), 1, MAX_ACC_BITS)
        if requant:
            self.integer(f"{prefix}.out_bits", field("out_bits"), 1, 16)
        elif field("out_bits") != acc:
            raise self.bad_field(f"{prefix}.out_bits", field("out_bits"),
                                 f"{acc}, the accumulator width ({prefix}.acc_bits) of a layer "
                                 f"that does not requantize")
        self.integer(f"{prefix}.multiplier", field("multiplier"), 1, (1 << multiplier_bits) - 1)
        self.integer(f"{prefix}.shift", field("shift"), 1, MAX_SHIFT)
        if W.ndim != 2:
            raise self.error(f"array '{name}.W' has shape {list(W.shape)}; it must be a matrix "
                             f"(outputs, inputs)")
        self.shape(f"{name}.b", b, W.shape[:1], f"one bias per row of {name}.W")
        self.weights(f"{name}.W", W, wb, f"{prefix}.weight_bits")
        self.accumulators(f"{name}.b", b, acc, f"{prefix}.acc_bits")
        exact = accumulator_bits(W, b, (1 << ib) - 1)
        if acc < exact:
            raise self.bad_field(f"{prefix}.acc_bits", acc,
                                 f"an integer from {exact} (the exact accumulator width of its "
                                 f"weights and biases) to {MAX_ACC_BITS}")


def save_float_model(path, model, *, dataset, split_seed, history=None, extra=None,
                     network=None):
    """A trained float model: its spec, parameters and (``network``) its description."""
    manifest = {"spec": model.spec(), "dataset": dataset, "split_seed": int(split_seed),
                **({"network": network.to_dict()} if network is not None else {}),
                "history": history or [], **(extra or {})}
    arrays = {f"layer{k}": v for k, v in model.state().items()}
    save_artifact(path, "float", manifest, arrays)


def load_float_model(path):
    """``(model, manifest)`` from a float artifact."""
    from .nn.model import build_model
    manifest, arrays = load_artifact(path, "float")
    try:
        model = build_model(manifest["spec"])
        model.load_state({k[len("layer"):]: v for k, v in arrays.items()})
    except (KeyError, ValueError, TypeError) as e:
        raise Checks(path, manifest).error(f"its architecture and weights do not agree: {e}") \
            from None
    check = Checks(path, manifest)
    compression = manifest.get("compression", {})
    if isinstance(compression, dict):
        if compression.get("act_bits") is not None:
            check.integer("compression.act_bits", compression["act_bits"], 2, 16)
        bits = compression.get("layer_weight_bits")
        if bits is not None:
            if not isinstance(bits, list):
                raise check.bad_field("compression.layer_weight_bits", bits,
                                      "a list of bit widths")
            for i, b in enumerate(bits):
                check.integer(f"compression.layer_weight_bits[{i}]", b, 2, 16)
    return model, manifest


_RECORDS = {"dense": IntDense, "conv": IntConv, "pool": IntPool, "flatten": IntFlatten,
            "relu": IntRelu, "recurrent": IntRecurrent}


def save_int_network(path, int_net, *, dataset, split_seed, extra=None):
    """An integer model: its description, every record's fields and its integer arrays."""
    manifest = {
        "dataset": dataset, "split_seed": int(split_seed),
        "network": int_net.network.to_dict(),
        "input_scale": int_net.input_scale, "input_bits": int_net.input_bits,
        "quant_config": dict(int_net.config),
        "layers": [dict(rec.meta(), kind=rec.kind) for rec in int_net.layers],
        **(extra or {}),
    }
    if int_net.input_order is not None:
        manifest["input_order"] = [int(v) for v in int_net.input_order]
    arrays = {}
    for i, rec in enumerate(int_net.layers):
        if rec.kind in ("dense", "conv"):
            arrays[f"layer{i}.W"], arrays[f"layer{i}.b"] = rec.W, rec.b
        elif rec.kind == "recurrent":
            for g, a in rec.W.items():
                arrays[f"layer{i}.W_{g}"] = a
            for g, a in rec.b.items():
                arrays[f"layer{i}.b_{g}"] = a
    save_artifact(path, "int", manifest, {k: np.asarray(a, dtype=np.int64)
                                          for k, a in arrays.items()})


def _record(i, meta, arrays):
    meta = dict(meta)
    kind = meta.pop("kind")
    if kind not in _RECORDS:
        raise ValueError(f"layers[{i}] is of kind {kind!r}, not one of {', '.join(_RECORDS)}")
    if kind in ("dense", "conv"):
        return _RECORDS[kind](W=arrays[f"layer{i}.W"], b=arrays[f"layer{i}.b"], **meta)
    if kind == "recurrent":
        fmt = RecurrentFormat(**meta.pop("fmt"))
        W = {k[len(f"layer{i}.W_"):]: a for k, a in arrays.items()
             if k.startswith(f"layer{i}.W_")}
        b = {k[len(f"layer{i}.b_"):]: a for k, a in arrays.items()
             if k.startswith(f"layer{i}.b_")}
        return IntRecurrent(fmt=fmt, W=W, b=b, **meta)
    return _RECORDS[kind](**meta)


def _check_record(check, i, rec, multiplier_bits):
    """What the records' own constructors do not: the hardware's operand limits."""
    if rec.kind in ("dense", "conv"):
        if rec.acc_bits > MAX_ACC_BITS:
            raise check.error(f"layers[{i}] needs {rec.acc_bits}-bit accumulators; at most "
                              f"{MAX_ACC_BITS} are supported")
        requants = [(np.asarray(rec.multiplier), rec.shift)] if rec.requant else []
    elif rec.kind == "recurrent":
        requants = [(np.asarray(rec.multiplier[g]), rec.shift[g]) for g in rec.gates]
    elif rec.kind == "pool" and rec.op == "avg":
        requants = [(np.asarray(rec.multiplier), rec.shift)]
    else:
        requants = []
    for M, shift in requants:
        if M.min() < 1 or M.max() > (1 << multiplier_bits) - 1:
            raise check.bad_field(f"layers[{i}].multiplier", M.tolist(),
                                  f"from 1 to {(1 << multiplier_bits) - 1}")
        check.integer(f"layers[{i}].shift", shift, 1, MAX_SHIFT)


def load_int_network(path):
    """``(int_net, manifest)`` from an integer artifact (version 2)."""
    manifest, arrays = load_artifact(path, "int")
    check = Checks(path, manifest)
    try:
        net = check_network(check.get(manifest, "network", "network"))
        check.scale("input_scale", check.get(manifest, "input_scale", "input_scale"))
        check.integer("input_bits", check.get(manifest, "input_bits", "input_bits"), 1, 16)
        config = check.get(manifest, "quant_config", "quant_config")
        mb = check.integer("quant_config.multiplier_bits",
                           check.get(config, "multiplier_bits", "quant_config.multiplier_bits"),
                           4, 24)
        metas = check.get(manifest, "layers", "layers")
        if not isinstance(metas, list) or not metas:
            raise check.bad_field("layers", metas, "a list of one or more records")
        records = [_record(i, meta, arrays) for i, meta in enumerate(metas)]
        for i, rec in enumerate(records):
            _check_record(check, i, rec, mb)
        int_net = IntNetwork(net, tuple(records), float(manifest["input_scale"]),
                             manifest["input_bits"], dict(config),
                             input_order=manifest.get("input_order"))
        logits = forward(int_net, np.zeros((1, net.n_inputs), dtype=np.int64))
        if logits.shape != (1, net.n_outputs):
            raise ValueError(f"it gives {logits.shape[1]} outputs, its description "
                             f"{net.n_outputs}")
    except NetworkError as e:
        raise check.error(f"its network description is wrong: {e}") from None
    except KeyError as e:
        raise check.error(f"its layers are inconsistent: missing entry {e}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise check.error(f"its layers are inconsistent: {e}") from None
    return int_net, manifest
