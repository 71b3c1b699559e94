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
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import load_float_model, save_float_model, write_bytes_atomic
from slimgen.sw.data import load_dataset

__all__ = ["RunConfig", "Run", "STAGES", "run_stage", "run_flow", "FlowError"]

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
ENGINES = ("auto", "dense", "sparse", "folded")
# The stages whose outputs the later stages read (verify, build and report read only these).
FEEDS_LATER_STAGES = ("train", "compress", "quantize", "generate")
STAGE_OUTPUTS = {
    "train": ("float.npz",), "compress": ("compressed.npz",), "quantize": ("model.npz",),
    "generate": ("network.v",),
    "verify": ("waveform.vcd",), "build": (), "report": ("report.html", "report.md"),
}


class FlowError(RuntimeError):
    """A stage cannot run: a missing input file, a failed check. The message says what to do."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; stored as ``config.json`` in the run folder."""
    model: str = "mlp"         # mlp, cnn or lstm (slimgen.models)
    data: str = "digits"
    sizes: tuple = (64, 32, 10)  # MLP layer sizes
    hidden: int = 32           # LSTM hidden units
    seed: int = 0
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_bits: int = 8
    act_bits: int = 8
    method: str = "none"       # compression: none or a method of slimgen.compress_cli
    sparsity: float = 0.9      # target fraction of zero weights (pruning methods)
    bits: float = 4.0          # target average weight bits (joint)
    compress_epochs: int | None = None   # epochs of the compression phase (None: the method's)
    finetune_epochs: int | None = None   # epochs of masked fine-tuning after it (None: the method's)
    lanes: int = 4             # MAC lanes per layer (and groups of balanced sparsity)
    engine: str = "auto"       # dense, sparse, folded, or auto (see ``engines``)
    layout: str = "rows"       # sparse engines and balanced groups: rows or banks
    board: str = "icebreaker"
    sim: str = "icarus"

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(s) for s in self.sizes))
        if len(self.sizes) < 2 or min(self.sizes) <= 0:
            raise ValueError(f"sizes must be two or more positive integers, not {self.sizes}")
        if not isinstance(self.lanes, int) or self.lanes <= 0:
            raise ValueError(f"lanes must be a positive integer, not {self.lanes!r}")
        if self.sim not in ("icarus", "verilator"):
            raise ValueError(f"sim must be 'icarus' or 'verilator', not {self.sim!r}")
        from slimgen.models import MODEL_KINDS
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {', '.join(MODEL_KINDS)}, not {self.model!r}")
        from slimgen.compress_cli import METHODS
        if self.method not in ("none",) + METHODS:
            raise ValueError(f"method must be one of none, {', '.join(METHODS)}, "
                             f"not {self.method!r}")
        if self.method == "lstm_gates" and self.model != "lstm":
            raise ValueError(f"method 'lstm_gates' prunes LSTM gates; it needs --model lstm, "
                             f"not {self.model!r}")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), not {self.sparsity!r}")
        for name, least in (("compress_epochs", 1), ("finetune_epochs", 0)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least):
                raise ValueError(f"{name} must be an integer ≥ {least} or null (the method's "
                                 f"default), not {v!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.engine == "folded" and self.model != "mlp":
            raise ValueError(f"engine 'folded' (every layer on one array) is for --model mlp, "
                             f"not {self.model!r}")
        if self.layout not in ("rows", "banks"):
            raise ValueError(f"layout must be 'rows' or 'banks', not {self.layout!r}")

    @property
    def engines(self):
        """The engine of every layer unless told otherwise: sparse ones for pruned models; for
        a dense MLP every layer on one shared array (the multipliers of one engine per layer,
        never idle while another layer runs); dense for the dense layers of other models."""
        if self.engine != "auto":
            return self.engine
        if self.method != "none":
            return "sparse"
        return "folded" if self.model == "mlp" else "dense"

    def to_dict(self):
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        return d

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown run settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def _write_json(path, obj):
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise FlowError(f"{path} is damaged ({e}); delete it and rerun its stage") from None


class Run:
    """A run folder and its configuration."""

    def __init__(self, root, config=None, *, progress=True, log=None):
        self.root = Path(root)
        self.progress = progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        stored = _read_json(self.root / "config.json")
        if config is None:
            config = RunConfig.from_dict(stored) if stored else RunConfig()
        self.config = config
        self.root.mkdir(parents=True, exist_ok=True)
        if stored and stored != config.to_dict():
            self._invalidate(stored, config.to_dict())
        _write_json(self.root / "config.json", config.to_dict())

    def _invalidate(self, old, new):
        """Remove the outputs of the first stage whose settings changed and of all after it,
        so that no summary mixes results of different settings."""
        # A setting missing from an older config.json had its default then.
        old = {**RunConfig().to_dict(), **old}
        changed = {k for k in new if old.get(k) != new[k]}
        for i, stage in enumerate(STAGES):
            settings = set(STAGE_SETTINGS[stage])
            if stage == "compress" and new.get("method") == "balanced":
                settings.add("lanes")  # one group per lane
            if stage == "compress" and new.get("method") == old.get("method") == "none":
                settings = set()       # nothing compressed: nothing to invalidate
            if changed & settings:
                self.forget(STAGES[i:])
                self.log(f"settings {sorted(changed)} changed: outputs of "
                         f"{', '.join(STAGES[i:])} removed; rerun them")
                break

    def forget(self, stages):
        """Remove the outputs and figures of ``stages`` (stale once an earlier stage changed)."""
        for stage in stages:
            for name in STAGE_OUTPUTS[stage] + (f"{stage}.json",):
                self.path(name).unlink(missing_ok=True)
        _write_json(self.path("summary.json"), self.summary())

    def path(self, name):
        return self.root / name

    def need(self, name, stage):
        p = self.path(name)
        if not p.exists():
            if stage == "compress":   # `slimgen compress` is the artifact tool
                raise FlowError(f"{p} does not exist: run 'slimgen flow --run {self.root}' "
                                f"(it runs the compress stage)")
            raise FlowError(f"{p} does not exist: run 'slimgen {stage} --run {self.root}' first "
                            f"(or 'slimgen flow')")
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
    data = run.dataset()
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


def run_stage(run, stage):
    """Run one stage, record its figures and the summary; returns the figures."""
    if stage not in _STAGE_FUNCS:
        raise ValueError(f"Stage must be one of {', '.join(STAGES)}, not {stage!r}")
    run.log(f"== {stage} ==")
    t = time.monotonic()
    figures = _STAGE_FUNCS[stage](run)
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
