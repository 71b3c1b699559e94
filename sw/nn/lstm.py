"""Long short-term memory layer with full back-propagation through time.

For each step t, with x_t (n, n_in) and h_0 = c_0 = 0:

``i = σ(x_t W_i + h_{t−1} U_i + b_i)``   input gate
``f = σ(x_t W_f + h_{t−1} U_f + b_f)``   forget gate
``o = σ(x_t W_o + h_{t−1} U_o + b_o)``   output gate
``g = tanh(x_t W_c + h_{t−1} U_c + b_c)`` cell candidate
``c_t = f ⊙ c_{t−1} + i ⊙ g``,   ``h_t = o ⊙ tanh(c_t)``

The four gates keep separate matrices (``W_i, W_f, W_o, W_c`` of shape (n_in, n_hidden),
``U_*`` (n_hidden, n_hidden), ``b_*`` (n_hidden,)) so that compression methods can treat each
gate on its own (DESIGN.md, method 2). The forward pass joins them into one (n_in, 4·n_hidden)
matrix in gate order i, f, o, c, so each step is one matrix product for the whole batch.
:func:`lstm_loop` is the per-sample, per-gate reference the tests compare against.
"""

import numpy as np

from .layers import Layer, check_positive_int

__all__ = ["LSTM", "lstm_loop", "GATES", "sigmoid"]

GATES = ("i", "f", "o", "c")


def sigmoid(z):
    """Logistic function, computed without overflow as ``(1 + tanh(z/2)) / 2``."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def lstm_loop(x, params):
    """Reference LSTM: loops over samples and steps, one gate at a time (slow; for tests).

    Shapes: x (n, T, n_in), params as :class:`LSTM` → h of every step (n, T, n_hidden).
    """
    n, T, _ = x.shape
    H = params["b_i"].shape[0]
    out = np.zeros((n, T, H))
    for s in range(n):
        h, c = np.zeros(H), np.zeros(H)
        for t in range(T):
            pre = {g: x[s, t] @ params[f"W_{g}"] + h @ params[f"U_{g}"] + params[f"b_{g}"]
                   for g in GATES}
            i, f, o = (1 / (1 + np.exp(-pre[g])) for g in "ifo")
            c = f * c + i * np.tanh(pre["c"])
            h = o * np.tanh(c)
            out[s, t] = h
    return out


class LSTM(Layer):
    """LSTM over sequences (see module docstring).

    Shapes: x (n, T, n_in) → y (n, n_hidden), the last hidden state, or (n, T, n_hidden) with
    ``return_sequences``.
    Initialisation: W Glorot-uniform, U orthogonal, b 0 except the forget gate's bias 1.
    """

    kind = "lstm"
    params_from_rng = True

    def __init__(self, n_in, n_hidden, *, return_sequences=False, rng=None):
        super().__init__()
        check_positive_int("LSTM n_in", n_in)
        check_positive_int("LSTM n_hidden", n_hidden)
        self.n_in, self.n_hidden = int(n_in), int(n_hidden)
        self.return_sequences = bool(return_sequences)
        rng = np.random.default_rng(0) if rng is None else rng
        H = self.n_hidden
        limit = np.sqrt(6.0 / (self.n_in + H))
        for g in GATES:
            self.params[f"W_{g}"] = rng.uniform(-limit, limit, (self.n_in, H))
        for g in GATES:
            q, r = np.linalg.qr(rng.normal(size=(H, H)))
            self.params[f"U_{g}"] = q * np.sign(np.diag(r))
        for g in GATES:
            self.params[f"b_{g}"] = np.full(H, 1.0 if g == "f" else 0.0)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _joined(self, prefix):
        return np.concatenate([self.params[f"{prefix}_{g}"] for g in GATES], axis=-1)

    def forward(self, x, train=False):
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"LSTM expects input of shape (n, steps, {self.n_in}), got {x.shape}")
        n, T, _ = x.shape
        H = self.n_hidden
        W, U, b = self._joined("W"), self._joined("U"), self._joined("b")  # (n_in,4H) (H,4H) (4H,)
        XW = (x.reshape(n * T, -1) @ W + b).reshape(n, T, 4 * H)             # all steps at once
        hs = np.zeros((n, T + 1, H))       # hs[:, t] = h_{t−1}; hs[:, 0] = h_0 = 0
        cs = np.zeros((n, T + 1, H))
        acts = np.empty((n, T, 4 * H))     # i, f, o after σ; g after tanh
        tanh_c = np.empty((n, T, H))
        for t in range(T):
            z = XW[:, t] + hs[:, t] @ U                                      # (n, 4H)
            a = acts[:, t]
            a[:, :3 * H] = sigmoid(z[:, :3 * H])
            a[:, 3 * H:] = np.tanh(z[:, 3 * H:])
            i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            cs[:, t + 1] = f * cs[:, t] + i * g
            tanh_c[:, t] = np.tanh(cs[:, t + 1])
            hs[:, t + 1] = o * tanh_c[:, t]
        if train:
            self._cache = (x, hs, cs, acts, tanh_c, U, W)
        return hs[:, 1:].copy() if self.return_sequences else hs[:, T].copy()

    def backward(self, dLdy):
        x, hs, cs, acts, tanh_c, U, W = self._cache
        n, T, _ = x.shape
        H = self.n_hidden
        if self.return_sequences:
            dh_out = dLdy                                   # (n, T, H)
        else:
            dh_out = np.zeros((n, T, H))
            dh_out[:, -1] = dLdy
        dZ = np.empty((n, T, 4 * H))                        # gradient at the gate pre-activations
        dh = np.zeros((n, H))                               # from step t+1 through U
        dc = np.zeros((n, H))                               # from step t+1 through f
        for t in reversed(range(T)):
            a = acts[:, t]
            i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            dh = dh + dh_out[:, t]
            tc = tanh_c[:, t]
            dc = dc + dh * o * (1 - tc * tc)
            dz = dZ[:, t]
            dz[:, :H] = dc * g * i * (1 - i)                   # input gate
            dz[:, H:2 * H] = dc * cs[:, t] * f * (1 - f)       # forget gate
            dz[:, 2 * H:3 * H] = dh * tc * o * (1 - o)         # output gate
            dz[:, 3 * H:] = dc * i * (1 - g * g)               # cell candidate
            dc = dc * f
            dh = dz @ U.T
        dZ2 = dZ.reshape(n * T, 4 * H)
        dW = x.reshape(n * T, -1).T @ dZ2                       # (n_in, 4H)
        dU = hs[:, :T].reshape(n * T, H).T @ dZ2                # (H, 4H)
        db = dZ2.sum(axis=0)
        for k, g in enumerate(GATES):
            sl = slice(k * H, (k + 1) * H)
            self.grads[f"W_{g}"] = dW[:, sl]
            self.grads[f"U_{g}"] = dU[:, sl]
            self.grads[f"b_{g}"] = db[sl]
        return (dZ2 @ W.T).reshape(x.shape)

    def spec(self):
        return {"type": self.kind, "n_in": self.n_in, "n_hidden": self.n_hidden,
                "return_sequences": self.return_sequences}
