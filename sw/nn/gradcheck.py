"""Finite-difference gradient checks, for the tests of every layer, loss and training term.

:func:`numerical_grad` differentiates a scalar function by central differences
``(f(x + εe_i) − f(x − εe_i)) / 2ε`` (float64; error O(ε²)). :func:`layer_gradients` compares a
layer's backward against it on the scalar ``L = Σ y ⊙ G`` for a fixed random ``G``.
"""

import numpy as np

__all__ = ["numerical_grad", "layer_gradients", "max_rel_error"]


def numerical_grad(f, x, eps=1e-6):
    """∂f/∂x of a scalar function ``f()`` that reads ``x`` (perturbed in place, then restored)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def max_rel_error(a, b):
    """``max |a − b| / max(1, max |b|)``: relative to the gradient's scale, absolute near zero."""
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def layer_gradients(layer, x, rng, eps=1e-6):
    """Analytic and numerical gradients of ``L = Σ forward(x, train=True) ⊙ G``.

    Returns ``{name: (analytic, numerical)}`` with the name ``"x"`` for the input and the
    parameter names for the parameters.
    """
    G = rng.normal(size=layer.forward(x, train=True).shape)

    def loss():
        return float(np.sum(layer.forward(x, train=True) * G))

    layer.forward(x, train=True)
    dx = layer.backward(G)
    out = {"x": (dx, numerical_grad(loss, x, eps))}
    analytic = {k: np.array(g, copy=True) for k, g in layer.grads.items()}
    for name, p in layer.params.items():
        out[name] = (analytic[name], numerical_grad(loss, p, eps))
    return out
