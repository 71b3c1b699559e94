"""The model artifact: one versioned file that carries a model between the stages.

Format (``FORMAT`` = "slimgen-artifact", ``VERSION`` = 2): a NumPy ``.npz`` (zip) holding

- ``manifest``: UTF-8 JSON as a uint8 array, with ``format``, ``version``, ``kind``
  (``"float"`` for a trained model, ``"int"`` for a quantized one), the network description
  (``network``, :mod:`slimgen.sw.network`), the data set name and split seed, and the shape,
  dtype and SHA-256 of every array; a float artifact adds the float model's ``spec``, an
  integer one every record of the integer model (``layers``: its kind and fields, see
  :mod:`slimgen.sw.integer_model`), ``input_scale``, ``input_bits`` and ``quant_config``;
- the arrays, named ``layer<i>.<name>`` (``W``, ``b``; a recurrent cell's ``W_<gate>``,
  ``b_<gate>``, a GRU's ``b_hn``), int64 in an integer artifact.

An integer artifact may carry ``input_order`` (a permutation of the inputs: where each input
sits in the banks of a sparse MAC array); without it the order is the natural one. Version 1
float files load (their ``spec`` is the model); version 1 integer files (one format per model
kind) are refused with the command that regenerates them.

Files are written whole: to a temporary file in the same folder, then renamed over the target.
Loading checks everything and raises :class:`ArtifactError` naming what is wrong: the file's
integrity (checksums), then its contents (:class:`Checks`) — every float finite, every integer
within the bit width its manifest declares, every manifest field of its type and within its
range; an integer model's records also chain and agree with their description
(:mod:`slimgen.sw.artifact_records`) — and says which stage to rerun.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .artifact_records import check_int_network, record_arrays
from .fixed import symmetric_max
from .integer_model import MAX_ACC_BITS, IntNetwork
from .network import NetworkError, check_network
from .quantize import first_index

__all__ = [
    "ArtifactError", "FORMAT", "VERSION", "save_artifact", "load_artifact",
    "save_float_model", "load_float_model", "save_int_network", "load_int_network",
    "write_bytes_atomic", "Checks", "MAX_ACC_BITS",
]

FORMAT = "slimgen-artifact"
VERSION = 2


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


def _plain(value):
    """NumPy scalars and arrays in a manifest as JSON numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"A manifest holds JSON values, not {type(value).__name__}")


def save_artifact(path, kind, manifest, arrays):
    """Write an artifact of ``kind`` with a manifest (JSON-able dict) and named arrays."""
    manifest = dict(manifest, format=FORMAT, version=VERSION, kind=kind)
    manifest["arrays"] = {name: {"shape": list(a.shape), "dtype": str(a.dtype),
                                 "sha256": _sha256(a)} for name, a in arrays.items()}
    blob = np.frombuffer(json.dumps(manifest, indent=1, sort_keys=True,
                                    default=_plain).encode(), dtype=np.uint8)
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
    if not isinstance(manifest, dict):
        raise ArtifactError(f"Model file {path} has a damaged manifest: a JSON "
                            f"{type(manifest).__name__}, not an object")
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
    if not isinstance(expected, dict) or not all(
            isinstance(e, dict) and {"shape", "dtype", "sha256"} <= set(e)
            for e in expected.values()):
        raise ArtifactError(f"Model file {path} has a damaged manifest: its 'arrays' entry "
                            f"must give the shape, dtype and sha256 of every array")
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

    def field(self, d, key, parent=None):
        """``d[key]``, or an error naming the missing manifest field (``parent.key``)."""
        where = f"{parent}.{key}" if parent else key
        if not isinstance(d, dict) or key not in d:
            raise self.error(f"manifest field {where!r} is missing")
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
        try:
            number = float(value) if isinstance(value, (int, float)) \
                and not isinstance(value, bool) else None
        except OverflowError:          # an integer beyond the floats
            number = None
        if number is None or not (np.isfinite(number) and number > 0):
            raise self.bad_field(where, value, "a positive finite number")
        return number

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

    def shape(self, name, a, shape, why):
        if list(a.shape) != list(shape):
            raise self.error(f"array {name!r} has shape {list(a.shape)}; it must be "
                             f"{list(shape)}, {why}")


def _with_extra(manifest, extra):
    """``manifest`` with the caller's ``extra`` entries, which may not replace its own."""
    taken = sorted(set(extra or {}) & (set(manifest) | {"format", "version", "kind", "arrays",
                                                        "input_order"}))
    if taken:
        raise ValueError(f"Extra manifest entries must not replace the artifact's own: "
                         f"{', '.join(taken)}")
    return {**manifest, **(extra or {})}


def save_float_model(path, model, *, dataset, split_seed, history=None, extra=None,
                     network=None):
    """A trained float model: its spec, parameters and (``network``) its description."""
    manifest = _with_extra({"spec": model.spec(), "dataset": dataset,
                            "split_seed": int(split_seed), "history": history or [],
                            **({"network": network.to_dict()} if network is not None else {})},
                           extra)
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
    if "network" in manifest:          # version 2: the description it was trained from
        try:
            check_network(manifest["network"])
        except NetworkError as e:
            raise check.error(f"its network description (manifest field 'network') is wrong: "
                              f"{e}") from None
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


def save_int_network(path, int_net, *, dataset, split_seed, extra=None):
    """An integer model: its description, every record's fields and its integer arrays
    (:mod:`slimgen.sw.artifact_records`)."""
    if not isinstance(int_net, IntNetwork):
        raise TypeError(f"Model must be an IntNetwork, not {type(int_net).__name__}")
    manifest = _with_extra({
        "dataset": dataset, "split_seed": int(split_seed),
        "network": int_net.network.to_dict(),
        "input_scale": float(int_net.input_scale), "input_bits": int(int_net.input_bits),
        "quant_config": dict(int_net.config),
        "layers": [dict(rec.meta(), kind=rec.kind) for rec in int_net.layers],
    }, extra)
    if int_net.input_order is not None:
        manifest["input_order"] = [int(v) for v in int_net.input_order]
    arrays = {}
    for i, rec in enumerate(int_net.layers):
        arrays.update(record_arrays(i, rec))
    save_artifact(path, "int", manifest, arrays)


def load_int_network(path):
    """``(int_net, manifest)`` from an integer artifact (version 2), every field and array
    checked (:func:`slimgen.sw.artifact_records.check_int_network`)."""
    manifest, arrays = load_artifact(path, "int")
    return check_int_network(Checks(path, manifest), manifest, arrays), manifest
