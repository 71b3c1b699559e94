"""Batch normalization (Ioffe & Szegedy), the baseline for method 1, and its folding into the
preceding Dense, Conv1d or Conv2d layer for inference.

Per channel k, with μ_k and σ²_k over the batch (and the positions of (n, c, L) or NCHW inputs):

``x̂ = (x − μ) / √(σ² + ε)``,   ``y = γ x̂ + β``.

Training uses the batch statistics and updates running averages
``μ_run ← m·μ_run + (1 − m)·μ``, ``σ²_run ← m·σ²_run + (1 − m)·σ²_unbiased``; inference uses the
running averages, so the layer is then the affine map ``y = s·x + (β − s·μ_run)`` with
``s = γ / √(σ²_run + ε)``, which :func:`fold_batchnorm` merges into the previous layer's weights.
"""

import numpy as np

from .conv import Conv1d, Conv2d
from .layers import Dense, Layer, check_positive_int

__all__ = ["BatchNorm", "fold_batchnorm", "fold_scale_shift"]


def _axes(x):
    """Axes the statistics run over: (0,) for (n, c), (0, 2) for (n, c, L), (0, 2, 3) for
    (n, c, h, w)."""
    if x.ndim == 2:
        return (0,)
    if x.ndim == 4:
        return (0, 2, 3)
    if x.ndim == 3:
        return (0, 2)
    raise ValueError(f"BatchNorm expects input of shape (n, c), (n, c, L) or (n, c, h, w), "
                     f"got {x.shape}")


def _per_channel(v, ndim):
    if ndim == 3:
        return v[None, :, None]
    return v if ndim == 2 else v[None, :, None, None]


class BatchNorm(Layer):
    """Batch normalization over ``n_channels`` channels (see module docstring).

    Backward (per channel, m values): ``dLdx = (γ / (m·√(σ²+ε))) · (m·g − Σg − x̂·Σ(g·x̂))``
    with ``g = dLdy``; ``dLdγ = Σ g·x̂``, ``dLdβ = Σ g``.
    """

    kind = "batchnorm"

    def __init__(self, n_channels, *, momentum=0.9, eps=1e-5):
        super().__init__()
        check_positive_int("BatchNorm n_channels", n_channels)
        if not 0 <= momentum < 1:
            raise ValueError(f"BatchNorm momentum must be in [0, 1), not {momentum!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm eps must be positive, not {eps!r}")
        self.n_channels, self.momentum, self.eps = int(n_channels), float(momentum), float(eps)
        self.params = {"gamma": np.ones(self.n_channels), "beta": np.zeros(self.n_channels)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.buffers = {"running_mean": np.zeros(self.n_channels),
                        "running_var": np.ones(self.n_channels)}

    def scale_shift(self):
        """``(s, t)`` of the inference map ``y = s·x + t``, each (n_channels,)."""
        s = self.params["gamma"] / np.sqrt(self.buffers["running_var"] + self.eps)
        return s, self.params["beta"] - s * self.buffers["running_mean"]

    def forward(self, x, train=False):
        axes = _axes(x)
        if x.shape[1] != self.n_channels:
            raise ValueError(f"BatchNorm expects {self.n_channels} channels, got {x.shape[1]}")
        if not train:
            s, t = self.scale_shift()
            return x * _per_channel(s, x.ndim) + _per_channel(t, x.ndim)
        m = x.size // self.n_channels
        mu = x.mean(axis=axes)
        xc = x - _per_channel(mu, x.ndim)
        var = np.mean(xc * xc, axis=axes)
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = xc * _per_channel(inv, x.ndim)
        mom = self.momentum
        self.buffers["running_mean"] *= mom
        self.buffers["running_mean"] += (1 - mom) * mu
        self.buffers["running_var"] *= mom
        self.buffers["running_var"] += (1 - mom) * var * (m / max(m - 1, 1))
        self._cache = (xhat, inv, axes, m)
        return xhat * _per_channel(self.params["gamma"], x.ndim) + _per_channel(self.params["beta"], x.ndim)

    def backward(self, dLdy):
        xhat, inv, axes, m = self._cache
        nd = dLdy.ndim
        self.grads["beta"] = dLdy.sum(axis=axes)
        self.grads["gamma"] = np.sum(dLdy * xhat, axis=axes)
        k = _per_channel(self.params["gamma"] * inv / m, nd)
        return k * (m * dLdy - _per_channel(self.grads["beta"], nd)
                    - xhat * _per_channel(self.grads["gamma"], nd))

    def spec(self):
        return {"type": self.kind, "n_channels": self.n_channels, "momentum": self.momentum,
                "eps": self.eps}


def fold_batchnorm(model):
    """A new model without BatchNorm layers that computes the same inference function.

    Every BatchNorm must directly follow a Dense, Conv1d or Conv2d layer; its affine map
    ``y = s·x + t`` is folded into that layer: ``W' = W·s`` per output channel,
    ``b' = s·b + t``. The input model is not changed.
    """
    return fold_scale_shift(model, BatchNorm)


def fold_scale_shift(model, cls):
    """A new model without the layers of type ``cls`` (each with ``scale_shift() -> (s, t)``,
    the per-channel map ``y = s·x + t``), every one folded into the Dense, Conv1d or Conv2d
    layer it directly follows: ``W' = W·s`` per output channel, ``b' = s·b + t`` (``b' = t`` for
    a convolution without bias, which gets one). The input model is not changed."""
    from .model import Sequential, build_model  # model imports this module

    name = cls.__name__
    layers = model.layers
    if layers and isinstance(layers[0], cls):
        raise ValueError(f"{name} at layer 0 follows no layer; it cannot be folded")
    spec, state = [], {}
    for i, layer in enumerate(layers):
        if isinstance(layer, cls):
            continue
        params = {k: v.copy() for k, v in layer.params.items()}
        layer_spec = layer.spec()
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(nxt, cls):
            if not isinstance(layer, (Dense, Conv1d, Conv2d)):
                raise ValueError(f"{name} at layer {i + 1} follows a {layer.kind} layer; "
                                 f"only {name} after dense, conv1d or conv2d can be folded")
            s, t = nxt.scale_shift()
            if isinstance(layer, Dense):
                params["W"] = params["W"] * s[None, :]      # (n_in, n_out)
            elif isinstance(layer, Conv2d):
                params["W"] = params["W"] * s[:, None, None, None]  # (c_out, c_in, k, k)
            else:
                params["W"] = params["W"] * s[:, None, None]        # (c_out, c_in, k)
            if "b" in params:
                params["b"] = s * params["b"] + t
            else:                                           # a convolution without bias gets one
                params["b"] = t.copy()
                layer_spec.pop("bias")
        for k, v in params.items():
            state[f"{len(spec)}.{k}"] = v
        for k, v in getattr(layer, "buffers", {}).items():
            state[f"{len(spec)}.{k}"] = v.copy()
        spec.append(layer_spec)
    folded = build_model(spec)
    folded.load_state(state)
    assert isinstance(folded, Sequential)
    return folded
