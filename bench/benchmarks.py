"""Beyond the 8×8 digits (issue 18): MNIST-1D against its paper's table, and MNIST 28×28 on the
iCEBreaker. Every preset of :data:`BENCHES` through the whole flow from nothing, to a bitstream
(a run whose generate stage refuses the structure keeps its software figures), with the float
model trained on several seeds; a table of float / compressed / integer / hardware accuracy,
bit-exactness, board, resources, fmax, cycles against their bound, inferences per second and
the published figure beside ours; the goals, met or not and why; a final JSON line.

    python bench/benchmarks.py [--only mnist1d-cnn,mnist-cnn] [--seeds 5] [--seed 0]
                               [--runs DIR] [--fresh] [--jobs 1]

Per bench, in ``<runs>/<name>/`` (kept: a second call keeps every stage already done with the
same settings, ``--fresh`` starts again)::

    python -m slimgen flow --run <runs>/<name>/s0 --net <preset> --data <data> --seed 0 \\
        --epochs E --config <runs>/<name>.json [--method M --sparsity S] \\
        --board B --lanes P --sim verilator --quiet

(the settings file holds ``batch_size`` and ``lr``), then ``--to train`` with the same
settings for seeds 1 .. N−1: the float accuracy is the mean ± standard error over the N seeds
(a seed draws the validation part, the initial weights and the shuffling; for mnist5k the test
part too, as for the digits; MNIST-1D's test part is the package's 1,000 signals whatever the
seed). Every other figure is seed 0's. Needs the data extra (``pip install 'slimgen[data]'``),
and the build tools of ``make setup`` for the benches that reach hardware.

The hyper-parameters (architecture, epochs, batch size, learning rate, compression) were
chosen on the validation part only (the trainer keeps the epoch of best validation accuracy);
the test part was looked at once, by the default run of this bench. How they were chosen, and
the figures, are in bench/README.md.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import slimgen  # noqa: F401  (before NumPy: pins its kernels and one BLAS thread per job)

from slimgen.sw.network import preset


@dataclass(frozen=True)
class Bench:
    """One preset on one data set: its training and compression settings, where it runs, the
    published figure and the goals ``(what, figure, at least)`` (figure: a key of the row)."""
    data: str
    preset: str
    epochs: int
    batch_size: int
    lr: float
    method: str = "none"
    sparsity: float | None = None
    board: str = "icebreaker"
    lanes: int = 4
    reference: float | None = None  # the published test accuracy (None: none published)
    reference_source: str = ""
    goals: tuple = field(default_factory=tuple)


PAPER = "Greydanus 2020, MNIST-1D, table 1"
BENCHES = {
    "mnist1d-cnn": Bench(
        "mnist1d", "mnist1d-cnn", 200, 100, 0.003, method="magnitude", sparsity=0.5,
        board="icebreaker", lanes=4, reference=0.94, reference_source=PAPER,
        goals=(("float ≥ 94 %", "float_mean", 0.94),
               ("≥ 93 % on the iCEBreaker after compression", "hw_accuracy", 0.93))),
    "mnist1d-gru": Bench(       # 33 block RAMs predicted on 4 lanes, 25 on 2
        "mnist1d", "mnist1d-gru", 100, 100, 0.01, board="icebreaker", lanes=2,
        reference=0.91, reference_source=PAPER,
        goals=(("≥ 91 % on the board that fits it", "hw_accuracy", 0.91),)),
    "mnist1d-lstm": Bench(      # 36 block RAMs on 4 lanes: more than the iCEBreaker's 30
        "mnist1d", "mnist1d-lstm", 150, 100, 0.01, board="ulx3s-85f", lanes=4,
        reference=0.91, reference_source=PAPER + " (its GRU)",
        goals=(("≥ 91 % on the board that fits it", "hw_accuracy", 0.91),)),
    "mnist1d-mlp": Bench(
        "mnist1d", "mnist1d-mlp", 600, 100, 0.01, board="icebreaker", lanes=2,
        reference=0.68, reference_source=PAPER,
        goals=(("≥ 68 % on the iCEBreaker", "hw_accuracy", 0.68),)),
    "mnist-cnn": Bench(
        "mnist5k", "mnist-cnn", 60, 32, 0.003, method="magnitude", sparsity=0.75,
        board="icebreaker", lanes=4,
        goals=(("≥ 97 % on the iCEBreaker", "hw_accuracy", 0.97),
               ("≥ 500 inferences/s at 12 MHz", "inferences_per_second", 500))),
}
KEYS = ("val_accuracy", "float_accuracy", "compressed_accuracy", "int_accuracy", "hw_accuracy",
        "sparsity", "images_verified", "hw_bit_exact", "board", "lc_used", "lc_total",
        "dsp_used", "dsp_total", "bram_used", "bram_total", "fmax_mhz", "multipliers",
        "cycles_per_inference", "cycles_lower_bound", "latency_over_bound",
        "inferences_per_second", "latency_us")
# what the generate stage says of a description no engine takes (slimgen.models.net)
REFUSED = "run the software stages with --to quantize"


def _fresh(path):
    """Remove ``path`` if it is a run folder (or empty); refuse anything else."""
    if path.exists():
        if not (path / "config.json").exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} exists and is not a slimgen run folder; give "
                                  f"another --runs")
        shutil.rmtree(path)


def flow_command(b, run, settings, seed, *, to=None):
    """The ``slimgen flow`` command of bench ``b`` with ``seed`` in the run folder ``run``
    (``to``: the last stage; None: the bench's own); the network is the data preset's name
    (``--net mnist1d-cnn``), as a user gives it."""
    cmd = [sys.executable, "-m", "slimgen", "flow", "--run", str(run), "--net", b.preset,
           "--data", b.data, "--seed", str(seed), "--epochs", str(b.epochs),
           "--config", str(settings), "--quiet"]
    if to != "train" and b.method != "none":
        cmd += ["--method", b.method, "--sparsity", str(b.sparsity)]
    if to is None:
        cmd += ["--board", b.board, "--lanes", str(b.lanes), "--sim", "verilator"]
    return cmd + (["--to", to] if to else [])


def run_one(cmd, run):
    """Run ``cmd`` (its output in ``run``.log); ``(rc, seconds, summary or {}, last line)``."""
    log = run.with_name(run.name + ".log")
    env = dict(os.environ)
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    t = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                            check=False).returncode
    seconds = round(time.monotonic() - t, 1)
    summary = run / "summary.json"
    figures = json.loads(summary.read_text(encoding="utf-8")) if summary.exists() else {}
    lines = log.read_text(encoding="utf-8").strip().splitlines()
    return rc, seconds, figures, lines[-1] if lines else ""


def mean_se(values):
    """``(mean, standard error)`` of a list (standard error 0 for one value)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)
                           / len(values))


def goals_of(b, row):
    """Each goal of ``b`` with its figure and whether it is met (None: not measurable, with
    the reason)."""
    out = []
    for what, key, least in b.goals:
        value = row.get(key)
        if value is None and row.get("no_engine"):
            alt = row.get("int_accuracy")
            out.append({"goal": what, "met": None, "value": None,
                        "why": f"{row['no_engine']}; its integer (golden) model: "
                               f"{_pct(alt)} %"})
        elif value is None or row.get("error"):     # a figure of a flow that failed later
            out.append({"goal": what, "met": None, "value": value,
                        "why": row.get("error") or "not measured"})
        else:
            out.append({"goal": what, "met": bool(value >= least), "value": value,
                        "why": ""})
    return out


def bench_one(name, *, runs, seeds, jobs=1, fresh=False, log=print):
    """Bench ``name`` of :data:`BENCHES` over ``seeds`` (the first one's flow is the full
    one): its row of figures."""
    b = BENCHES[name]
    folder = Path(runs) / name
    folder.mkdir(parents=True, exist_ok=True)
    preset(b.preset)                      # a preset that does not build fails here, not later
    settings = Path(runs) / f"{name}.json"
    settings.write_text(json.dumps({"batch_size": b.batch_size, "lr": b.lr}) + "\n",
                        encoding="utf-8")
    flows = []
    for k, seed in enumerate(seeds):
        run = folder / f"s{seed}"
        if fresh:
            _fresh(run)
        flows.append((flow_command(b, run, settings, seed,
                                   to=None if k == 0 else "train"), run))

    def one(flow):
        rc, seconds, figures, last = run_one(*flow)
        state = f"float {_pct(figures.get('float_accuracy'))} %" if rc == 0 else \
            f"FAILED: {last} (log {flow[1]}.log)"
        log(f"  {name:13} {flow[1].name:4} {seconds:7.1f} s  {state}")
        return rc, seconds, figures, last

    with ThreadPoolExecutor(max(jobs, 1)) as pool:
        results = list(pool.map(one, flows))
    rc, seconds, figures, last = results[0]
    # a seed's float model counts whatever a later stage of its flow did
    floats = [r[2]["float_accuracy"] for r in results if "float_accuracy" in r[2]]
    mean, se = mean_se(floats)
    row = {"bench": name, "data": b.data, "preset": b.preset, "rc": rc,
           "seconds": round(sum(r[1] for r in results), 1), "settings": asdict(b),
           "float_seeds": floats, "float_mean": mean, "float_se": se,
           "reference": b.reference, "reference_source": b.reference_source,
           **{k: figures.get(k) for k in KEYS}}
    if rc and REFUSED in last:          # the generate stage refused: its software stands
        row["board"], row["no_engine"], rc = None, last, 0
        row["rc"] = 0
    if rc:
        row["error"] = last
    row["goals"] = goals_of(b, row)
    return row


def _pct(v, width=0):
    return f"{100 * v:{width}.2f}" if v is not None else f"{'-':>{width}}"


def print_table(rows, n_seeds):
    print(f"\n{'bench':13} {'float (' + str(n_seeds) + ' seeds)':>17} {'paper':>6} "
          f"{'comp':>6} {'int':>6} {'hw':>6} {'exact':>10} {'board':13} {'LC':>11} "
          f"{'DSP':>5} {'BRAM':>6} {'MHz':>5} {'cycles':>7} {'bound':>7} {'inf/s':>8}")
    for r in rows:
        fl = f"{_pct(r['float_mean'])} ± {_pct(r['float_se'])}" if r["float_mean"] is not None \
            else "-"
        exact = "-" if r["images_verified"] is None else \
            f"{r['images_verified']} {'yes' if r['hw_bit_exact'] else 'NO'}"
        hard = r["board"] is not None and r["lc_used"] is not None
        print(f"{r['bench']:13} {fl:>17} {_pct(r['reference'], 6)} "
              f"{_pct(r['compressed_accuracy'], 6)} {_pct(r['int_accuracy'], 6)} "
              f"{_pct(r['hw_accuracy'], 6)} {exact:>10} {r['board'] or 'no engine yet':13} "
              + (f"{r['lc_used']:>5}/{r['lc_total']:<5} {r['dsp_used']:>2}/{r['dsp_total']:<2} "
                 f"{r['bram_used']:>2}/{r['bram_total']:<3} {r['fmax_mhz']:5.1f} "
                 f"{r['cycles_per_inference']:>7} {r['cycles_lower_bound']:>7} "
                 f"{r['inferences_per_second']:>8.0f}" if hard else
                 f"{'-':>11} {'-':>5} {'-':>6} {'-':>5} {'-':>7} {'-':>7} {'-':>8}")
              + (f"  FAILED: {r['error']}" if r["rc"] else ""))
    print("accuracy in % of the test part (MNIST-1D: the package's 1,000 signals; mnist5k: "
          "1,000 images); float: mean ± standard error over the seeds, the rest seed 0's; "
          "paper: Greydanus 2020 (MNIST-1D), none for MNIST 5k")
    print("\ngoals:")
    for r in rows:
        for g in r["goals"]:
            state = {True: "met", False: "NOT met", None: "not measurable"}[g["met"]]
            value = "" if g["value"] is None else (
                f" ({_pct(g['value'])} %)" if g["value"] <= 1 else f" ({g['value']:.0f})")
            print(f"  {r['bench']:13} {g['goal']:45} {state}{value}"
                  + (f": {g['why']}" if g["why"] else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(BENCHES), help="benches, comma-separated")
    ap.add_argument("--seeds", type=int, default=5, help="training seeds (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--runs", default="runs/benchmarks", help="folder of the run folders")
    ap.add_argument("--fresh", action="store_true", help="remove earlier run folders first")
    ap.add_argument("--jobs", type=int, default=1, help="flows run at once (default 1)")
    a = ap.parse_args(argv)
    names = a.only.split(",")
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        ap.error(f"unknown benches {unknown}; choose from {', '.join(BENCHES)}")
    if a.seeds < 1 or a.jobs < 1 or a.seed < 0:
        ap.error("--seeds and --jobs must be positive, --seed 0 or more")
    from slimgen.settings import RunConfig
    for data in sorted({BENCHES[n].data for n in names}):
        try:
            RunConfig(data=data)
        except ValueError as e:
            ap.error(f"slimgen does not take --data {data} ({e})")
    seeds = list(range(a.seed, a.seed + a.seeds))
    t0 = time.monotonic()
    rows = []
    for name in names:
        print(f"{name}: {len(seeds)} seeds in {Path(a.runs) / name}", flush=True)
        rows.append(bench_one(name, runs=a.runs, seeds=seeds, jobs=a.jobs, fresh=a.fresh,
                              log=lambda m: print(m, flush=True)))
    print_table(rows, len(seeds))
    print(f"{time.monotonic() - t0:.0f} s")
    print(json.dumps({"bench": "benchmarks", "seeds": seeds, "rows": rows}))
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
