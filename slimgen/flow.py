"""The flow: train → quantize → generate → verify → build, each stage a file in ``runs/<name>/``.

=========  ==========================  ==========================================================
stage      reads                       writes
=========  ==========================  ==========================================================
train      the data set                ``float.npz`` (float artifact), ``train.json``
compress   ``float.npz``               ``compressed.npz`` (float, pruned), ``compress.json``
quantize   ``compressed.npz``          ``model.npz`` (integer artifact), ``quantize.json``
           (``float.npz`` when the
           method is ``none``)
generate   ``model.npz``               ``network.v`` (Verilog of the network top), ``generate.json``
verify     ``model.npz``, ``network.v``  ``verify.json`` (every test sample through the simulator)
build      ``model.npz``               ``build/`` (bitstream and tool logs), ``build.json``
=========  ==========================  ==========================================================

``summary.json`` joins the figures of all stages that have run. Every file is written whole.
This module holds the run folder (:class:`Run`), its stage records and the checks made before
anything in it changes; the stages themselves are in :mod:`slimgen.stages`.
"""

import hashlib
import json
import sys
import time
from pathlib import Path

from slimgen.sw.artifact import write_bytes_atomic
from slimgen.settings import RunConfig, SettingError, SettingTypeError
from slimgen.sw.data import load_dataset

__all__ = ["RunConfig", "Run", "STAGES", "run_stage", "run_flow", "check_flow", "FlowError",
           "SettingError", "SettingTypeError", "stale_stages", "check_stage_inputs",
           "check_data", "read_record", "read_records", "data_sha256",
           "load_float_artifact"]

STAGES = ("train", "compress", "quantize", "generate", "verify", "build", "report")

# The settings each stage's output depends on (beyond its inputs from earlier stages).
STAGE_SETTINGS = {
    "train": ("model", "net", "source", "data", "sizes", "hidden", "seed", "epochs",
              "batch_size", "lr"),
    "compress": ("method", "sparsity", "bits", "layout", "compress_epochs",
                 "finetune_epochs"),  # + lanes for balanced groups
    "quantize": ("weight_bits", "act_bits"),
    # the board too: the plan is the board's, and the compiler keeps a design within it
    "generate": ("lanes", "copies", "engine", "layout", "board", "objective", "fps",
                 "weight_memory", "act_memory"),
    "verify": ("sim",),
    "build": ("board",),
    "report": (),
}
# The stages whose outputs the later stages read (verify, build and report read only these).
FEEDS_LATER_STAGES = ("train", "compress", "quantize", "generate")
STAGE_OUTPUTS = {
    "train": ("float.npz",), "compress": ("compressed.npz",), "quantize": ("model.npz",),
    "generate": ("network.v", "plan.json", "weights.bin"),
    "verify": ("waveform.vcd",), "build": (), "report": ("report.html", "report.md"),
}


class FlowError(RuntimeError):
    """A stage cannot run: a missing input file, a failed check. The message says what to do."""


def _write_json(path, obj):
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _redo(path):
    """What to do about the damaged JSON file ``path`` of a run folder."""
    stage = Path(path).stem
    if stage in STAGES:
        return f"delete it and rerun the {stage} stage ('slimgen {stage} --run {path.parent}')"
    return f"delete it and run 'slimgen flow --run {path.parent}' with your settings"


def _read_json(path):
    """The JSON object in ``path`` (a stage record or ``config.json``), or None when there is
    no such file; anything else (damaged, not UTF-8, not an object) is a :class:`FlowError`
    naming the file and what to do."""
    path = Path(path)
    what = "the run configuration" if path.name == "config.json" else "a stage record"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise FlowError(f"{path} is not UTF-8 text, so not {what}: {_redo(path)}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise FlowError(f"{path} is damaged ({e}): {_redo(path)}") from None
    if not isinstance(obj, dict):
        raise FlowError(f"{path} is not {what} (a JSON object) but {json.dumps(obj)[:40]}: "
                        f"{_redo(path)}")
    return obj


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# The type of each figure the summary computes with or prints as a table: a wrong type in a
# stage record is refused naming the file and the field, never a crash of the summary.
_NUMBER_FIELDS = ("float_accuracy", "val_accuracy", "compressed_accuracy", "int_accuracy",
                  "hw_accuracy", "sparsity", "cycles_per_inference", "cycles_between_inferences",
                  "cycles_lower_bound", "cycles_estimate", "target_mhz", "multipliers",
                  "mults_per_inference", "verilog_lines", "images_verified", "epochs")
_LAYER_FIELDS = (("name", str, "a string"), ("engine", str, "a string"),
                 ("shape", list, "a list of integers"), ("mults", (int, float), "a number"),
                 ("lanes", int, "an integer"), ("cycles", int, "an integer"))


def _check_record(path, figures):
    """Refuse a stage record whose figures the summary could not use (wrong types)."""
    def bad(field, value, expected):
        return FlowError(f"{path} is not a valid stage record: {field} is {value!r}, not "
                         f"{expected}: {_redo(path)}")
    for key in _NUMBER_FIELDS:
        v = figures.get(key)
        if v is not None and not _is_number(v):
            raise bad(key, v, "a number")
    layers = figures.get("layers")
    if layers is None:
        return
    if not isinstance(layers, list):
        raise bad("layers", layers, "a list of layer entries")
    for i, e in enumerate(layers):
        if not isinstance(e, dict):
            raise bad(f"layers[{i}]", e, "a layer entry (a JSON object)")
        for key, t, expected in _LAYER_FIELDS:
            v = e.get(key)
            if not isinstance(v, t) or isinstance(v, bool) or (
                    key == "shape" and not all(_is_number(d) for d in v)):
                raise bad(f"layers[{i}].{key}", v, expected)
        for key in ("weight_bits", "sparsity"):
            if e.get(key) is not None and not _is_number(e[key]):
                raise bad(f"layers[{i}].{key}", e[key], "a number")


def read_record(root, stage):
    """The figures ``stage`` recorded in ``root`` (``<stage>.json``), checked; None if none."""
    path = Path(root) / f"{stage}.json"
    figures = _read_json(path)
    if figures is not None:
        _check_record(path, figures)
    return figures


def read_records(root):
    """Every stage record of the run folder ``root``, checked, by stage (only those present)."""
    return {stage: f for stage in STAGES if (f := read_record(root, stage)) is not None}


def data_sha256(config):
    """The SHA-256 of the run's data file (None for the built-in digits or a missing file)."""
    if config.data == "digits":
        return None
    try:
        with open(config.data, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def data_changed(root, config):
    """Whether the data file differs from the one the train stage of ``root`` read (its
    SHA-256 recorded in ``train.json``)."""
    train = read_record(root, "train")
    recorded = (train or {}).get("_data_sha256")
    return recorded is not None and data_sha256(config) not in (None, recorded)


def skip_build_option(root):
    """``" --skip-build"`` for advice about a run that never built (no ``build.json``)."""
    return "" if (Path(root) / "build.json").exists() else " --skip-build"


def stale_stages(old, new):
    """``(stages, changed)``: the stages whose outputs no longer match when the settings (dicts
    of :meth:`RunConfig.to_dict`) change from ``old`` to ``new`` (the first stage whose settings
    changed and every stage after it; ``()`` if none), and the changed settings, sorted."""
    # A setting missing from an older config.json had its default then.
    old = {**RunConfig().to_dict(), **old}
    changed = sorted(k for k in new if old.get(k) != new[k])
    for i, stage in enumerate(STAGES):
        settings = set(STAGE_SETTINGS[stage])
        if stage == "compress" and new.get("method") == "balanced":
            settings.add("lanes")  # one group per lane
        if stage == "compress" and new.get("method") == old.get("method") == "none":
            settings = set()       # nothing compressed: nothing to invalidate
        if settings & set(changed):
            return STAGES[i:], changed
    return (), changed


def stage_inputs(config, stage):
    """The files ``stage`` reads from earlier stages: ``(file, the stage that writes it)``."""
    compressed = ("compressed.npz", "compress") if config.method != "none" \
        else ("float.npz", "train")
    return {"train": (), "compress": (("float.npz", "train"),) if config.method != "none"
            else (), "quantize": (compressed,), "generate": (("model.npz", "quantize"),),
            "verify": (("model.npz", "quantize"), ("network.v", "generate")),
            "build": (("model.npz", "quantize"), ("network.v", "generate")),
            "report": ()}[stage]


def _missing(root, name, stage):
    return FlowError(f"{Path(root) / name} does not exist: run 'slimgen {stage} --run {root}' "
                     f"first (or 'slimgen flow')")


def _stage_files(stage):
    return STAGE_OUTPUTS[stage] + (f"{stage}.json",)


def check_stage_inputs(root, config, stage):
    """Refuse, before anything is touched, to run ``stage`` alone in the run folder ``root``
    with ``config`` when it could not finish: a new setting would remove the outputs of an
    earlier stage that it reads, or one of its inputs does not exist."""
    root = Path(root)
    stored = _read_json(root / "config.json")
    records = read_records(root)     # a damaged record is refused before anything changes
    if stage == "report" and not records:
        raise FlowError(f"{root} has no stage records to report on: run 'slimgen flow --run "
                        f"{root}' first")
    if stored is not None:
        stale, changed = stale_stages(stored, config.to_dict())
        # report reads every stage's record, but needs none of them redone
        earlier = [st for st in stale if STAGES.index(st) < STAGES.index(stage)
                   and (stage != "report" or st in FEEDS_LATER_STAGES)]
        if earlier and any((root / name).exists() for st in stale for name in _stage_files(st)):
            first = earlier[0]
            raise FlowError(f"settings {changed} change the outputs of {first}, which {stage} "
                            f"reads: run 'slimgen flow --run {root}' with these options (or "
                            f"'slimgen {first} --run {root}' with them first); nothing was "
                            f"changed")
    if stage != "train" and "train" in records and data_changed(root, config):
        raise FlowError(f"the data file {config.data} changed since the train stage read it, "
                        f"so {stage} would mix results of two data sets: run 'slimgen flow "
                        f"--run {root}{skip_build_option(root)} --from train' (or 'slimgen "
                        f"train --run {root}' first); nothing was changed")
    for name, writer in stage_inputs(config, stage):
        if not (root / name).exists():
            raise _missing(root, name, writer)


def check_data(config, data=None):
    """Refuse a data set the model cannot take (samples of another shape than its input,
    labels beyond its outputs) with one message naming the data, before anything is trained.
    ``data``: the loaded :class:`~slimgen.sw.data.Dataset` (loaded here if None)."""
    from slimgen.models import get_model_kind
    kind = get_model_kind(config.model)
    if data is None:
        data = load_dataset(config.data, view=kind.VIEW, seed=config.seed)
    try:
        kind.check_data(config, tuple(data.x.shape[1:]), int(data.n_classes))
    except ValueError as e:
        raise FlowError(f"data {config.data!r}: {e}") from None
    return data


class Run:
    """A run folder and its configuration.

    Building a ``Run`` with a ``config`` writes it to ``config.json`` (when it differs from
    the stored one) and removes the outputs of the stages a changed setting affects; every
    setting has been checked by then (:class:`RunConfig`). :meth:`existing` opens a run
    folder read only.
    """

    def __init__(self, root, config=None, *, progress=True, log=None):
        if isinstance(root, str) and not root.strip():
            raise ValueError(f"The run folder must be named (e.g. runs/default), not {root!r}")
        self.root = Path(root)
        self.progress = progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        stored = _read_json(self.root / "config.json")
        if config is None:
            config = RunConfig.from_dict(stored) if stored else RunConfig()
        self.config = config
        if stored != config.to_dict():
            read_records(self.root)   # a damaged record is refused before anything is removed
            self.root.mkdir(parents=True, exist_ok=True)
            if stored:
                self._invalidate(stored, config.to_dict())
            _write_json(self.root / "config.json", config.to_dict())

    @classmethod
    def existing(cls, root, *, log=None):
        """The run folder ``root`` as it is, read only (nothing is created or written)."""
        if isinstance(root, str) and not root.strip():
            raise ValueError(f"The run folder must be named (e.g. runs/default), not {root!r}")
        root = Path(root)
        why = "it does not exist" if not root.exists() else \
            "no config.json" if not (root / "config.json").exists() else None
        if why:
            raise FlowError(f"{root} is not a run folder ({why}): run 'slimgen flow --run "
                            f"{root}' to make one")
        stored = _read_json(root / "config.json")
        try:
            config = RunConfig.from_dict({**RunConfig().to_dict(), **stored})
        except (ValueError, TypeError) as e:
            raise FlowError(f"{root / 'config.json'} is not a valid run configuration: {e}") \
                from None
        run = cls.__new__(cls)
        run.root, run.config, run.progress = root, config, False
        run.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        return run

    def _invalidate(self, old, new):
        """Remove the outputs of the first stage whose settings changed and of all after it,
        so that no summary mixes results of different settings."""
        stale, changed = stale_stages(old, new)
        if stale:
            self.forget(stale)
            self.log(f"settings {changed} changed: outputs of {', '.join(stale)} removed; "
                     f"rerun them")

    def forget(self, stages):
        """Remove the outputs and figures of ``stages`` (stale once an earlier stage changed)."""
        for stage in stages:
            for name in _stage_files(stage):
                self.path(name).unlink(missing_ok=True)
        _write_json(self.path("summary.json"), self.summary())

    def path(self, name):
        return self.root / name

    def need(self, name, stage):
        p = self.path(name)
        if not p.exists():
            raise _missing(self.root, name, stage)
        return p

    @property
    def kind(self):
        """The model kind's module (:mod:`slimgen.models`)."""
        from slimgen.models import get_model_kind
        return get_model_kind(self.config.model)

    def dataset(self, view=None):
        """The run's data in ``view``, or as the model takes it."""
        data = load_dataset(self.config.data, view=view or self.kind.VIEW, seed=self.config.seed)
        if view is None and hasattr(self.kind, "float_input"):
            from dataclasses import replace
            from slimgen.models.net import load_network
            if data.x[0].size == load_network(self.config.net).n_inputs:
                data = replace(data, x=self.kind.float_input(self.config, data.x))
        return data

    def test_inputs(self, int_model):
        """The test split as integer codes (n, n_inputs) in raster order, and its labels."""
        from slimgen.sw.quantize import quantize_inputs
        x, y = self.dataset(view="vector").part("test")
        return quantize_inputs(x, int_model.input_scale, int_model.input_bits), y

    def record(self, stage, figures):
        _write_json(self.path(f"{stage}.json"), figures)
        summary = self.summary()
        _write_json(self.path("summary.json"), summary)
        return figures

    def summary(self):
        s = {"run": str(self.root), "board": self.config.board}
        for stage in STAGES:
            figures = read_record(self.root, stage)
            if figures:
                s.update({k: v for k, v in figures.items() if not k.startswith("_")})
        if "float_accuracy" in s and s.get("method", "none") == "none":
            s["compressed_accuracy"] = s["float_accuracy"]
        if s.get("cycles_between_inferences"):
            from slimgen.boards.build import get_board
            mhz = s.get("target_mhz") or get_board(self.config.board).clock_hz / 1e6
            s["inferences_per_second"] = round(mhz * 1e6 / s["cycles_between_inferences"], 1)
            s["latency_us"] = round(s["cycles_per_inference"] / mhz, 2)
        if s.get("cycles_per_inference") and s.get("cycles_lower_bound"):
            s["latency_over_bound"] = round(s["cycles_per_inference"] / s["cycles_lower_bound"], 3)
        return s


# The stage functions (slimgen.stages), one per stage, each taking the Run and returning its
# figures; slimgen.stages fills this in when it is imported (at the end of this module).
_STAGE_FUNCS = {}


def _stamp(path):
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def run_stage(run, stage):
    """Run one stage, record its figures and the summary; returns the figures."""
    if stage not in _STAGE_FUNCS:
        raise ValueError(f"Stage must be one of {', '.join(STAGES)}, not {stage!r}")
    run.log(f"== {stage} ==")
    t = time.monotonic()
    before = {name: _stamp(run.path(name)) for name in STAGE_OUTPUTS[stage]}
    try:
        figures = _STAGE_FUNCS[stage](run)
    except BaseException:
        # Interrupted or failed after replacing an output (each is written whole): the stage
        # is not done, and what later stages made came from the output it replaced.
        if any(_stamp(run.path(name)) != s for name, s in before.items()):
            run.forget(STAGES[STAGES.index(stage):])
        raise
    figures[f"{stage}_seconds"] = round(time.monotonic() - t, 2)
    if stage in FEEDS_LATER_STAGES:
        # what the later stages made came from the previous output of this one
        run.forget(STAGES[STAGES.index(stage) + 1:])
    return run.record(stage, figures)


def stage_done(run, stage):
    """Whether ``stage`` has run with the run's current settings: its ``<stage>.json`` exists
    (a changed setting removes it, see :meth:`Run.__init__`) and does not record a failure."""
    figures = _read_json(run.path(f"{stage}.json"))
    if figures is None or figures.get("_failed"):
        return False
    if stage == "train" and data_changed(run.root, run.config):
        run.log(f"== train == the data file {run.config.data} changed since it was trained "
                f"on: training again")
        return False
    return True


def check_flow(stages, rerun_from):
    """Refuse a ``rerun_from`` stage that is not among the ``stages`` to run (``--from build``
    with ``--skip-build`` would silently run nothing of it)."""
    if rerun_from is not None and rerun_from not in STAGES:
        raise ValueError(f"--from must be one of {', '.join(STAGES)}, not {rerun_from!r}")
    if rerun_from is not None and rerun_from not in stages:
        if stages and STAGES.index(rerun_from) > STAGES.index(stages[-1]):
            raise FlowError(f"--from {rerun_from} comes after --to {stages[-1]}: this flow "
                            f"stops before it")
        if rerun_from == "build":
            raise FlowError("--from build with --skip-build runs nothing: leave out one of "
                            "them")
        raise FlowError(f"--from {rerun_from} names a stage this flow skips: leave it out")


def run_flow(run, stages=STAGES, *, rerun_from=None):
    """Run the stages in order and return the summary. A stage already done with the current
    settings is kept (so a second ``slimgen flow`` after changing only, say, the board
    rebuilds only what depends on it), except the report, which is always rewritten;
    ``rerun_from`` names a stage to run again with every stage after it."""
    check_flow(stages, rerun_from)
    read_records(run.root)     # a damaged record is refused before any stage runs
    rerun = set(STAGES[STAGES.index(rerun_from):]) if rerun_from else set()
    for stage in stages:
        if stage != "report" and stage not in rerun and stage_done(run, stage):
            run.log(f"== {stage} == done with these settings, kept (--from {stage} reruns it)")
            continue
        run_stage(run, stage)
    return run.summary()


import slimgen.stages  # noqa: E402,F401  (fills in _STAGE_FUNCS)
