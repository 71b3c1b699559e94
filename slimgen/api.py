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
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType

from slimgen.flow import (STAGES, STAGE_SETTINGS, FlowError, Run, check_data, check_flow,
                          check_stage_inputs, run_flow, run_stage)
from slimgen.settings import RunConfig, SettingError

__all__ = ["Project", "project", "open", "from_onnx", "Summary", "Trace", "TraceEntry",
           "TrainResult", "CompressResult", "QuantizeResult", "GenerateResult", "VerifyResult", "BuildResult",
           "ReportResult", "Words", "CLI_WORDS", "PYTHON_WORDS", "settings_object",
           "stored_settings", "merge_settings", "format_summary", "SUMMARY_KEYS"]


# ------------------------------------------------------------------ settings

@dataclass(frozen=True)
class Words:
    """How messages name the settings given: ``given`` (where they come from), ``option(name)``
    (``--lanes`` or ``lanes``), ``flag(name, value)`` (``--method joint`` or
    ``method='joint'``)."""
    given: str
    option: object
    flag: object


def _value_text(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _option(name):
    return "--" + name.replace("_", "-")


CLI_WORDS = Words("command line", _option, lambda n, v: f"{_option(n)} {_value_text(v)}")
PYTHON_WORDS = Words("arguments", lambda n: n, lambda n, v: f"{n}={v!r}")


def settings_object(path, where):
    """The JSON object of run settings in ``path`` (a ``--config`` file or a run's
    ``config.json``; ``where`` names it in messages), with no unknown keys. Its values are
    checked once merged with the others (:func:`merge_settings`)."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlowError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FlowError(f"{where} is not a JSON file of run settings ({e})") from None
    if not isinstance(d, dict):
        raise FlowError(f"{where} must hold one JSON object of settings, e.g. "
                        f'{{"model": "cnn", "lanes": 4}}, not a {type(d).__name__}')
    known = set(RunConfig().to_dict())
    if set(d) - known:
        raise FlowError(f"{where}: Unknown run settings {sorted(set(d) - known)}; known: "
                        f"{sorted(known)}")
    return d


def stored_settings(run_root):
    """The settings in the run folder's ``config.json``, or None for a new run."""
    path = Path(run_root) / "config.json"
    return settings_object(path, str(path)) if path.exists() else None


def merge_settings(run_root, stored, given, *, from_file=None, config_file=None,
                   words=PYTHON_WORDS):
    """The run's :class:`RunConfig`: the ``stored`` settings (or, for a new run or a new model
    kind, that kind's defaults), then ``from_file`` (a ``--config`` file), then ``given``;
    a bad setting is named by where it came from, and a setting the model kind or the method
    would ignore is refused (:class:`FlowError`)."""
    from slimgen.models import MODEL_KINDS, get_model_kind
    from_file = from_file or {}
    stored_path = Path(run_root) / "config.json"
    model = given.get("model") or from_file.get("model")
    defaults = RunConfig().to_dict()
    if stored is None or (model is not None and model != stored.get("model", "mlp")):
        kind = model or "mlp"      # a new run, or a new model kind: that kind's defaults
        if kind in MODEL_KINDS:
            defaults.update(getattr(get_model_kind(kind), "DEFAULTS", {}), model=kind)
        base, base_origin = defaults, "default"
    else:
        base, base_origin = {**defaults, **stored}, str(stored_path)
    config = _merge(((base_origin, base), (f"--config {config_file}", from_file),
                     (words.given, given)), words)
    # a --config file may be a run's config.json, which holds every setting: only its values
    # other than the defaults count as asked for
    kind_defaults = {**RunConfig().to_dict(),
                     **getattr(get_model_kind(config.model), "DEFAULTS", {})}
    _check_used(config, given, None, words)
    _check_used(config, {k: v for k, v in from_file.items() if v != kind_defaults.get(k)},
                config_file, words)
    return config


def _merge(layers, words):
    """The :class:`RunConfig` of the settings ``layers`` (``(origin, settings)`` pairs, later
    ones overriding earlier ones). A refusal blames the layer the bad setting came from, or,
    when that value was valid until a later layer changed another setting (new ``sizes``
    against the stored ``lanes``), names the later settings that made the difference."""
    first_where, first = layers[0]
    if first_where != "default":
        try:
            RunConfig.from_dict(first)
        except SettingError as e:
            raise FlowError(f"{first_where} is not a valid run configuration: {e}") from None
    merged, origin = {}, {}
    for where, settings in layers:
        merged.update(settings)
        origin.update(dict.fromkeys(settings, where))
    try:
        return RunConfig.from_dict(merged)
    except SettingError as e:
        raise FlowError(_refusal(e, layers, merged, origin, words)) from None


def _refusal(e, layers, merged, origin, words):
    """The message for the :class:`SettingError` ``e`` of the ``merged`` settings."""
    name, message = e.setting, str(e)[len(e.setting):]
    where = origin.get(name, "default")
    wheres = [w for w, _ in layers]
    later = layers[wheres.index(where) + 1:] if where in wheres else []

    def valid_without(layer, key):
        trial = {}
        for w, settings in layers:
            trial.update({k: v for k, v in settings.items() if not (w == layer and k == key)})
        try:
            RunConfig.from_dict(trial)
        except SettingError:
            return False
        return True

    culprits = [(w, k) for w, settings in later for k in settings if valid_without(w, k)]
    if where == words.given or not culprits:
        if where == words.given:
            return f"{words.option(name)}{message}"
        if where.startswith("--config"):
            return f"{where}: {e}"
        return str(e) if where == "default" else \
            f"{where} is not a valid run configuration: {e}"
    # a value valid where it came from, no longer with the later settings that changed
    value = _value_text(merged[name])
    with_ = ", ".join(words.flag(k, merged[k]) if w == words.given else
                      f"{k} {_value_text(merged[k])} in {w}" for w, k in culprits)
    of = f"the default {name} {value}" if where == "default" else \
        f"the {name} {value} of {where}" if where.startswith("--config") else \
        f"the stored {name} {value} ({where})"
    return f"with {with_}, {of} no longer fits: {e}; give {words.option(name)} too"


def _check_used(config, asked, config_file, words):
    """Refuse settings asked for (``asked``: given, or in the ``--config`` file
    ``config_file``) that the model kind or the method would ignore (a silently ignored
    setting reads as if it had taken effect)."""
    method, model = config.method, config.model
    where = f"--config {config_file}: " if config_file else ""
    name_of = (lambda name: name) if config_file else words.option
    leave_out = (lambda name: f"remove {name} from it") if config_file else \
        (lambda name: f"leave {words.option(name)} out")
    unused = None
    if "bits" in asked and method != "joint":
        unused = ("bits", "the joint method's target average weight bits",
                  f"give {words.flag('method', 'joint')}, or {leave_out('bits')}")
    elif "sparsity" in asked and method == "none":
        unused = ("sparsity", "a compression method's target",
                  f"give a {words.option('method')}, or {leave_out('sparsity')}")
    for name in ("compress_epochs", "finetune_epochs"):
        if name in asked and method == "none":
            unused = unused or (name, "the epochs of a compression method",
                                f"give a {words.option('method')}, or {leave_out(name)}")
    if "compress_epochs" in asked and method == "lstm_gates":
        unused = unused or ("compress_epochs", "the epochs of a compression method",
                            f"it prunes at once, then fine-tunes: "
                            f"{words.option('finetune_epochs')}")
    if unused:
        name, what, hint = unused
        raise FlowError(f"{where}{name_of(name)} is {what}; {words.flag('method', method)} "
                        f"does not use it ({hint})")
    for name, what, kinds, note in (
            ("sizes", "the MLP's layer sizes", ("mlp",), None),
            ("hidden", "the LSTM's hidden units", ("lstm",), None),
            ("engine", "the MLP's and the CNN's engine choice", ("mlp", "cnn"),
             "its gates and head share sparse lanes"),
            ("layout", "the MLP's and the CNN's sparse layout", ("mlp", "cnn"),
             "its gates and head share sparse lanes")):
        if name in asked and model not in kinds:
            raise FlowError(f"{where}{name_of(name)} is {what}; {words.flag('model', model)} "
                            f"does not use it" + (f" ({note})" if note else ""))
    if "weight_bits" in asked and method == "joint" and model != "lstm":
        raise FlowError(f"{where}{name_of('weight_bits')} is not used with "
                        f"{words.flag('method', 'joint')}, which chooses each layer's width "
                        f"(its average: {name_of('bits')})")


# ------------------------------------------------------------------ results

SUMMARY_KEYS = (
    "float_accuracy", "compressed_accuracy", "int_accuracy", "hw_accuracy", "images_verified",
    "hw_bit_exact", "board", "lc_used", "lc_total", "dsp_used", "dsp_total", "bram_used",
    "bram_total", "fmax_mhz", "target_mhz", "cycles_per_inference", "cycles_between_inferences",
    "inferences_per_second", "latency_us", "cycles_lower_bound", "latency_over_bound",
    "bitstream",
)


def _number_text(v):
    return (f"{v:.4f}" if v < 10 else f"{v:.1f}") if isinstance(v, float) else str(v)


def format_summary(summary):
    """The summary as a two-column table, the issue's keys first, then one row per layer."""
    keys = [k for k in SUMMARY_KEYS if k in summary]
    keys += sorted(k for k in summary if k not in keys and k != "layers")
    width = max(len(k) for k in keys)
    lines = [f"{k:<{width}}  {_number_text(summary[k])}" for k in keys]
    layers = summary.get("layers") or []
    if layers:
        lines.append("")
        lines.append(f"{'layer':<8} {'engine':<12} {'shape':>8} {'bits':>4} {'sparsity':>8} "
                     f"{'mults/out':>9} {'lanes':>5} {'cycles':>6}  non-zeros per lane")
        for e in layers:
            shape = "x".join(str(d) for d in e["shape"])
            bits = "-" if e.get("weight_bits") is None else e["weight_bits"]
            sparsity = "-" if e.get("sparsity") is None else f"{e['sparsity']:.3f}"
            groups = e.get("nonzeros_per_group") or "-"
            lines.append(f"{e['name']:<8} {e['engine']:<12} {shape:>8} {bits:>4} "
                         f"{sparsity:>8} {e['mults']:>9.1f} {e['lanes']:>5} "
                         f"{e['cycles']:>6}  {groups}")
    return "\n".join(lines)


class Summary(Mapping):
    """A run's figures (``summary.json``), read only; printed as ``slimgen summary`` prints
    them. Keys read as attributes too (``summary.int_accuracy``)."""

    def __init__(self, figures):
        self._figures = json.loads(json.dumps(figures))      # a deep copy, plain values

    def __getitem__(self, key):
        return self._figures[key]

    def __iter__(self):
        return iter(self._figures)

    def __len__(self):
        return len(self._figures)

    def __getattr__(self, name):
        try:
            return self.__dict__["_figures"][name]
        except KeyError:
            raise AttributeError(f"the summary has no figure {name!r}") from None

    def as_dict(self):
        return json.loads(json.dumps(self._figures))

    def __repr__(self):
        return format_summary(self._figures)


def _frozen(v):
    if isinstance(v, list):
        return tuple(_frozen(e) for e in v)
    if isinstance(v, dict):
        return MappingProxyType({k: _frozen(e) for k, e in v.items()})
    return v


class _Result:
    """A stage's figures as fields, ``figures`` its whole record (``<stage>.json``); printed
    as a few lines. ``_KEYS``: a field's key in the record where it is not its own name."""
    _KEYS = {}
    _LONG = ("history", "layers", "layer_sparsity")

    @classmethod
    def _of(cls, figures, **extra):
        values = {f.name: _frozen(figures.get(cls._KEYS.get(f.name, f.name)))
                  for f in fields(cls) if f.name != "figures"}
        return cls(**{**values, **extra, "figures": MappingProxyType(dict(figures))})

    def __repr__(self):
        rows = [(f.name, getattr(self, f.name)) for f in fields(self)
                if f.name != "figures" and getattr(self, f.name) is not None]
        width = max([len(k) for k, _ in rows], default=0)
        lines = [type(self).__name__]
        for k, v in rows:
            if k in self._LONG:
                v = f"{len(v)} entries" if k != "history" else f"{len(v)} epochs"
            elif isinstance(v, tuple):
                v = ", ".join(map(str, v))
            lines.append(f"  {k:<{width}}  {_number_text(v)}")
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class TrainResult(_Result):
    """The float model's accuracy on the test and validation splits, its epochs and their
    ``history`` (per epoch: loss, train and validation accuracy, learning rate)."""
    float_accuracy: float = None
    val_accuracy: float = None
    epochs: int = None
    history: tuple = ()
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "train_seconds"}


@dataclass(frozen=True, repr=False)
class CompressResult(_Result):
    """The compressed float model's test accuracy, its fraction of zero weights (in all and
    per weight array)."""
    method: str = None
    compressed_accuracy: float = None
    sparsity: float = None
    layer_sparsity: tuple = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "compress_seconds"}


@dataclass(frozen=True, repr=False)
class QuantizeResult(_Result):
    """The integer model's test accuracy; per weight layer its weight and accumulator widths;
    the activations' and the logits' widths."""
    int_accuracy: float = None
    weight_bits: tuple = None
    acc_bits: tuple = None
    act_bits: int = None
    logit_bits: int = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "quantize_seconds"}


@dataclass(frozen=True, repr=False)
class GenerateResult(_Result):
    """The Verilog file and its size, the multipliers, per layer its lanes and engine, the
    multiplications of one inference, the cycles' lower bound and estimate, the layers'
    entries (``slimgen summary``'s table)."""
    verilog: str = None
    verilog_lines: int = None
    multipliers: int = None
    lanes: tuple = None
    engines: tuple = None
    mults_per_inference: int = None
    cycles_lower_bound: int = None
    cycles_estimate: int = None
    layers: tuple = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "generate_seconds"}


@dataclass(frozen=True, repr=False)
class VerifyResult(_Result):
    """The simulated RTL's test accuracy, whether every logit of the ``images`` equalled the
    golden model's, the simulator, the cycles of one inference and between two."""
    hw_accuracy: float = None
    bit_exact: bool = None
    images: int = None
    simulator: str = None
    cycles: int = None
    cycles_between: int = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "verify_seconds", "bit_exact": "hw_bit_exact",
             "images": "images_verified", "cycles": "cycles_per_inference",
             "cycles_between": "cycles_between_inferences"}


@dataclass(frozen=True, repr=False)
class BuildResult(_Result):
    """Utilisation and timing from nextpnr's report, the estimate checked before it, and the
    bitstream."""
    board: str = None
    lc_used: int = None
    lc_total: int = None
    dsp_used: int = None
    dsp_total: int = None
    bram_used: int = None
    bram_total: int = None
    fmax_mhz: float = None
    target_mhz: float = None
    bitstream: str = None
    dsp_estimate: int = None
    bram_estimate: int = None
    tool_seconds: float = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "build_seconds"}


@dataclass(frozen=True, repr=False)
class ReportResult(_Result):
    """The report's two files."""
    html: str = None
    md: str = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "report_seconds", "html": "report_html", "md": "report_md"}


_RESULTS = {"train": TrainResult, "compress": CompressResult, "quantize": QuantizeResult,
            "generate": GenerateResult, "verify": VerifyResult, "build": BuildResult,
            "report": ReportResult}


@dataclass(frozen=True, eq=False)
class TraceEntry:
    """One record of the integer model: ``name`` (the description layer's kind and index,
    ``dense_1``), ``kind`` (the record's: dense, conv, pool, flatten, relu, recurrent),
    ``source`` (the description layer), ``layer`` (its kind) and ``output`` (int64, (n, *shape)
    channels-last)."""
    name: str
    kind: str
    source: int
    layer: str
    output: object

    def __repr__(self):
        out = self.output
        span = f" in [{out.min()}, {out.max()}]" if out.size else ""
        return f"{self.name:<14} {self.kind:<10} {str(out.shape):<16} {out.dtype}{span}"


class Trace(tuple):
    """The :class:`TraceEntry` of every integer record, in order; ``trace["dense_1"]`` by
    name too."""

    @property
    def names(self):
        return [e.name for e in self]

    def __getitem__(self, key):
        if isinstance(key, str):
            for e in self:
                if e.name == key:
                    return e
            raise KeyError(f"no record named {key!r}; the records are "
                           f"{', '.join(self.names)}")
        return super().__getitem__(key)

    def __repr__(self):
        return "\n".join(map(repr, self))


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
            extra["history"] = _frozen(load_float_artifact(self._run, "float.npz", "train")[1]
                                       .get("history", []))
        if name == "generate":
            extra["verilog"] = str(self._run.path("network.v"))
        return _RESULTS[name]._of(figures, **extra)

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

    ``network``: a preset's name (``"mlp"``, ``"cnn"``, ``"lstm"``), the path of a network
    description (``.json``), a description as a dict, or a
    :class:`~slimgen.sw.network.Network` (written to ``net.json`` in the run folder); None
    keeps the run's (the MLP for a new run). ``data``: ``"digits"`` or a ``.npz`` path (None:
    the run's, else digits). ``settings``: any of :class:`RunConfig`'s (``epochs=3``,
    ``sizes=[64, 16, 10]``, ``method="magnitude"``, ...). ``quiet``: no progress bars;
    ``log``: where progress lines go (a function of one string; stderr by default)."""
    from slimgen.sw.network import PRESETS, Network, check_network
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
        elif isinstance(network, (str, os.PathLike)):
            path = Path(network)
            if not path.is_file() and path.suffix != ".json":
                raise FlowError(f"network {str(network)!r} is neither a preset "
                                f"({', '.join(PRESETS)}) nor a network description file "
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
