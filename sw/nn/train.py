"""The trainer: mini-batch gradient descent with seeded shuffling, a progress bar, and the best
validation epoch kept."""

import sys
import time
from dataclasses import dataclass, asdict

import numpy as np

from .loss import softmax_cross_entropy
from .optim import Adam

__all__ = ["TrainConfig", "train", "evaluate", "predict", "ProgressBar"]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; validated where built."""
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, not {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, not {self.weight_decay!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


class ProgressBar:
    """A one-line text progress bar on stderr (only when ``enabled``)."""

    def __init__(self, total, label, *, enabled=True, stream=None, width=24):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = sys.stderr if stream is None else stream
        self.width, self.start, self.n = width, time.monotonic(), 0

    def update(self, n=1, **info):
        self.n += n
        if not self.enabled:
            return
        filled = int(self.width * self.n / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        extra = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in info.items())
        elapsed = time.monotonic() - self.start
        self.stream.write(f"\r{self.label} [{bar}] {self.n}/{self.total} {elapsed:5.1f}s  {extra}")
        if self.n >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def predict(model, x, batch_size=512):
    """Logits of ``model`` on ``x``, in batches (no caching for backward)."""
    return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(model, x, y):
    """Fraction of samples whose argmax logit equals the label."""
    return float(np.mean(np.argmax(predict(model, x), axis=1) == y))


def train(model, data, config=TrainConfig(), *, progress=True):
    """Train ``model`` on ``data.part("train")`` with Adam; keep the parameters of the epoch with
    the best validation accuracy. Returns the history as a list of per-epoch dicts.

    Shuffling uses ``np.random.default_rng(config.seed)``: same seed, same bits.
    """
    x, y = data.part("train")
    xv, yv = data.part("val")
    rng = np.random.default_rng(config.seed)
    opt = Adam(config.lr, weight_decay=config.weight_decay)
    bar = ProgressBar(config.epochs, "train", enabled=progress)
    history, best_acc, best_state = [], -1.0, None
    for epoch in range(config.epochs):
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(x), config.batch_size):
            idx = order[i:i + config.batch_size]
            logits = model.forward(x[idx], train=True)
            loss, dLdz = softmax_cross_entropy(logits, y[idx])
            model.backward(dLdz)
            opt.step(model)
            losses.append(loss)
        val_acc = evaluate(model, xv, yv) if len(xv) else float("nan")
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_acc": val_acc})
        if not len(xv) or val_acc >= best_acc:  # ties: the later, better-fitted epoch
            best_acc, best_state = val_acc, model.state()
        bar.update(loss=float(np.mean(losses)), val_acc=val_acc)
    model.load_state(best_state)
    return history
