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

    def _output_size(self, x):
        """(oh, ow) = (⌊h/k⌋, ⌊w/k⌋) for x (n, c, h, w), checking the shape."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects input of shape (n, c, h, w), "
                             f"got {x.shape}")
        h, w = x.shape[2:]
        k = self.kernel
        oh, ow = h // k, w // k
        if oh == 0 or ow == 0:
            raise ValueError(f"{type(self).__name__} kernel {k} is larger than the input {h}×{w}")
        return oh, ow

    def _windows(self, x):
        """(n, c, h, w) → (n, c, oh, k, ow, k), a view of the cropped input."""
        oh, ow = self._output_size(x)
        k = self.kernel
        return x[:, :, :oh * k, :ow * k].reshape(*x.shape[:2], oh, k, ow, k)

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

    Computed over the k² strided slices ``x[:, :, u::k, v::k]`` (one element of every window
    each), so the work is k² element-wise operations whatever the memory order of x; the output
    and the input gradient keep x's memory order.
    """

    kind = "maxpool2d"

    def forward(self, x, train=False):
        oh, ow = self._output_size(x)
        k = self.kernel
        parts = [x[:, :, u:oh * k:k, v:ow * k:k] for u in range(k) for v in range(k)]
        y = parts[0].copy(order="K")                                    # (n, c, oh, ow)
        for part in parts[1:]:
            np.maximum(y, part, out=y)
        if train:
            # hits[m]: window element m (row-major) is the first maximum of its window
            hits, taken = [], None
            for part in parts:
                hit = part == y
                if taken is None:
                    taken = hit.copy(order="K")
                else:
                    hit = np.greater(hit, taken)                        # hit and not yet taken
                    taken |= hit
                hits.append(hit)
            self._hits, self._x_ref = hits, x
        return y

    def backward(self, dLdy):
        k = self.kernel
        oh, ow = dLdy.shape[2:]
        dx = np.zeros_like(self._x_ref)                                 # x's shape and order
        d = np.empty_like(self._hits[0], dtype=dLdy.dtype)              # y's memory order,
        d[...] = dLdy                                                   # one copy if different
        for m, hit in enumerate(self._hits):
            u, v = divmod(m, k)
            np.multiply(d, hit, out=dx[:, :, u:oh * k:k, v:ow * k:k])
        return dx


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
