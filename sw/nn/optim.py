"""Optimizers: update a model's parameters in place from its gradients.

Both take the learning rate as an attribute (``opt.lr``) that a schedule may change between
steps, and apply decoupled weight decay (``θ −= lr · wd · θ``) to weight matrices only: parameters
whose name starts with ``W`` or ``U`` (Dense, Conv2d and LSTM weights), never to biases or to
BatchNorm's γ and β.
"""

import numpy as np

__all__ = ["SGD", "Adam", "make_optimizer", "OPTIMIZERS", "decays"]


def decays(name):
    """Whether weight decay applies to a parameter of this name."""
    return name.startswith(("W", "U"))


def _check(lr, weight_decay):
    if not lr > 0:
        raise ValueError(f"Learning rate must be positive, not {lr}")
    if not weight_decay >= 0:
        raise ValueError(f"Weight decay must be non-negative, not {weight_decay}")


class SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum μ.

    ``v = μ v + g``; ``θ −= lr · v`` (or ``lr · (g + μ v)`` with Nesterov); plus weight decay.
    """

    def __init__(self, lr=1e-2, *, momentum=0.9, nesterov=False, weight_decay=0.0):
        _check(lr, weight_decay)
        if not 0 <= momentum < 1:
            raise ValueError(f"Momentum must be in [0, 1), not {momentum}")
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.weight_decay = weight_decay
        self._v = {}

    def step(self, model):
        mu = self.momentum
        for key, p, g in model.named_parameters():
            if self.weight_decay and decays(key[1]):
                p -= self.lr * self.weight_decay * p
            if mu == 0:
                p -= self.lr * g
                continue
            v = self._v.get(key)
            if v is None:
                v = self._v[key] = g.copy()
            else:
                v *= mu
                v += g
            p -= self.lr * (g + mu * v if self.nesterov else v)


class Adam:
    """Adam (Kingma & Ba) with decoupled weight decay (AdamW when ``weight_decay`` > 0).

    Per parameter θ with gradient g at step t:
    ``m = β1 m + (1 − β1) g``, ``v = β2 v + (1 − β2) g²``,
    ``θ −= lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε) + lr · wd · θ``.
    """

    def __init__(self, lr=1e-3, *, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        _check(lr, weight_decay)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.weight_decay = weight_decay
        self.t = 0
        self._m, self._v = {}, {}

    def step(self, model):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        step = self.lr / c1
        for key, p, g in model.named_parameters():
            m = self._m.get(key)
            if m is None:
                m = self._m[key] = np.zeros_like(p)
                self._v[key] = np.zeros_like(p)
            v = self._v[key]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if self.weight_decay and decays(key[1]):
                p -= self.lr * self.weight_decay * p
            p -= step * m / (np.sqrt(v / c2) + self.eps)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name, lr, *, weight_decay=0.0, momentum=0.9, nesterov=False):
    """An optimizer by name (``"sgd"`` or ``"adam"``)."""
    if name == "sgd":
        return SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay)
    raise ValueError(f"Optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")
