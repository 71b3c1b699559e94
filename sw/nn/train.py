"""The trainer: mini-batch gradient descent (SGD with momentum or Adam, weight decay, learning-rate
schedules) with seeded shuffling, a progress bar, early stopping on the validation split, and the
best validation epoch kept.

Regularizers (training options such as method 1, :mod:`slimgen.sw.compress.lagrangian_norm`) plug
in through ``train(..., regularizers=[...])``; each provides ``attach(model)``, ``detach()``,
``penalty()`` (the loss term of the last forward pass, a float) and ``step()`` (called after every
optimizer step, e.g. to let Lagrange multipliers ascend); ``epoch_end()`` returns a dict of
figures to record in the history (optional).
"""

import sys
import time
from dataclasses import dataclass, asdict

import numpy as np

from .augment import random_shift
from .loss import log_softmax, softmax_cross_entropy
from .optim import OPTIMIZERS, make_optimizer
from .schedule import SCHEDULES, lr_factor

__all__ = ["TrainConfig", "train", "evaluate", "predict", "ProgressBar", "clip_gradients",
           "smoothed_cross_entropy"]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; validated where built.

    ``optimizer`` "adam" or "sgd" (with ``momentum``, ``nesterov``); ``schedule`` one of
    :data:`~slimgen.sw.nn.schedule.SCHEDULES` over all steps, after ``warmup_epochs`` of linear
    warm-up; ``patience`` > 0 stops when validation accuracy has not improved for that many
    epochs (0: never stop early); ``grad_clip`` > 0 scales the gradients down to that global norm.
    ``augment_shift`` > 0 translates every training sample by a random whole-pixel (dy, dx) in
    ``{−s, …, s}²`` each time it is drawn (:func:`~slimgen.sw.nn.augment.random_shift`, from its
    own generator seeded by ``seed``, so the shuffling is the same with and without it);
    ``label_smoothing`` ε trains on the targets ``(1 − ε)·onehot + ε/k``. Both default to off.
    """
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    optimizer: str = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "constant"
    warmup_epochs: int = 0
    patience: int = 0
    grad_clip: float = 0.0
    augment_shift: int = 0
    label_smoothing: float = 0.0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        for name in ("warmup_epochs", "patience", "augment_shift"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, not {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be non-negative, not {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"not {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, "
                             f"not {self.schedule!r}")
        if not self.grad_clip >= 0:
            raise ValueError(f"grad_clip must be non-negative, not {self.grad_clip!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {self.label_smoothing!r}")

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


def smoothed_cross_entropy(z, y, eps):
    """Cross-entropy against smoothed targets ``q = (1 − ε)·onehot(y) + ε/k``:
    ``L = −(1/n) Σ_i Σ_j q_ij log softmax(z_i)_j``, ``dLdz = (softmax(z) − q) / n``.

    Shapes: z (n, k) float logits, y (n,) int labels; returns (float, (n, k)). ε = 0 is
    :func:`~slimgen.sw.nn.loss.softmax_cross_entropy`.
    """
    if not eps:
        return softmax_cross_entropy(z, y)
    n, k = z.shape
    q = np.full((n, k), eps / k)
    q[np.arange(n), y] += 1.0 - eps
    logp = log_softmax(z)
    return float(-np.sum(q * logp) / n), (np.exp(logp) - q) / n


def clip_gradients(model, max_norm):
    """Scale all gradients by one factor so that their global L2 norm is at most ``max_norm``;
    returns the norm before clipping."""
    grads = [g for _, _, g in model.named_parameters()]
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    if norm > max_norm:
        for g in grads:
            g *= max_norm / norm
    return norm


def train(model, data, config=TrainConfig(), *, progress=True, regularizers=()):
    """Train ``model`` on ``data.part("train")``; keep the parameters of the epoch with the best
    validation accuracy. Returns the history as a list of per-epoch dicts (``epoch``, ``loss``
    (network loss), ``penalty`` (regularizers), ``train_acc``, ``val_acc``, ``lr``, and whatever
    the regularizers' ``epoch_end`` report).

    Shuffling uses ``np.random.default_rng(config.seed)``: same seed, same bits.
    """
    x, y = data.part("train")
    xv, yv = data.part("val")
    rng = np.random.default_rng(config.seed)
    aug_rng = np.random.default_rng([config.seed, 1])  # its own stream: shuffling unchanged
    opt = make_optimizer(config.optimizer, config.lr, weight_decay=config.weight_decay,
                         momentum=config.momentum, nesterov=config.nesterov)
    steps_per_epoch = -(-len(x) // config.batch_size)
    total, warmup = config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch
    constant = config.schedule == "constant" and not warmup
    bar = ProgressBar(config.epochs, "train", enabled=progress)
    history, best_acc, best_state, since_best, step = [], -1.0, None, 0, 0
    for r in regularizers:
        r.attach(model)
    try:
        for epoch in range(config.epochs):
            order = rng.permutation(len(x))
            loss_sum = pen_sum = 0.0
            correct = 0
            for i in range(0, len(x), config.batch_size):
                idx = order[i:i + config.batch_size]
                xb = x[idx]
                if config.augment_shift:
                    xb = random_shift(xb, aug_rng, config.augment_shift)
                logits = model.forward(xb, train=True)
                loss, dLdz = smoothed_cross_entropy(logits, y[idx], config.label_smoothing)
                model.backward(dLdz)
                if config.grad_clip:
                    clip_gradients(model, config.grad_clip)
                if not constant:
                    opt.lr = config.lr * lr_factor(config.schedule, step, total, warmup=warmup)
                opt.step(model)
                for r in regularizers:
                    pen_sum += r.penalty() * len(idx)
                    r.step()
                loss_sum += loss * len(idx)
                correct += int(np.sum(np.argmax(logits, axis=1) == y[idx]))
                step += 1
            val_acc = evaluate(model, xv, yv) if len(xv) else float("nan")
            record = {"epoch": epoch + 1, "loss": loss_sum / len(x), "penalty": pen_sum / len(x),
                      "train_acc": correct / len(x), "val_acc": val_acc, "lr": opt.lr}
            for r in regularizers:
                record.update(getattr(r, "epoch_end", dict)())
            history.append(record)
            if not len(xv) or val_acc >= best_acc:  # ties: the later, better-fitted epoch
                since_best = 0 if val_acc > best_acc else since_best + 1
                best_acc, best_state = val_acc, model.state()
            else:
                since_best += 1
            bar.update(loss=record["loss"], acc=record["train_acc"], val_acc=val_acc)
            if config.patience and since_best >= config.patience:
                bar.update(bar.total - bar.n)
                break
    finally:
        for r in regularizers:
            r.detach()
    model.load_state(best_state)
    return history
