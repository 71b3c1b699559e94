"""Method 6: self-pruning with an analytic threshold (US11250325B2).

Every weight array W of the network (Dense, Conv2d, LSTM matrices) is used as ``W · h(W)`` with
the threshold function of :mod:`.threshold`, ``h(w) = 1 / (1 + exp((β² − w²) / α²))``, and its
own learnable sharpness α and band half-width β. The cost adds a term that rewards pruning, a
soft L0 over all N weights:

``L = L_net + λ · (1/N) Σ_w h(w)``

whose gradients are ``(λ/N) ∂h/∂w``, ``(λ/N) Σ ∂h/∂α``, ``(λ/N) Σ ∂h/∂β`` (without it β
collapses to 0). Weights, α and β descend together by back-propagation.

λ is either fixed (``lam``) or, given ``target_sparsity``, a multiplier that follows the
constraint (R): after every step ``λ ← max(0, λ + η_λ · (d − d*(t)) / d*(t))`` (the relative
error, so that one η_λ serves every sparsity) with d the hard density
(fraction of ``|w| ≥ β``) and a target density that ramps down over the first ``ramp`` of the
steps like gradual pruning's cubic schedule,
``d*(t) = d_f + (1 − d_f) · (1 − min(1, t / (ramp · T)))³``, ``d_f = 1 − target_sparsity``.

At the end the hard mask keeps ``|w| ≥ β`` of each array. With ``target_sparsity`` the count is
made exact (R): every weight scores ``|w| / β_layer`` (its distance from its own layer's learned
edge) and the ``round((1 − target) · N)`` best over the network are kept, which is the same as
scaling all learned β by one common factor. With ``live`` (R) the count goes to weights that
can matter: a hidden neuron between two dense arrays that keeps no outgoing weight makes its
incoming ones useless; they are excluded and the freed budget goes to the next best scores,
until no kept weight is on a dead neuron. Then the kept weights (``w``, not ``w·h``: the
soft gate is gone) are fine-tuned with the pruned ones held at zero.

α is held in ``[alpha_min_ratio · β, alpha_max_ratio · β]`` after every step (R). Without the
ceiling the loss could widen an array's edges until ``h(0) = σ(−β²/α²)`` let most of the band
through: on the digits CNN (seeds 10 and 12 of ``bench/compression.py``) the classifier's α
grew to 1.15-1.17 β while the soft network kept 99 % validation accuracy; the hard mask then
cut the classifier to 1 % of its weights and 20 epochs of fine-tuning recovered only 43-50 %.
With α ≤ β the same runs keep 96.4 % and 96.7 %; runs whose α never reaches β are unchanged.
The ceiling is off by default: on the digits MLP, α above β while the target ramps is what the
tuned settings rely on (with α ≤ β on every model the MLP's 95 % self-prune lost 1.83 points of
test accuracy instead of 1.17; validation cross-entropy also rose, 0.0959 → 0.1145); by the end
of the ramp the MLP's α is below β/2 anyway (self-prune at 95 % and 97 %, seeds 0-4), so a
ceiling that starts there leaves those runs bit-identical, but it rescues the CNN only partly
(91.9 % and 90.0 %). ``slimgen compress`` offers it (``--alpha-max-ratio``) but does not set it:
on the default CNN flow (balanced rows, 4 lanes, 90 %, seed 0) the ceiling cost 2 points (test
95.56 → 93.61 %, validation 97.92 → 96.53 %).
"""

from dataclasses import asdict, dataclass

import numpy as np

from .masked_train import (Compressed, FitConfig, apply_masks, get_param, layer_sparsity,
                           sparsity, teacher_logits, train_compressed, weight_keys)
from .threshold import Threshold, gated_grads, h_grads

__all__ = ["SelfPruneConfig", "SelfPruneTransform", "self_prune", "keep_top_scores",
           "keep_live_scores", "dense_pairs", "dead_weights"]

_PER_FEATURE = ("relu", "identity", "batchnorm")  # layers that keep a dead neuron dead


def _check_fraction(name, v, *, allow_none=False):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ValueError(f"{name} must be a number in [0, 1), not {v!r}")


@dataclass(frozen=True)
class SelfPruneConfig:
    """Hyper-parameters of method 6 (see the module docstring).

    ``target_sparsity`` (fraction of zero weights over all weight arrays, or None for a fixed
    ``lam``); ``lam`` the initial λ; ``lr_lambda`` η_λ; ``beta_init`` and ``alpha_init`` as
    fractions of each array's standard deviation; ``alpha_min_ratio`` the floor of α/β and
    ``alpha_max_ratio`` its ceiling (None: none; at 1, ``h(0) ≤ σ(−1) ≈ 0.27``: see the module
    docstring);
    ``epochs`` of training with the soft mask and
    ``finetune_epochs`` with the hard mask held; ``live`` moves the final count off dead
    neurons (see the module docstring); ``average`` > 0 ranks the weights by their mean score
    ``|w|/β`` over that final fraction of the steps instead of the last step's.
    """
    target_sparsity: float | None = 0.9
    lam: float = 0.0
    lr_lambda: float = 0.1
    ramp: float = 0.6
    beta_init: float = 0.3
    alpha_init: float = 0.25
    alpha_min_ratio: float = 0.2
    alpha_max_ratio: float | None = None
    epochs: int = 200
    finetune_epochs: int = 80
    live: bool = False
    average: float = 0.0

    def __post_init__(self):
        _check_fraction("target_sparsity", self.target_sparsity, allow_none=True)
        if not isinstance(self.live, bool):
            raise ValueError(f"live must be True or False, not {self.live!r}")
        if not 0 <= self.average <= 1:
            raise ValueError(f"average must be in [0, 1], not {self.average!r}")
        for name in ("lam", "lr_lambda", "alpha_min_ratio"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, not {getattr(self, name)!r}")
        if self.alpha_max_ratio is not None and (not self.alpha_max_ratio > 0 or
                                                 not self.alpha_max_ratio >= self.alpha_min_ratio):
            raise ValueError(f"alpha_max_ratio must be positive and at least alpha_min_ratio "
                             f"({self.alpha_min_ratio!r}), not {self.alpha_max_ratio!r}")
        if not 0 < self.ramp <= 1:
            raise ValueError(f"ramp must be in (0, 1], not {self.ramp!r}")
        for name in ("beta_init", "alpha_init"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, not {self.epochs!r}")
        if (isinstance(self.finetune_epochs, bool) or not isinstance(self.finetune_epochs, int)
                or self.finetune_epochs < 0):
            raise ValueError(f"finetune_epochs must be a non-negative integer, "
                             f"not {self.finetune_epochs!r}")

    def to_dict(self):
        return asdict(self)

    def transform_kwargs(self):
        """The keyword arguments of :class:`SelfPruneTransform` that this configuration sets
        (every method built on the threshold passes them on alike)."""
        return dict(lam=self.lam, target_sparsity=self.target_sparsity,
                    lr_lambda=self.lr_lambda, ramp=self.ramp, beta_init=self.beta_init,
                    alpha_init=self.alpha_init, alpha_min_ratio=self.alpha_min_ratio,
                    alpha_max_ratio=self.alpha_max_ratio)


class SelfPruneTransform:
    """``W_eff = W · h(W)`` on every key, with the soft-L0 penalty (a transform for
    :func:`~.masked_train.train_compressed`). Subclasses add penalties (method 5)."""

    def __init__(self, model, keys=None, *, lam=0.0, target_sparsity=None, lr_lambda=0.1,
                 ramp=0.6, beta_init=0.3, alpha_init=0.25, alpha_min_ratio=0.2,
                 alpha_max_ratio=None, total_steps=1):
        self.keys = list(weight_keys(model) if keys is None else keys)
        self.thresholds = {k: Threshold.from_weights(get_param(model, k), beta_fraction=beta_init,
                                                     alpha_fraction=alpha_init)
                           for k in self.keys}
        self.n_total = sum(get_param(model, k).size for k in self.keys)
        self.lam, self.target, self.lr_lambda = float(lam), target_sparsity, float(lr_lambda)
        self._density = 1.0
        self.alpha_min_ratio = float(alpha_min_ratio)
        self.alpha_max_ratio = None if alpha_max_ratio is None else float(alpha_max_ratio)
        self.ramp_steps = max(1, int(ramp * total_steps))
        self.step = 0

    def target_density(self):
        """``d*(t)`` of the ramp (see the module docstring)."""
        d_f = 1.0 - self.target
        return d_f + (1.0 - d_f) * (1.0 - min(1.0, self.step / self.ramp_steps)) ** 3

    # protocol of train_compressed
    def attach(self, model):
        pass

    def detach(self):
        pass

    def zero_grad(self):
        for t in self.thresholds.values():
            for g in t.grads.values():
                g[...] = 0.0

    def parameters(self):
        for k, t in self.thresholds.items():
            for name in ("alpha", "beta"):
                yield (f"thr{k[0]}.{k[1]}", name), t.params[name], t.grads[name]

    def forward(self, key, w):
        t = self.thresholds[key]
        return w * _h(w, t)

    def backward(self, key, w, dLdw_eff):
        t = self.thresholds[key]
        _, dw, da, db = gated_grads(w, t.alpha, t.beta)
        t.grads["alpha"] += np.sum(dLdw_eff * da)
        t.grads["beta"] += np.sum(dLdw_eff * db)
        return dLdw_eff * dw

    def h_grads(self, raw):
        """``{key: (h, ∂h/∂w, ∂h/∂α, ∂h/∂β)}`` of the raw weights, for the penalties."""
        return {k: h_grads(w, self.thresholds[k].alpha, self.thresholds[k].beta)
                for k, w in raw.items()}

    def penalty(self, raw, hg=None):
        """``(λ/N) Σ h`` and its gradients; ``(value, {key: dP/dW})``. ``hg``: the result of
        :meth:`h_grads` when a subclass has it already."""
        if self.lam == 0:
            return 0.0, {}
        hg = self.h_grads(raw) if hg is None else hg
        c = self.lam / self.n_total
        value, grads = 0.0, {}
        for key, w in raw.items():
            t = self.thresholds[key]
            hw, dw, da, db = hg[key]
            value += c * float(hw.sum())
            grads[key] = c * dw
            t.grads["alpha"] += c * da.sum()
            t.grads["beta"] += c * db.sum()
        return value, grads

    def density(self, raw):
        """Hard density: the fraction of weights with ``|w| ≥ β``."""
        kept = sum(int(np.sum(np.abs(w) >= self.thresholds[k].beta)) for k, w in raw.items())
        return kept / self.n_total

    def after_step(self, raw):
        for t in self.thresholds.values():
            t.clamp(self.alpha_min_ratio, self.alpha_max_ratio)
        self.step += 1
        if self.target is not None:
            self._density = self.density(raw)
            d_t = self.target_density()
            self.lam = max(0.0, self.lam + self.lr_lambda * (self._density - d_t) / d_t)

    def epoch_end(self, raw):
        return {"lambda": self.lam, "soft_sparsity": 1.0 - self.density(raw),
                "beta": {f"{i}.{n}": t.beta for (i, n), t in self.thresholds.items()},
                "alpha": {f"{i}.{n}": t.alpha for (i, n), t in self.thresholds.items()}}

    # the end
    def scores(self, raw):
        """``|w| / β`` per key: ≥ 1 where the soft mask keeps the weight."""
        return {k: np.abs(w) / self.thresholds[k].beta for k, w in raw.items()}

    def hard_masks(self, raw, target_sparsity=None, pairs=()):
        """``|w| ≥ β`` per key, or with a target the best ``|w|/β`` over the network (with
        ``pairs`` of :func:`dense_pairs`, the best on live neurons: :func:`keep_live_scores`)."""
        scores = self.scores(raw)
        if target_sparsity is None:
            return {k: s >= 1.0 for k, s in scores.items()}
        return _keep_scores(scores, target_sparsity, pairs)


def _h(w, t):
    z = (w * w - t.beta ** 2) / t.alpha ** 2
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def keep_top_scores(scores, target_sparsity):
    """Masks keeping the ``round((1 − target) · N)`` highest scores over all arrays (ties go to
    the earlier position, so the count is exact)."""
    flat = np.concatenate([s.ravel() for s in scores.values()])
    n_keep = int(round((1.0 - target_sparsity) * flat.size))
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[:n_keep]] = True
    masks, start = {}, 0
    for k, s in scores.items():
        masks[k] = keep[start:start + s.size].reshape(s.shape)
        start += s.size
    return masks


def _keep_scores(scores, target_sparsity, pairs):
    """The exact-count masks: :func:`keep_live_scores` given ``pairs``, else
    :func:`keep_top_scores`."""
    if pairs:
        return keep_live_scores(scores, target_sparsity, pairs)
    return keep_top_scores(scores, target_sparsity)


def dense_pairs(model, keys):
    """``[(a, b)]``: consecutive dense weight keys with only per-feature layers (ReLU, identity,
    batch norm) between them, so that a's output neurons are b's inputs."""
    pairs = []
    for a, b in zip(keys, keys[1:]):
        la, lb = model.layers[a[0]], model.layers[b[0]]
        between = {model.layers[i].kind for i in range(a[0] + 1, b[0])}
        if (la.kind == lb.kind == "dense" and a[1] == b[1] == "W" and between <= set(_PER_FEATURE)
                and la.params["W"].shape[1] == lb.params["W"].shape[0]):
            pairs.append((a, b))
    return pairs


def dead_weights(masks, pairs):
    """``{key: bool array}``: kept weights on dead neurons of ``pairs`` (W is (n_in, n_out)):
    into a neuron that keeps no outgoing weight, and out of one that keeps no incoming one."""
    dead = {k: np.zeros(m.shape, dtype=bool) for k, m in masks.items()}
    for a, b in pairs:
        dead[a] |= masks[a] & ~masks[b].any(axis=1)[None, :]
        dead[b] |= masks[b] & ~masks[a].any(axis=0)[:, None]
    return dead


def keep_live_scores(scores, target_sparsity, pairs, rounds=20):
    """:func:`keep_top_scores` on live neurons (R): every input weight of a neuron that keeps
    no output weight is excluded and the next best scores take its place, until no kept weight
    is on a dead neuron (:func:`dead_weights`, both sides); else, after ``rounds``, the masks of
    the round with the fewest (never more than the plain top scores; the count is exact). A
    neuron with outputs and no inputs keeps them (a constant, that the next bias can absorb).
    """
    excluded = {k: np.zeros(s.shape, dtype=bool) for k, s in scores.items()}
    best = None
    for _ in range(rounds):
        masks = keep_top_scores({k: np.where(excluded[k], -np.inf, s)
                                 for k, s in scores.items()}, target_sparsity)
        n_dead = sum(int(d.sum()) for d in dead_weights(masks, pairs).values())
        if best is None or n_dead < best[0]:
            best = (n_dead, masks)
        if n_dead == 0:
            break
        for a, b in pairs:                      # every input of a neuron without outputs
            excluded[a] |= ~masks[b].any(axis=1)[None, :]
    return best[1]


class _MeanScores:
    """The callback of ``average``: the sum of the scores ``|w|/β`` from step ``start`` on."""

    def __init__(self, transform, start):
        self.tr, self.start, self.sums, self.n = transform, start, {}, 0

    def after_step(self, state):
        if state.step >= self.start:
            for k, sc in self.tr.scores(state.raw).items():
                self.sums[k] = self.sums[k] + sc if k in self.sums else sc
            self.n += 1


def self_prune(model, data, config=SelfPruneConfig(), *, fit=FitConfig(), finetune=None,
               keys=None, progress=False):
    """Self-prune a trained ``model`` in place (method 6); returns a :class:`~.Compressed`.

    ``fit`` trains with the soft mask for ``config.epochs``; ``finetune`` (default: ``fit``
    with ``keep_best``) retrains the hard-masked model for ``config.finetune_epochs``. With
    ``distill`` in either, the teacher is the model as it comes in (the dense one).
    """
    teacher = teacher_logits(model, data) if fit.distill or (finetune and finetune.distill) \
        else None
    fit = fit.replace(epochs=config.epochs, keep_best=False)
    steps = fit.epochs * -(-len(data.part("train")[1]) // fit.batch_size)
    tr = SelfPruneTransform(model, keys, **config.transform_kwargs(), total_steps=steps)
    avg = _MeanScores(tr, steps - max(1, round(config.average * steps))) \
        if config.average and config.target_sparsity is not None else None
    history = train_compressed(model, data, fit, transform=tr, progress=progress,
                               label="self-prune", teacher=teacher, callbacks=[avg] if avg else ())
    raw = {k: get_param(model, k) for k in tr.keys}
    pairs = dense_pairs(model, tr.keys) if config.live else ()
    if avg is not None:
        mean = {k: s / avg.n for k, s in avg.sums.items()}
        masks = _keep_scores(mean, config.target_sparsity, pairs)
    else:
        masks = tr.hard_masks(raw, config.target_sparsity, pairs)
    apply_masks(model, masks)
    if config.finetune_epochs:
        ft = (finetune or fit).replace(epochs=config.finetune_epochs, keep_best=True,
                                       seed=fit.seed + 1)
        history += train_compressed(model, data, ft, masks=masks, progress=progress,
                                    label="fine-tune", teacher=teacher)
    info = {"method": "self_prune", "sparsity": sparsity(model), "layers": layer_sparsity(model),
            "beta": {f"{i}.{n}": t.beta for (i, n), t in tr.thresholds.items()},
            "alpha": {f"{i}.{n}": t.alpha for (i, n), t in tr.thresholds.items()},
            "config": config.to_dict()}
    return Compressed(model, masks, info, history)
