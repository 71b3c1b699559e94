"""Layers with forward and backward passes.

Every layer follows one protocol:

- ``forward(x, train=False) -> y`` caches what backward needs when ``train`` is true;
- ``backward(dLdy) -> dLdx`` fills ``grads`` (same keys and shapes as ``params``);
- ``backward_params(dLdy)`` fills ``grads`` only, for a model's first layer, whose input gradient
  training never uses (layers with parameters skip that product);
- ``params`` / ``grads``: dicts of float64 arrays (empty for layers without parameters);
- the arithmetic runs in the input's floating dtype (:func:`compute_dtype`): float64 as the
  trainer feeds it, float32 when given float32 (half the memory traffic, about twice the
  matrix-product speed); parameters are cast on use and gradients returned as float64;
- ``buffers``: dict of arrays that are state but not trained (BatchNorm's running statistics);
- ``spec()``: the plain dict that :func:`slimgen.sw.nn.model.build_model` rebuilds it from.

Besides Dense, this module holds the layers without weights that reshape or mask:
ReLU, Flatten, SwapAxes and Dropout.
"""

import numpy as np

__all__ = ["Layer", "Dense", "ReLU", "Flatten", "SwapAxes", "Dropout", "check_positive_int",
           "compute_dtype"]


def check_positive_int(name, v):
    """Raise ``ValueError`` unless ``v`` is a positive integer."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, not {v!r}")


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def compute_dtype(x):
    """The dtype a layer computes in for input x: float32 for float32 input, float64 for any
    other (float64, integers, ...)."""
    return _F32 if x.dtype == _F32 else _F64


class Layer:
    """Base class: a layer without parameters that passes its input through."""

    kind = "identity"
    params_from_rng = False  # whether the constructor takes an ``rng`` for initialisation

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}

    def forward(self, x, train=False):
        return x

    def backward(self, dLdy):
        return dLdy

    def backward_params(self, dLdy):
        self.backward(dLdy)

    def spec(self):
        return {"type": self.kind}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """Fully connected layer ``y = x W + b``.

    Shapes: x (n, n_in), W (n_in, n_out), b (n_out,), y (n, n_out).
    Backward: ``dLdW = xᵀ dLdy``, ``dLdb = Σ_n dLdy``, ``dLdx = dLdy Wᵀ``.
    Initialisation: He-uniform, ``W ~ U(−√(6/n_in), √(6/n_in))``, b = 0.
    """

    kind = "dense"
    params_from_rng = True

    def __init__(self, n_in, n_out, *, rng=None):
        super().__init__()
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            check_positive_int(f"Dense {name}", v)
        self.n_in, self.n_out = int(n_in), int(n_out)
        rng = np.random.default_rng(0) if rng is None else rng
        limit = np.sqrt(6.0 / self.n_in)
        self.params = {"W": rng.uniform(-limit, limit, (self.n_in, self.n_out)),
                       "b": np.zeros(self.n_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None

    def forward(self, x, train=False):
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"Dense expects input of shape (n, {self.n_in}), got {x.shape}")
        if train:
            self._x = x
        dt = compute_dtype(x)
        W, b = self.params["W"].astype(dt, copy=False), self.params["b"].astype(dt, copy=False)
        return x @ W + b

    def backward(self, dLdy):
        self.backward_params(dLdy)
        return dLdy @ self.params["W"].astype(dLdy.dtype, copy=False).T    # (n, n_in)

    def backward_params(self, dLdy):
        W, b = self.params["W"], self.params["b"]
        self.grads["W"] = (self._x.T @ dLdy).astype(W.dtype, copy=False)  # (n_in, n)(n, n_out)
        self.grads["b"] = dLdy.sum(axis=0).astype(b.dtype, copy=False)    # (n_out,)

    def spec(self):
        return {"type": self.kind, "n_in": self.n_in, "n_out": self.n_out}


class ReLU(Layer):
    """``y = max(x, 0)``; ``dLdx = dLdy · [x > 0]``."""

    kind = "relu"

    def forward(self, x, train=False):
        if train:
            self._mask = x > 0
        return np.maximum(x, 0.0)

    def backward(self, dLdy):
        return dLdy * self._mask


class Flatten(Layer):
    """(n, d1, d2, ...) → (n, d1·d2·...), row-major."""

    kind = "flatten"

    def forward(self, x, train=False):
        if train:
            self._shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dLdy):
        return dLdy.reshape(self._shape)


class SwapAxes(Layer):
    """(n, a, b) → (n, b, a), and back in backward: from a 1-D convolution's (n, c, L) to a
    recurrent layer's (n, T = L, c), and the other way. Returns a view (no copy)."""

    kind = "swap_axes"

    def forward(self, x, train=False):
        if x.ndim != 3:
            raise ValueError(f"SwapAxes expects input of shape (n, a, b), got {x.shape}")
        return x.swapaxes(1, 2)

    def backward(self, dLdy):
        return dLdy.swapaxes(1, 2)


class Dropout(Layer):
    """Inverted dropout: at training ``y = x ⊙ m / (1 − rate)`` with ``m`` a fresh mask of
    independent Bernoulli(1 − rate) values per call; ``dLdx = dLdy ⊙ m / (1 − rate)``. At
    inference ``y = x``.

    The masks come from a generator of the layer's own, seeded at construction by one draw from
    ``rng``: same seed, same masks. ``rate`` must be in [0, 1); 0 is the identity.
    """

    kind = "dropout"
    params_from_rng = True

    def __init__(self, rate=0.5, *, rng=None):
        super().__init__()
        if (isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating))
                or not 0 <= rate < 1):
            raise ValueError(f"Dropout rate must be a number in [0, 1), not {rate!r}")
        self.rate = float(rate)
        rng = np.random.default_rng(0) if rng is None else rng
        self._rng = np.random.default_rng(rng.integers(2 ** 63))
        self._mask = None

    def forward(self, x, train=False):
        if not train or self.rate == 0:
            self._mask = None
            return x
        dt = compute_dtype(x)
        keep = self._rng.random(x.shape) >= self.rate                   # P(keep) = 1 − rate
        self._mask = keep.astype(dt) * dt.type(1.0 / (1.0 - self.rate))  # m / (1 − rate)
        return x * self._mask

    def backward(self, dLdy):
        return dLdy if self._mask is None else dLdy * self._mask

    def spec(self):
        return {"type": self.kind, "rate": self.rate}
