"""The Python API: a run folder as a project, each stage a method, the golden model at hand.

Shaped as hls4ml's (``convert_from_keras_model`` → ``compile`` → ``predict`` / ``trace`` →
``build``); the ``slimgen`` command is a thin layer over the same functions::

    import slimgen
    p = slimgen.project(run="runs/tiny", network="mlp", sizes=[64, 16, 10], epochs=3)
    p.train()                    # TrainResult: float_accuracy, val_accuracy, epochs, history
    p.compress(method="magnitude", sparsity=0.5)
    p.quantize()                 # QuantizeResult: int_accuracy, weight_bits, acc_bits, ...
    p.predict(x)                 # classes from the bit-exact golden model, x (n, 64) in [0, 1]
    p.trace(x)                   # every integer record's output
    p.generate(); p.verify(); p.build()      # or p.flow()
    p.summary()                  # what `slimgen summary` prints
    slimgen.open("runs/tiny")    # an existing run; slimgen.from_onnx("m.onnx", run=...)

Every setting of :class:`~slimgen.settings.RunConfig` is a keyword of :func:`project`, checked
at once with the command line's messages (naming keywords rather than options); a refused call
writes nothing. The stages run through :mod:`slimgen.flow` as the command line runs them, with
the same checks and the same :class:`~slimgen.flow.FlowError` messages.
"""

import contextlib
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from slimgen.flow import (STAGES, STAGE_SETTINGS, FlowError, Run, check_data, check_flow,
                          check_stage_inputs, run_flow, run_stage)
from slimgen.results import (RESULTS, BuildResult, CompressResult, GenerateResult,  # noqa: F401
                             QuantizeResult, ReportResult, Summary, Trace, TraceEntry,
                             TrainResult, VerifyResult, frozen_value)
from slimgen.settings import RunConfig
from slimgen.settings_merge import merge_settings, stored_settings

__all__ = ["Project", "project", "open", "from_onnx", "Summary", "Trace", "TraceEntry",
           "TrainResult", "CompressResult", "QuantizeResult", "GenerateResult", "VerifyResult",
           "BuildResult", "ReportResult"]


# ------------------------------------------------------------------ the project

class Project:
    """A run folder and its settings, each stage of the flow a method (:func:`project`,
    :func:`open` make one). Building one touches nothing; a stage writes the settings to
    ``config.json`` first (a changed setting removes the outputs it affects), as the command
    line does."""

    def __init__(self, run, config, *, progress=True, log=None):
        self._where = run           # as given: Run refuses a blank name
        self.root = Path(run)
        self.config = config
        self.progress = progress
        self.log = log
        self._run = None            # the Run of the folder once its config is self.config
        self._cache = {}

    # stages ---------------------------------------------------------------

    def _materialize(self, config):
        run = Run(self._where, config, progress=self.progress, log=self.log)
        self.config, self._run = config, run
        return run

    def stage(self, name):
        """Run the stage ``name`` alone (``slimgen <name> --run ...``): its result."""
        if name not in STAGES:
            raise FlowError(f"stage must be one of {', '.join(STAGES)}, not {name!r}")
        return self._stage(name, self.config)

    def _stage(self, name, config):
        check_stage_inputs(self.root, config, name)
        if name == "train":
            check_data(config)
        figures = run_stage(self._materialize(config), name)
        extra = {}
        if name == "train":
            from slimgen.stages import load_float_artifact
            extra["history"] = frozen_value(load_float_artifact(self._run, "float.npz", "train")[1]
                                       .get("history", []))
        if name == "generate":
            extra["verilog"] = str(self._run.path("network.v"))
        return RESULTS[name]._of(figures, **extra)

    def train(self):
        """Train the float model (``float.npz``): :class:`TrainResult`."""
        return self.stage("train")

    def compress(self, method=None, **options):
        """Compress the trained model with ``method`` (none, a method of
        :data:`slimgen.compress_cli.METHODS`) and its ``options`` (sparsity, bits, layout,
        compress_epochs, finetune_epochs), which become the run's settings:
        :class:`CompressResult`."""
        allowed = set(STAGE_SETTINGS["compress"]) - {"method"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise FlowError(f"compress() takes method and {', '.join(sorted(allowed))}, not "
                            f"{', '.join(unknown)}; give other settings to slimgen.project()")
        given = {**options, **({"method": method} if method is not None else {})}
        config = merge_settings(self.root, self.config.to_dict(), given) if given \
            else self.config
        return self._stage("compress", config)

    def quantize(self):
        """Quantize into the integer model (``model.npz``): :class:`QuantizeResult`."""
        return self.stage("quantize")

    def generate(self):
        """Generate the network's Verilog (``network.v``): :class:`GenerateResult`."""
        return self.stage("generate")

    def verify(self):
        """Every test sample through the Verilog on the simulator: :class:`VerifyResult`."""
        return self.stage("verify")

    def build(self):
        """The bitstream for the run's board: :class:`BuildResult`."""
        return self.stage("build")

    def report(self):
        """``report.html`` and ``report.md``: :class:`ReportResult`."""
        return self.stage("report")

    def flow(self, to=None, *, skip_build=False, rerun_from=None):
        """Every stage up to ``to`` (all by default; the build left out with ``skip_build``),
        keeping those already done with these settings unless ``rerun_from`` names one:
        the :class:`Summary`."""
        if to is not None and to not in STAGES:
            raise FlowError(f"to must be one of {', '.join(STAGES)}, not {to!r}")
        check_data(self.config)
        last = STAGES.index(to or STAGES[-1])
        stages = tuple(st for st in STAGES[:last + 1] if not (skip_build and st == "build"))
        check_flow(stages, rerun_from)
        return Summary(run_flow(self._materialize(self.config), stages, rerun_from=rerun_from))

    def summary(self):
        """The run's figures so far (it only reads): :class:`Summary`."""
        return Summary((self._run or Run.existing(self._where, log=self.log)).summary())

    # the models -----------------------------------------------------------

    def _reader(self):
        """The run folder to read artifacts from: its settings must be this project's."""
        if self._run is None:
            run = Run.existing(self._where, log=self.log)
            if run.config != self.config:
                raise FlowError(f"{self.root / 'config.json'} holds other settings than this "
                                f"project: run a stage first, or slimgen.open('{self.root}')")
            self._run = run
        return self._run

    def _load(self, name, load):
        path = self._reader().path(name)
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size, st.st_ino, self.config)
        except FileNotFoundError:
            key = None
        hit = self._cache.get(name)
        if key is not None and hit is not None and hit[0] == key:
            return hit[1]
        value = load(self._run)
        self._cache[name] = (key, value)
        return value

    @property
    def network(self):
        """The network description (:class:`slimgen.sw.network.Network`) the run makes."""
        from slimgen.models import get_model_kind
        return get_model_kind(self.config.model).network(self.config)

    @property
    def int_model(self):
        """The integer model (``model.npz``, :class:`slimgen.sw.integer_model.IntNetwork`)."""
        from slimgen.stages import load_int_artifact
        return self._load("model.npz", load_int_artifact)

    @property
    def float_model(self):
        """The float model quantize starts from: compressed (``compressed.npz``) when the
        run's method is not none, else trained (``float.npz``)."""
        from slimgen.stages import load_float_artifact
        name, stage = ("float.npz", "train") if self.config.method == "none" else \
            ("compressed.npz", "compress")
        return self._load(name, lambda run: load_float_artifact(run, name, stage)[0])

    def _codes(self, x):
        int_model = self.int_model
        from slimgen.sw.quantize import quantize_inputs
        return int_model, quantize_inputs(_samples(x, int_model.network), int_model.input_scale,
                                          int_model.input_bits)

    def logits(self, x):
        """The golden model's logits (n, classes) int64 for float samples ``x`` in [0, 1]:
        (n, n_inputs) as the data module gives them, or shaped as the network's input."""
        int_model, codes = self._codes(x)
        return int_model(codes)

    def predict(self, x):
        """The class of every sample of ``x`` (see :meth:`logits`) from the bit-exact golden
        model: (n,) int64, ties to the lowest index, as the hardware."""
        from slimgen.sw.golden import argmax_first
        return argmax_first(self.logits(x))

    def trace(self, x):
        """Every integer record's output on ``x`` (see :meth:`logits`): a :class:`Trace`."""
        int_model, codes = self._codes(x)
        layers = int_model.network.layers
        entries, seen = [], {}
        for rec, out in zip(int_model.layers, int_model.trace(codes)):
            layer = layers[rec.source]["type"] if 0 <= rec.source < len(layers) else rec.kind
            name = f"{layer}_{rec.source}"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}.{seen[name] - 1}"
            entries.append(TraceEntry(name, rec.kind, rec.source, layer, out))
        return Trace(entries)

    def float_logits(self, x):
        """The float model's logits (n, classes) (see :attr:`float_model`)."""
        from slimgen.sw.network import to_float_input
        from slimgen.sw.nn.train import predict
        net = self.network
        return predict(self.float_model, to_float_input(net, _samples(x, net)))

    def float_predict(self, x):
        """The float model's class for every sample of ``x``, to compare with
        :meth:`predict`."""
        import numpy as np
        return np.argmax(self.float_logits(x), axis=1)

    def __repr__(self):
        c = self.config
        what = f"net={c.net!r}" if c.model == "net" else f"network={c.model!r}"
        done = [st for st in STAGES if (self.root / f"{st}.json").exists()]
        return (f"<slimgen.Project {str(self.root)!r} {what}, method={c.method!r}, "
                f"board={c.board!r}; done: {', '.join(done) or 'nothing'}>")


def _samples(x, net):
    """Float samples (n, n_inputs) in [0, 1] from ``x``: (n, n_inputs), (n, *input_shape), or
    the data module's image view (n, 1, h, w) of a one-channel image."""
    import numpy as np
    shapes = [(net.n_inputs,), tuple(net.input_shape)]
    if len(net.input_shape) == 3 and net.input_shape[-1] == 1:
        shapes.append((1, *net.input_shape[:2]))
    want = " or ".join(dict.fromkeys("(n, " + ", ".join(map(str, s)) + ")" for s in shapes))
    try:
        a = np.asarray(x)
    except (ValueError, TypeError):
        a = np.asarray(x, dtype=object)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer)
                                 or np.issubdtype(a.dtype, np.floating) or a.dtype == bool):
        raise ValueError(f"x must be an array of numbers: samples of shape {want}, not "
                         f"{type(x).__name__} of {a.dtype}")
    if a.ndim < 2 or a.shape[1:] not in shapes:
        raise ValueError(f"x must hold samples of shape {want} (the network "
                         f"{net.name}'s input, channels last), not {a.shape}")
    a = a.reshape(len(a), -1).astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"x must be finite: sample {int(np.argwhere(~np.isfinite(a))[0, 0])} "
                         f"holds {a[~np.isfinite(a)][0]}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ValueError(f"x must hold values in [0, 1] (pixels over their largest value, as "
                         f"slimgen.sw.data gives them), not [{a.min():g}, {a.max():g}]")
    return a


# ------------------------------------------------------------------ making one

def _run_root(run):
    if not isinstance(run, (str, os.PathLike)) or not str(run).strip():
        raise ValueError(f"The run folder must be named (e.g. runs/default), not {run!r}")
    root = Path(run)
    if root.exists() and not root.is_dir():
        raise FlowError(f"run {str(root)!r} is a file, not a run folder")
    return root


@contextlib.contextmanager
def _written(path, text):
    """``text`` in ``path`` for the block; if the block fails, the file as it was (or none)
    and no folder made for it. Yields whether an earlier, different file was replaced."""
    from slimgen.sw.artifact import write_bytes_atomic
    new = text.encode()
    old = path.read_bytes() if path.exists() else None
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    if old != new:
        write_bytes_atomic(path, new)
    try:
        yield old is not None and old != new
    except BaseException:
        if old is None:
            path.unlink(missing_ok=True)
        elif old != new:
            write_bytes_atomic(path, old)
        for p in made:
            with contextlib.suppress(OSError):
                p.rmdir()
        raise


def project(run="runs/default", network=None, data=None, *, quiet=False, log=None,
            **settings):
    """A :class:`Project` in the run folder ``run``, its settings checked and written to
    ``config.json`` (nothing written if one is refused; a changed setting removes the outputs
    it affects).

    ``network``: a preset's name (``"mlp"``, ``"cnn"``, ``"lstm"``, or a data set's preset
    such as ``"mnist1d-cnn"``, :data:`slimgen.sw.network.DATA_PRESETS`), the path of a network
    description (``.json``), a description as a dict, or a
    :class:`~slimgen.sw.network.Network` (written to ``net.json`` in the run folder); None
    keeps the run's (the MLP for a new run). ``data``: ``"digits"``, ``"mnist1d"``,
    ``"mnist5k"`` or a ``.npz`` path (None:
    the run's, else digits). ``settings``: any of :class:`RunConfig`'s (``epochs=3``,
    ``sizes=[64, 16, 10]``, ``method="magnitude"``, ...). ``quiet``: no progress bars;
    ``log``: where progress lines go (a function of one string; stderr by default)."""
    from slimgen.sw.network import DATA_PRESETS, PRESETS, Network, check_network
    root = _run_root(run)
    known = set(RunConfig().to_dict())
    if set(settings) - known:
        raise FlowError(f"Unknown run settings {sorted(set(settings) - known)}; known: "
                        f"{sorted(known)}")
    given = dict(settings)
    description = None
    if network is not None:
        if {"model", "net"} & set(settings):
            raise FlowError(f"network={network!r} and "
                            f"{'model' if 'model' in settings else 'net'}=...: give one of "
                            f"them (network= names a preset or a description)")
        if isinstance(network, str) and network in PRESETS:
            given["model"] = network
        elif isinstance(network, str) and network in DATA_PRESETS:
            given.update(model="net", net=network)   # as ``--net mnist1d-cnn``
        elif isinstance(network, (str, os.PathLike)):
            path = Path(network)
            if not path.is_file() and path.suffix != ".json":
                raise FlowError(f"network {str(network)!r} is neither a preset "
                                f"({', '.join([*PRESETS, *DATA_PRESETS])}) nor a network description file "
                                f"(.json)")
            given.update(model="net", net=str(network))
        elif isinstance(network, (dict, list, tuple, Network)):
            description = check_network(network)
            given.update(model="net", net=str(root / "net.json"))
        else:
            raise FlowError(f"network must be a preset name ({', '.join(PRESETS)}), the path "
                            f"of a description (.json), a dict or a Network, not "
                            f"{type(network).__name__}")
    if data is not None:
        given["data"] = str(data) if isinstance(data, os.PathLike) else data
    final = root / "net.json"
    text = description.to_json() + "\n" if description is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp) / "net.json"       # checked there: a refused call writes nothing
        if text is not None:
            trial.write_text(text)
            given["net"] = str(trial)
        try:
            config = merge_settings(root, stored_settings(root), given)
            check_data(config)
        except Exception as e:
            e.args = tuple(a.replace(str(trial), str(final)) if isinstance(a, str) else a
                           for a in e.args)
            raise
    p = Project(root, config, progress=not quiet, log=log)
    with _written(final, text) if text is not None else contextlib.nullcontext() as changed:
        run = p._materialize(replace(config, net=str(final)) if text is not None else config)
    if changed and any((root / f"{st}.json").exists() for st in STAGES):
        run.forget(STAGES)
        run.log(f"the network description changed: outputs of {', '.join(STAGES)} removed; "
                f"rerun them")
    return p


def open(run, *, quiet=False, log=None):          # noqa: A001  (slimgen.open, as io.open)
    """The :class:`Project` of the existing run folder ``run``, as it is (nothing written)."""
    _run_root(run)
    existing = Run.existing(run, log=log)
    p = Project(run, existing.config, progress=not quiet, log=log)
    p._run = existing
    return p


def from_onnx(model, run, data=None, *, seed=None, name=None, quiet=False, log=None):
    """A :class:`Project` whose trained model is the sequential ONNX ``model`` (a path):
    its network description (``net.json``) and float weights, checked against onnxruntime
    (:func:`slimgen.import_cli.import_run`, ``slimgen import``); ``compress``, ``quantize``
    and the later stages go on from it. ``data``, ``seed``: the data set and split (the run's,
    else the digits and 0); ``name``: the network's (default: the file's stem)."""
    from slimgen.import_cli import import_run
    import_run(model, run, data=data, seed=seed, name=name, progress=not quiet, log=log)
    return open(run, quiet=quiet, log=log)
