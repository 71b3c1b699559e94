"""Losses: each returns the mean loss over the batch and its gradient."""

import numpy as np

__all__ = ["softmax", "softmax_cross_entropy"]


def softmax(z):
    """Row-wise softmax of logits z (n, k), shifted by the row maximum for stability."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(z, y):
    """``L = −(1/n) Σ_i log softmax(z_i)[y_i]``, and ``dLdz = (softmax(z) − onehot(y)) / n``.

    Shapes: z (n, k) float logits, y (n,) int labels; returns (float, (n, k)).
    """
    n = len(z)
    p = softmax(z)
    loss = -np.mean(np.log(p[np.arange(n), y] + 1e-300))
    dLdz = p.copy()
    dLdz[np.arange(n), y] -= 1.0
    return float(loss), dLdz / n
