"""Training speed: samples per second of the digits MLP, small CNN and LSTM at batch sizes 1, 8
and 64 (forward, loss, backward and an Adam step per batch), and the same architectures in
PyTorch (CPU) if it is importable, with the ratio.

    python bench/train_speed.py [--quick] [--threads 1] [--seconds 3] [--rounds 5]
                                [--dtype float64|float32]

Each cell trains for about ``--seconds`` per side (at least a few steps) on the digits training
split after a warm-up; slimgen runs in float64 (what its trainer feeds the layers; with
``--dtype float32`` the batches are float32 and the layers compute in float32, parameters and
Adam staying float64), PyTorch in its default float32, both with ``--threads`` BLAS / PyTorch
threads. The two sides take turns, ``--rounds`` times per cell, so that a busy machine slows
both alike. Neither side computes the gradient with respect to the input batch (PyTorch's
input does not require it; slimgen's ``backward(..., input_grad=False)``), as in training.
Goal (issue 3): within 2× of PyTorch's time, and faster at batch 1. Prints a table and a final
JSON line.
"""

import argparse
import json
import os
import sys
import time


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 0.5 s per cell")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / PyTorch threads")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per cell and side")
    ap.add_argument("--rounds", type=int, default=5, help="turns per cell and side")
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                    help="slimgen's compute dtype (the dtype of the batches it is fed)")
    ap.add_argument("--no-torch", action="store_true")
    return ap.parse_args(argv)


ARGS = _parse(sys.argv[1:] if __name__ == "__main__" else [])
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)  # before NumPy loads OpenBLAS

import numpy as np  # noqa: E402

from slimgen.sw.data import load_digits  # noqa: E402
from slimgen.sw.nn import (Adam, build_model, cnn_spec, lstm_spec, mlp_spec,  # noqa: E402
                           softmax_cross_entropy)

MODELS = {"mlp": ("vector", mlp_spec((64, 32, 10))), "cnn": ("image", cnn_spec()),
          "lstm": ("sequence", lstm_spec(n_hidden=32))}


class _Timer:
    """Samples per second of ``step(i)`` (i: batch start), timed in rounds after 3 warm-up steps."""

    def __init__(self, step, n_train, batch):
        self.step, self.n_train, self.batch = step, n_train, batch
        self.steps, self.elapsed = 0, 0.0
        for i in range(3):
            step((i * batch) % n_train)

    def run(self, seconds, min_steps=2):
        steps, t0 = 0, time.perf_counter()
        while True:
            self.step(((self.steps + steps) * self.batch) % max(self.n_train - self.batch, 1))
            steps += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds and steps >= min_steps:
                self.steps += steps
                self.elapsed += elapsed
                return

    @property
    def samples_per_s(self):
        return self.steps * self.batch / self.elapsed


def slimgen_timer(name, batch, dtype):
    view, spec = MODELS[name]
    x, y = load_digits(view=view, seed=0).part("train")
    x = x.astype(dtype)
    model = build_model(spec, np.random.default_rng(0))
    opt = Adam(1e-3)

    def step(i):
        logits = model.forward(x[i:i + batch], train=True)
        _, dLdz = softmax_cross_entropy(logits, y[i:i + batch])
        model.backward(dLdz, input_grad=False)
        opt.step(model)

    return _Timer(step, len(x), batch)


def torch_model(torch, name):
    nn = torch.nn
    if name == "mlp":
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    if name == "cnn":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(256, 10))

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(8, 32, batch_first=True), nn.Linear(32, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    return LSTMClassifier()


def torch_timer(torch, name, batch):
    view, _ = MODELS[name]
    x, y = load_digits(view=view, seed=0).part("train")
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    torch.manual_seed(0)
    model = torch_model(torch, name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        opt.zero_grad()
        loss_fn(model(x[i:i + batch]), y[i:i + batch]).backward()
        opt.step()

    return _Timer(step, len(x), batch)


def measure(torch, name, batch, seconds, rounds, dtype):
    """Samples per second of slimgen and of PyTorch (None without it), taking turns."""
    timers = [slimgen_timer(name, batch, dtype)]
    if torch:
        timers.append(torch_timer(torch, name, batch))
    for _ in range(rounds):
        for t in timers:
            t.run(seconds / rounds, min_steps=max(1, 5 // rounds))
    return timers[0].samples_per_s, timers[1].samples_per_s if torch else None


def main():
    a = ARGS
    seconds = 0.5 if a.quick else a.seconds
    rounds = max(1, a.rounds)
    batches = [int(b) for b in a.batches.split(",")]
    torch = None
    if not a.no_torch:
        try:
            import torch
            torch.set_num_threads(a.threads)
        except ImportError:
            torch = None
    print(f"threads {a.threads}; slimgen {a.dtype}"
          + (f"; PyTorch {torch.__version__} float32" if torch else "; PyTorch not importable"))
    print(f"{'model':5} {'batch':>5} {'slimgen/s':>10} {'torch/s':>10} {'time ratio':>10}  goal")
    rows = []
    for name in MODELS:
        for b in batches:
            ours, theirs = measure(torch, name, b, seconds, rounds, a.dtype)
            ratio = theirs / ours if theirs else None  # our time / their time
            goal = None if ratio is None else (ratio < 1 if b == 1 else ratio <= 2)
            rows.append({"model": name, "batch": b, "slimgen_samples_per_s": ours,
                         "torch_samples_per_s": theirs, "time_ratio": ratio, "goal_met": goal})
            print(f"{name:5} {b:5d} {ours:10.0f} "
                  + (f"{theirs:10.0f} {ratio:9.2f}x  "
                     + ("met" if goal else "missed") + (" (<1x)" if b == 1 else " (≤2x)")
                     if theirs else f"{'-':>10} {'-':>10}"))
    print(json.dumps({"bench": "train_speed", "threads": a.threads, "seconds_per_cell": seconds,
                      "rounds": rounds, "slimgen_dtype": a.dtype,
                      "torch": torch.__version__ if torch else None, "rows": rows}))


if __name__ == "__main__":
    main()
