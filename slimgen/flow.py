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
"""

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import load_float_model, save_float_model, write_bytes_atomic
from slimgen.settings import RunConfig, SettingError, SettingTypeError
from slimgen.sw.data import load_dataset

__all__ = ["RunConfig", "Run", "STAGES", "run_stage", "run_flow", "FlowError", "SettingError",
           "SettingTypeError", "stale_stages", "check_stage_inputs", "check_data"]

STAGES = ("train", "compress", "quantize", "generate", "verify", "build", "report")

# The settings each stage's output depends on (beyond its inputs from earlier stages).
STAGE_SETTINGS = {
    "train": ("model", "data", "sizes", "hidden", "seed", "epochs", "batch_size", "lr"),
    "compress": ("method", "sparsity", "bits", "layout", "compress_epochs",
                 "finetune_epochs"),  # + lanes for balanced groups
    "quantize": ("weight_bits", "act_bits"),
    "generate": ("lanes", "engine", "layout"),
    "verify": ("sim",),
    "build": ("board",),
    "report": (),
}
# The stages whose outputs the later stages read (verify, build and report read only these).
FEEDS_LATER_STAGES = ("train", "compress", "quantize", "generate")
STAGE_OUTPUTS = {
    "train": ("float.npz",), "compress": ("compressed.npz",), "quantize": ("model.npz",),
    "generate": ("network.v",),
    "verify": ("waveform.vcd",), "build": (), "report": ("report.html", "report.md"),
}


class FlowError(RuntimeError):
    """A stage cannot run: a missing input file, a failed check. The message says what to do."""


def _write_json(path, obj):
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise FlowError(f"{path} is damaged ({e}); delete it and rerun its stage") from None


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
    if stored is not None:
        stale, changed = stale_stages(stored, config.to_dict())
        earlier = [st for st in stale if STAGES.index(st) < STAGES.index(stage)]
        if earlier and any((root / name).exists() for st in stale for name in _stage_files(st)):
            first = earlier[0]
            raise FlowError(f"settings {changed} change the outputs of {first}, which {stage} "
                            f"reads: run 'slimgen flow --run {root}' with these options (or "
                            f"'slimgen {first} --run {root}' with them first); nothing was "
                            f"changed")
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
        return load_dataset(self.config.data, view=view or self.kind.VIEW, seed=self.config.seed)

    def test_inputs(self, int_model):
        """The test split as integer codes (n, n_inputs) in raster order, and its labels."""
        from slimgen.sw.quant import quantize_inputs
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
            figures = _read_json(self.path(f"{stage}.json"))
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


def stage_train(run):
    from slimgen.sw.nn import TrainConfig, build_model, evaluate, train
    c = run.config
    data = check_data(c, run.dataset())
    model = build_model(run.kind.float_spec(c), np.random.default_rng(c.seed))
    tc = TrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, seed=c.seed)
    history = train(model, data, tc, progress=run.progress)
    acc = evaluate(model, *data.part("test"))
    save_float_model(run.path("float.npz"), model, dataset=c.data, split_seed=c.seed,
                     history=history, extra={"model": c.model})
    return {"model": c.model, "float_accuracy": acc,
            "val_accuracy": evaluate(model, *data.part("val")), "epochs": c.epochs}


def stage_compress(run):
    import argparse
    from slimgen import compress_cli
    from slimgen.sw.nn import evaluate
    c = run.config
    if c.method == "none":
        run.path("compressed.npz").unlink(missing_ok=True)
        return {"method": "none"}
    model, manifest = load_float_model(run.need("float.npz", "train"))
    data = run.dataset()
    parser = argparse.ArgumentParser()
    compress_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compress", "--method", c.method, "--sparsity", str(c.sparsity),
                              "--bits", str(c.bits), "--groups", str(c.lanes),
                              "--layout", c.layout, "--seed", str(c.seed)]
                             + (["--epochs", str(c.compress_epochs)]
                                if c.compress_epochs is not None else [])
                             + (["--finetune-epochs", str(c.finetune_epochs)]
                                if c.finetune_epochs is not None else []))
    result = compress_cli.compress(model, data, args, progress=run.progress)
    info = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.info.items()}
    x, y = data.part("test")
    save_float_model(run.path("compressed.npz"), model, dataset=c.data, split_seed=c.seed,
                     history=manifest.get("history", []),
                     extra={"model": c.model, "compression": info})
    weights = [p for layer in model.layers for name, p in layer.params.items()
               if name.startswith(("W", "U"))]
    return {
        "method": c.method,
        "compressed_accuracy": evaluate(model, x, y),
        "sparsity": float(sum((w == 0).sum() for w in weights) / sum(w.size for w in weights)),
        "layer_sparsity": [float((w == 0).mean()) for w in weights],
    }


def stage_quantize(run):
    from slimgen.sw.golden import argmax_first
    c = run.config
    if c.method == "none":
        model, manifest = load_float_model(run.need("float.npz", "train"))
    else:
        model, manifest = load_float_model(run.need("compressed.npz", "compress"))
    data = run.dataset()
    if manifest["split_seed"] != c.seed or manifest["dataset"] != c.data:
        raise FlowError(f"float.npz was trained on {manifest['dataset']!r} split seed "
                        f"{manifest['split_seed']}, but this run uses {c.data!r} seed {c.seed}: "
                        f"rerun 'slimgen train'")
    int_model = run.kind.quantize(model, data, c, manifest.get("compression", {}))
    run.kind.save_int(run.path("model.npz"), int_model, dataset=c.data, split_seed=c.seed)
    x_q, y = run.test_inputs(int_model)
    figures = {"int_accuracy": float(np.mean(argmax_first(int_model(x_q)) == y)),
               "act_bits": c.act_bits, "logit_bits": int_model.logit_bits}
    layers = getattr(int_model, "layers", None)
    if layers and all(hasattr(layer, "acc_bits") for layer in layers):
        figures["weight_bits"] = [int(layer.weight_bits) for layer in layers]
        figures["acc_bits"] = [int(layer.acc_bits) for layer in layers]
    return figures


def _load_int_model(run):
    return run.kind.load_int(run.need("model.npz", "quantize"))


def stage_generate(run):
    from slimgen.hw.verilog import to_verilog
    int_model = _load_int_model(run)
    net = run.kind.make_network(int_model, run.config)
    text = to_verilog(net, "network")
    write_bytes_atomic(run.path("network.v"), text.encode())
    layers = run.kind.layer_entries(net)
    # A kind whose layers share one multiplier array says how many multipliers it has in all;
    # otherwise every layer has its own lanes.
    count = getattr(run.kind, "multipliers", None)
    multipliers = int(count(net)) if count else sum(e["lanes"] for e in layers)
    mults = sum(e.get("mults_per_inference", e["nonzeros"]) for e in layers)
    estimate = getattr(run.kind, "cycles_estimate", None)
    return {"lanes": [e["lanes"] for e in layers], "multipliers": multipliers,
            "verilog_lines": text.count("\n"), "engines": [e["engine"] for e in layers],
            "layers": layers, "mults_per_inference": int(mults),
            # every multiplier busy on a useful product every cycle: the latency floor
            "cycles_lower_bound": int(-(-mults // multipliers)),
            "cycles_estimate": int(estimate(net)) if estimate
            else sum(e["cycles"] for e in layers)}


def stage_verify(run):
    from slimgen.sim.network import verify_network
    from slimgen.sim.runner import BenchFailed
    qmodel = _load_int_model(run)
    verilog = run.need("network.v", "generate")
    x_q, y = run.test_inputs(qmodel)
    run.log(f"verify: {len(x_q)} test samples through {verilog.name} on {run.config.sim}")
    try:
        r = verify_network(verilog, qmodel, x_q, build_dir=run.path("sim"), sim=run.config.sim,
                           log_file=run.path("sim").resolve() / "verify.log")
    except BenchFailed as e:
        run.record("verify", {"hw_bit_exact": False, "images_verified": 0, "_failed": True})
        raise FlowError(f"Hardware differs from the golden model: {e}") from None
    return {
        "hw_accuracy": float(np.mean(r.cls == y)),
        "images_verified": r.n,
        "hw_bit_exact": r.bit_exact,
        "simulator": r.simulator,
        "cycles_per_inference": r.latency,
        "cycles_between_inferences": r.interval,
    }


def stage_build(run):
    from slimgen.boards.build import build_bitstream
    from slimgen.boards.build import get_board
    from slimgen.boards.estimate import check_estimate, estimate_resources
    board = get_board(run.config.board)
    verilog = run.need("network.v", "generate").read_text()
    estimate = check_estimate(estimate_resources(verilog, board.family), board)
    run.log(f"build: estimate {estimate.dsp} DSP blocks, {estimate.bram} block RAMs of "
            f"{board.totals['dsp']} and {board.totals['bram']}; synthesizing for {board.name}")
    int_model = _load_int_model(run)
    report = build_bitstream(int_model, run.config.board, run.path("build"),
                             network_factory=lambda: run.kind.make_network(int_model, run.config))
    figures = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(report).items()}
    figures["build_log"] = figures.pop("log", "")
    figures.update(estimate.to_dict())
    figures["tool_seconds"] = figures.pop("seconds")
    return figures


def stage_report(run):
    """``report.html`` (one self-contained page) and ``report.md``, with a waveform of one
    inference recorded on the run's simulator when verify has run."""
    from slimgen.report import write_report
    vcd = None
    if run.path("network.v").exists() and run.path("model.npz").exists() \
            and not run.path("waveform.vcd").exists():
        from slimgen.sim.waveform import record_inference_vcd
        int_model = _load_int_model(run)
        x_q, _ = run.test_inputs(int_model)
        try:
            vcd = record_inference_vcd(run.path("network.v"), int_model, x_q[0],
                                       run.path("waveform.vcd"), sim=run.config.sim,
                                       log_file=run.path("sim").resolve() / "waveform.log")
        except Exception as e:  # the report notes a missing waveform; the run is still good
            run.log(f"report: no waveform ({e})")
    html, md = write_report(run.root, vcd=vcd, record_waveform=False)
    return {"report_html": str(html), "report_md": str(md)}


_STAGE_FUNCS = {"train": stage_train, "compress": stage_compress, "quantize": stage_quantize,
                "generate": stage_generate, "verify": stage_verify, "build": stage_build,
                "report": stage_report}


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
    return figures is not None and not figures.get("_failed")


def run_flow(run, stages=STAGES, *, rerun_from=None):
    """Run the stages in order and return the summary. A stage already done with the current
    settings is kept (so a second ``slimgen flow`` after changing only, say, the board
    rebuilds only what depends on it), except the report, which is always rewritten;
    ``rerun_from`` names a stage to run again with every stage after it."""
    if rerun_from is not None and rerun_from not in STAGES:
        raise ValueError(f"--from must be one of {', '.join(STAGES)}, not {rerun_from!r}")
    rerun = set(STAGES[STAGES.index(rerun_from):]) if rerun_from else set()
    for stage in stages:
        if stage != "report" and stage not in rerun and stage_done(run, stage):
            run.log(f"== {stage} == done with these settings, kept (--from {stage} reruns it)")
            continue
        run_stage(run, stage)
    return run.summary()
