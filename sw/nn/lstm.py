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
matrix in gate order i, f, o, c, so each step is one matrix product for the whole batch, and
one ``tanh`` for all four gates, since ``σ(z) = (1 + tanh(z/2)) / 2``. The arrays are kept
time-major, (T, n, ·), so every step reads and writes contiguous blocks; backward computes the
gate derivatives (``σ' = σ(1 − σ)``, ``tanh' = 1 − g²``) for all steps at once before its loop.
:func:`lstm_loop` is the per-sample, per-gate reference the tests compare against.
"""

import numpy as np

from .layers import compute_dtype
from .recurrent import GatedRecurrent

__all__ = ["LSTM", "lstm_loop", "GATES"]

GATES = ("i", "f", "o", "c")


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


class LSTM(GatedRecurrent):
    """LSTM over sequences (see module docstring).

    Shapes: x (n, T, n_in) → y (n, n_hidden), the last hidden state, or (n, T, n_hidden) with
    ``return_sequences``.
    Initialisation: W Glorot-uniform, U orthogonal, b 0 except the forget gate's bias 1.
    """

    kind, name, gates = "lstm", "LSTM", GATES

    def initial_biases(self, n_hidden):
        return {f"b_{g}": np.full(n_hidden, 1.0 if g == "f" else 0.0) for g in GATES}

    def forward(self, x, train=False):
        self.check_input(x)
        n, T, _ = x.shape
        H = self.n_hidden
        dt = compute_dtype(x)
        W, U, b = (self._joined(m, dt) for m in "WUb")                      # (n_in,4H) (H,4H) (4H,)
        # Time-major arrays, so every step works on contiguous (n, ·) blocks.
        xt = x.transpose(1, 0, 2).reshape(T * n, -1).astype(dt, copy=False)  # (T·n, n_in)
        XW = (xt @ W + b).reshape(T, n, 4 * H)                               # all steps at once
        hs = np.empty((T + 1, n, H), dtype=dt)  # hs[t] = h_{t−1}; hs[0] = h_0 = 0
        cs = np.empty((T + 1, n, H), dtype=dt)
        hs[0] = 0.0
        cs[0] = 0.0
        acts = XW                          # overwritten step by step: i, f, o after σ; g after tanh
        tanh_c = np.empty((T, n, H), dtype=dt)
        for t in range(T):
            a = acts[t]
            a += hs[t] @ U                                                   # z, (n, 4H)
            ifo = a[:, :3 * H]
            ifo *= 0.5                                                  # σ(z) = (1 + tanh(z/2))/2
            np.tanh(a, out=a)
            ifo += 1.0
            ifo *= 0.5
            i, f, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
            c = cs[t + 1]
            np.multiply(f, cs[t], out=c)
            c += i * g
            np.tanh(c, out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=hs[t + 1])
        if train:
            self._cache = (xt, hs, cs, acts, tanh_c, U, W, x.shape)
        return hs[1:].transpose(1, 0, 2).copy() if self.return_sequences else hs[T].copy()

    def _backward(self, dLdy, input_grad):
        xt, hs, cs, acts, tanh_c, U, W, x_shape = self._cache
        T, n, H = tanh_c.shape
        dt = tanh_c.dtype
        dLdy = dLdy.astype(dt, copy=False)
        # Factors that do not depend on the incoming gradient, for all steps at once:
        # σ' = σ(1 − σ) for i, f, o and tanh' = 1 − g² for g; ∂h/∂c = o (1 − tanh² c).
        D = np.empty((T, n, 4 * H), dtype=dt)
        s = acts[:, :, :3 * H]
        np.subtract(1.0, s, out=D[:, :, :3 * H])
        D[:, :, :3 * H] *= s
        g = acts[:, :, 3 * H:]
        np.multiply(g, g, out=D[:, :, 3 * H:])
        np.subtract(1.0, D[:, :, 3 * H:], out=D[:, :, 3 * H:])
        dhdc = 1.0 - tanh_c * tanh_c
        dhdc *= acts[:, :, 2 * H:3 * H]
        dZ = np.empty((T, n, 4 * H), dtype=dt)              # gradient at the gate pre-activations
        dh = np.zeros((n, H), dtype=dt)                     # from step t+1 through U
        dc = np.zeros((n, H), dtype=dt)                     # from step t+1 through f
        for t in reversed(range(T)):
            a = acts[t]
            i, f, g = a[:, :H], a[:, H:2 * H], a[:, 3 * H:]
            if self.return_sequences:
                dh += dLdy[:, t]
            elif t == T - 1:
                dh += dLdy
            dc += dh * dhdc[t]
            dz = dZ[t]
            np.multiply(dc, g, out=dz[:, :H])                  # input gate
            np.multiply(dc, cs[t], out=dz[:, H:2 * H])         # forget gate
            np.multiply(dh, tanh_c[t], out=dz[:, 2 * H:3 * H])  # output gate
            np.multiply(dc, i, out=dz[:, 3 * H:])              # cell candidate
            dz *= D[t]
            dc *= f
            dh = dz @ U.T
        dZ2 = dZ.reshape(T * n, 4 * H)
        dW = xt.T @ dZ2                                     # (n_in, 4H)
        dU = hs[:T].reshape(T * n, H).T @ dZ2               # (H, 4H)
        db = dZ2.sum(axis=0)
        self._store_gate_grads(dW, dU, db)
        if not input_grad:
            return None
        return (dZ2 @ W.T).reshape(T, n, -1).transpose(1, 0, 2)      # (n, T, n_in)
