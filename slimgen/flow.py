"""The flow: train → quantize → generate → verify → build, each stage a file in ``runs/<name>/``.

=========  ==========================  ==========================================================
stage      reads                       writes
=========  ==========================  ==========================================================
train      the data set                ``float.npz`` (float artifact), ``train.json``
quantize   ``float.npz``               ``model.npz`` (integer artifact), ``quantize.json``
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

from slimgen.sw.artifact import (load_float_model, load_quantized_model, save_float_model,
                                 save_quantized_model, write_bytes_atomic)
from slimgen.sw.data import load_dataset

__all__ = ["RunConfig", "Run", "STAGES", "run_stage", "run_flow", "FlowError"]

STAGES = ("train", "quantize", "generate", "verify", "build")

# The settings each stage's output depends on (beyond its inputs from earlier stages).
STAGE_SETTINGS = {
    "train": ("data", "sizes", "seed", "epochs", "batch_size", "lr"),
    "quantize": ("weight_bits", "act_bits"),
    "generate": ("lanes",),
    "verify": ("sim",),
    "build": ("board",),
}
STAGE_OUTPUTS = {
    "train": ("float.npz",), "quantize": ("model.npz",), "generate": ("network.v",),
    "verify": (), "build": (),
}


class FlowError(RuntimeError):
    """A stage cannot run: a missing input file, a failed check. The message says what to do."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; stored as ``config.json`` in the run folder."""
    data: str = "digits"
    sizes: tuple = (64, 32, 10)
    seed: int = 0
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_bits: int = 8
    act_bits: int = 8
    lanes: int = 4
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
        changed = {k for k in new if old.get(k) != new[k]}
        for i, stage in enumerate(STAGES):
            if changed & set(STAGE_SETTINGS[stage]):
                for later in STAGES[i:]:
                    for name in STAGE_OUTPUTS[later] + (f"{later}.json",):
                        if self.path(name).exists():
                            self.path(name).unlink()
                _write_json(self.path("summary.json"), self.summary())
                self.log(f"settings {sorted(changed)} changed: outputs of "
                         f"{', '.join(STAGES[i:])} removed; rerun them")
                break

    def path(self, name):
        return self.root / name

    def need(self, name, stage):
        p = self.path(name)
        if not p.exists():
            raise FlowError(f"{p} does not exist: run 'slimgen {stage} --run {self.root}' first "
                            f"(or 'slimgen flow')")
        return p

    def dataset(self):
        view = "vector"
        return load_dataset(self.config.data, view=view, seed=self.config.seed)

    def test_inputs(self, qmodel):
        """The test split as integer codes (n, n_inputs), and its labels."""
        from slimgen.sw.quant import quantize_inputs
        x, y = self.dataset().part("test")
        return quantize_inputs(x, qmodel.input_scale, qmodel.input_bits), y

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
        return s


def stage_train(run):
    from slimgen.sw.nn import TrainConfig, build_model, evaluate, mlp_spec, train
    c = run.config
    data = run.dataset()
    model = build_model(mlp_spec(c.sizes), np.random.default_rng(c.seed))
    tc = TrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, seed=c.seed)
    history = train(model, data, tc, progress=run.progress)
    acc = evaluate(model, *data.part("test"))
    save_float_model(run.path("float.npz"), model, dataset=c.data, split_seed=c.seed,
                     history=history)
    return {"float_accuracy": acc, "val_accuracy": evaluate(model, *data.part("val")),
            "epochs": c.epochs}


def stage_quantize(run):
    from slimgen.sw.golden import argmax_first
    from slimgen.sw.nn import evaluate
    from slimgen.sw.quant import QuantConfig, quantize_mlp
    c = run.config
    model, manifest = load_float_model(run.need("float.npz", "train"))
    data = run.dataset()
    if manifest["split_seed"] != c.seed or manifest["dataset"] != c.data:
        raise FlowError(f"float.npz was trained on {manifest['dataset']!r} split seed "
                        f"{manifest['split_seed']}, but this run uses {c.data!r} seed {c.seed}: "
                        f"rerun 'slimgen train'")
    qc = QuantConfig(weight_bits=c.weight_bits, act_bits=c.act_bits)
    qmodel = quantize_mlp(model, data.part("train")[0], input_scale=1.0 / data.pixel_max,
                          config=qc)
    save_quantized_model(run.path("model.npz"), qmodel, dataset=c.data, split_seed=c.seed)
    x_q, y = run.test_inputs(qmodel)
    return {
        "float_accuracy": evaluate(model, *data.part("test")),
        "int_accuracy": float(np.mean(argmax_first(qmodel(x_q)) == y)),
        "weight_bits": c.weight_bits, "act_bits": c.act_bits,
        "logit_bits": qmodel.logit_bits,
        "acc_bits": [layer.acc_bits for layer in qmodel.layers],
    }


def _load_qmodel(run):
    qmodel, manifest = load_quantized_model(run.need("model.npz", "quantize"))
    return qmodel


def stage_generate(run):
    from slimgen.hw.network import Network
    from slimgen.hw.verilog import to_verilog
    qmodel = _load_qmodel(run)
    net = Network(qmodel, lanes=run.config.lanes)
    text = to_verilog(net, "network")
    write_bytes_atomic(run.path("network.v"), text.encode())
    return {"lanes": net.lanes, "multipliers": net.multipliers, "verilog_lines": text.count("\n"),
            "cycles_estimate": sum(e.cycles_per_vector for e in net.engines)}


def stage_verify(run):
    from slimgen.sim.network import verify_network
    from slimgen.sim.runner import BenchFailed
    qmodel = _load_qmodel(run)
    verilog = run.need("network.v", "generate")
    x_q, y = run.test_inputs(qmodel)
    run.log(f"verify: {len(x_q)} test samples through {verilog.name} on {run.config.sim}")
    try:
        r = verify_network(verilog, qmodel, x_q, build_dir=run.path("sim"), sim=run.config.sim,
                           log_file=run.path("sim").resolve() / "verify.log")
    except BenchFailed as e:
        run.record("verify", {"hw_bit_exact": False, "images_verified": 0})
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
    qmodel = _load_qmodel(run)
    report = build_bitstream(qmodel, run.config.board, run.path("build"), lanes=run.config.lanes)
    figures = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(report).items()}
    figures["build_log"] = figures.pop("log", "")
    figures["tool_seconds"] = figures.pop("seconds")
    return figures


_STAGE_FUNCS = {"train": stage_train, "quantize": stage_quantize, "generate": stage_generate,
                "verify": stage_verify, "build": stage_build}


def run_stage(run, stage):
    """Run one stage, record its figures and the summary; returns the figures."""
    if stage not in _STAGE_FUNCS:
        raise ValueError(f"Stage must be one of {', '.join(STAGES)}, not {stage!r}")
    run.log(f"== {stage} ==")
    t = time.monotonic()
    figures = _STAGE_FUNCS[stage](run)
    figures[f"{stage}_seconds"] = round(time.monotonic() - t, 2)
    return run.record(stage, figures)


def run_flow(run, stages=STAGES):
    """Run the stages in order; returns the summary."""
    for stage in stages:
        run_stage(run, stage)
    return run.summary()
