"""Normalization at small batch sizes: no normalization, BatchNorm, and method 1 (Lagrangian
normalization, ``slimgen.sw.compress.lagrangian_norm``) on plain CNNs at batch sizes 1, 2, 4, 8
and 64.

The headline model is a deep plain CNN (``deep_cnn_spec``: 8 conv3x3 layers of 16 channels, no
residual connections) trained for a fixed, short budget of epochs per batch size, on which
training without normalization visibly lags. ``--small`` adds the small digits CNN (too easy to
show anything: every variant reaches 98-99 %).

Hyper-parameters are tuned on the validation split only: for every batch size and variant, the
learning rate (1e-3, 3e-3, 1e-2; Adam, cosine schedule) and for method 1 the initial multiplier λ0
(0.003, 0.03) are picked by the mean validation accuracy of seeds 0 and 1 (``--tune-seeds``; the
figures are printed under "tuning" and kept in the JSON; one seed alone picked noisily: its 144
validation samples are mostly 97-100 % right); then 5 seeds train with the pick and the test
accuracy is reported (mean ± standard deviation). The grid reached only 3e-3 before. Exploring method 1 at batch 8
on validation (mean of seeds 0 and 1, 4 epochs): λ0 0.03 at lr 1e-3 / 3e-3 / 1e-2 gave 91.3 /
97.9 / 99.7 %; larger multipliers (λ0 0.3, or η_λ 0.01 instead of 1e-4) held the activations
closer to the targets and wrecked accuracy (54-72 %); a fixed λ (η_λ 0) 98.3 %; a trainable v
(η_v 0.01) 99.0 % at lr 3e-3 (within the two seeds' noise of 97.9 %); constraining the ReLU
outputs ("post") 95.5 %. So the learning rate was what method 1 lacked; 1e-2 joined the grid for
every variant.

A second round at batch 8 (same procedure, lr 1e-2 unless said, validation mean of seeds 0 and 1;
the current pick λ0 0.03 reaches 99.65 %, one error in 288) tried the options that
``LagrangianNormConfig`` gained for it, all off by default, and none beat the pick:
running estimates of μ and σ² in the penalty and the ascent (``momentum`` ρ 0.1 / 0.2 / 0.5 /
0.9: 98.6 / 99.0 / 95.8 / 25.4 %; ρ 0.9 with λ0 0.3: 16.7 %), in the multipliers' ascent only
(``running="ascent"``, ρ 0.5 / 0.9 / 0.99: 99.0 / 97.9 / 98.6 %; ρ 0.99 with λ0 0.01: 99.0 %;
ρ 0.9 at lr 3e-3: 97.6 %), a penalty warm-up (``warmup`` 20 / 40 / 160 / 320 steps of ~640:
99.3 / 99.3 / 97.9 / 96.9 %; 320 with λ0 0.1: 99.0 %), the variance term alone (``terms="var"``,
λ0 0.03 / 0.1: 64.6 / 49.7 %: the means drift, train |μ| 0.93) or the mean term alone (55.9 %),
multiplier steps η_λ 0 / 3e-5 / 1e-3 (98.6 / 99.0 / 98.6 %), λ0 0.01 / 0.02 / 0.04 / 0.05 / 0.1
(99.3 / 99.0 / 98.6 / 96.5 / 86.8 %), lr 2e-2 (95.5 %). So the bench keeps the plain batch
penalty; ``--momentum``/``--running`` run it with the running estimates. Note that at batch 8
validation cannot tell the pick from BatchNorm (both 99.65 %) while their test means differ by
1.2 points: the 144 validation samples are near their ceiling there.

"act. |mean|"/"act. var" are the channel means and variances that the constrained activations
(the inputs of the ReLUs: conv outputs, or BatchNorm outputs) actually reach, measured per channel
over batches of the training batch size drawn from the test set in inference mode, averaged over
channels, layers and seeds (|mean| and var). "train |μ|"/"train σ²" are the same for method 1
during training: over the batches of its last epoch, as the penalty saw them (targets 0 and 1).

Goals (issue 3): at batch 1 and 2 method 1 beats BatchNorm and closes at least half of the gap
between no normalization and BatchNorm at batch 64; at batch 4 and 8 it matches BatchNorm within
the seeds' spread.

    python bench/normalization.py [--quick] [--seeds 5] [--jobs 2] [--small] [--where pre|post]
                                  [--batches 1,2,4,8,64]

Prints a table and a final JSON line. A full run (120 tuning runs, 75 final runs) took 1,142 s
with ``--jobs 3`` on a shared 2-core machine, and 436 s with ``--jobs 2`` on a quieter one (same
figures: same seed, same bits).
"""

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per job; jobs run in parallel

import numpy as np  # noqa: E402

from slimgen.sw.compress.lagrangian_norm import LagrangianNorm, LagrangianNormConfig  # noqa: E402
from slimgen.sw.data import load_digits  # noqa: E402
from slimgen.sw.nn import (TrainConfig, build_model, cnn_spec, deep_cnn_spec,  # noqa: E402
                           evaluate, train)

BATCHES = (1, 2, 4, 8, 64)
VARIANTS = ("none", "batchnorm", "method1")
# epochs per batch size: a fixed short budget (small batches take many more steps per epoch)
EPOCHS = {"deep": {1: 2, 2: 2, 4: 3, 8: 4, 64: 6}, "small": {1: 2, 2: 2, 4: 3, 8: 4, 64: 15}}
LR_GRID = (1e-3, 3e-3, 1e-2)
LAMBDA_GRID = (0.003, 0.03)


def spec_for(model, variant):
    bn = variant == "batchnorm"
    return deep_cnn_spec(depth=8, width=16, batchnorm=bn) if model == "deep" else \
        cnn_spec(batchnorm=bn)


def relu_input_stats(model, x, batch):
    """|mean| and variance per channel at every ReLU input, over batches of ``batch`` test
    samples in inference mode; averaged over channels, batches and layers."""
    relus = [i for i, layer in enumerate(model.layers) if layer.kind == "relu"]
    means, variances = [], []
    for s in range(0, min(len(x), 64 * batch), batch):
        a = x[s:s + batch]
        for i, layer in enumerate(model.layers):
            if i in relus:
                axes = (0, 2, 3) if a.ndim == 4 else (0,)
                if a.size // a.shape[1] >= 2:
                    means.append(np.mean(np.abs(a.mean(axis=axes))))
                    variances.append(np.mean(a.var(axis=axes)))
            a = layer.forward(a)
    return float(np.mean(means)), float(np.mean(variances))


def run(job):
    model_name, variant, batch, seed, lr, lam, where, epochs, momentum, running = job
    data = load_digits(view="image", seed=0)
    model = build_model(spec_for(model_name, variant), np.random.default_rng(seed))
    regs = []
    if variant == "method1":
        regs = [LagrangianNorm(LagrangianNormConfig(where=where, lambda_init=lam,
                                                         momentum=momentum, running=running))]
    t = time.perf_counter()
    hist = train(model, data, TrainConfig(epochs=epochs, batch_size=batch, lr=lr,
                                          schedule="cosine", seed=seed),
                 progress=False, regularizers=regs)
    xt, yt = data.part("test")
    mean, var = relu_input_stats(model, xt, batch)
    return {"val": evaluate(model, *data.part("val")), "test": evaluate(model, xt, yt),
            "act_mean": mean, "act_var": var, "seconds": time.perf_counter() - t,
            # method 1: |μ| and σ² of its constrained activations over the last epoch's batches
            "train_mean": hist[-1].get("ln_abs_mean", float("nan")),
            "train_var": hist[-1].get("ln_var", float("nan"))}


def grid(variant):
    if variant == "method1":
        return [(lr, lam) for lr in LR_GRID for lam in LAMBDA_GRID]
    return [(lr, None) for lr in LR_GRID]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 epoch, 2 seeds, no tuning, batch 4, 64")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="also the small digits CNN")
    ap.add_argument("--tune-seeds", type=int, default=2,
                    help="seeds 0..n-1 whose mean validation accuracy picks the grid point")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)),
                    help="batch sizes to run (the goals need 64 beside 1, 2, 4 or 8)")
    ap.add_argument("--where", default="pre", choices=("pre", "post"),
                    help="method 1 constrains the ReLU inputs (pre) or outputs (post)")
    ap.add_argument("--momentum", type=float, default=0.0,
                    help="method 1: ρ of the running estimates of μ and σ² "
                         "(0: the batch's statistics)")
    ap.add_argument("--running", default="both", choices=("both", "ascent"),
                    help="method 1 with --momentum: running estimates in the penalty and the "
                         "multipliers' ascent, or in the ascent only")
    a = ap.parse_args(argv)
    models = ["deep"] + (["small"] if a.small else [])
    batches = (4, 64) if a.quick else tuple(int(b) for b in a.batches.split(","))
    if a.tune_seeds < 1:
        ap.error(f"--tune-seeds must be at least 1, not {a.tune_seeds}")
    if any(b not in BATCHES for b in batches):
        ap.error(f"batch sizes must be among {BATCHES}, not {a.batches}")
    seeds = range(2 if a.quick else a.seeds)
    t0 = time.perf_counter()

    def pmap(jobs):
        if a.jobs > 1:
            from multiprocessing import Pool
            with Pool(a.jobs) as pool:
                return pool.map(run, jobs, chunksize=1)
        return [run(j) for j in jobs]

    def epochs(m, b):
        return 1 if a.quick else EPOCHS[m][b]

    # 1. tuning on validation, seed 0
    cells = [(m, v, b) for m in models for b in batches for v in VARIANTS]
    picks, tuning = {}, []
    if a.quick:
        picks = {c: (LR_GRID[0], LAMBDA_GRID[0] if c[1] == "method1" else None) for c in cells}
    else:
        points = [(m, v, b, lr, lam) for (m, v, b) in cells for lr, lam in grid(v)]
        tune_jobs = [(m, v, b, s, lr, lam, a.where, epochs(m, b), a.momentum,
                      a.running)
                     for (m, v, b, lr, lam) in points for s in range(a.tune_seeds)]
        results = pmap(tune_jobs)
        print(f"tuning (validation accuracy %, mean of seeds 0..{a.tune_seeds - 1}):")
        for k, (m, v, b, lr, lam) in enumerate(points):
            vals = [r["val"] for r in results[k * a.tune_seeds:(k + 1) * a.tune_seeds]]
            val = float(np.mean(vals))
            print(f"  {m} batch {b:2d} {v:9} lr {lr:g}{'' if lam is None else f' λ0 {lam:g}'}: "
                  f"val {100 * val:.2f}")
            tuning.append({"model": m, "variant": v, "batch": b, "lr": lr, "lambda0": lam,
                           "val": val, "vals": vals})
            if (m, v, b) not in picks or val > picks[(m, v, b)][2]:
                picks[(m, v, b)] = (lr, lam, val)
    # 2. final runs with the picks
    final_jobs = [(m, v, b, s, picks[(m, v, b)][0], picks[(m, v, b)][1], a.where, epochs(m, b),
                   a.momentum, a.running)
                  for (m, v, b) in cells for s in seeds]
    results = pmap(final_jobs)
    table = {}
    for job, r in zip(final_jobs, results):
        table.setdefault(job[:3], []).append(r)
    rows = []
    for m in models:
        print(f"\n{m} CNN ({'8 conv layers' if m == 'deep' else 'conv 8, conv 16, pool'}), "
              f"method 1 on ReLU {'inputs' if a.where == 'pre' else 'outputs'}")
        print(f"{'batch':>5} {'epochs':>6} {'variant':10} {'lr':>7} {'λ0':>6} {'test %':>14} "
              f"{'act. |mean|':>11} {'act. var':>9} {'train |μ|':>9} {'train σ²':>8}")
        for b in batches:
            for v in VARIANTS:
                rs = table[(m, v, b)]
                test = np.array([r["test"] for r in rs]) * 100
                row = {"model": m, "batch": b, "variant": v, "epochs": epochs(m, b),
                       "lr": picks[(m, v, b)][0], "lambda0": picks[(m, v, b)][1],
                       "test_mean": test.mean(), "test_std": test.std(), "tests": test.tolist(),
                       "act_abs_mean": float(np.mean([r["act_mean"] for r in rs])),
                       "act_var": float(np.mean([r["act_var"] for r in rs])),
                       "train_abs_mean": float(np.mean([r["train_mean"] for r in rs])),
                       "train_var": float(np.mean([r["train_var"] for r in rs]))}
                rows.append(row)
                lam = f"{row['lambda0']:6.3f}" if row["lambda0"] is not None else f"{'-':>6}"
                print(f"{b:5d} {row['epochs']:6d} {v:10} {row['lr']:7.0e} {lam} "
                      f"{row['test_mean']:6.2f} ± {row['test_std']:5.2f} "
                      f"{row['act_abs_mean']:11.3f} {row['act_var']:9.3f} "
                      f"{row['train_abs_mean']:9.3f} {row['train_var']:8.3f}")
    goals = check_goals(rows, batches)
    for g in goals:
        print(f"goal: {g['goal']}: {'met' if g['met'] else 'MISSED'} ({g['detail']})")
    seconds = time.perf_counter() - t0
    print(f"total {seconds:.0f} s")
    print(json.dumps({"bench": "normalization", "quick": a.quick, "seeds": len(seeds),
                      "where": a.where, "seconds": seconds, "tuning": tuning, "rows": rows,
                      "goals": goals}))


def check_goals(rows, batches):
    r = {(x["batch"], x["variant"]): x for x in rows if x["model"] == "deep"}
    goals = []
    if 64 not in batches:
        return goals
    ref_gap = r[(64, "batchnorm")]["test_mean"] - r[(64, "none")]["test_mean"]
    for b in (1, 2):
        if b in batches:
            m1, bn, no = (r[(b, v)]["test_mean"] for v in ("method1", "batchnorm", "none"))
            closed = (m1 - no) / ref_gap if ref_gap > 0 else float("nan")
            goals.append({"goal": f"batch {b}: method 1 beats BatchNorm, closes ≥ half the "
                                  f"batch-64 gap", "met": bool(m1 > bn and closed >= 0.5),
                          "detail": f"method 1 {m1:.2f}, BatchNorm {bn:.2f}, none {no:.2f}; "
                                    f"closes {closed:.2f} of the {ref_gap:.2f}-point gap"})
    for b in (4, 8):
        if b in batches:
            m1, bn = r[(b, "method1")], r[(b, "batchnorm")]
            spread = max(m1["test_std"], bn["test_std"])
            goals.append({"goal": f"batch {b}: method 1 matches BatchNorm within the spread",
                          "met": bool(m1["test_mean"] >= bn["test_mean"] - spread),
                          "detail": f"method 1 {m1['test_mean']:.2f}, BatchNorm "
                                    f"{bn['test_mean']:.2f}, spread {spread:.2f}"})
    return goals


if __name__ == "__main__":
    main()
