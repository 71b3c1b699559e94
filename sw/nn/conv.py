"""2-D convolution (cross-correlation, as in every deep-learning library) on NCHW arrays.

``y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x_p[n, c, i·s + u, j·s + v]``

where ``x_p`` is ``x`` zero-padded by ``p`` on each side and ``s`` is the stride. The layer uses
im2col: every receptive field becomes one column of a matrix, and the convolution one matrix
product. :func:`conv2d_loop` beside it is the plain loop version the tests compare against.

Memory order. Inside the layer the batch index is the fastest-moving one: the padded input is
stored as (c, h', w', n), the columns as ``(c·k·k, oh·ow·n)``, and the product ``W X`` comes out
as (c_out, oh, ow, n). With small images and a batch, every copy and addition then runs over
whole runs of ``ow·n`` neighbouring numbers rather than single image rows. The layer returns
its output as an (n, c_out, oh, ow) *view* of that array: the values and shape are those of
NCHW, and the next layers (ReLU, pooling, the next convolution) keep that memory order without
a transposing copy.
"""

import numpy as np

from .layers import Layer, check_positive_int, compute_dtype

__all__ = ["Conv2d", "conv2d_loop", "im2col", "col2im", "conv_output_size"]


def conv_output_size(size, kernel, stride, padding):
    """``⌊(size + 2·padding − kernel) / stride⌋ + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x, padding):
    """x (n, c, h, w) → a new C-contiguous (c, h + 2p, w + 2p, n) array, zero border."""
    n, c, h, w = x.shape
    p = padding
    xp = np.empty((c, h + 2 * p, w + 2 * p, n), dtype=x.dtype)
    if p:
        xp[:, :p] = 0
        xp[:, h + p:] = 0
        xp[:, p:h + p, :p] = 0
        xp[:, p:h + p, w + p:] = 0
    xp[:, p:h + p, p:w + p] = x.transpose(1, 2, 3, 0)
    return xp


def _windows(xp, kh, kw, stride, oh, ow):
    """The receptive fields of a C-contiguous xp (c, h', w', n) as a strided view
    (c, kh, kw, oh, ow, n), without copying."""
    c, n = xp.shape[0], xp.shape[3]
    sc, sh, sw, sn = xp.strides
    return np.ndarray((c, kh, kw, oh, ow, n), xp.dtype, xp,
                      strides=(sc, sh, sw, stride * sh, stride * sw, sn))


def im2col(x, kh, kw, stride, padding):
    """Receptive fields as columns.

    Shapes: x (n, c, h, w) → cols (c·kh·kw, oh·ow·n), rows in (c, u, v) order (the order of
    ``W.reshape(c_out, −1)``), columns in (i, j, n) order:
    ``cols[(c, u, v), (i, j, n)] = x_p[n, c, i·s + u, j·s + v]``.
    """
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    win = _windows(_pad(x, padding), kh, kw, stride, oh, ow)     # (c, kh, kw, oh, ow, n)
    return win.reshape(c * kh * kw, oh * ow * n)                 # one copy


def col2im(cols, x_shape, kh, kw, stride, padding):
    """Adjoint of :func:`im2col`: sums every column back onto the pixels it was taken from.

    Shapes: cols (c·kh·kw, oh·ow·n) → (n, c, h, w) (a view of a (c, h, w, n) array).
    One strided addition per kernel offset (u, v), kh·kw in all.
    """
    n, c, h, w = x_shape
    p, s = padding, stride
    oh, ow = conv_output_size(h, kh, s, p), conv_output_size(w, kw, s, p)
    cols = cols.reshape(c, kh, kw, oh, ow, n)
    xp = np.zeros((c, h + 2 * p, w + 2 * p, n), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xp[:, u:u + s * oh:s, v:v + s * ow:s] += cols[:, u, v]
    return xp[:, p:p + h, p:p + w].transpose(3, 0, 1, 2)


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
    Backward, with ``X = im2col(x)`` (c_in·k·k, oh·ow·n) and ``G = dLdy`` as (c_out, oh·ow·n):
    ``dLdW = G Xᵀ``, ``dLdb = Σ G``, ``dLdx = col2im(Wᵀ G)``.
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
        dt = compute_dtype(x)
        X = im2col(x.astype(dt, copy=False), k, k, s, p)             # (c_in·k·k, oh·ow·n)
        Wm = self.params["W"].reshape(self.c_out, -1).astype(dt, copy=False)  # (c_out, c_in·k²)
        Y = Wm @ X                                                   # (c_out, oh·ow·n)
        Y += self.params["b"].astype(dt, copy=False)[:, None]
        if train:
            self._X, self._x_shape = X, x.shape
        return Y.reshape(self.c_out, oh, ow, n).transpose(3, 0, 1, 2)

    def backward(self, dLdy):
        return self._backward(dLdy, True)

    def backward_params(self, dLdy):
        """:meth:`backward` without the input gradient (for a model's first layer)."""
        self._backward(dLdy, False)

    def _backward(self, dLdy, input_grad):
        n, _, oh, ow = dLdy.shape
        X, W = self._X, self.params["W"]
        G = dLdy.transpose(1, 2, 3, 0).reshape(self.c_out, oh * ow * n)  # (c_out, oh·ow·n)
        G = G.astype(X.dtype, copy=False)
        self.grads["W"] = (X @ G.T).T.reshape(W.shape).astype(W.dtype, copy=False)  # G Xᵀ
        self.grads["b"] = G.sum(axis=1).astype(self.params["b"].dtype, copy=False)
        if input_grad:
            k = self.kernel
            Wm = W.reshape(self.c_out, -1).astype(X.dtype, copy=False)    # (c_out, c_in·k·k)
            return col2im(Wm.T @ G, self._x_shape, k, k, self.stride, self.padding)
        return None

    def spec(self):
        return {"type": self.kind, "c_in": self.c_in, "c_out": self.c_out, "kernel": self.kernel,
                "stride": self.stride, "padding": self.padding}
