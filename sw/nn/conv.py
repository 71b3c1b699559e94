"""2-D convolution (cross-correlation, as in every deep-learning library) on NCHW arrays.

``y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x_p[n, c, i·s + u, j·s + v]``

where ``x_p`` is ``x`` zero-padded by ``p`` on each side and ``s`` is the stride. The layer uses
im2col: every receptive field becomes one row of a matrix, and the convolution one matrix product.
:func:`conv2d_loop` beside it is the plain loop version the tests compare against.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer, check_positive_int

__all__ = ["Conv2d", "conv2d_loop", "im2col", "col2im", "conv_output_size"]


def conv_output_size(size, kernel, stride, padding):
    """``⌊(size + 2·padding − kernel) / stride⌋ + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kh, kw, stride, padding):
    """Receptive fields as rows.

    Shapes: x (n, c, h, w) → cols (n·oh·ow, c·kh·kw), rows in (n, i, j) order, columns in
    (c, u, v) order, the same order as ``W.reshape(c_out, −1)``.
    """
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (n, c, h', w', kh, kw)
    win = win[:, :, ::stride, ::stride]                   # (n, c, oh, ow, kh, kw)
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def col2im(cols, x_shape, kh, kw, stride, padding):
    """Adjoint of :func:`im2col`: sums every row back onto the pixels it was taken from.

    Shapes: cols (n·oh·ow, c·kh·kw) → (n, c, h, w).
    """
    n, c, h, w = x_shape
    oh = conv_output_size(h, kh, stride, padding)
    ow = conv_output_size(w, kw, stride, padding)
    cols = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (n, c, kh, kw, oh, ow)
    xp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xp[:, :, u:u + stride * oh:stride, v:v + stride * ow:stride] += cols[:, :, u, v]
    if padding:
        return xp[:, :, padding:padding + h, padding:padding + w]
    return xp


def conv2d_loop(x, W, b, stride=1, padding=0):
    """Reference convolution written as loops over output pixels (slow; for tests).

    Shapes: x (n, c_in, h, w), W (c_out, c_in, kh, kw), b (c_out,) → (n, c_out, oh, ow).
    """
    n, _, h, w = x.shape
    c_out, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    y = np.empty((n, c_out, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            for o in range(c_out):
                y[:, o, i, j] = np.sum(patch * W[o], axis=(1, 2, 3)) + b[o]
    return y


class Conv2d(Layer):
    """Convolution layer with ``c_in`` input and ``c_out`` output channels (see module docstring).

    Shapes: x (n, c_in, h, w), W (c_out, c_in, k, k), b (c_out,), y (n, c_out, oh, ow).
    Backward, with ``X = im2col(x)`` (n·oh·ow, c_in·k·k) and ``G = dLdy`` as (n·oh·ow, c_out):
    ``dLdW = Gᵀ X``, ``dLdb = Σ G``, ``dLdx = col2im(G W)``.
    Initialisation: He-uniform with fan-in ``c_in·k·k``, b = 0.
    """

    kind = "conv2d"
    params_from_rng = True

    def __init__(self, c_in, c_out, kernel=3, *, stride=1, padding=0, rng=None):
        super().__init__()
        for name, v in (("c_in", c_in), ("c_out", c_out), ("kernel", kernel), ("stride", stride)):
            check_positive_int(f"Conv2d {name}", v)
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"Conv2d padding must be a non-negative integer, not {padding!r}")
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), int(kernel)
        self.stride, self.padding = int(stride), int(padding)
        rng = np.random.default_rng(0) if rng is None else rng
        fan_in = self.c_in * self.kernel ** 2
        limit = np.sqrt(6.0 / fan_in)
        self.params = {"W": rng.uniform(-limit, limit, (self.c_out, self.c_in, self.kernel, self.kernel)),
                       "b": np.zeros(self.c_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, train=False):
        if x.ndim != 4 or x.shape[1] != self.c_in:
            raise ValueError(f"Conv2d expects input of shape (n, {self.c_in}, h, w), got {x.shape}")
        n, _, h, w = x.shape
        k, s, p = self.kernel, self.stride, self.padding
        oh, ow = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"Conv2d kernel {k} with padding {p} does not fit input {h}×{w}")
        X = im2col(x, k, k, s, p)                              # (n·oh·ow, c_in·k·k)
        Wm = self.params["W"].reshape(self.c_out, -1)          # (c_out, c_in·k·k)
        y = X @ Wm.T + self.params["b"]                        # (n·oh·ow, c_out)
        if train:
            self._X, self._x_shape = X, x.shape
        return y.reshape(n, oh, ow, self.c_out).transpose(0, 3, 1, 2)

    def backward(self, dLdy):
        n, _, oh, ow = dLdy.shape
        G = dLdy.transpose(0, 2, 3, 1).reshape(n * oh * ow, self.c_out)  # (n·oh·ow, c_out)
        self.grads["W"] = (G.T @ self._X).reshape(self.params["W"].shape)
        self.grads["b"] = G.sum(axis=0)
        dX = G @ self.params["W"].reshape(self.c_out, -1)               # (n·oh·ow, c_in·k·k)
        k = self.kernel
        return col2im(dX, self._x_shape, k, k, self.stride, self.padding)

    def spec(self):
        return {"type": self.kind, "c_in": self.c_in, "c_out": self.c_out, "kernel": self.kernel,
                "stride": self.stride, "padding": self.padding}
