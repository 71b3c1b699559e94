"""Losses: each returns the mean loss over the batch and its gradient."""

import numpy as np

__all__ = ["softmax", "log_softmax", "softmax_cross_entropy"]


def log_softmax(z):
    """Row-wise ``z − max − log Σ exp(z − max)`` for logits z (n, k); exact for large logits."""
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def softmax(z):
    """Row-wise softmax of logits z (n, k), shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(z, y):
    """``L = −(1/n) Σ_i log softmax(z_i)[y_i]``, and ``dLdz = (softmax(z) − onehot(y)) / n``.

    Shapes: z (n, k) float logits, y (n,) int labels; returns (float, (n, k)).
    """
    n = len(z)
    logp = log_softmax(z)
    rows = np.arange(n)
    loss = -np.mean(logp[rows, y])
    dLdz = np.exp(logp)
    dLdz[rows, y] -= 1.0
    return float(loss), dLdz / n
