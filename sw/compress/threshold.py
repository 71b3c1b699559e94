"""The analytic threshold function of method 6 (US11250325B2), shared by methods 3 and 5.

``h(w) = 1 / (1 + exp((β² − w²) / α²))``

h is (close to) 0 on the band ``|w| < β`` and 1 outside it; β is the band's half-width, α the
sharpness of its edges (smaller α, steeper edges). With ``s = h (1 − h)``:

- ``∂h/∂w = 2 w s / α²``
- ``∂h/∂β = −2 β s / α²``
- ``∂h/∂α = −2 (w² − β²) s / α³``

A layer uses its weights as ``w_eff = w · h(w)``, so

- ``∂w_eff/∂w = h + w ∂h/∂w = h + 2 w² s / α²``
- ``∂w_eff/∂β = w ∂h/∂β``,  ``∂w_eff/∂α = w ∂h/∂α``.

At the end the hard mask is ``h ≥ ½``, i.e. ``|w| ≥ β``.
"""

import numpy as np

__all__ = ["h", "h_grads", "gated", "gated_grads", "hard_mask", "Threshold"]

_MIN = 1e-6  # α and β are kept at least this (the formula needs α > 0; β = 0 prunes nothing)


def h(w, alpha, beta):
    """The soft mask h(w); any array shape; α, β positive scalars."""
    z = (w * w - beta * beta) / (alpha * alpha)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z) without overflow


def h_grads(w, alpha, beta):
    """``(h, ∂h/∂w, ∂h/∂α, ∂h/∂β)``, each of w's shape."""
    hw = h(w, alpha, beta)
    s = hw * (1.0 - hw)
    a2 = alpha * alpha
    return (hw, 2.0 * w * s / a2, -2.0 * (w * w - beta * beta) * s / (a2 * alpha),
            -2.0 * beta * s / a2)


def gated(w, alpha, beta):
    """``w · h(w)``: the weights a self-pruning layer computes with."""
    return w * h(w, alpha, beta)


def gated_grads(w, alpha, beta):
    """``(w·h, ∂(w h)/∂w, ∂(w h)/∂α, ∂(w h)/∂β)``, each of w's shape."""
    hw, dw, da, db = h_grads(w, alpha, beta)
    return w * hw, hw + w * dw, w * da, w * db


def hard_mask(w, beta):
    """The final mask ``|w| ≥ β`` (where ``h ≥ ½``), as bool."""
    return np.abs(w) >= beta


class Threshold:
    """The learnable (α, β) of one weight array, with their gradients.

    ``params`` and ``grads`` hold 0-d arrays ``"alpha"`` and ``"beta"`` so that the project's
    optimizers can update them in place.
    """

    def __init__(self, alpha, beta):
        for name, v in (("alpha", alpha), ("beta", beta)):
            if not v > 0:
                raise ValueError(f"Threshold {name} must be positive, not {v!r}")
        self.params = {"alpha": np.array(float(alpha)), "beta": np.array(float(beta))}
        self.grads = {"alpha": np.array(0.0), "beta": np.array(0.0)}

    @property
    def alpha(self):
        return float(self.params["alpha"])

    @property
    def beta(self):
        return float(self.params["beta"])

    def clamp(self, alpha_min_ratio=0.0, alpha_max_ratio=None):
        """After an optimizer step keep β ≥ a tiny positive floor and α ≥ that floor and
        ≥ ``alpha_min_ratio · β`` (R: the soft-L0 term alone drives α to 0 once most weights
        sit in the band, where ``s = h(1−h)`` vanishes and with it every gradient of h), and
        with ``alpha_max_ratio`` α ≤ ``alpha_max_ratio · β`` (R: the loss can widen the edges
        until h lets the whole band through, ``h(0) = σ(−β²/α²)``; the network then computes
        with weights the hard mask ``|w| ≥ β`` removes, and collapses when it is applied)."""
        b = self.params["beta"]
        np.maximum(b, _MIN, out=b)
        a = self.params["alpha"]
        np.maximum(a, max(_MIN, alpha_min_ratio * float(b)), out=a)
        if alpha_max_ratio is not None:
            np.minimum(a, max(_MIN, alpha_max_ratio * float(b)), out=a)

    @classmethod
    def from_weights(cls, w, *, beta_fraction=0.5, alpha_fraction=0.25):
        """Start β at ``beta_fraction · std(w)`` and α at ``alpha_fraction · std(w)``."""
        sd = float(np.std(w)) or 1.0
        return cls(alpha_fraction * sd, beta_fraction * sd)
