"""Test accuracy of the digits MLP, small CNN and LSTM, mean and spread over seeds.

The hyper-parameters below were chosen on the validation split only (never on test). Seed s
initialises the weights and shuffles the batches; the split is the data set's seed-0 split (the
one artifacts carry) unless ``--vary-split``, which also draws split s.

    python bench/accuracy.py [--quick] [--seeds 5] [--jobs 2] [--vary-split]

Prints a table and a final JSON line. Targets (issue 3): MLP ≥ 97 %, CNN ≥ 98.5 %,
LSTM ≥ 97.5 %, mean of 5 seeds.
"""

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per job; jobs run in parallel

import numpy as np  # noqa: E402

from slimgen.sw.data import load_digits  # noqa: E402
from slimgen.sw.nn import (TrainConfig, build_model, cnn_spec, evaluate, lstm_spec,  # noqa: E402
                           mlp_spec, train)

MODELS = {
    # name: (data view, spec, training config without seed, target)
    "mlp": ("vector", mlp_spec((64, 128, 64, 10)),
            dict(epochs=60, batch_size=16, lr=2e-3, schedule="cosine", weight_decay=1e-4), 0.97),
    "cnn": ("image", cnn_spec(),
            dict(epochs=60, batch_size=32, lr=3e-3, schedule="cosine", weight_decay=5e-4), 0.985),
    "lstm": ("sequence", lstm_spec(n_hidden=64),
             dict(epochs=60, batch_size=16, lr=3e-3, schedule="cosine"), 0.975),
}


def run(args):
    name, seed, vary_split, quick = args
    view, spec, cfg, _ = MODELS[name]
    if quick:
        cfg = {**cfg, "epochs": max(cfg["epochs"] // 6, 2)}
    data = load_digits(view=view, seed=seed if vary_split else 0)
    model = build_model(spec, np.random.default_rng(seed))
    t = time.perf_counter()
    train(model, data, TrainConfig(**cfg, seed=seed), progress=False)
    return (name, seed, evaluate(model, *data.part("val")), evaluate(model, *data.part("test")),
            time.perf_counter() - t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few epochs, 2 seeds (a smoke run)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes")
    ap.add_argument("--vary-split", action="store_true", help="seed s also draws split s")
    ap.add_argument("--models", default=",".join(MODELS))
    a = ap.parse_args(argv)
    seeds = range(2 if a.quick else a.seeds)
    names = a.models.split(",")
    jobs = [(n, s, a.vary_split, a.quick) for n in names for s in seeds]
    if a.jobs > 1:
        from multiprocessing import Pool
        with Pool(a.jobs) as pool:
            results = pool.map(run, jobs)
    else:
        results = [run(j) for j in jobs]
    print(f"{'model':6} {'val %':>14} {'test %':>14} {'min..max test':>16} {'target':>7} "
          f"{'s/run':>6}")
    summary = {}
    for n in names:
        r = np.array([x[2:] for x in results if x[0] == n])
        val, test, sec = r[:, 0] * 100, r[:, 1] * 100, r[:, 2]
        target = MODELS[n][3] * 100
        summary[n] = {"val_mean": val.mean(), "test_mean": test.mean(), "test_std": test.std(),
                      "test_min": test.min(), "test_max": test.max(), "target": target,
                      "met": bool(test.mean() >= target), "seconds_per_run": sec.mean(),
                      "tests": test.tolist()}
        print(f"{n:6} {val.mean():7.2f} ± {val.std():4.2f} {test.mean():7.2f} ± {test.std():4.2f} "
              f"{test.min():7.2f}..{test.max():6.2f} {target:7.1f} {sec.mean():6.1f}")
    print(json.dumps({"bench": "accuracy", "seeds": len(seeds), "vary_split": a.vary_split,
                      "quick": a.quick, "models": summary}))


if __name__ == "__main__":
    main()
