"""The model artifact: one versioned file that carries a model between the stages.

Format (``FORMAT`` = "slimgen-artifact", ``VERSION`` = 1): a NumPy ``.npz`` (zip) holding

- ``manifest``: UTF-8 JSON as a uint8 array, with ``format``, ``version``, ``kind``
  (``"float"`` for a trained model, ``"int"`` for a quantized one), the architecture, the data
  set name and split seed, per-layer metadata (scales, multipliers, shifts, bit widths), and the
  shape, dtype and SHA-256 of every array;
- the arrays, named ``layer<i>.<name>``.

An integer artifact may carry ``input_order`` (a permutation of the first layer's inputs: where
each input sits in the banks of a sparse MAC array); without it the order is the natural one.

Files are written whole: to a temporary file in the same folder, then renamed over the target.
Loading checks everything and raises :class:`ArtifactError` naming what is wrong.
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

from .quant import QuantConfig, QuantDense, QuantizedModel

__all__ = [
    "ArtifactError", "FORMAT", "VERSION", "save_artifact", "load_artifact",
    "save_float_model", "load_float_model", "save_quantized_model", "load_quantized_model",
    "write_bytes_atomic",
]

FORMAT = "slimgen-artifact"
VERSION = 1


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
    if manifest.get("version") != VERSION:
        raise ArtifactError(f"Model file {path} is version {manifest.get('version')!r}; this "
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
    return manifest, contents


def save_float_model(path, model, *, dataset, split_seed, history=None, extra=None):
    """A trained float model: its spec and parameters."""
    manifest = {"spec": model.spec(), "dataset": dataset, "split_seed": int(split_seed),
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
        raise ArtifactError(f"Model file {path}: its architecture and weights do not agree: {e}") \
            from None
    return model, manifest


def save_quantized_model(path, qmodel, *, dataset, split_seed, extra=None):
    """A quantized model: integer weights, biases and requantization per layer."""
    manifest = {
        "dataset": dataset, "split_seed": int(split_seed),
        "input_scale": qmodel.input_scale, "input_bits": qmodel.input_bits,
        "quant_config": qmodel.config.to_dict(),
        "layers": [dict(layer.meta(), type="dense") for layer in qmodel.layers],
        **(extra or {}),
    }
    if qmodel.input_order is not None:
        manifest["input_order"] = list(qmodel.input_order)
    arrays = {}
    for i, layer in enumerate(qmodel.layers):
        arrays[f"layer{i}.W"] = layer.W.astype(np.int64)
        arrays[f"layer{i}.b"] = layer.b.astype(np.int64)
    save_artifact(path, "int", manifest, arrays)


def load_quantized_model(path):
    """``(qmodel, manifest)`` from an integer artifact."""
    manifest, arrays = load_artifact(path, "int")
    try:
        layers = []
        for i, meta in enumerate(manifest["layers"]):
            meta = {k: v for k, v in meta.items() if k != "type"}
            layers.append(QuantDense(W=arrays[f"layer{i}.W"], b=arrays[f"layer{i}.b"], **meta))
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            if a.n_out != b.n_in:
                raise ValueError(f"layer {i} gives {a.n_out} outputs but layer {i + 1} "
                                 f"takes {b.n_in} inputs")
        qmodel = QuantizedModel(tuple(layers), manifest["input_scale"], manifest["input_bits"],
                                QuantConfig.from_dict(manifest["quant_config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ArtifactError(f"Model file {path}: its layers are inconsistent: {e}") from None
    # the banks' input order (balanced sparsity); a file without one keeps the natural order
    try:
        qmodel = replace(qmodel, input_order=manifest.get("input_order"))
    except ValueError as e:
        raise ArtifactError(f"Model file {path}: {e}") from None
    return qmodel, manifest
