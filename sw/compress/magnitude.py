"""Baselines: gradual magnitude pruning with retraining, and plain post-training quantization.

**Gradual magnitude pruning** (Zhu & Gupta's schedule): while training, every ``frequency``
steps the smallest-magnitude weights are masked so that the sparsity follows

``s(t) = s_f · (1 − (1 − min(1, t / T))³)``,   T = ``ramp`` · (pruning-phase steps)

then the model is retrained with the mask held (pruned weights exactly zero). ``scope="layer"``
prunes every weight array to s(t) on its own; ``scope="global"`` ranks the magnitudes of all
arrays together (one threshold for the network).

**Post-training quantization** of the weights, per array, symmetric, as
:func:`slimgen.sw.quantize.quantize_network` does: ``s = max|W| / (2^(b−1) − 1)``,
``W ← s · round(W / s)`` (zeros stay zero).
"""

from dataclasses import asdict, dataclass

import numpy as np

from ..fixed import quantize_symmetric
from .masked_train import (Compressed, FitConfig, get_param, layer_sparsity, sparsity,
                           teacher_logits, train_compressed, weight_keys)

__all__ = ["MagnitudeConfig", "GradualPruning", "magnitude_masks", "magnitude_prune",
           "quantize_dequantize", "fake_quantize_weights", "SCOPES"]

SCOPES = ("layer", "global")


def magnitude_masks(arrays, target_sparsity, scope="layer"):
    """Masks keeping the largest magnitudes: ``round((1 − s) · size)`` per array (``"layer"``)
    or over all arrays together (``"global"``); exact counts, ties to the earlier position."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be 'layer' or 'global', not {scope!r}")
    if scope == "layer":
        return {k: _top(np.abs(w), target_sparsity) for k, w in arrays.items()}
    flat = np.concatenate([np.abs(w).ravel() for w in arrays.values()])
    keep = _top(flat, target_sparsity)
    masks, start = {}, 0
    for k, w in arrays.items():
        masks[k] = keep[start:start + w.size].reshape(w.shape)
        start += w.size
    return masks


def _top(a, target_sparsity):
    n_keep = int(round((1.0 - target_sparsity) * a.size))
    keep = np.zeros(a.size, dtype=bool)
    keep[np.argsort(-a.ravel(), kind="stable")[:n_keep]] = True
    return keep.reshape(a.shape)


@dataclass(frozen=True)
class MagnitudeConfig:
    """Gradual magnitude pruning: ``target_sparsity`` over the pruned arrays, ``scope``
    ("layer" or "global"), ``epochs`` of gradual pruning (the schedule ends after ``ramp`` of
    them), a pruning step every ``frequency`` optimizer steps, then ``finetune_epochs``."""
    target_sparsity: float = 0.9
    scope: str = "layer"
    epochs: int = 60
    ramp: float = 0.6
    frequency: int = 10
    finetune_epochs: int = 40

    def __post_init__(self):
        t = self.target_sparsity
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < 1:
            raise ValueError(f"target_sparsity must be a number in [0, 1), "
                             f"not {self.target_sparsity!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be 'layer' or 'global', not {self.scope!r}")
        for name in ("epochs", "frequency"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not 0 < self.ramp <= 1:
            raise ValueError(f"ramp must be in (0, 1], not {self.ramp!r}")
        v = self.finetune_epochs
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"finetune_epochs must be a non-negative integer, not {v!r}")

    def to_dict(self):
        return asdict(self)


class GradualPruning:
    """A callback for :func:`~.masked_train.train_compressed` that tightens the masks along the
    cubic schedule (see the module docstring)."""

    def __init__(self, keys, target_sparsity, *, scope="layer", ramp_steps=1, frequency=10):
        self.keys, self.target, self.scope = list(keys), target_sparsity, scope
        self.ramp_steps, self.frequency = max(1, ramp_steps), frequency

    def sparsity_at(self, step):
        return self.target * (1.0 - (1.0 - min(1.0, step / self.ramp_steps)) ** 3)

    def after_step(self, state):
        t = state.step + 1
        if t % self.frequency and t != self.ramp_steps:
            return
        if t > self.ramp_steps:
            return
        arrays = {k: get_param(state.model, k) for k in self.keys}
        new = magnitude_masks(arrays, self.sparsity_at(t), self.scope)
        for k, m in new.items():
            state.masks[k] = m & state.masks.get(k, True)  # once pruned, pruned for good
            arrays[k][...] *= state.masks[k]

    def epoch_end(self, state):
        return {"target_now": self.sparsity_at(state.step)}


def magnitude_prune(model, data, config=MagnitudeConfig(), *, fit=FitConfig(), finetune=None,
                    keys=None, progress=False):
    """Gradual magnitude pruning with retraining, in place; returns a :class:`~.Compressed`."""
    teacher = teacher_logits(model, data) if fit.distill or (finetune and finetune.distill) \
        else None
    keys = list(weight_keys(model) if keys is None else keys)
    steps = config.epochs * -(-len(data.part("train")[1]) // fit.batch_size)
    cb = GradualPruning(keys, config.target_sparsity, scope=config.scope,
                        ramp_steps=int(config.ramp * steps), frequency=config.frequency)
    masks = {k: np.ones(get_param(model, k).shape, dtype=bool) for k in keys}
    fit = fit.replace(epochs=config.epochs, keep_best=False)
    # the callback's last step is at the target; recomputing the masks from the magnitudes
    # gives the same set (pruned weights are exactly 0) as a plain dict for the fine-tuning
    history = train_compressed(model, data, fit, masks=masks, callbacks=[cb], progress=progress,
                               label="magnitude", teacher=teacher)
    arrays = {k: get_param(model, k) for k in keys}
    masks = magnitude_masks(arrays, config.target_sparsity, config.scope)
    for k, m in masks.items():
        arrays[k][...] *= m
    if config.finetune_epochs:
        ft = (finetune or fit).replace(epochs=config.finetune_epochs, keep_best=True,
                                       seed=fit.seed + 1)
        history += train_compressed(model, data, ft, masks=masks, progress=progress,
                                    label="fine-tune", teacher=teacher)
    info = {"method": f"magnitude_{config.scope}", "sparsity": sparsity(model, keys),
            "layers": layer_sparsity(model, keys), "config": config.to_dict()}
    return Compressed(model, masks, info, history)


def quantize_dequantize(w, bits):
    """``s · clip(round(w / s), −q, q)`` with ``q = 2^(bits−1) − 1``, ``s = max|w| / q``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an integer from 2 to 16, not {bits!r}")
    w_q, s = quantize_symmetric(w, int(bits))
    return s * w_q


def fake_quantize_weights(model, bits, keys=None):
    """Post-training quantization of the weight arrays in place (float values on the integer
    grid); ``bits`` one width for all arrays or one per key. Returns the widths used."""
    keys = list(weight_keys(model) if keys is None else keys)
    widths = [bits] * len(keys) if np.isscalar(bits) else list(bits)
    if len(widths) != len(keys):
        raise ValueError(f"Give one bit width or one per weight array ({len(keys)}), "
                         f"not {len(widths)}")
    for k, b in zip(keys, widths):
        w = get_param(model, k)
        w[...] = quantize_dequantize(w, b)
    return [int(b) for b in widths]
