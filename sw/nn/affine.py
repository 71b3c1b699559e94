"""A learnable per-channel affine map, ``y = γ x + β``, and its folding into the preceding layer.

It is BatchNorm's γ and β without the normalization: method 1 (Lagrangian normalization,
:mod:`slimgen.sw.compress.lagrangian_norm`) constrains the statistics of a convolution's output
by penalty terms, and a ChannelAffine after it gives the network back the free scale and shift
per channel that BatchNorm has. :func:`insert_channel_affine` puts one after chosen layers of a
model; for inference, :func:`fold_channel_affine` merges it into the convolution (``W' = γ·W``
per output channel, ``b' = γ·b + β``), so no layer remains.

Shapes: x (n, c) or (n, c, h, w); γ, β (c,). Backward: ``dLdx = γ·g``, ``dLdγ = Σ g·x``,
``dLdβ = Σ g`` with ``g = dLdy``, sums over all axes but the channel's.
"""

import numpy as np

from .batchnorm import fold_scale_shift
from .conv import Conv2d
from .layers import Dense, Layer, check_positive_int

__all__ = ["ChannelAffine", "insert_channel_affine", "fold_channel_affine"]


def _axes(x):
    if x.ndim == 2:
        return (0,)
    if x.ndim == 4:
        return (0, 2, 3)
    raise ValueError(f"ChannelAffine expects input of shape (n, c) or (n, c, h, w), got {x.shape}")


def _per_channel(v, ndim):
    return v if ndim == 2 else v[None, :, None, None]


class ChannelAffine(Layer):
    """``y = γ x + β`` per channel over ``n_channels`` channels; γ starts at 1, β at 0."""

    kind = "affine"

    def __init__(self, n_channels):
        super().__init__()
        check_positive_int("ChannelAffine n_channels", n_channels)
        self.n_channels = int(n_channels)
        self.params = {"gamma": np.ones(self.n_channels), "beta": np.zeros(self.n_channels)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None

    def scale_shift(self):
        """``(γ, β)``: the map ``y = s·x + t``, each (n_channels,)."""
        return self.params["gamma"], self.params["beta"]

    def forward(self, x, train=False):
        _axes(x)
        if x.shape[1] != self.n_channels:
            raise ValueError(f"ChannelAffine expects {self.n_channels} channels, got {x.shape[1]}")
        if train:
            self._x = x
        dt = x.dtype if x.dtype == np.float32 else np.float64
        g, b = (self.params[k].astype(dt, copy=False) for k in ("gamma", "beta"))
        return x * _per_channel(g, x.ndim) + _per_channel(b, x.ndim)

    def backward(self, dLdy):
        axes, nd = _axes(dLdy), dLdy.ndim
        self.grads["gamma"] = np.sum(dLdy * self._x, axis=axes).astype(np.float64)
        self.grads["beta"] = dLdy.sum(axis=axes).astype(np.float64)
        return dLdy * _per_channel(self.params["gamma"].astype(dLdy.dtype, copy=False), nd)

    def spec(self):
        return {"type": self.kind, "n_channels": self.n_channels}


def insert_channel_affine(model, after):
    """A new :class:`~slimgen.sw.nn.model.Sequential` with a ChannelAffine (γ = 1, β = 0, so the
    same function) after each layer index in ``after``; it shares the other layer objects with
    ``model``. Each of those layers must be a Dense or Conv2d."""
    from .model import Sequential  # model imports this module's neighbours

    layers = []
    for i, layer in enumerate(model.layers):
        layers.append(layer)
        if i in after:
            if not isinstance(layer, (Dense, Conv2d)):
                raise ValueError(f"ChannelAffine can follow only dense or conv2d layers, "
                                 f"not layer {i} ({layer.kind})")
            layers.append(ChannelAffine(layer.n_out if isinstance(layer, Dense) else layer.c_out))
    return Sequential(layers)


def fold_channel_affine(model):
    """A new model without ChannelAffine layers that computes the same function.

    Every ChannelAffine must directly follow a Dense or Conv2d layer, whose output channels it
    scales and shifts: ``W' = W·γ`` per output channel, ``b' = γ·b + β``. The input model is not
    changed.
    """
    return fold_scale_shift(model, ChannelAffine)
