"""Pooling over non-overlapping k×k windows of NCHW arrays (stride = kernel, no padding).

Rows and columns that do not fill a whole window are dropped (``oh = ⌊h / k⌋``), as in PyTorch.
"""

import numpy as np

from .layers import Layer, check_positive_int

__all__ = ["MaxPool2d", "AvgPool2d"]


class _Pool2d(Layer):
    params_from_rng = False

    def __init__(self, kernel=2):
        super().__init__()
        check_positive_int(f"{type(self).__name__} kernel", kernel)
        self.kernel = int(kernel)

    def _windows(self, x):
        """(n, c, h, w) → (n, c, oh, k, ow, k), a view of the cropped input."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects input of shape (n, c, h, w), "
                             f"got {x.shape}")
        n, c, h, w = x.shape
        k = self.kernel
        oh, ow = h // k, w // k
        if oh == 0 or ow == 0:
            raise ValueError(f"{type(self).__name__} kernel {k} is larger than the input {h}×{w}")
        return x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k)

    def _uncrop(self, d, shape):
        """Place the window-shaped gradient d (n, c, oh·k, ow·k) into zeros of ``shape``."""
        if d.shape == shape:
            return d
        out = np.zeros(shape, dtype=d.dtype)
        out[:, :, :d.shape[2], :d.shape[3]] = d
        return out

    def spec(self):
        return {"type": self.kind, "kernel": self.kernel}


class MaxPool2d(_Pool2d):
    """``y[n, c, i, j] = max_{u, v < k} x[n, c, i·k + u, j·k + v]``.

    Backward routes ``dLdy`` to the first maximum of each window (row-major order), zero elsewhere.
    Shapes: x (n, c, h, w) → y (n, c, ⌊h/k⌋, ⌊w/k⌋).
    """

    kind = "maxpool2d"

    def forward(self, x, train=False):
        win = self._windows(x)                                          # (n, c, oh, k, ow, k)
        n, c, oh, k, ow, _ = win.shape
        flat = win.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh, ow, k * k)
        arg = flat.argmax(axis=-1)                                      # (n, c, oh, ow)
        if train:
            self._arg, self._shape = arg, x.shape
        return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]

    def backward(self, dLdy):
        n, c, oh, ow = dLdy.shape
        k = self.kernel
        d = np.zeros((n, c, oh, ow, k * k), dtype=dLdy.dtype)
        np.put_along_axis(d, self._arg[..., None], dLdy[..., None], axis=-1)
        d = d.reshape(n, c, oh, ow, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, oh * k, ow * k)
        return self._uncrop(d, self._shape)


class AvgPool2d(_Pool2d):
    """``y[n, c, i, j] = (1/k²) Σ_{u, v < k} x[n, c, i·k + u, j·k + v]``; ``dLdx = dLdy / k²``
    spread over each window. With k equal to the input size it is global average pooling."""

    kind = "avgpool2d"

    def forward(self, x, train=False):
        win = self._windows(x)
        if train:
            self._shape = x.shape
        return win.mean(axis=(3, 5))

    def backward(self, dLdy):
        n, c, oh, ow = dLdy.shape
        k = self.kernel
        d = np.broadcast_to((dLdy / (k * k))[:, :, :, None, :, None], (n, c, oh, k, ow, k))
        return self._uncrop(d.reshape(n, c, oh * k, ow * k), self._shape)
