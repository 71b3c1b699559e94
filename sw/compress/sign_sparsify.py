"""Method 4: sign-directed stochastic sparsification (US11461628B2, US20190138896A1).

After every gradient step, every weight w draws a change ``Δ ≥ 0`` from a distribution and moves
against its sign, clamped at zero instead of crossing it (R):

``w ← sign(w) · max(|w| − Δ, 0)``

so positive weights only move down and negative ones only up; a weight that is 0 stays 0 until
a gradient step moves it. Interleaved with the gradient steps this is a stochastic L1 shrinkage
(a proximal step with a random threshold). Distributions (R), all with one ``scale``:

- ``"halfnormal"``: ``Δ = scale · |N(0, 1)|``  (mean ``scale · √(2/π)``);
- ``"uniform"``: ``Δ ~ U(0, scale)``            (mean ``scale / 2``);
- ``"exponential"``: ``Δ ~ Exp(scale)``          (mean ``scale``).

Given ``target_sparsity``, the scale follows it (R): after every step
``scale ← scale · exp(η · (s*(t) − s))`` with s the fraction of weights at exactly 0 and a target
``s*(t) = s_f · (1 − (1 − min(1, t / (ramp · T)))³)`` that ramps up like gradual pruning.
At the end the zero weights are masked (if more than ``1 − target`` of the weights are
non-zero, the smallest of them too, so the sparsity is at least the target) and the others are
fine-tuned with the masks held. With ``average`` = a > 0 (R) the mask is chosen from the mean
``|w|`` over the last a of the steps instead of the last step's weights (the stochastic
shrinkage leaves the zero set of any one step noisy: weights near the edge hit zero and regrow):
the ``round((1 − target) · N)`` largest means over the network are kept, exactly, and the
others set to zero; a kept weight that sits at zero then regrows by fine-tuning.
"""

from dataclasses import asdict, dataclass

import numpy as np

from .magnitude import magnitude_masks
from .masked_train import (Compressed, FitConfig, get_param, layer_sparsity, sparsity,
                           teacher_logits, train_compressed, weight_keys)

__all__ = ["SignSparsifyConfig", "SignSparsifier", "sign_shrink", "sample_delta",
           "DISTRIBUTIONS", "sign_sparsify"]

DISTRIBUTIONS = ("halfnormal", "uniform", "exponential")


def sample_delta(rng, distribution, scale, shape):
    """Non-negative changes Δ of ``shape`` (see the module docstring)."""
    if distribution == "halfnormal":
        return scale * np.abs(rng.standard_normal(shape))
    if distribution == "uniform":
        return rng.uniform(0.0, scale, shape)
    if distribution == "exponential":
        return rng.exponential(scale, shape)
    raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                     f"not {distribution!r}")


def sign_shrink(w, delta):
    """``sign(w) · max(|w| − Δ, 0)``, in place; no entry changes sign."""
    np.copyto(w, np.sign(w) * np.maximum(np.abs(w) - delta, 0.0))
    return w


@dataclass(frozen=True)
class SignSparsifyConfig:
    """Hyper-parameters of method 4 (see the module docstring). ``scale`` is the distribution's
    starting scale; ``lr_scale`` η (0 keeps the scale fixed); ``target_sparsity`` None to run
    with a fixed scale; ``average`` the final fraction of the steps whose mean ``|w|`` chooses
    the mask (0: the last step's zeros)."""
    distribution: str = "halfnormal"
    scale: float = 2e-3
    target_sparsity: float | None = 0.9
    lr_scale: float = 0.05
    ramp: float = 0.6
    epochs: int = 200
    finetune_epochs: int = 80
    average: float = 0.0

    def __post_init__(self):
        if not 0 <= self.average <= 1:
            raise ValueError(f"average must be in [0, 1], not {self.average!r}")
        if self.average and self.target_sparsity is None:
            raise ValueError("average needs a target_sparsity")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                             f"not {self.distribution!r}")
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, not {self.scale!r}")
        t = self.target_sparsity
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                              or not 0 <= t < 1):
            raise ValueError(f"target_sparsity must be a number in [0, 1), not {t!r}")
        if not self.lr_scale >= 0:
            raise ValueError(f"lr_scale must be non-negative, not {self.lr_scale!r}")
        if not 0 < self.ramp <= 1:
            raise ValueError(f"ramp must be in (0, 1], not {self.ramp!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, not {self.epochs!r}")
        v = self.finetune_epochs
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"finetune_epochs must be a non-negative integer, not {v!r}")

    def to_dict(self):
        return asdict(self)


class SignSparsifier:
    """The callback: after every optimizer step, shrink every weight against its sign."""

    def __init__(self, keys, config, ramp_steps, average_from=None):
        self.keys, self.config = list(keys), config
        self.scale, self.ramp_steps = float(config.scale), max(1, ramp_steps)
        self.zero_fraction = 0.0
        self.average_from = average_from          # the first step of the mean |w|, or None
        self.sum_abs, self.n_avg = {}, 0

    def target_at(self, step):
        s_f = self.config.target_sparsity
        return s_f * (1.0 - (1.0 - min(1.0, step / self.ramp_steps)) ** 3)

    def after_step(self, state):
        zeros = total = 0
        for k in self.keys:
            w = get_param(state.model, k)
            sign_shrink(w, sample_delta(state.rng, self.config.distribution, self.scale, w.shape))
            zeros += int(np.sum(w == 0))
            total += w.size
        if self.average_from is not None and state.step >= self.average_from:
            for k in self.keys:
                a = np.abs(get_param(state.model, k))
                self.sum_abs[k] = self.sum_abs[k] + a if k in self.sum_abs else a.copy()
            self.n_avg += 1
        self.zero_fraction = zeros / total
        if self.config.target_sparsity is not None and self.config.lr_scale:
            err = self.target_at(state.step + 1) - self.zero_fraction
            self.scale *= float(np.exp(self.config.lr_scale * err))

    def epoch_end(self, state):
        return {"scale": self.scale, "zero_fraction": self.zero_fraction}


def sign_sparsify(model, data, config=SignSparsifyConfig(), *, fit=FitConfig(), finetune=None,
                  keys=None, progress=False):
    """Train ``model`` with sign-directed sparsification, in place (method 4), then mask the
    zeros and fine-tune; returns a :class:`~.Compressed`."""
    teacher = teacher_logits(model, data) if fit.distill or (finetune and finetune.distill) \
        else None
    keys = list(weight_keys(model) if keys is None else keys)
    steps = config.epochs * -(-len(data.part("train")[1]) // fit.batch_size)
    cb = SignSparsifier(keys, config, int(config.ramp * steps),
                        steps - max(1, round(config.average * steps)) if config.average else None)
    fit = fit.replace(epochs=config.epochs, keep_best=False)
    history = train_compressed(model, data, fit, callbacks=[cb], progress=progress,
                               label="sign-sparsify", teacher=teacher)
    arrays = {k: get_param(model, k) for k in keys}
    masks = {k: w != 0 for k, w in arrays.items()}
    if cb.n_avg:
        masks = magnitude_masks({k: cb.sum_abs[k] / cb.n_avg for k in keys},
                                config.target_sparsity, "global")
    elif config.target_sparsity is not None:
        top = magnitude_masks(arrays, config.target_sparsity, "global")
        masks = {k: masks[k] & top[k] for k in keys}
    for k, m in masks.items():
        arrays[k][...] *= m
    zeros_before_finetune = sparsity(model, keys)
    if config.finetune_epochs:
        ft = (finetune or fit).replace(epochs=config.finetune_epochs, keep_best=True,
                                       seed=fit.seed + 1)
        history += train_compressed(model, data, ft, masks=masks, progress=progress,
                                    label="fine-tune", teacher=teacher)
    info = {"method": "sign_sparsify", "sparsity": sparsity(model, keys),
            "layers": layer_sparsity(model, keys), "final_scale": cb.scale,
            "zero_fraction_after_training": zeros_before_finetune, "config": config.to_dict()}
    return Compressed(model, masks, info, history)
