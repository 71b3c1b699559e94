"""Optimizers: update a model's parameters in place from its gradients."""

import numpy as np

__all__ = ["Adam"]


class Adam:
    """Adam (Kingma & Ba) with decoupled weight decay (AdamW when ``weight_decay`` > 0).

    Per parameter θ with gradient g at step t:
    ``m = β1 m + (1 − β1) g``, ``v = β2 v + (1 − β2) g²``,
    ``θ −= lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε) + lr · wd · θ``.
    Weight decay applies to weights named ``W*`` only, never to biases.
    """

    def __init__(self, lr=1e-3, *, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        if not lr > 0:
            raise ValueError(f"Learning rate must be positive, not {lr}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay = weight_decay
        self.t = 0
        self._m, self._v = {}, {}

    def step(self, model):
        self.t += 1
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        for key, p, g in model.named_parameters():
            m = self._m.setdefault(key, np.zeros_like(p))
            v = self._v.setdefault(key, np.zeros_like(p))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            if self.weight_decay and key[1].startswith("W"):
                p -= self.lr * self.weight_decay * p
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
