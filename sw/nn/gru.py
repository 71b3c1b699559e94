"""Gated recurrent unit layer (PyTorch's formulation) with full back-propagation through time.

For each step t, with x_t (n, n_in) and h_0 = 0:

``r = σ(x_t W_r + h_{t−1} U_r + b_r)``                    reset gate
``z = σ(x_t W_z + h_{t−1} U_z + b_z)``                    update gate
``n = tanh(x_t W_n + b_n + r ⊙ (h_{t−1} U_n + b_hn))``   candidate
``h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}``

As in :mod:`~slimgen.sw.nn.lstm`, each gate keeps its own matrices (``W_r, W_z, W_n`` of shape
(n_in, n_hidden), ``U_*`` (n_hidden, n_hidden), ``b_r, b_z, b_n, b_hn`` (n_hidden,)), and the
passes join them in gate order r, z, n: the input products of all steps are one matrix product
before the loop, and each step is one (n, H)(H, 3H) product for the whole batch. The arrays are
time-major, (T, n, ·).

Backward, with ``a_n`` the candidate's pre-activation and ``hn = h_{t−1} U_n + b_hn``:
``∂L/∂a_n = ∂L/∂h · (1 − z)(1 − n²)``, ``∂L/∂a_z = ∂L/∂h · (h_{t−1} − n) z(1 − z)``,
``∂L/∂a_r = ∂L/∂a_n · hn · r(1 − r)``, ``∂L/∂hn = ∂L/∂a_n · r``, and
``∂L/∂h_{t−1} = ∂L/∂h · z + [∂L/∂a_r, ∂L/∂a_z, ∂L/∂hn] [U_r, U_z, U_n]ᵀ``; the factors that do
not depend on the incoming gradient are computed for all steps at once before the loop.
:func:`gru_loop` is the per-sample, per-gate reference the tests compare against.
"""

import numpy as np

from .layers import compute_dtype
from .recurrent import GatedRecurrent

__all__ = ["GRU", "gru_loop", "GRU_GATES"]

GRU_GATES = ("r", "z", "n")


def gru_loop(x, params):
    """Reference GRU: loops over samples and steps, one gate at a time (slow; for tests).

    Shapes: x (n, T, n_in), params as :class:`GRU` → h of every step (n, T, n_hidden).
    """
    n, T, _ = x.shape
    H = params["b_r"].shape[0]
    out = np.zeros((n, T, H))
    for s in range(n):
        h = np.zeros(H)
        for t in range(T):
            r = 1 / (1 + np.exp(-(x[s, t] @ params["W_r"] + h @ params["U_r"] + params["b_r"])))
            z = 1 / (1 + np.exp(-(x[s, t] @ params["W_z"] + h @ params["U_z"] + params["b_z"])))
            c = np.tanh(x[s, t] @ params["W_n"] + params["b_n"]
                        + r * (h @ params["U_n"] + params["b_hn"]))
            h = (1 - z) * c + z * h
            out[s, t] = h
    return out


class GRU(GatedRecurrent):
    """GRU over sequences (see module docstring).

    Shapes: x (n, T, n_in) → y (n, n_hidden), the last hidden state, or (n, T, n_hidden) with
    ``return_sequences``.
    Initialisation as :class:`~slimgen.sw.nn.lstm.LSTM`: W Glorot-uniform, U orthogonal, b 0.
    """

    kind, name, gates = "gru", "GRU", GRU_GATES

    def initial_biases(self, n_hidden):
        return {name: np.zeros(n_hidden) for name in ("b_r", "b_z", "b_n", "b_hn")}

    def forward(self, x, train=False):
        self.check_input(x)
        n, T, _ = x.shape
        H = self.n_hidden
        dt = compute_dtype(x)
        W, U, b = (self._joined(m, dt) for m in "WUb")                      # (n_in,3H) (H,3H) (3H,)
        b_hn = self.params["b_hn"].astype(dt, copy=False)
        xt = x.transpose(1, 0, 2).reshape(T * n, -1).astype(dt, copy=False)  # (T·n, n_in)
        acts = (xt @ W + b).reshape(T, n, 3 * H)  # x W + b, all steps; overwritten with r, z, n
        hs = np.empty((T + 1, n, H), dtype=dt)    # hs[t] = h_{t−1}; hs[0] = h_0 = 0
        hs[0] = 0.0
        hn = np.empty((T, n, H), dtype=dt)        # h_{t−1} U_n + b_hn
        for t in range(T):
            a = acts[t]
            hU = hs[t] @ U                                                   # (n, 3H)
            rz = a[:, :2 * H]
            rz += hU[:, :2 * H]
            rz *= 0.5                                                   # σ(z) = (1 + tanh(z/2))/2
            np.tanh(rz, out=rz)
            rz += 1.0
            rz *= 0.5
            r, z, c = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
            np.add(hU[:, 2 * H:], b_hn, out=hn[t])
            c += r * hn[t]
            np.tanh(c, out=c)
            h = hs[t + 1]
            np.subtract(hs[t], c, out=h)                                # h = n + z (h_{t−1} − n)
            h *= z
            h += c
        if train:
            self._cache = (xt, hs, acts, hn, U, W)
        return hs[1:].transpose(1, 0, 2).copy() if self.return_sequences else hs[T].copy()

    def _backward(self, dLdy, input_grad):
        xt, hs, acts, hn, U, W = self._cache
        T, n, H = hn.shape
        dt = hn.dtype
        dLdy = dLdy.astype(dt, copy=False)
        r, z, c = acts[:, :, :H], acts[:, :, H:2 * H], acts[:, :, 2 * H:]
        # Factors that do not depend on the incoming gradient, for all steps at once.
        A = (1.0 - z) * (1.0 - c * c)            # ∂L/∂a_n = ∂L/∂h · A,  A = (1 − z)(1 − n²)
        Bz = (hs[:T] - c) * z * (1.0 - z)        # ∂L/∂a_z = ∂L/∂h · Bz
        Cr = hn * r * (1.0 - r)                  # ∂L/∂a_r = ∂L/∂a_n · Cr
        dZh = np.empty((T, n, 3 * H), dtype=dt)             # at [a_r, a_z, hn]: through U
        dAn = np.empty((T, n, H), dtype=dt)                 # at a_n
        dh = np.zeros((n, H), dtype=dt)
        for t in reversed(range(T)):
            if self.return_sequences:
                dh += dLdy[:, t]
            elif t == T - 1:
                dh += dLdy
            dz = dZh[t]
            dan = dAn[t]
            np.multiply(dh, A[t], out=dan)
            np.multiply(dan, Cr[t], out=dz[:, :H])           # reset gate
            np.multiply(dh, Bz[t], out=dz[:, H:2 * H])       # update gate
            np.multiply(dan, r[t], out=dz[:, 2 * H:])        # h U_n + b_hn
            dh *= z[t]
            dh += dz @ U.T
        dZx = np.concatenate([dZh[:, :, :2 * H], dAn], axis=2)  # at [a_r, a_z, a_n]: through W
        dZx = dZx.reshape(T * n, 3 * H)
        dZh2 = dZh.reshape(T * n, 3 * H)
        dW = xt.T @ dZx                                     # (n_in, 3H)
        dU = hs[:T].reshape(T * n, H).T @ dZh2              # (H, 3H)
        db = dZx.sum(axis=0)
        db_hn = dZh2[:, 2 * H:].sum(axis=0)
        self._store_gate_grads(dW, dU, db)
        self.grads["b_hn"] = db_hn.astype(self.params["b_hn"].dtype, copy=False)
        if not input_grad:
            return None
        return (dZx @ W.T).reshape(T, n, -1).transpose(1, 0, 2)     # (n, T, n_in)
