"""Sweeps: trials per hour with 1 and 2 workers, and the CNN on the iCEBreaker swept for
hardware accuracy, logic cells and cycles.

    python bench/sweep.py [--dir sweep/bench] [--only throughput,cnn] [--cnn-trials 40]
                          [--throughput-trials 10]

``throughput``: the space of :data:`THROUGHPUT_SPACE` (an MLP whose every trial trains, is
generated and simulated: no two trials share a stage) swept once with one worker and once with
two, each in a fresh study; trials per hour = (trials + the default design) / wall time. The
goal is a speed-up ≥ 1.7 with two workers (this machine has two cores).

``cnn``: ``examples/sweeps/cnn-icebreaker.yaml`` (method, sparsity, lanes, weight bits; every
trial builds a bitstream) with two workers. Its Pareto front must hold a design at least as
accurate on the hardware as the default flow's (balanced 0.9, 4 lanes, 8 bits) with fewer
logic cells or fewer cycles. One CNN flow with a build took 78 s here (train 5 s, compress
11 s, verify 20 s, build 30 s, report 12 s; the sweep's trials skip the report's waveform).

Prints a table per part and a final JSON line.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from slimgen import sweep as sweep_mod
from slimgen.sweep_report import front_trials

ROOT = Path(__file__).resolve().parent.parent
CNN_SPACE = ROOT / "examples" / "sweeps" / "cnn-icebreaker.yaml"
THROUGHPUT_SPACE = """\
name: throughput
fixed:
  model: mlp
  sizes: [64, 32, 10]
  epochs: 20
  sim: verilator
parameters:
  lr: {low: 1.0e-3, high: 1.0e-2, log: true}   # a new lr: every trial trains afresh
  lanes: [1, 2, 4]
objectives:
  hw_accuracy: max
  cycles: min
n_trials: %d
sampler: random
seed: 0
"""


def _run(space_file, sweep_dir, workers):
    t = time.monotonic()
    sweep_mod.sweep(space_file, workers=workers, sweep_dir=sweep_dir,
                    log=lambda m: print(m, flush=True))
    return time.monotonic() - t


def throughput(base, n_trials):
    rows = []
    for workers in (1, 2):
        d = base / f"throughput-{workers}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        space = d / "space.yaml"
        space.write_text(THROUGHPUT_SPACE % n_trials)
        seconds = _run(space, d, workers)
        flows = n_trials + 1                       # + the default design
        rows.append({"workers": workers, "flows": flows, "seconds": round(seconds, 1),
                     "trials_per_hour": round(flows * 3600 / seconds, 1)})
    speedup = rows[1]["trials_per_hour"] / rows[0]["trials_per_hour"]
    print(f"\n{'workers':>7} {'flows':>6} {'seconds':>8} {'trials/hour':>12}")
    for r in rows:
        print(f"{r['workers']:>7} {r['flows']:>6} {r['seconds']:>8} {r['trials_per_hour']:>12}")
    print(f"speed-up with 2 workers: {speedup:.2f} (goal ≥ 1.7)")
    return {"rows": rows, "speedup": round(speedup, 3), "goal_met": speedup >= 1.7}


def cnn(base, n_trials, workers):
    import optuna
    d = base / "cnn"
    d.mkdir(parents=True, exist_ok=True)
    space = d / "space.yaml"
    text = CNN_SPACE.read_text().replace("n_trials: 40", f"n_trials: {n_trials}")
    space.write_text(text)
    seconds = _run(space, d, workers)
    study = optuna.load_study(study_name="cnn-icebreaker",
                              storage=sweep_mod.storage_url(None, d))
    complete, front = front_trials(study)
    default = study.user_attrs["default"].get("figures") or {}
    keys = ("hw_accuracy", "lc_used", "cycles_per_inference")
    print(f"\nPareto front of {len(complete)} complete trials ({seconds / 60:.1f} min):")
    print(f"{'trial':>5} {'method':>9} {'sparsity':>8} {'lanes':>5} {'bits':>4} "
          f"{'hw_acc':>7} {'LCs':>6} {'cycles':>7}")
    if default:
        print(f"{'dflt':>5} {'':>9} {'':>8} {'':>5} {'':>4} {default['hw_accuracy']:>7.4f} "
              f"{default['lc_used']:>6} {default['cycles_per_inference']:>7}")
    better = []
    for t in sorted(front, key=lambda t: -t.values[0]):
        f = t.user_attrs["figures"]
        p = t.params
        print(f"{t.number:>5} {p['method']:>9} {p['sparsity']:>8.2f} {p['lanes']:>5} "
              f"{p['weight_bits']:>4} {f['hw_accuracy']:>7.4f} {f['lc_used']:>6} "
              f"{f['cycles_per_inference']:>7}")
        if default and f["hw_accuracy"] >= default["hw_accuracy"] and (
                f["lc_used"] < default["lc_used"]
                or f["cycles_per_inference"] < default["cycles_per_inference"]):
            better.append(t.number)
    print(f"front designs at least as accurate as the default with fewer LCs or cycles: "
          f"{better or 'none'}")
    return {"trials": len(complete), "minutes": round(seconds / 60, 1),
            "default": {k: default.get(k) for k in keys},
            "front": [{"trial": t.number, **t.params,
                       **{k: t.user_attrs["figures"][k] for k in keys}} for t in front],
            "better_than_default": better, "goal_met": bool(better),
            "report": str(d / "report.html")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="sweep/bench", help="folder of the benches' sweeps")
    ap.add_argument("--only", default="throughput,cnn", help="parts to run, comma-separated")
    ap.add_argument("--cnn-trials", type=int, default=40)
    ap.add_argument("--cnn-workers", type=int, default=2)
    ap.add_argument("--throughput-trials", type=int, default=10)
    a = ap.parse_args(argv)
    base = Path(a.dir)
    out = {}
    parts = a.only.split(",")
    if "cnn" in parts:
        out["cnn"] = cnn(base, a.cnn_trials, a.cnn_workers)
    if "throughput" in parts:
        out["throughput"] = throughput(base, a.throughput_trials)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
