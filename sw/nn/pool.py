"""Pooling over k×k windows of NCHW arrays (k windows of (n, c, L) sequences), no padding.

Windows start every ``stride`` positions (default: ``stride = kernel``, non-overlapping); the
output size is ``⌊(h − k) / s⌋ + 1`` per spatial axis, and rows and columns that do not fill a
whole window are dropped, as in PyTorch (``⌊h / k⌋`` when s = k). Windows overlap when s < k.
:class:`GlobalAvgPool` averages over all spatial positions of (n, c, L) or (n, c, h, w) input.

Every pooling is computed over the k^d strided slices of the input that hold one element of
every window each (``x[:, :, u::s, v::s]``, cropped), so the work is k^d element-wise
operations whatever the memory order of x.
"""

import itertools

import numpy as np

from .layers import Layer, check_positive_int, compute_dtype

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool"]


class _Pool(Layer):
    """Kernel, stride and window slicing over the last ``dims`` axes (1: (n, c, L), 2: NCHW)."""

    params_from_rng = False
    dims = 2

    def __init__(self, kernel=2, stride=None):
        super().__init__()
        name = type(self).__name__
        check_positive_int(f"{name} kernel", kernel)
        if stride is not None:
            check_positive_int(f"{name} stride", stride)
        self.kernel = int(kernel)
        self.stride = self.kernel if stride is None else int(stride)

    def _output_size(self, x):
        """``⌊(size − k)/s⌋ + 1`` per spatial axis of x, checking the shape."""
        if x.ndim != 2 + self.dims:
            shape = "(n, c, L)" if self.dims == 1 else "(n, c, h, w)"
            raise ValueError(f"{type(self).__name__} expects input of shape {shape}, "
                             f"got {x.shape}")
        sizes, k = x.shape[2:], self.kernel
        if any(size < k for size in sizes):
            raise ValueError(f"{type(self).__name__} kernel {k} is larger than the input "
                             f"{'×'.join(map(str, sizes))}")
        return tuple((size - k) // self.stride + 1 for size in sizes)

    def _offsets(self):
        """Window offsets (u,) or (u, v), row-major."""
        return itertools.product(range(self.kernel), repeat=self.dims)

    def _slice(self, offset, out):
        """Index of the strided slice holding element ``offset`` of every window."""
        s = self.stride
        return (slice(None), slice(None)) + tuple(slice(u, u + (o - 1) * s + 1, s)
                                                  for u, o in zip(offset, out))

    def spec(self):
        spec = {"type": self.kind, "kernel": self.kernel}
        if self.stride != self.kernel:
            spec["stride"] = self.stride
        return spec


class _MaxPool(_Pool):
    """``y[n, c, i, j] = max_{u, v < k} x[n, c, i·s + u, j·s + v]``.

    Backward routes ``dLdy`` to the first maximum of each window (row-major order), zero
    elsewhere, summed where windows overlap. The output and the input gradient keep x's memory
    order.
    """

    def forward(self, x, train=False):
        out = self._output_size(x)
        parts = [x[self._slice(off, out)] for off in self._offsets()]
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
        out = dLdy.shape[2:]
        dx = np.zeros_like(self._x_ref)                                 # x's shape and order
        d = np.empty_like(self._hits[0], dtype=dLdy.dtype)              # y's memory order,
        d[...] = dLdy                                                   # one copy if different
        overlap = self.stride < self.kernel
        for off, hit in zip(self._offsets(), self._hits):
            sl = self._slice(off, out)
            if overlap:
                dx[sl] += d * hit
            else:
                np.multiply(d, hit, out=dx[sl])
        return dx


class _AvgPool(_Pool):
    """``y[n, c, i, j] = (1/k²) Σ_{u, v < k} x[n, c, i·s + u, j·s + v]``; ``dLdx = dLdy / k²``
    spread over each window (summed where windows overlap)."""

    def _windows(self, x):
        """s = k: (n, c, oh, k, ow, k), a view of the cropped input."""
        out, k = self._output_size(x), self.kernel
        crop = (slice(None), slice(None)) + tuple(slice(0, o * k) for o in out)
        return x[crop].reshape(*x.shape[:2], *itertools.chain(*((o, k) for o in out)))

    def forward(self, x, train=False):
        if train:
            self._shape = x.shape
        if self.stride == self.kernel:
            return self._windows(x).mean(axis=tuple(range(3, 3 + 2 * self.dims, 2)))
        out = self._output_size(x)
        parts = [x[self._slice(off, out)] for off in self._offsets()]
        y = parts[0].astype(compute_dtype(x), order="K")
        for part in parts[1:]:
            y += part
        y /= self.kernel ** self.dims
        return y

    def backward(self, dLdy):
        n, c, *out = dLdy.shape
        k = self.kernel
        g = dLdy / k ** self.dims
        if self.stride == self.kernel:
            inner = (n, c, *itertools.chain(*((o, 1) for o in out)))    # (n, c, oh, 1, ow, 1)
            d = np.broadcast_to(g.reshape(inner), (n, c, *itertools.chain(*((o, k) for o in out))))
            return self._uncrop(d.reshape(n, c, *(o * k for o in out)), self._shape)
        dx = np.zeros(self._shape, dtype=dLdy.dtype)
        for off in self._offsets():
            dx[self._slice(off, out)] += g
        return dx

    @staticmethod
    def _uncrop(d, shape):
        """Place the window-shaped gradient d (n, c, oh·k, ow·k) into zeros of ``shape``."""
        if d.shape == shape:
            return d
        out = np.zeros(shape, dtype=d.dtype)
        out[(slice(None), slice(None)) + tuple(slice(0, m) for m in d.shape[2:])] = d
        return out


class MaxPool2d(_MaxPool):
    """Max pooling over k×k windows of (n, c, h, w) → (n, c, ⌊(h − k)/s⌋ + 1, ⌊(w − k)/s⌋ + 1)
    (see :class:`_MaxPool`); stride defaults to the kernel size."""

    kind = "maxpool2d"


class MaxPool1d(_MaxPool):
    """Max pooling over k windows of (n, c, L) → (n, c, ⌊(L − k)/s⌋ + 1): ``y[n, c, i] =
    max_{u < k} x[n, c, i·s + u]``; stride defaults to the kernel size."""

    kind = "maxpool1d"
    dims = 1


class AvgPool2d(_AvgPool):
    """Average pooling over k×k windows of (n, c, h, w) (see :class:`_AvgPool`); stride defaults
    to the kernel size. With k equal to the input size it is global average pooling."""

    kind = "avgpool2d"


class AvgPool1d(_AvgPool):
    """Average pooling over k windows of (n, c, L): ``y[n, c, i] = (1/k) Σ_{u < k}
    x[n, c, i·s + u]``; stride defaults to the kernel size."""

    kind = "avgpool1d"
    dims = 1


class GlobalAvgPool(Layer):
    """Mean over all spatial positions: (n, c, L) or (n, c, h, w) → (n, c);
    ``dLdx = dLdy / m`` at every one of the m positions."""

    kind = "global_avgpool"

    def forward(self, x, train=False):
        if x.ndim < 3:
            raise ValueError(f"GlobalAvgPool expects input of shape (n, c, L) or (n, c, h, w), "
                             f"got {x.shape}")
        if train:
            self._shape = x.shape
        return x.mean(axis=tuple(range(2, x.ndim)))

    def backward(self, dLdy):
        n, c, *spatial = self._shape
        dx = np.empty(self._shape, dtype=dLdy.dtype)
        dx[...] = (dLdy / int(np.prod(spatial))).reshape(n, c, *(1 for _ in spatial))
        return dx
