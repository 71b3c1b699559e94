"""Method 2: selective LSTM gate pruning (US10657426B2, US20200234089A1), for LSTM and GRU
cells.

After training an LSTM, prune any subset of the gate matrices of the input, forget and output
gates and leave the cell candidate's dense (a GRU: its reset and update gates r, z, and its
candidate n dense). For gate X the threshold is a quality factor q
times the standard deviation of that gate's weights, pooled over all cells (R):

``τ_X = q · std(W_X)``,   ``mask_X = |W_X| ≥ τ_X``

(the input matrix W_X and, with ``matrices=("W", "U")``, the recurrent U_X, each with its own
τ). Instead of q a ``target_sparsity`` may be given: q is then the quantile of ``|W_X| / std(W_X)``
that zeroes that fraction, the same criterion read backwards. With ``steps`` > 1 the threshold
rises in equal steps of sparsity, each followed by retraining (R). Then the model is retrained
with the pruned weights held at zero; W_c (and U_c) are never touched.
"""

from dataclasses import asdict, dataclass

import numpy as np

from .masked_train import (Compressed, FitConfig, get_param, layer_sparsity, sparsity,
                           teacher_logits, train_compressed)

__all__ = ["GatePruneConfig", "gate_keys", "gate_masks", "lstm_gate_prune", "PRUNABLE_GATES"]

PRUNABLE_GATES = ("i", "f", "o", "r", "z")
# the σ gates of each cell, which method 2 prunes; the candidate (c, n) stays dense
CELL_GATES = {"lstm": "ifo", "gru": "rz"}


@dataclass(frozen=True)
class GatePruneConfig:
    """Method 2: ``gates`` a subset of "ifo" (LSTM) and "rz" (GRU), None for all of them;
    ``q`` or ``target_sparsity`` (exactly one);
    ``matrices`` which of "W" (input) and "U" (recurrent); ``steps`` pruning rounds;
    ``finetune_epochs`` of retraining after each round."""
    gates: str | None = None
    q: float | None = None
    target_sparsity: float | None = 0.95
    matrices: tuple = ("W", "U")
    steps: int = 3
    finetune_epochs: int = 20

    def __post_init__(self):
        gates = self.gates
        if gates is not None and (not isinstance(gates, str) or not gates
                                  or any(g not in PRUNABLE_GATES for g in gates)
                                  or len(set(gates)) != len(gates)):
            raise ValueError(f"gates must be a non-empty subset of 'ifo' (LSTM) and 'rz' "
                             f"(GRU); the candidate 'c' or 'n' stays dense; not {gates!r}")
        if (self.q is None) == (self.target_sparsity is None):
            raise ValueError("Give exactly one of q and target_sparsity")
        if self.q is not None and not self.q >= 0:
            raise ValueError(f"q must be non-negative, not {self.q!r}")
        t = self.target_sparsity
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                              or not 0 <= t < 1):
            raise ValueError(f"target_sparsity must be a number in [0, 1), not {t!r}")
        m = tuple(self.matrices)
        if not m or any(x not in ("W", "U") for x in m) or len(set(m)) != len(m):
            raise ValueError(f"matrices must be a non-empty subset of ('W', 'U'), not {m!r}")
        object.__setattr__(self, "matrices", m)
        for name in ("steps",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        v = self.finetune_epochs
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"finetune_epochs must be a non-negative integer, not {v!r}")

    def to_dict(self):
        d = asdict(self)
        d["matrices"] = list(self.matrices)
        return d


def gate_keys(model, gates=None, matrices=("W", "U")):
    """Keys of the chosen gate matrices of every LSTM and GRU layer (``gates`` None: every
    σ gate of each)."""
    cells = [(i, layer.kind) for i, layer in enumerate(model.layers)
             if layer.kind in CELL_GATES]
    if not cells:
        raise ValueError("The model has no LSTM or GRU layer to prune")
    keys = [(i, f"{m}_{g}") for i, kind in cells for m in matrices
            for g in (CELL_GATES[kind] if gates is None else gates) if g in CELL_GATES[kind]]
    if not keys:
        kinds = " and ".join(sorted({kind for _, kind in cells}))
        raise ValueError(f"gates {gates!r} are none of the {kinds}'s: use "
                         + " or ".join(f"{CELL_GATES[k]} ({k})" for k in sorted(
                             {kind for _, kind in cells})))
    return keys


def gate_masks(arrays, *, q=None, target_sparsity=None):
    """``|W| ≥ τ`` with ``τ = q · std(W)`` per array, or q from the target (module docstring)."""
    masks = {}
    for k, w in arrays.items():
        sd = float(np.std(w))
        if target_sparsity is not None:
            r = np.abs(w) / (sd or 1.0)
            n_zero = int(round(target_sparsity * w.size))
            tau_q = np.sort(r.ravel())[n_zero] if n_zero < w.size else np.inf
            masks[k] = r >= tau_q
        else:
            masks[k] = np.abs(w) >= q * sd
    return masks


def lstm_gate_prune(model, data, config=GatePruneConfig(), *, fit=FitConfig(), progress=False):
    """Prune the chosen gates of a trained LSTM model and retrain with the masks held, in place
    (method 2); returns a :class:`~.Compressed`. The std is that of the trained dense gate;
    with ``fit.distill`` the dense model as it comes in is the teacher of every retraining."""
    keys = gate_keys(model, config.gates, config.matrices)
    teacher = teacher_logits(model, data) if fit.distill else None
    dense = {k: get_param(model, k).copy() for k in keys}
    stds = {k: float(np.std(w)) for k, w in dense.items()}
    masks, history = {k: np.ones(w.shape, dtype=bool) for k, w in dense.items()}, []
    for step in range(1, config.steps + 1):
        frac = step / config.steps
        arrays = {k: get_param(model, k) for k in keys}
        if config.target_sparsity is not None:
            new = gate_masks(arrays, target_sparsity=config.target_sparsity * frac)
        else:
            new = {k: np.abs(w) >= config.q * frac * stds[k] for k, w in arrays.items()}
        masks = {k: masks[k] & new[k] for k in keys}
        for k, m in masks.items():
            arrays[k][...] *= m
        if config.finetune_epochs:
            ft = fit.replace(epochs=config.finetune_epochs, keep_best=True, seed=fit.seed + step)
            history += train_compressed(model, data, ft, masks=masks, progress=progress,
                                        label=f"gate-prune {step}", teacher=teacher)
    info = {"method": "lstm_gate_prune", "sparsity": sparsity(model, keys),
            "layers": layer_sparsity(model, keys),
            "thresholds": {f"{i}.{n}": float(config.q * s) if config.q is not None else None
                           for (i, n), s in stds.items()},
            "config": config.to_dict()}
    return Compressed(model, masks, info, history)

