"""What the gated recurrent layers (:class:`~slimgen.sw.nn.lstm.LSTM`,
:class:`~slimgen.sw.nn.gru.GRU`) share: their per-gate parameters and how they are drawn, the
input check, the gate-joined matrices of the passes, the split of the joined gradients back into
the gates, and the spec.

Each gate ``g`` keeps its own ``W_g`` (n_in, H), ``U_g`` (H, H) and ``b_g`` (H,), so that
compression methods can treat each gate on its own (DESIGN.md, method 2); the passes join them
in the layer's gate order into one (n_in, G·H), (H, G·H) and (G·H,).
"""

import numpy as np

from .layers import Layer, check_positive_int

__all__ = ["GatedRecurrent", "init_gate_matrices"]


def init_gate_matrices(gates, n_in, n_hidden, rng=None):
    """Every gate's input matrix ``W_g`` (n_in, H), Glorot-uniform
    ``U(−√(6/(n_in + H)), √(6/(n_in + H)))``, then its recurrent ``U_g`` (H, H), orthogonal (the
    Q of a Gaussian matrix's QR, signs fixed by R's diagonal), drawn in that order."""
    rng = np.random.default_rng(0) if rng is None else rng
    limit = np.sqrt(6.0 / (n_in + n_hidden))
    params = {f"W_{g}": rng.uniform(-limit, limit, (n_in, n_hidden)) for g in gates}
    for g in gates:
        q, r = np.linalg.qr(rng.normal(size=(n_hidden, n_hidden)))
        params[f"U_{g}"] = q * np.sign(np.diag(r))
    return params


class GatedRecurrent(Layer):
    """A recurrent layer of gates ``gates`` over sequences (n, T, n_in) → (n, n_hidden), the
    last hidden state, or (n, T, n_hidden) with ``return_sequences``.

    Subclasses set ``kind``, ``name`` (for messages) and ``gates``, give their biases in
    :meth:`initial_biases` and implement ``forward`` and ``_backward(dLdy, input_grad)``.
    """

    params_from_rng = True
    name = gates = None

    def __init__(self, n_in, n_hidden, *, return_sequences=False, rng=None):
        super().__init__()
        check_positive_int(f"{self.name} n_in", n_in)
        check_positive_int(f"{self.name} n_hidden", n_hidden)
        self.n_in, self.n_hidden = int(n_in), int(n_hidden)
        self.return_sequences = bool(return_sequences)
        self.params.update(init_gate_matrices(self.gates, self.n_in, self.n_hidden, rng))
        self.params.update(self.initial_biases(self.n_hidden))
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def initial_biases(self, n_hidden):
        """The bias parameters at initialisation: name → (n_hidden,) array."""
        raise NotImplementedError

    def check_input(self, x):
        """``x`` must be (n, steps, n_in)."""
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"{self.name} expects input of shape (n, steps, {self.n_in}), "
                             f"got {x.shape}")

    def _joined(self, prefix, dtype):
        """The gates' ``prefix`` parameters (W, U or b) side by side in gate order."""
        return np.concatenate([self.params[f"{prefix}_{g}"] for g in self.gates], axis=-1,
                              dtype=dtype)

    def _store_gate_grads(self, dW, dU, db):
        """The joined gradients (n_in, G·H), (H, G·H), (G·H,) into every gate's ``grads``,
        as float64 (the parameters' dtype)."""
        H = self.n_hidden
        dW, dU, db = (d.astype(self.params[f"W_{self.gates[0]}"].dtype, copy=False)
                      for d in (dW, dU, db))
        for k, gate in enumerate(self.gates):
            sl = slice(k * H, (k + 1) * H)
            self.grads[f"W_{gate}"] = dW[:, sl]
            self.grads[f"U_{gate}"] = dU[:, sl]
            self.grads[f"b_{gate}"] = db[sl]

    def backward(self, dLdy):
        return self._backward(dLdy, True)

    def backward_params(self, dLdy):
        """:meth:`backward` without the input gradient (for a model's first layer)."""
        self._backward(dLdy, False)

    def spec(self):
        return {"type": self.kind, "n_in": self.n_in, "n_hidden": self.n_hidden,
                "return_sequences": self.return_sequences}
