"""Method 3: joint pruning and quantization (US11475308B2).

From a trained float network, every weight array is pruned through the threshold of method 6
and quantized as a learned weighted average, over the candidate bit widths b ∈ B, of
quantize-then-dequantize (R):

``p = w · h(w)``,  ``w_q = Σ_b π_b · QD_b(p)``,  ``π = softmax(θ_w)`` (one θ_w per array),
``QD_b(p) = s_b · round(p / s_b)``,  ``s_b = max|p| / (2^(b−1) − 1)``  (symmetric, as the golden
model quantizes).

Rounding and the scale pass gradients straight through (``∂QD_b/∂p = 1``), so
``∂w_q/∂p = 1`` and ``∂w_q/∂θ_k = π_k (QD_k(p) − w_q)``. The outputs of the hidden layers
(after ReLU) are quantized the same way with their own ``ρ = softmax(θ_a)`` over unsigned grids
``s_b = max(a) / (2^b − 1)`` (the batch maximum; straight-through as well).

One cost (R):

``L = L_net + λ_p (1/N) Σ h(w) + λ_w Σ_l (N_l / N) E_π[b]_l + λ_a mean_l E_ρ[b]_l``

the pruning term (soft non-zero count), the weight-quantization term (the expected bits per
weight), and the feature-map term (the expected activation width), with
``∂E_π[b]/∂θ_k = π_k (b_k − E_π[b])``. λ_p follows ``target_sparsity`` as in method 6; λ_w
follows ``target_bits`` the same way (``λ_w ← max(0, λ_w + η_w (b̄ − b*) / b*)`` with b̄ the
expected average width); λ_a is fixed.

At the end every array takes its most likely width ``argmax π`` and its hard mask, the weights
are fine-tuned on that grid (straight-through, mask held), and the model keeps the dequantized
values ``s_b · q``, from which :func:`slimgen.sw.quantize.quantize_network` given the same
``layer_weight_bits`` recovers exactly the integers q. The hidden activations take the widest
of the chosen feature-map widths (the golden model has one activation width).
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from .magnitude import quantize_dequantize
from .masked_train import (Compressed, FitConfig, count_weights, get_param, layer_sparsity,
                           sparsity, teacher_logits, train_compressed, weight_keys)
from .self_prune import SelfPruneConfig, SelfPruneTransform, dense_pairs
from .threshold import gated_grads

__all__ = ["JointConfig", "JointTransform", "FixedQuant", "joint_prune_quantize",
           "fake_quant_accuracy", "qd_unsigned"]


def _softmax(t):
    e = np.exp(t - t.max())
    return e / e.sum()


def qd_unsigned(a, bits, peak):
    """``s · clip(round(a / s), 0, 2^b − 1)`` with ``s = peak / (2^b − 1)``."""
    top = (1 << bits) - 1
    if peak <= 0:
        return np.zeros_like(a)
    s = peak / top
    return s * np.clip(np.rint(a / s), 0, top)


@dataclass(frozen=True)
class JointConfig:
    """Method 3. ``bits`` the candidate weight widths, ``act_bits`` the candidate feature-map
    widths; ``target_bits`` the average weight width to reach (None: fixed ``lam_bits``);
    ``lam_act`` the feature-map term; ``prune`` the pruning settings (target, ramp, epochs)."""
    bits: tuple = (2, 3, 4, 6, 8)
    act_bits: tuple = (4, 6, 8)
    target_bits: float | None = 4.0
    lam_bits: float = 0.0
    lr_bits: float = 0.01
    lam_act: float = 0.0
    prune: SelfPruneConfig = field(default_factory=SelfPruneConfig)

    def __post_init__(self):
        for name in ("bits", "act_bits"):
            v = tuple(getattr(self, name))
            if not v or any(isinstance(b, bool) or not isinstance(b, (int, np.integer))
                            or not 2 <= b <= 16 for b in v) or len(set(v)) != len(v):
                raise ValueError(f"{name} must be distinct integers from 2 to 16, not {v!r}")
            object.__setattr__(self, name, tuple(int(b) for b in v))
        t = self.target_bits
        if t is not None and not (min(self.bits) <= t <= max(self.bits)):
            raise ValueError(f"target_bits must lie between the smallest and largest candidate "
                             f"width ({min(self.bits)}..{max(self.bits)}), not {t!r}")
        for name in ("lam_bits", "lr_bits", "lam_act"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, not {getattr(self, name)!r}")

    def to_dict(self):
        d = asdict(self)
        d["bits"], d["act_bits"], d["prune"] = list(self.bits), list(self.act_bits), \
            self.prune.to_dict()
        return d


class JointTransform(SelfPruneTransform):
    """``w_q = Σ_b π_b QD_b(w h(w))`` with the three cost terms (see the module docstring)."""

    def __init__(self, model, keys, config, total_steps):
        p = config.prune
        super().__init__(model, keys, **p.transform_kwargs(), total_steps=total_steps)
        self.config = config
        self.bits = np.array(config.bits, dtype=float)
        self.abits = np.array(config.act_bits, dtype=float)
        # θ starts uniform: every width equally likely
        self.theta = {k: np.zeros(len(self.bits)) for k in self.keys}
        self.theta_grad = {k: np.zeros(len(self.bits)) for k in self.keys}
        self.act_layers = [i for i, layer in enumerate(model.layers[:-1]) if layer.kind == "relu"]
        self.theta_a = {i: np.zeros(len(self.abits)) for i in self.act_layers}
        self.theta_a_grad = {i: np.zeros(len(self.abits)) for i in self.act_layers}
        self.frac = {k: get_param(model, k).size / self.n_total for k in self.keys}
        self.lam_w = float(config.lam_bits)
        self._cache, self._qd, self._model = {}, {}, None

    def attach(self, model):
        self._model = model
        model.add_hook(self)

    def detach(self):
        if self._model is not None:
            self._model.remove_hook(self)
            self._model = None

    def zero_grad(self):
        super().zero_grad()
        for g in list(self.theta_grad.values()) + list(self.theta_a_grad.values()):
            g[...] = 0.0

    def parameters(self):
        yield from super().parameters()
        for (i, n), t in self.theta.items():
            yield (f"bits{i}.{n}", "theta"), t, self.theta_grad[(i, n)]
        for i, t in self.theta_a.items():
            yield (f"abits{i}", "theta"), t, self.theta_a_grad[i]

    # weights
    def forward(self, key, w):
        t = self.thresholds[key]
        p = super().forward(key, w)
        pi = _softmax(self.theta[key])
        qds = np.stack([quantize_dequantize(p, int(b)) for b in self.bits])  # (B, *w.shape)
        wq = np.tensordot(pi, qds, axes=1)
        self._qd[key] = (qds, wq, pi)
        return wq

    def backward(self, key, w, dLdwq):
        qds, wq, pi = self._qd[key]
        dLdpi = np.array([np.sum(dLdwq * q) for q in qds])
        self.theta_grad[key] += pi * (dLdpi - np.dot(pi, dLdpi))       # softmax Jacobian
        return super().backward(key, w, dLdwq)                          # STE: ∂w_q/∂p = 1

    # feature maps, through the model's hooks
    def after_forward(self, i, y, train):
        if i not in self.theta_a:
            return
        rho = _softmax(self.theta_a[i])
        peak = float(y.max())
        qds = np.stack([qd_unsigned(y, int(b), peak) for b in self.abits])
        aq = np.tensordot(rho, qds, axes=1)
        if train:
            self._cache[i] = (qds, aq, rho)
        y[...] = aq

    def before_backward(self, i, dLdy):
        if i in self._cache:
            qds, aq, rho = self._cache.pop(i)
            dLdrho = np.array([np.sum(dLdy * q) for q in qds])
            self.theta_a_grad[i] += rho * (dLdrho - np.dot(rho, dLdrho))
        return dLdy                                                     # straight through

    # cost
    def expected_bits(self):
        return sum(self.frac[k] * float(np.dot(_softmax(t), self.bits))
                   for k, t in self.theta.items())

    def penalty(self, raw, hg=None):
        value, grads = super().penalty(raw, hg)
        for k, t in self.theta.items():
            pi = _softmax(t)
            e = float(np.dot(pi, self.bits))
            value += self.lam_w * self.frac[k] * e
            self.theta_grad[k] += self.lam_w * self.frac[k] * pi * (self.bits - e)
        c = self.config.lam_act / max(len(self.theta_a), 1)
        for i, t in self.theta_a.items():
            rho = _softmax(t)
            e = float(np.dot(rho, self.abits))
            value += c * e
            self.theta_a_grad[i] += c * rho * (self.abits - e)
        return value, grads

    def after_step(self, raw):
        super().after_step(raw)
        tb = self.config.target_bits
        if tb is not None:
            self.lam_w = max(0.0, self.lam_w + self.config.lr_bits
                             * (self.expected_bits() - tb) / tb)

    def epoch_end(self, raw):
        return {**super().epoch_end(raw), "expected_bits": self.expected_bits(),
                "lambda_bits": self.lam_w}

    def chosen_bits(self):
        """Each array's most likely width. If their average (weighted by size) exceeds
        ``target_bits`` (argmax can land above a budget the expected width meets), arrays step
        down to their next narrower candidate one at a time (R): a step that brings the
        average within the budget, keeping it highest, if there is one; else the step to the
        likeliest narrower width."""
        idx = {k: int(np.argmax(self.theta[k])) for k in self.keys}
        tb = self.config.target_bits

        def avg(ix):
            return sum(self.frac[k] * self.bits[i] for k, i in ix.items())

        while tb is not None and avg(idx) > tb + 1e-9:
            steps = []
            for k, i in idx.items():
                narrower = [j for j in range(len(self.bits)) if self.bits[j] < self.bits[i]]
                if narrower:
                    j = max(narrower, key=lambda j: self.bits[j])      # the next narrower
                    steps.append((k, j, avg({**idx, k: j}), self.theta[k][j]))
            if not steps:
                break
            fits = [s for s in steps if s[2] <= tb + 1e-9]
            k, j, _, _ = max(fits, key=lambda s: s[2]) if fits else max(steps, key=lambda s: s[3])
            idx[k] = j
        return [int(self.bits[idx[k]]) for k in self.keys]

    def chosen_act_bits(self):
        return [int(self.abits[np.argmax(t)]) for t in self.theta_a.values()]


class FixedQuant:
    """Fine-tuning on a fixed grid: ``W_eff = QD_b(W ⊙ m)``, straight-through, mask held."""

    def __init__(self, keys, bits, masks):
        self.keys, self.bits, self.masks = list(keys), dict(zip(keys, bits)), masks

    def attach(self, model):
        pass

    def detach(self):
        pass

    zero_grad = detach

    def parameters(self):
        return iter(())

    def forward(self, key, w):
        return quantize_dequantize(w * self.masks[key], self.bits[key])

    def backward(self, key, w, dLdw):
        return dLdw * self.masks[key]

    def penalty(self, raw):
        return 0.0, {}

    def after_step(self, raw):
        for k, w in raw.items():
            w *= self.masks[k]

    def epoch_end(self, raw):
        return {}


def fake_quant_accuracy(model, x, y, *, act_bits, x_calib, pixel_max=16.0):
    """Accuracy with the hidden activations quantized as the golden model does: unsigned
    ``act_bits`` on a scale of the calibration maximum (float model on ``x_calib``), inputs on
    the grid ``1 / pixel_max``; the weights are used as they are (already on their grids)."""
    dense = [layer for layer in model.layers if layer.kind in ("dense", "relu")]
    if len(dense) != len(model.layers):
        raise ValueError("fake_quant_accuracy handles Dense/ReLU models only")
    a_cal = np.asarray(x_calib, dtype=float)
    a = np.clip(np.rint(np.asarray(x) * pixel_max), 0, (1 << act_bits) - 1) / pixel_max
    for i, layer in enumerate(model.layers):
        if layer.kind == "dense":
            a, a_cal = layer.forward(a), layer.forward(a_cal)
        else:
            a_cal = np.maximum(a_cal, 0.0)
            a = qd_unsigned(np.maximum(a, 0.0), act_bits, float(a_cal.max()))
    return float(np.mean(np.argmax(a, axis=1) == y))


def joint_prune_quantize(model, data, config=JointConfig(), *, fit=FitConfig(), finetune=None,
                         keys=None, progress=False):
    """Joint pruning and quantization of a trained model, in place (method 3); returns a
    :class:`~.Compressed` whose info carries ``layer_weight_bits`` (one per weight array, in
    layer order) and ``act_bits``."""
    teacher = teacher_logits(model, data) if fit.distill or (finetune and finetune.distill) \
        else None
    p = config.prune
    keys = list(weight_keys(model) if keys is None else keys)
    fit = fit.replace(epochs=p.epochs, keep_best=False)
    steps = fit.epochs * -(-len(data.part("train")[1]) // fit.batch_size)
    tr = JointTransform(model, keys, config, steps)
    history = train_compressed(model, data, fit, transform=tr, progress=progress,
                               label="joint", teacher=teacher)
    raw = {k: get_param(model, k) for k in keys}
    masks = tr.hard_masks(raw, p.target_sparsity,
                          dense_pairs(model, keys) if p.live else ())  # prune.live: see self_prune
    bits = tr.chosen_bits()
    act = max(tr.chosen_act_bits(), default=8)
    fq = FixedQuant(keys, bits, masks)
    for k in keys:
        raw[k][...] *= masks[k]
    if p.finetune_epochs:
        ft = (finetune or fit).replace(epochs=p.finetune_epochs, keep_best=True,
                                       seed=fit.seed + 1)
        history += train_compressed(model, data, ft, transform=fq, progress=progress,
                                    label="fine-tune", teacher=teacher)
    for k in keys:
        raw[k][...] = fq.forward(k, raw[k])
    n = count_weights(model, keys)
    avg = sum(get_param(model, k).size * b for k, b in zip(keys, bits)) / n
    nz = sum(int(np.sum(get_param(model, k) != 0)) * b for k, b in zip(keys, bits))
    info = {"method": "joint_prune_quant", "sparsity": sparsity(model, keys),
            "layers": layer_sparsity(model, keys), "layer_weight_bits": bits,
            "act_bits": act, "layer_act_bits": tr.chosen_act_bits(),
            "average_weight_bits": avg,
            "average_nonzero_weight_bits": nz / max(1, n - round(sparsity(model, keys) * n)),
            "config": config.to_dict()}
    return Compressed(model, masks, info, history)
