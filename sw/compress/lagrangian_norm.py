"""Method 1: Lagrangian normalization for small batches (US11645535B2).

Instead of a BatchNorm layer, training adds penalty terms on the batch statistics of chosen
activations, for every constrained layer l and channel k:

``L = L_net + Σ_{l,k} λ1[l,k] · μ[l,k]² + Σ_{l,k} λ2[l,k] · (σ²[l,k] − v[l,k])²``

with μ and σ² the mean and (biased) variance of channel k over the batch and, for images, the
spatial positions (for sequences: the batch and the steps). With m values per channel, the
gradient added to the activations a of that channel is

``∂P/∂a = (2 λ1 μ + 4 λ2 (σ² − v) (a − μ)) / m``

(the mean's own dependence on a drops out of the variance term because ``Σ (a − μ) = 0``).

The weights descend on L through the usual backward pass; after every optimizer step the
multipliers ascend, ``λ1 += η_λ · μ²``, ``λ2 += η_λ · (σ² − v)²`` (R: gradient ascent on L in λ,
clipped to ``lambda_max``), and a trainable target variance descends,
``v −= η_v · ∂P/∂v = η_v · 2 λ2 (v − σ²)`` (kept ≥ ``min_var``; with the λ2 before its ascent).
Channels whose statistics run over a single value (a dense layer at batch size 1) are left out:
one value has no statistics. Nothing of this exists at inference: the model has no
normalization layer, so nothing needs folding.

Running estimates (``momentum`` ρ > 0, off by default): at small batches the batch statistics
are noisy, so the penalty and the multiplier ascent can use exponential moving averages instead,
``μ̂ = ρ·μ̂_prev + (1 − ρ)·μ``, ``σ̂² = ρ·σ̂²_prev + (1 − ρ)·σ²`` (the previous estimates are
constants; the first batch starts them at its own statistics), so
``P = Σ λ1 μ̂² + Σ λ2 (σ̂² − v)²`` and the gradient only flows through this batch's share:
``∂P/∂a = (1 − ρ) (2 λ1 μ̂ + 4 λ2 (σ̂² − v) (a − μ)) / m``. The estimates move on in ``step()``.
With ρ = 0 this is the plain batch penalty above. ``running="ascent"`` keeps the batch's own
statistics in the penalty (and its gradient) and uses the running estimates only for the
multipliers' ascent, whose batch version also grows with the noise of the statistics
(``E[μ²] = μ_true² + Var(μ)``).

Two more options, off by default: ``terms="var"`` (or ``"mean"``) keeps only one of the two
penalty terms (the other multiplier stays at 0); ``warmup`` > 0 scales the whole penalty by
``r_t = min(1, t / warmup)`` after t optimizer steps (a ramp from 0). What descends on the
penalty sees it ramped: the weights and a trainable v, ``v −= η_v · r_t · ∂P/∂v`` (v stays put at
step 0, as the weights feel no pull). The multipliers' ascent is left as it is: it measures how
far the statistics are from the constraint, which the ramp does not change.

Projected loss gradient (``project=True``, off by default): the penalty only pulls the statistics
back after the loss gradient has moved them. With ``project``, the loss gradient g arriving at a
constrained activation is first projected, per channel, onto the directions that leave μ and σ²
unchanged to first order, and the penalty's gradient is added after:

``g ← g − mean(g) − (Σ g (a − μ) / Σ (a − μ)²) · (a − μ)``

(R: the least-squares multipliers ν = −(J Jᵀ)⁻¹ J g of the linearised constraints μ = 0 and
σ² = v, whose gradients 1/m and 2 (a − μ)/m are orthogonal; the same projection as BatchNorm's
backward pass, without its forward normalization). Descent then runs along the constraint surface
and the penalty keeps the activations on it. This is no longer the gradient of one scalar, so it
is checked by its defining properties, not by finite differences.

Free scale and shift: the penalty pins every constrained channel to mean 0 and variance v, which
BatchNorm's γ and β do not. :func:`slimgen.sw.nn.affine.insert_channel_affine` puts a per-channel
γ, β after each constrained layer (trained with the weights, untouched by the penalty, which acts
on the layer's own output) and :func:`~slimgen.sw.nn.affine.fold_channel_affine` folds them into
that layer after training, so that nothing of method 1 remains at inference either
(bench/normalization.py does both).

Data-dependent initialisation (:func:`data_init`, off unless called): the penalty starts far from
satisfied when the initial weights give the constrained activations means and variances other
than 0 and v, and its pull then competes with the loss from the first step. ``data_init`` sets
each constrained Dense or Conv2d layer, first to last, so that its output has mean 0 and
variance v per channel on a given batch of training inputs (LSUV-style, per channel with the
shift): ``W ← s·W``, ``b ← s·(b − μ)`` with ``s = sqrt(v / σ²)``, μ and σ² the layer's output
statistics with the layers before it already set. The network computes the same family of
functions, only its starting point moves; the penalty is then zero on that batch at step 0.

Which activations: ``where="pre"`` (the default) constrains the outputs of every Dense, Conv2d and
LSTM layer except the last (the classifier's logits), i.e. the inputs of the nonlinearities, where
BatchNorm would sit; ``where="post"`` constrains the outputs of every ReLU instead (which cannot
reach mean 0 without dying, so it works against the network; bench/normalization.py measures both).
"""

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LagrangianNormConfig", "LagrangianNorm", "constrained_layers", "channel_stats",
           "data_init"]

WHERE = ("pre", "post")
TERMS = ("both", "mean", "var")  # which penalty terms
RUNNING = ("both", "ascent")  # where the running estimates go: penalty and ascent, or ascent
_LINEAR = ("dense", "conv2d", "lstm")


@dataclass(frozen=True)
class LagrangianNormConfig:
    """Hyper-parameters of method 1 (see the module docstring for the formulas).

    ``lambda_init`` starts both multipliers; ``lr_lambda`` is η_λ; ``target_var`` the initial
    (or fixed) v; ``trainable_var`` lets v descend with step ``lr_var``; ``momentum`` is ρ of the
    running estimates of μ and σ² (0: the batch's own statistics), used in the penalty and the
    ascent (``running="both"``) or in the ascent only (``"ascent"``); ``terms`` keeps both penalty
    terms or one; ``warmup`` is the length in steps of the penalty's ramp from 0 (0: none);
    ``project`` projects the loss gradient onto the constraint surface (module docstring).
    """
    where: str = "pre"
    target_var: float = 1.0
    trainable_var: bool = False
    lambda_init: float = 0.01
    lr_lambda: float = 1e-4
    lambda_max: float = 1.0
    lr_var: float = 1e-3
    min_var: float = 1e-2
    momentum: float = 0.0
    running: str = "both"
    terms: str = "both"
    warmup: int = 0
    project: bool = False

    def __post_init__(self):
        if self.where not in WHERE:
            raise ValueError(f"where must be 'pre' or 'post', not {self.where!r}")
        for name in ("target_var", "lambda_max", "min_var"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        for name in ("lambda_init", "lr_lambda", "lr_var"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, not {getattr(self, name)!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        if self.running not in RUNNING:
            raise ValueError(f"running must be 'both' or 'ascent', not {self.running!r}")
        if self.terms not in TERMS:
            raise ValueError(f"terms must be 'both', 'mean' or 'var', not {self.terms!r}")
        if not isinstance(self.project, bool):
            raise ValueError(f"project must be True or False, not {self.project!r}")
        if not (isinstance(self.warmup, int) and self.warmup >= 0):
            raise ValueError(f"warmup must be a non-negative integer, not {self.warmup!r}")
        if self.lambda_init > self.lambda_max:
            raise ValueError(f"lambda_init ({self.lambda_init}) must not exceed lambda_max "
                             f"({self.lambda_max})")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def constrained_layers(model, where="pre"):
    """Indices of the layers whose outputs method 1 constrains (see the module docstring)."""
    if where not in WHERE:
        raise ValueError(f"where must be 'pre' or 'post', not {where!r}")
    kinds = [layer.kind for layer in model.layers]
    if where == "post":
        return [i for i, k in enumerate(kinds) if k == "relu"]
    linear = [i for i, k in enumerate(kinds) if k in _LINEAR]
    return linear[:-1]


def channel_stats(a):
    """Per-channel mean and biased variance, and the count m per channel.

    Channels are axis 1 of (n, c) and (n, c, h, w) arrays, and the last axis of (n, T, c)
    sequences. Returns ``(μ (c,), σ² (c,), m, axes)``.
    """
    if a.ndim == 2:
        axes = (0,)
    elif a.ndim == 3:
        axes = (0, 1)
    elif a.ndim == 4:
        axes = (0, 2, 3)
    else:
        raise ValueError(f"Activations must have 2, 3 or 4 dimensions, got shape {a.shape}")
    m = a.size // (a.shape[-1] if a.ndim == 3 else a.shape[1])
    mu = a.mean(axis=axes)
    var = a.var(axis=axes)
    return mu, var, m, axes


def data_init(model, x, where="pre", target_var=1.0, eps=1e-8):
    """Data-dependent initialisation (module docstring): rescale and shift every constrained
    Dense or Conv2d layer of ``model`` in place, first to last, so that its output has mean 0 and
    variance ``target_var`` per channel on the inputs ``x`` (inference-mode forward passes).
    Channels whose variance is below ``eps`` (dead or constant) are only shifted. ``where="post"``
    constrains ReLU outputs, which this cannot set; it is refused. Returns ``model``."""
    if where != "pre":
        raise ValueError(f"data_init sets the layers' outputs (where='pre'), not {where!r}")
    if not target_var > 0:
        raise ValueError(f"target_var must be positive, not {target_var!r}")
    for i in constrained_layers(model, where):
        layer = model.layers[i]
        if layer.kind not in ("dense", "conv2d"):
            raise ValueError(f"data_init sets dense and conv2d layers, not layer {i} "
                             f"({layer.kind})")
        a = x
        for j in range(i + 1):
            a = model.layers[j].forward(a)
        mu, var, _, _ = channel_stats(a)
        s = np.where(var > eps, np.sqrt(target_var / np.maximum(var, eps)), 1.0)
        W = layer.params["W"]
        if layer.kind == "dense":       # (n_in, n_out)
            layer.params["W"] = (W * s[None, :]).astype(W.dtype, copy=False)
        else:                           # (c_out, c_in, k, k)
            layer.params["W"] = (W * s[:, None, None, None]).astype(W.dtype, copy=False)
        b = layer.params["b"]
        layer.params["b"] = (s * (b - mu)).astype(b.dtype, copy=False)
    return model


def _per_channel(v, ndim):
    if ndim == 4:
        return v[None, :, None, None]
    return v  # (n, c) and (n, T, c): channels last


class LagrangianNorm:
    """Method 1 as a training regularizer: ``train(model, data, cfg, regularizers=[ln])``.

    Also usable by hand: ``attach(model)``, then after every ``model.backward`` and optimizer
    step call ``step()``; ``penalty()`` is the term of the last forward pass.
    Attributes after ``attach``: ``layers`` (indices), ``lam1``, ``lam2``, ``var`` (dicts of
    (c,) arrays per layer index).
    """

    def __init__(self, config=LagrangianNormConfig()):
        if not isinstance(config, LagrangianNormConfig):
            raise TypeError(f"config must be a LagrangianNormConfig, not {type(config).__name__}")
        self.config = config
        self._running_penalty = config.momentum > 0 and config.running == "both"
        self._steps = 0
        self.model = None
        self.layers = []
        self.lam1, self.lam2, self.var = {}, {}, {}
        self.run_mean, self.run_var = {}, {}  # running estimates (momentum > 0), per layer
        self._last = {}
        self._epoch = []

    # -- attachment -------------------------------------------------------------------------
    def attach(self, model):
        if self.model is not None and self.model is not model:
            raise ValueError("LagrangianNorm is already attached to another model")
        self.model = model
        self.layers = constrained_layers(model, self.config.where)
        self._targets = set(self.layers)
        model.add_hook(self)
        return self

    def detach(self):
        if self.model is not None and self in self.model.hooks:
            self.model.remove_hook(self)

    def _init_channel(self, i, c):
        cfg = self.config
        self.lam1[i] = np.full(c, cfg.lambda_init if cfg.terms != "var" else 0.0)
        self.lam2[i] = np.full(c, cfg.lambda_init if cfg.terms != "mean" else 0.0)
        self.var[i] = np.full(c, cfg.target_var)

    # -- hooks called by Sequential ---------------------------------------------------------
    def after_forward(self, i, a, train):
        if not train or i not in self._targets:
            return
        mu_b, var_b, m, _ = channel_stats(a)
        if i not in self.lam1:
            self._init_channel(i, len(mu_b))
        rho = self.config.momentum
        if rho > 0 and i in self.run_mean:   # μ̂, σ̂²: the previous estimates are constants
            mu_r = rho * self.run_mean[i] + (1 - rho) * mu_b
            var_r = rho * self.run_var[i] + (1 - rho) * var_b
        else:
            mu_r, var_r = mu_b, var_b
        if self._running_penalty:
            mu, var = mu_r, var_r
        else:
            mu, var = mu_b, var_b
        self._last[i] = (a, mu_b, mu, var, m, mu_r, var_r)

    def before_backward(self, i, dLdy):
        last = self._last.get(i)
        if last is None:
            return dLdy
        a, mu_b, mu, var, m, _, _ = last
        if m < 2:  # one value per channel (dense layer, batch 1): no statistics to constrain
            return dLdy
        nd = a.ndim
        share = self._ramp()  # times ∂μ̂/∂μ = ∂σ̂²/∂σ²
        if self._running_penalty and i in self.run_mean:
            share *= 1 - self.config.momentum
        k1 = share * 2 * self.lam1[i] * mu / m                    # (c,)
        k2 = share * 4 * self.lam2[i] * (var - self.var[i]) / m   # (c,)
        if self.config.project:  # g − mean(g) − (Σ g·(a − μ) / Σ (a − μ)²)·(a − μ), per channel
            axes = channel_stats(a)[3]
            ac = a - _per_channel(mu_b, nd)                           # a − μ
            ss = np.sum(ac * ac, axis=axes)                           # (c,)
            coef = np.sum(dLdy * ac, axis=axes) / np.where(ss > 0, ss, 1.0)
            dLdy = (dLdy - _per_channel(dLdy.mean(axis=axes), nd)
                    - _per_channel(coef, nd) * ac)
        return dLdy + _per_channel(k1 - k2 * mu_b, nd) + _per_channel(k2, nd) * a

    # -- regularizer protocol used by the trainer -------------------------------------------
    def penalty(self):
        """``Σ λ1 μ² + λ2 (σ² − v)²`` of the last training forward pass."""
        total = 0.0
        for i, (_, _, mu, var, m, _, _) in self._last.items():
            if m >= 2:
                total += float(np.sum(self.lam1[i] * mu * mu))
                total += float(np.sum(self.lam2[i] * (var - self.var[i]) ** 2))
        return self._ramp() * total

    def _ramp(self):
        w = self.config.warmup
        return 1.0 if self._steps >= w else self._steps / w

    def step(self):
        """Multipliers ascend, a trainable target variance descends; uses the last batch."""
        cfg = self.config
        ramp = self._ramp()  # v descends on the penalty the weights saw; the ascent is unramped
        for i, (_, _, mu_p, var_p, m, mu, var) in self._last.items():
            if m < 2:
                continue
            if cfg.momentum > 0:  # the estimates move on: this batch's μ̂, σ̂² become the prev
                self.run_mean[i], self.run_var[i] = mu, var
            if cfg.terms != "var":
                self.lam1[i] = np.minimum(self.lam1[i] + cfg.lr_lambda * mu * mu,
                                          cfg.lambda_max)
            gap = var - self.var[i]   # ascent: on the running estimates when momentum > 0
            if cfg.trainable_var:     # v descends on the (ramped) penalty as it stands
                dPdv = -2 * ramp * self.lam2[i] * (var_p - self.var[i])
                self.var[i] = np.maximum(self.var[i] - cfg.lr_var * dPdv, cfg.min_var)
            if cfg.terms != "mean":
                self.lam2[i] = np.minimum(self.lam2[i] + cfg.lr_lambda * gap * gap,
                                          cfg.lambda_max)
            self._epoch.append((float(np.mean(np.abs(mu_p))), float(np.mean(var_p))))
        self._last = {}
        self._steps += 1

    def epoch_end(self):
        """Figures for the training history: the mean |μ| and σ² the constrained activations
        reached over the epoch's batches, and the mean multipliers."""
        stats = np.array(self._epoch) if self._epoch else np.full((1, 2), np.nan)
        self._epoch = []
        lam1 = np.mean([v.mean() for v in self.lam1.values()]) if self.lam1 else np.nan
        lam2 = np.mean([v.mean() for v in self.lam2.values()]) if self.lam2 else np.nan
        return {"ln_abs_mean": float(stats[:, 0].mean()), "ln_var": float(stats[:, 1].mean()),
                "ln_lambda1": float(lam1), "ln_lambda2": float(lam2)}
