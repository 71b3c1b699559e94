"""Networks of the user's own (``examples/nets/*.json``) through train, compress and quantize:
float, compressed and integer (golden model) test accuracy, and whether the integer model is
within one point of the model it was quantized from (issue 15: "the golden model's accuracy
within one point of the float model's").

    python bench/networks.py [--nets cnn1d,gru] [--seeds 1] [--seed 0] [--jobs 1] [--out DIR]
                             [--epochs N] [--compress-epochs N] [--finetune-epochs N]

Every network runs twice per seed, each time from nothing in a fresh run folder
(``<out>/<net>/<method>-s<seed>``; a temporary folder, removed at the end, unless ``--out``)::

    python -m slimgen flow --run RUN --net examples/nets/NET.json --to quantize \\
        --epochs E --seed K [--method M --sparsity S] --quiet

once without compression and once with the method of :data:`NETS`. The seed draws the split
(so the 360 test images differ from seed to seed), the initial weights and the shuffling.
The integer accuracy is compared with the accuracy of the model it was quantized from: the
float model's without compression, the compressed model's with it. "Within" is
``|int − ref| ≤ 1`` point (3.6 of the 360 test images). With ``--seeds N`` (seeds ``--seed``
to ``--seed + N − 1``) every figure is the mean ± standard error over the seeds, and "within"
counts the seeds. Weights are the multiplier weights (W of convolutions and dense layers, W
and U of recurrent ones), no biases. Prints a table and a final JSON line.

How the epochs were chosen (validation only). Each network trained 150 epochs with seeds 0, 1,
2 (each on its own split); the trainer keeps the epoch with the best validation accuracy, so the
figure after E epochs is the best validation accuracy within the first E epochs, averaged over
the three seeds. Chosen: the fewest epochs (of 10, 20, 30, 40, 60, 80, 100, 150) within half a
point of the 150-epoch figure (the validation part is 144 images: one image is 0.69 points)::

    val %, mean of 3     10     20     30     40     60     80    100    150   chosen
    cnn3_dense2        87.27  93.52  96.30  97.22  97.92  98.38  98.84  99.31   100
    conv5x5            96.53  97.92  98.38  98.84  99.07  99.07  99.31  99.31    60
    conv_stride2       95.83  97.45  98.15  98.84  99.07  99.07  99.07  99.07    40
    cnn1d              96.30  97.69  98.38  98.84  99.07  99.54  99.54  99.54    60
    gru                94.68  97.45  97.92  98.15  98.38  98.61  98.61  99.07    80
    mlp4               95.83  97.92  98.15  98.61  98.61  99.07  99.31  99.31    80

(cnn1d at 60 is 0.47 below its 150-epoch figure, so 60 is the first within half a point.)
Test figures of seed 0 at 50 epochs had been printed by a smoke run before the rule was fixed;
they played no part in it. The compression methods and the sparsity (60 %: moderate) were
picked on what works for each network, not tuned: magnitude pruning for the CNNs and the MLP,
self_prune for the 5×5 CNN, LSTM/GRU gate pruning for the GRU (the candidate gate and the
dense head stay dense, so the network's sparsity is below the target). Not self_prune on
mlp4 or cnn1d: it pruned their first layer, the one a batchnorm follows, to 100 % (test
accuracy 10 %), and joint's integer model of mlp4 fell to 10 % from a compressed 87 % (both at
60 epochs, seed 0; reported as a problem of the methods with batchnorm).

Measured (lightly loaded 2-core machine). Default run, seed 0, 105 s; every integer model
within one point (test %)::

    network       layers weights method      sparsity   float compressed integer int-ref
    cnn3_dense2       13    1892 none              -   95.83   95.83   95.83    0.00
    cnn3_dense2       13    1892 magnitude     59.99   95.83   93.61   93.89    0.28
    conv5x5            5    1110 none              -   95.83   95.83   95.83    0.00
    conv5x5            5    1110 self_prune    60.00   95.83   96.94   96.94    0.00
    conv_stride2       8    1864 none              -   96.11   96.11   96.11    0.00
    conv_stride2       8    1864 magnitude     59.98   96.11   96.39   96.67    0.28
    cnn1d              9    1792 none              -   98.06   98.06   98.06    0.00
    cnn1d              9    1792 magnitude     59.99   98.06   97.22   97.22    0.00
    gru                3    4160 none              -   97.22   97.22   96.39   -0.83
    gru                3    4160 lstm_gates    36.92   97.22   97.78   97.50   -0.28
    mlp4              11    3616 none              -   96.11   96.11   96.11    0.00
    mlp4              11    3616 magnitude     60.01   96.11   96.39   96.11   -0.28

``--seeds 5 --jobs 2`` (seeds 0-4), 360 s; mean ± standard error; every seed within one
point. Integer minus reference, in points: cnn3_dense2 −0.06 ± 0.18 / −0.06 ± 0.16 (none /
compressed), conv5x5 0.00 / 0.00, conv_stride2 −0.17 ± 0.07 / +0.11 ± 0.07, cnn1d −0.06 ±
0.06 / +0.06 ± 0.06, gru −0.50 ± 0.16 / −0.11 ± 0.21, mlp4 −0.11 ± 0.07 / −0.11 ± 0.11. Float
test %: cnn3_dense2 96.17 ± 0.20, conv5x5 97.50 ± 0.50, conv_stride2 97.39 ± 0.48, cnn1d 98.67 ±
0.22, gru 97.78 ± 0.29, mlp4 97.89 ± 0.45; compressed: 95.72 ± 0.57, 98.06 ± 0.32, 97.28 ±
0.31, 98.50 ± 0.37, 97.44 ± 0.34, 97.44 ± 0.32. The GRU's integer cell costs the most (half a
point without compression).
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import slimgen  # noqa: F401  (before NumPy: pins its kernels and one BLAS thread per job)

from slimgen.sw.artifact import load_float_model
from slimgen.sw.network import load_network

NETS_DIR = Path(__file__).resolve().parent.parent / "examples" / "nets"

# name: (epochs, compression method, target sparsity)
NETS = {
    "cnn3_dense2": (100, "magnitude", 0.6),
    "conv5x5": (60, "self_prune", 0.6),
    "conv_stride2": (40, "magnitude", 0.6),
    "cnn1d": (60, "magnitude", 0.6),
    "gru": (80, "lstm_gates", 0.6),
    "mlp4": (80, "magnitude", 0.6),
}
TOLERANCE = 0.01   # one point of accuracy
FIGURES = ("val_accuracy", "float_accuracy", "compressed_accuracy", "int_accuracy", "sparsity",
           "int_minus_ref_points")


def _read(path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _fresh(run):
    """Remove an earlier run folder at ``run`` (only a run folder or an empty one)."""
    if run.exists():
        if not (run / "config.json").exists() and any(run.iterdir()):
            raise FileExistsError(f"{run} exists and is not a slimgen run folder; give another "
                                  f"--out")
        shutil.rmtree(run)
    run.parent.mkdir(parents=True, exist_ok=True)


def run_flow(net, run, *, seed, epochs, method="none", sparsity=None, compress_epochs=None,
             finetune_epochs=None):
    """``slimgen flow --to quantize`` on the description file ``net`` from nothing in ``run``
    (its output in ``run``.log); the figures of the run as a dict (``rc`` 0 when it ran,
    ``error`` the last line of its output when not)."""
    run = Path(run)
    _fresh(run)
    cmd = [sys.executable, "-m", "slimgen", "flow", "--run", str(run), "--net", str(net),
           "--to", "quantize", "--epochs", str(epochs), "--seed", str(seed), "--quiet"]
    if method != "none":
        cmd += ["--method", method, "--sparsity", str(sparsity)]
        if compress_epochs is not None:
            cmd += ["--compress-epochs", str(compress_epochs)]
        if finetune_epochs is not None:
            cmd += ["--finetune-epochs", str(finetune_epochs)]
    log = run.with_name(run.name + ".log")
    t = time.monotonic()
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    network = load_network(net)
    row = {"net": network.name, "layers": len(network.layers) - 1, "method": method,
           "target_sparsity": sparsity if method != "none" else None, "seed": seed,
           "epochs": epochs, "rc": rc, "seconds": round(time.monotonic() - t, 1), "run": str(run)}
    if rc:
        lines = log.read_text(encoding="utf-8").strip().splitlines()
        return {**row, "error": lines[-1] if lines else f"exit {rc}", "log": str(log)}
    train, compress = _read(run / "train.json"), _read(run / "compress.json")
    quantize = _read(run / "quantize.json")
    model, _ = load_float_model(run / "float.npz")
    weights = sum(p.size for layer in model.layers for name, p in layer.params.items()
                  if name.startswith(("W", "U")))
    ref = compress["compressed_accuracy"] if method != "none" else train["float_accuracy"]
    diff = 100 * (quantize["int_accuracy"] - ref)
    return {**row, "weights": int(weights), "val_accuracy": train["val_accuracy"],
            "float_accuracy": train["float_accuracy"],
            "compressed_accuracy": compress.get("compressed_accuracy", train["float_accuracy"]),
            "int_accuracy": quantize["int_accuracy"],
            "sparsity": compress.get("sparsity"), "ref": "compressed" if method != "none"
            else "float", "int_minus_ref_points": round(diff, 4),
            "within_one_point": abs(diff) <= 100 * TOLERANCE + 1e-9}


def network_flows(name, *, seed, out, epochs=None, method=None, sparsity=None,
                  compress_epochs=None, finetune_epochs=None):
    """The two flows of one network of :data:`NETS` (without compression, then with its
    method; ``None``: the bench's setting) as ``(net, run, options)`` for :func:`run_flow`."""
    default_epochs, default_method, default_sparsity = NETS[name]
    epochs = default_epochs if epochs is None else epochs
    method = default_method if method is None else method
    sparsity = default_sparsity if sparsity is None else sparsity
    net, out = NETS_DIR / f"{name}.json", Path(out) / name
    if method == "lstm_gates":
        compress_epochs = None   # it prunes at once, then fine-tunes: no compression phase
    return [(net, out / f"none-s{seed}", {"seed": seed, "epochs": epochs}),
            (net, out / f"{method}-s{seed}",
             {"seed": seed, "epochs": epochs, "method": method, "sparsity": sparsity,
              "compress_epochs": compress_epochs, "finetune_epochs": finetune_epochs})]


def bench_network(name, **options):
    """The two flows of :func:`network_flows`, run: a list of two :func:`run_flow` rows."""
    return [run_flow(net, run, **kw) for net, run, kw in network_flows(name, **options)]


def summarize(rows):
    """Rows of the same network and method over seeds: the mean and standard error of every
    figure (standard error 0 for one seed) and how many seeds are within one point."""
    groups = {}
    for r in rows:
        groups.setdefault((r["net"], r["method"]), []).append(r)
    out = []
    for (net, method), rs in groups.items():
        ok = [r for r in rs if r["rc"] == 0]
        s = {"net": net, "method": method, "layers": rs[0]["layers"],
             "weights": ok[0]["weights"] if ok else None, "seeds": [r["seed"] for r in rs],
             "failed": len(rs) - len(ok), "ref": ok[0]["ref"] if ok else None,
             "within_one_point": sum(r["within_one_point"] for r in ok)}
        for k in FIGURES:
            v = [r[k] for r in ok if r[k] is not None]
            mean = sum(v) / len(v) if v else None
            se = (math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v))
                  if len(v) > 1 else 0.0) if v else None
            s[k] = {"mean": mean, "se": se}
        out.append(s)
    return out


def _fmt(f, scale=100, width=7):
    if f["mean"] is None:
        return f"{'-':>{width}}"
    text = f"{scale * f['mean']:.2f}" + (f"±{scale * f['se']:.2f}" if width > 7 else "")
    return f"{text:>{width}}"


def print_table(summary, n_seeds):
    w = 12 if n_seeds > 1 else 7
    print(f"\n{'network':13} {'layers':>6} {'weights':>7} {'method':11} {'sparsity':>{w}} "
          f"{'float':>{w}} {'compressed':>{w}} {'integer':>{w}} {'int-ref':>{w}} {'within 1':>8}")
    for s in summary:
        if s["failed"] == len(s["seeds"]):
            print(f"{s['net']:13} {s['layers']:6} {'-':>7} {s['method']:11} failed")
            continue
        within = s["within_one_point"]
        within = ("yes" if within else "NO") if n_seeds == 1 else f"{within}/{len(s['seeds'])}"
        print(f"{s['net']:13} {s['layers']:6} {s['weights']:7} {s['method']:11} "
              f"{_fmt(s['sparsity'], width=w)} {_fmt(s['float_accuracy'], width=w)} "
              f"{_fmt(s['compressed_accuracy'], width=w)} {_fmt(s['int_accuracy'], width=w)} "
              f"{_fmt(s['int_minus_ref_points'], scale=1, width=w)} {within:>8}"
              + (f"  ({s['failed']} failed)" if s["failed"] else ""))
    print("accuracy in % of the 360 test images; int-ref: integer minus the model it was "
          "quantized from (float without compression, compressed with it), in points")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", default=",".join(NETS), help="networks, comma-separated")
    ap.add_argument("--seeds", type=int, default=1, help="number of seeds (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--jobs", type=int, default=1, help="flows run at once (default 1)")
    ap.add_argument("--out", help="folder of the run folders (default: a temporary one, "
                                  "removed at the end)")
    ap.add_argument("--epochs", type=int, help="training epochs of every network (default: "
                                               "each network's, see the docstring)")
    ap.add_argument("--compress-epochs", type=int, help="the compression method's epochs")
    ap.add_argument("--finetune-epochs", type=int, help="the compression method's fine-tuning")
    a = ap.parse_args(argv)
    names = a.nets.split(",")
    unknown = [n for n in names if n not in NETS]
    if unknown:
        ap.error(f"unknown networks {unknown}; choose from {', '.join(NETS)}")
    for opt in ("seeds", "jobs", "epochs", "compress_epochs", "finetune_epochs"):
        v = getattr(a, opt)
        if v is not None and v < 1 and not (opt == "finetune_epochs" and v == 0):
            ap.error(f"--{opt.replace('_', '-')} must be positive, not {v}")
    if a.seed < 0:
        ap.error(f"--seed must be 0 or more, not {a.seed}")
    seeds = list(range(a.seed, a.seed + a.seeds))
    tmp = tempfile.TemporaryDirectory(prefix="bench-networks-") if a.out is None else None
    out = Path(tmp.name if tmp else a.out)
    t0 = time.monotonic()

    def one(flow):
        net, run, kw = flow
        r = run_flow(net, run, **kw)
        state = f"int {100 * r['int_accuracy']:.2f} %" if r["rc"] == 0 else \
            f"FAILED: {r['error']}" + ("" if tmp else f" (log {r['log']})")
        print(f"  {r['net']:13} {r['method']:11} seed {r['seed']}  {r['seconds']:5.1f} s  "
              f"{state}  [{time.monotonic() - t0:.0f} s]", flush=True)
        return r

    flows = [f for s in seeds for n in names
             for f in network_flows(n, seed=s, out=out, epochs=a.epochs,
                                    compress_epochs=a.compress_epochs,
                                    finetune_epochs=a.finetune_epochs)]
    print(f"{len(flows)} flows ({len(names)} networks × {len(seeds)} seeds × 2) in {out}",
          flush=True)
    try:
        with ThreadPoolExecutor(max(a.jobs, 1)) as pool:
            rows = list(pool.map(one, flows))
    finally:
        if tmp:
            tmp.cleanup()
    summary = summarize(rows)
    print_table(summary, len(seeds))
    print(f"{time.monotonic() - t0:.0f} s")
    settings = {n: dict(zip(("epochs", "method", "target_sparsity"), NETS[n])) for n in names}
    if a.epochs is not None:
        for s in settings.values():
            s["epochs"] = a.epochs
    print(json.dumps({"bench": "networks", "seeds": seeds, "settings": settings,
                      "compress_epochs": a.compress_epochs, "finetune_epochs": a.finetune_epochs,
                      "tolerance_points": 100 * TOLERANCE, "summary": summary, "runs": rows}))
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
