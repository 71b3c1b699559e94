"""Convolution (cross-correlation, as in every deep-learning library): 2-D on NCHW arrays,
1-D on (n, c, L) sequences.

``y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x_p[n, c, i·s + u, j·s + v]``

where ``x_p`` is ``x`` zero-padded (by ``p`` on each side, or by (top, bottom), (left, right))
and ``s`` is the stride. The layer uses im2col: every receptive field becomes one column of a
matrix, and the convolution one matrix product. :func:`conv2d_loop` beside it is the plain loop
version the tests compare against. A 1-D convolution is the 2-D one on a 1×L image with a 1×k
kernel (:class:`Conv1d`, :func:`conv1d_loop`).

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

__all__ = ["Conv1d", "Conv2d", "conv1d_loop", "conv2d_loop", "im2col", "col2im",
           "conv_output_size"]


def conv_output_size(size, kernel, stride, padding):
    """``⌊(size + 2·padding − kernel) / stride⌋ + 1``; ``padding`` may also be a pair
    (before, after): ``⌊(size + before + after − kernel) / stride⌋ + 1``."""
    if isinstance(padding, (int, np.integer)):
        return (size + 2 * padding - kernel) // stride + 1
    before, after = padding
    return (size + before + after - kernel) // stride + 1


def _four(padding):
    """(top, bottom, left, right) of a 2-D padding: p, or ((top, bottom), (left, right))."""
    if isinstance(padding, (int, np.integer)):
        return padding, padding, padding, padding
    (t, b), (l, r) = padding
    return t, b, l, r


def _pad(x, padding):
    """x (n, c, h, w) → a new C-contiguous (c, t + h + b, l + w + r, n) array, zero border."""
    n, c, h, w = x.shape
    t, b, l, r = _four(padding)
    xp = np.empty((c, t + h + b, l + w + r, n), dtype=x.dtype)
    if t:
        xp[:, :t] = 0
    if b:
        xp[:, t + h:] = 0
    if l:
        xp[:, t:t + h, :l] = 0
    if r:
        xp[:, t:t + h, l + w:] = 0
    xp[:, t:t + h, l:l + w] = x.transpose(1, 2, 3, 0)
    return xp


def _windows(xp, kh, kw, stride, oh, ow):
    """The receptive fields of a C-contiguous xp (c, h', w', n) as a strided view
    (c, kh, kw, oh, ow, n), without copying."""
    c, n = xp.shape[0], xp.shape[3]
    sc, sh, sw, sn = xp.strides
    return np.ndarray((c, kh, kw, oh, ow, n), xp.dtype, xp,
                      strides=(sc, sh, sw, stride * sh, stride * sw, sn))


def _output_hw(h, w, kh, kw, stride, padding):
    t, b, l, r = _four(padding)
    return conv_output_size(h, kh, stride, (t, b)), conv_output_size(w, kw, stride, (l, r))


def im2col(x, kh, kw, stride, padding):
    """Receptive fields as columns.

    Shapes: x (n, c, h, w) → cols (c·kh·kw, oh·ow·n), rows in (c, u, v) order (the order of
    ``W.reshape(c_out, −1)``), columns in (i, j, n) order:
    ``cols[(c, u, v), (i, j, n)] = x_p[n, c, i·s + u, j·s + v]``.
    ``padding``: p on every side, or ((top, bottom), (left, right)).
    """
    n, c, h, w = x.shape
    oh, ow = _output_hw(h, w, kh, kw, stride, padding)
    win = _windows(_pad(x, padding), kh, kw, stride, oh, ow)     # (c, kh, kw, oh, ow, n)
    return win.reshape(c * kh * kw, oh * ow * n)                 # one copy


def col2im(cols, x_shape, kh, kw, stride, padding):
    """Adjoint of :func:`im2col`: sums every column back onto the pixels it was taken from.

    Shapes: cols (c·kh·kw, oh·ow·n) → (n, c, h, w) (a view of a (c, h, w, n) array).
    One strided addition per kernel offset (u, v), kh·kw in all.
    """
    n, c, h, w = x_shape
    s = stride
    t, b, l, r = _four(padding)
    oh, ow = _output_hw(h, w, kh, kw, s, padding)
    cols = cols.reshape(c, kh, kw, oh, ow, n)
    xp = np.zeros((c, t + h + b, l + w + r, n), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xp[:, u:u + s * oh:s, v:v + s * ow:s] += cols[:, u, v]
    return xp[:, t:t + h, l:l + w].transpose(3, 0, 1, 2)


def conv2d_loop(x, W, b, stride=1, padding=0):
    """Reference convolution written as loops over output pixels (slow; for tests).

    Shapes: x (n, c_in, h, w), W (c_out, c_in, kh, kw), b (c_out,) or None → (n, c_out, oh, ow).
    ``padding``: p on every side, or ((top, bottom), (left, right)).
    """
    n, _, h, w = x.shape
    c_out, _, kh, kw = W.shape
    t, bo, l, r = _four(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (l, r)))
    oh, ow = _output_hw(h, w, kh, kw, stride, padding)
    y = np.empty((n, c_out, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            for o in range(c_out):
                y[:, o, i, j] = np.sum(patch * W[o], axis=(1, 2, 3)) + (0 if b is None else b[o])
    return y


def conv1d_loop(x, W, b, stride=1, padding=0):
    """Reference 1-D convolution written as loops over output positions (slow; for tests).

    Shapes: x (n, c_in, L), W (c_out, c_in, k), b (c_out,) or None → (n, c_out, L_out);
    ``y[n, o, i] = b[o] + Σ_{c, u} W[o, c, u] · x_p[n, c, i·s + u]``.
    ``padding``: p on each side, or (before, after).
    """
    n, _, L = x.shape
    c_out, _, k = W.shape
    before, after = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (before, after)))
    y = np.empty((n, c_out, conv_output_size(L, k, stride, (before, after))))
    for i in range(y.shape[2]):
        patch = xp[:, :, i * stride:i * stride + k]                    # (n, c_in, k)
        for o in range(c_out):
            y[:, o, i] = np.sum(patch * W[o], axis=(1, 2)) + (0 if b is None else b[o])
    return y


def _is_nonneg_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0


def _check_bias(name, bias):
    if not isinstance(bias, (bool, np.bool_)):
        raise ValueError(f"{name} bias must be True or False, not {bias!r}")
    return bool(bias)


class _Conv(Layer):
    """What Conv1d and Conv2d share: He-uniform initialisation, the optional bias, and the
    im2col matrix product on (n, c, h, w) arrays (Conv1d's sequences are 1×L images)."""

    params_from_rng = True

    def _init_params(self, rng, shape, bias):
        """W of ``shape`` (c_out, c_in, k...) He-uniform with fan-in ``c_in·k…``; b = 0."""
        rng = np.random.default_rng(0) if rng is None else rng
        fan_in = int(np.prod(shape[1:]))
        limit = np.sqrt(6.0 / fan_in)
        self.params = {"W": rng.uniform(-limit, limit, shape)}
        if bias:
            self.params["b"] = np.zeros(self.c_out)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _product(self, x, kh, kw, padding, train):
        """x (n, c_in, h, w) → ``W X + b`` as (c_out, oh·ow·n)."""
        dt = compute_dtype(x)
        X = im2col(x.astype(dt, copy=False), kh, kw, self.stride, padding)   # (c_in·kh·kw, oh·ow·n)
        Wm = self.params["W"].reshape(self.c_out, -1).astype(dt, copy=False)  # (c_out, c_in·kh·kw)
        Y = Wm @ X                                                   # (c_out, oh·ow·n)
        if "b" in self.params:
            Y += self.params["b"].astype(dt, copy=False)[:, None]
        if train:
            self._X, self._x_shape = X, x.shape
        return Y

    def _product_backward(self, dLdy, kh, kw, padding, input_grad):
        """dLdy (n, c_out, oh, ow) → grads filled; dLdx (n, c_in, h, w) or None."""
        n, _, oh, ow = dLdy.shape
        X, W = self._X, self.params["W"]
        G = dLdy.transpose(1, 2, 3, 0).reshape(self.c_out, oh * ow * n)  # (c_out, oh·ow·n)
        G = G.astype(X.dtype, copy=False)
        self.grads["W"] = (X @ G.T).T.reshape(W.shape).astype(W.dtype, copy=False)  # G Xᵀ
        if "b" in self.params:
            self.grads["b"] = G.sum(axis=1).astype(self.params["b"].dtype, copy=False)
        if input_grad:
            Wm = W.reshape(self.c_out, -1).astype(X.dtype, copy=False)    # (c_out, c_in·kh·kw)
            return col2im(Wm.T @ G, self._x_shape, kh, kw, self.stride, padding)
        return None

    def backward(self, dLdy):
        return self._backward(dLdy, True)

    def backward_params(self, dLdy):
        """:meth:`backward` without the input gradient (for a model's first layer)."""
        self._backward(dLdy, False)

    def spec(self):
        padding = self.padding
        if not isinstance(padding, int):
            padding = [list(p) for p in padding] if isinstance(padding[0], tuple) else list(padding)
        spec = {"type": self.kind, "c_in": self.c_in, "c_out": self.c_out, "kernel": self.kernel,
                "stride": self.stride, "padding": padding}
        if "b" not in self.params:
            spec["bias"] = False
        return spec


class Conv2d(_Conv):
    """Convolution layer with ``c_in`` input and ``c_out`` output channels (see module docstring).

    Shapes: x (n, c_in, h, w), W (c_out, c_in, k, k), b (c_out,), y (n, c_out, oh, ow).
    ``padding``: p zeros on every side, or ((top, bottom), (left, right)) (stored as p when all
    four are equal); ``bias=False``: no b parameter.
    Backward, with ``X = im2col(x)`` (c_in·k·k, oh·ow·n) and ``G = dLdy`` as (c_out, oh·ow·n):
    ``dLdW = G Xᵀ``, ``dLdb = Σ G``, ``dLdx = col2im(Wᵀ G)``.
    Initialisation: He-uniform with fan-in ``c_in·k·k``, b = 0.
    """

    kind = "conv2d"

    def __init__(self, c_in, c_out, kernel=3, *, stride=1, padding=0, bias=True, rng=None):
        super().__init__()
        for name, v in (("c_in", c_in), ("c_out", c_out), ("kernel", kernel), ("stride", stride)):
            check_positive_int(f"Conv2d {name}", v)
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), int(kernel)
        self.stride, self.padding = int(stride), self._check_padding(padding)
        self._init_params(rng, (self.c_out, self.c_in, self.kernel, self.kernel),
                          _check_bias("Conv2d", bias))

    @staticmethod
    def _check_padding(padding):
        if isinstance(padding, (int, np.integer)):
            if padding < 0:
                raise ValueError(f"Conv2d padding must be a non-negative integer, not {padding!r}")
            return int(padding)
        try:
            (t, b), (l, r) = padding
            ok = all(_is_nonneg_int(v) for v in (t, b, l, r))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"Conv2d padding must be a non-negative integer or ((top, bottom), "
                             f"(left, right)) of non-negative integers, not {padding!r}")
        if t == b == l == r:
            return int(t)
        return (int(t), int(b)), (int(l), int(r))

    def forward(self, x, train=False):
        if x.ndim != 4 or x.shape[1] != self.c_in:
            raise ValueError(f"Conv2d expects input of shape (n, {self.c_in}, h, w), got {x.shape}")
        n, _, h, w = x.shape
        k, p = self.kernel, self.padding
        oh, ow = _output_hw(h, w, k, k, self.stride, p)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"Conv2d kernel {k} with padding {p} does not fit input {h}×{w}")
        Y = self._product(x, k, k, p, train)                         # (c_out, oh·ow·n)
        return Y.reshape(self.c_out, oh, ow, n).transpose(3, 0, 1, 2)

    def _backward(self, dLdy, input_grad):
        k = self.kernel
        return self._product_backward(dLdy, k, k, self.padding, input_grad)


class Conv1d(_Conv):
    """1-D convolution over sequences with ``c_in`` input and ``c_out`` output channels:
    ``y[n, o, i] = b[o] + Σ_{c, u} W[o, c, u] · x_p[n, c, i·s + u]``.

    Shapes: x (n, c_in, L), W (c_out, c_in, k), b (c_out,), y (n, c_out, L_out) with
    ``L_out = ⌊(L + before + after − k) / s⌋ + 1``.
    ``padding``: p zeros on each side, or (before, after) (stored as p when equal);
    ``bias=False``: no b parameter.
    Computed as :class:`Conv2d` on the 1×L image x[:, :, None, :] with a 1×k kernel (the same
    im2col product and backward). Initialisation: He-uniform with fan-in ``c_in·k``, b = 0.
    """

    kind = "conv1d"

    def __init__(self, c_in, c_out, kernel=3, *, stride=1, padding=0, bias=True, rng=None):
        super().__init__()
        for name, v in (("c_in", c_in), ("c_out", c_out), ("kernel", kernel), ("stride", stride)):
            check_positive_int(f"Conv1d {name}", v)
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), int(kernel)
        self.stride, self.padding = int(stride), self._check_padding(padding)
        self._init_params(rng, (self.c_out, self.c_in, self.kernel), _check_bias("Conv1d", bias))

    @staticmethod
    def _check_padding(padding):
        if isinstance(padding, (int, np.integer)):
            if padding < 0:
                raise ValueError(f"Conv1d padding must be a non-negative integer, not {padding!r}")
            return int(padding)
        try:
            before, after = padding
            ok = _is_nonneg_int(before) and _is_nonneg_int(after)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"Conv1d padding must be a non-negative integer or (before, after) "
                             f"of non-negative integers, not {padding!r}")
        return int(before) if before == after else (int(before), int(after))

    def _padding2d(self):
        """The padding of the equivalent 1×L image: ((0, 0), (before, after))."""
        p = self.padding
        return ((0, 0), (p, p)) if isinstance(p, int) else ((0, 0), p)

    def forward(self, x, train=False):
        if x.ndim != 3 or x.shape[1] != self.c_in:
            raise ValueError(f"Conv1d expects input of shape (n, {self.c_in}, L), got {x.shape}")
        n, _, L = x.shape
        k, p = self.kernel, self.padding
        oL = conv_output_size(L, k, self.stride, self._padding2d()[1])
        if oL <= 0:
            raise ValueError(f"Conv1d kernel {k} with padding {p} does not fit input length {L}")
        Y = self._product(x[:, :, None, :], 1, k, self._padding2d(), train)  # (c_out, oL·n)
        return Y.reshape(self.c_out, oL, n).transpose(2, 0, 1)

    def _backward(self, dLdy, input_grad):
        dx = self._product_backward(dLdy[:, :, None, :], 1, self.kernel, self._padding2d(),
                                    input_grad)
        return None if dx is None else dx[:, :, 0, :]                # (n, c_in, L)
