"""Method 5: balanced sparsity (US11449756B2).

Each weight matrix, seen as rows of output neurons ``M (n_out, n_in)`` (Dense: ``Wᵀ``; Conv2d:
``W.reshape(c_out, −1)``), is partitioned into groups, one per lane of a sparse MAC array with G
lanes, in one of two layouts:

- ``"rows"`` (row groups): lane g owns the output neurons ``o ≡ g (mod G)`` (the order of
  ``hw/dense.py``); its count is ``n_g = Σ_{o ≡ g} Σ_i h(M[o, i])``, and balance means the same
  number of non-zeros per lane over the whole layer;
- ``"banks"`` (input banks): lane g owns the inputs ``i ≡ g (mod G)`` of every row; the counts
  ``n[o, g] = Σ_{i ≡ g} h(M[o, i])`` must be equal across the banks within each row (rows may
  differ: a row costs that many cycles on all lanes at once). The first layer's inputs (the
  pixels, in a fixed order on the wire) may take an *input order* (R): input i sits at position
  ``pos[i]`` and lies in bank ``pos[i] mod G`` (``order[pos[i]] = i``; the hardware writes
  input i to lane ``pos[i] mod P`` at address ``pos[i] div P``). In the natural order a bank of
  the 8×8 digits is one or two pixel columns, nearly blank at the edges. ``"dealt"``
  (:func:`deal_inputs`) deals the pixels to the banks by importance (rms input × weight norm
  of the dense model, :func:`input_importance`) so that every bank holds its share of the
  informative ones; ``"tiled"`` (:func:`tile_inputs`) makes every bank an evenly spread
  sub-grid of the image (any 2×2 patch holds all 4 banks), so that a neuron's nearby pixels
  fall in different banks (dealt when the inputs are not a square image the block divides).

Weights are used as ``w · h(w)`` with the learnable threshold of method 6 (its soft-L0 term and
target ramp included), and the loss gets a Lagrange term on the variance of the soft counts,
scaled by the squared group size ``c`` so that it is a variance of densities:

``L = L_net + λ_s (1/N) Σ h + λ_b Σ_layers V_l``,
``V_l = Var_g(n_g) / c`` (rows, ``c = (n_out · n_in / G)²``) or
``V_l = mean_o Var_g(n[o, g]) / c`` (banks, ``c = (n_in / G)²``),

with ``∂V/∂h[o, i] = 2 (n_group − n̄) / (G · c)`` (banks: also ``/ n_out``). Weights, α and β
descend; λ_b ascends, ``λ_b += η_b · Σ V_l`` after every step.

The hard prune makes the balance exact. Per layer the self-pruning mask decides the budget;
then rows: every lane keeps its ``K = round(kept / G)`` best weights (``|w| / β``); in the last
layer each of a lane's rows takes its best weight first so that no class is left without
weights; banks: the layer keeps ``round(kept / G)`` "slices", slice k of row o being its k-th
best weight in every bank, chosen greedily by their summed scores over all rows (so row o keeps ``K_o``
per bank, a multiple of G in all; in the last layer at least one per bank; a hidden neuron may
go empty). Inputs from a neuron the previous dense layer left empty rank below every live one.
The hidden neurons between two dense layers are also reordered (R), which changes nothing the
network computes: with banks by their kept counts, most first, so that the live neurons fall
evenly into the next layer's banks (position p lies in bank p mod G); with rows so that every
lane's count in the budget is about the same (largest rows first, each to the lightest lane),
and the exact balance then costs few weights. Weights a layer would keep on the inputs of dead
neurons are moved to the layer before (R, :func:`reallocate`): at high sparsity the budget
mask can leave a layer with fewer live inputs than the next layer's rows must take. Then the
kept weights are fine-tuned with the mask held.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ..sparse_layout import lane_of
from .masked_train import (Compressed, FitConfig, get_param, layer_sparsity, sparsity,
                           teacher_logits, train_compressed, weight_keys)
from .self_prune import SelfPruneConfig, SelfPruneTransform

__all__ = ["LAYOUTS", "BalancedConfig", "BalancedTransform", "as_rows", "from_rows",
           "group_counts", "balance_masks", "balanced_prune", "check_groups", "permute_hidden",
           "lane_assignment", "reallocate", "wasted", "bank_of", "deal_inputs", "tile_inputs",
           "input_importance", "INPUT_ORDERS"]

LAYOUTS = ("rows", "banks")
INPUT_ORDERS = ("natural", "dealt", "tiled")


def as_rows(w, kind):
    """The (n_out, n_in) view of a weight array: Dense ``Wᵀ``, a convolution
    ``W.reshape(c_out, −1)``."""
    if kind == "dense":
        return w.T
    if kind in ("conv1d", "conv2d"):
        return w.reshape(w.shape[0], -1)
    raise ValueError(f"Balanced sparsity handles dense, conv1d and conv2d layers, not {kind!r}")


def from_rows(m, shape, kind):
    """Inverse of :func:`as_rows` for a gradient or mask in the row view."""
    return m.T if kind == "dense" else m.reshape(shape)


def check_groups(groups, layout, n_out, n_in, where="layer"):
    """Raise ``ValueError`` unless ``groups`` lanes fit a (n_out, n_in) matrix in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'rows' or 'banks', not {layout!r}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive integer, not {groups!r}")
    if layout == "rows" and groups > n_out:
        raise ValueError(f"{where} has {n_out} output neurons, fewer than the {groups} row "
                         f"groups; every lane must own at least one")
    if layout == "banks" and groups > n_in:
        raise ValueError(f"{where} has {n_in} inputs, fewer than the {groups} input banks; "
                         f"every bank must hold at least one")


def bank_of(n_in, groups, order=None):
    """The bank of every input, (n_in,): ``pos[i] mod G``, ``pos`` the inverse of the input
    ``order`` (``order[pos[i]] = i``; position q lies in bank ``q mod G``); without an order
    ``i mod G``. The lanes of :func:`slimgen.sw.sparse_layout.lane_of` in the banks layout."""
    return lane_of((1, n_in), groups, "banks", order)[0]


def group_counts(rows, groups, layout, banks=None):
    """Counts of a (n_out, n_in) array of 0/1 (or soft h) values: (G,) for rows, (n_out, G)
    for banks (``banks`` (n_in,): the bank of every input, default ``i mod G``)."""
    n_out, n_in = rows.shape
    if layout == "rows":
        return np.bincount(np.arange(n_out) % groups, weights=rows.sum(axis=1), minlength=groups)
    banks = bank_of(n_in, groups) if banks is None else np.asarray(banks)
    onehot = (banks[:, None] == np.arange(groups)[None, :]).astype(float)     # (n_in, G)
    return rows @ onehot                                                       # (n_out, G)


def deal_inputs(importance, groups):
    """An input order that deals the inputs to the banks like cards (R): by ``importance``
    (n_in,), largest first, to the positions ``0, 1, …, G−1`` then ``2G−1, …, G`` (back
    again), and so on, so that every bank gets the same number of the informative inputs and
    about the same total importance. Returns ``order`` (n_in,), ``order[position] = input``;
    input i then lies in bank ``pos[i] mod G`` (:func:`bank_of`)."""
    n_in = len(importance)
    seq = []
    for c in range(-(-n_in // groups)):
        lanes = range(groups) if c % 2 == 0 else range(groups - 1, -1, -1)
        seq.extend(c * groups + p for p in lanes if c * groups + p < n_in)
    order = np.empty(n_in, dtype=np.int64)
    order[np.array(seq)] = np.argsort(-np.asarray(importance, dtype=float), kind="stable")
    return order


def tile_inputs(n_in, groups):
    """An input order for square images (R): the G banks tile the image in an ``a × b`` block
    (``a · b = G``, ``a ≤ b`` as square as G allows), pixel (r, c) of a ``side × side`` image
    in bank ``(r mod a) · b + (c mod b)``, so that every bank is an evenly spread sub-grid and
    any ``a × b`` patch holds one pixel of every bank. Returns ``order`` (n_in,), or None when
    the inputs are not a square image that the block divides."""
    side = int(round(np.sqrt(n_in)))
    a = max(d for d in range(1, int(np.sqrt(groups)) + 1) if groups % d == 0)
    b = groups // a
    if side * side != n_in or side % a or side % b:
        return None
    r, c = np.divmod(np.arange(n_in), side)
    bank = (r % a) * b + (c % b)
    order = np.empty(n_in, dtype=np.int64)
    for g in range(groups):
        order[g::groups] = np.flatnonzero(bank == g)        # raster order within the bank
    return order


def input_importance(w, x):
    """``rms(x_i) · ‖M[:, i]‖``, (n_in,): how much input i can move the first layer (R), from
    its weights ``w`` (Dense, (n_in, n_out)) and the training inputs ``x`` (n, n_in)."""
    return np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2, axis=0)) * np.linalg.norm(w, axis=1)


@dataclass(frozen=True)
class BalancedConfig:
    """Method 5: ``groups`` lanes in ``layout`` ("rows" or "banks"); ``lam_balance`` the start
    of λ_b and ``lr_balance`` η_b; ``prune`` the self-pruning settings (target sparsity, ramp,
    thresholds, epochs); ``input_order`` (banks, a dense first layer): ``"natural"`` (input i
    in bank ``i mod G``), ``"dealt"`` or ``"tiled"`` (module docstring);
"""
    groups: int = 4
    layout: str = "rows"
    lam_balance: float = 1.0
    lr_balance: float = 10.0
    prune: SelfPruneConfig = SelfPruneConfig()
    input_order: str = "natural"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be 'rows' or 'banks', not {self.layout!r}")
        g = self.groups
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise ValueError(f"groups must be a positive integer, not {g!r}")
        for name in ("lam_balance", "lr_balance"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, not {getattr(self, name)!r}")
        if self.input_order not in INPUT_ORDERS:
            raise ValueError(f"input_order must be one of {', '.join(map(repr, INPUT_ORDERS))}, "
                             f"not {self.input_order!r}")
        if not isinstance(self.prune, SelfPruneConfig):
            raise TypeError(f"prune must be a SelfPruneConfig, not {type(self.prune).__name__}")

    def to_dict(self):
        d = asdict(self)
        d["prune"] = self.prune.to_dict()
        return d


class BalancedTransform(SelfPruneTransform):
    """Method 6's transform plus the Lagrange term on the group-count variance."""

    def __init__(self, model, keys, *, groups, layout, lam_balance=1.0, lr_balance=10.0,
                 input_banks=None, **kwargs):
        super().__init__(model, keys, **kwargs)
        self.groups, self.layout = groups, layout
        self.input_banks = dict(input_banks or {})
        self.kinds = {k: model.layers[k[0]].kind for k in self.keys}
        for k in self.keys:
            w = get_param(model, k)
            n_out, n_in = as_rows(w, self.kinds[k]).shape
            check_groups(groups, layout, n_out, n_in, f"Layer {k[0]}")
        self.lam_b, self.lr_b = float(lam_balance), float(lr_balance)
        self._variance = 0.0

    def variance_terms(self, raw, hg=None):
        """``(Σ V_l, {key: (dV/dh in the row view)})`` from the soft counts."""
        hg = self.h_grads(raw) if hg is None else hg
        total, dVdh = 0.0, {}
        G = self.groups
        for key, w in raw.items():
            kind = self.kinds[key]
            hr = as_rows(hg[key][0], kind)                                # (n_out, n_in)
            n_out, n_in = hr.shape
            bank = self.input_banks.get(key)
            n = group_counts(hr, G, self.layout, bank)
            if self.layout == "rows":
                c = (n_out * n_in / G) ** 2
                dev = n - n.mean()                                        # (G,)
                total += float(np.mean(dev ** 2)) / c
                per_row = (2.0 * dev / (G * c))[np.arange(n_out) % G]             # (n_out,)
                dVdh[key] = np.repeat(per_row[:, None], n_in, axis=1)
            else:
                c = (n_in / G) ** 2
                dev = n - n.mean(axis=1, keepdims=True)                   # (n_out, G)
                total += float(np.mean(dev ** 2)) / c
                bank = bank_of(n_in, G) if bank is None else bank
                dVdh[key] = (2.0 * dev / (G * n_out * c))[:, bank]
        return total, dVdh

    def penalty(self, raw, hg=None):
        hg = self.h_grads(raw) if hg is None else hg
        value, grads = super().penalty(raw, hg)
        var, dVdh = self.variance_terms(raw, hg)
        self._variance = var
        if self.lam_b == 0:
            return value, grads
        for key, w in raw.items():
            t = self.thresholds[key]
            _, dw, da, db = hg[key]
            dPdh = self.lam_b * from_rows(dVdh[key], w.shape, self.kinds[key])
            grads[key] = grads.get(key, 0.0) + dPdh * dw
            t.grads["alpha"] += np.sum(dPdh * da)
            t.grads["beta"] += np.sum(dPdh * db)
        return value + self.lam_b * var, grads

    def after_step(self, raw):
        super().after_step(raw)
        self.lam_b += self.lr_b * self._variance

    def epoch_end(self, raw):
        return {**super().epoch_end(raw), "lambda_balance": self.lam_b,
                "count_variance": self._variance}


def lane_assignment(counts, groups):
    """A reordering of the rows (output neurons) that evens out the row-group counts (R):
    rows by ``counts`` (n_out,), largest first, each to the lane with the smallest total that
    still has a free position (lane g's positions are ``o ≡ g mod G``); returns ``order``,
    ``order[position] = row``."""
    n_out = len(counts)
    slots = [list(range(g, n_out, groups)) for g in range(groups)]
    total = np.zeros(groups)
    order = np.empty(n_out, dtype=int)
    for row in np.argsort(-np.asarray(counts), kind="stable"):
        free = [g for g in range(groups) if slots[g]]
        g = min(free, key=lambda g: (total[g], g))
        order[slots[g].pop(0)] = row
        total[g] += counts[row]
    return order


def balance_masks(scores, budget_masks, kinds, groups, layout, *, protect=(), permute=False,
                  budgets=None, input_banks=None):
    """Exactly balanced masks (see the module docstring).

    ``scores`` and ``budget_masks`` per key in the weights' own shape; the budget masks say
    how many weights each layer (rows) or row (banks) keeps (``budgets``, per key, overrides
    a layer's total). Every row of the arrays in ``protect`` (the classifier: a class
    without weights is lost) keeps at least one weight (rows) or one per bank (banks); rows
    of hidden layers may go empty (a dead neuron). With ``permute`` the hidden neurons
    between consecutive dense arrays are reordered (banks: by their kept counts, most first;
    rows: so that the lanes' counts in the budget are even, :func:`lane_assignment`);
    returns ``(masks, perms)`` then, ``perms[key]`` the new order of that array's output
    neurons (apply it with :func:`permute_hidden`), else just the masks. ``input_banks``
    (banks): per key, the bank of every input (default ``i mod G``).
    """
    input_banks = input_banks or {}
    out, dead, perms, order = {}, None, {}, None
    keys = list(scores)
    for n, (key, s) in enumerate(scores.items()):
        if order is not None and kinds[key] == "dense" and s.shape[0] == len(order):
            s = s[order]                                   # inputs follow the previous order
            budget_masks = {**budget_masks, key: budget_masks[key][order]}
        order = None
        keep_rows = key in protect
        kind = kinds[key]
        sr = as_rows(s, kind)
        if dead is not None and kind == "dense" and len(dead) == sr.shape[1]:
            # inputs from neurons the previous layer left empty carry only a bias: rank them
            # below every live input
            sr = np.where(dead[None, :], sr - (sr.max() + 1.0), sr)
        kept = as_rows(budget_masks[key], kind)
        total = int(kept.sum()) if budgets is None or key not in budgets else int(budgets[key])
        n_out, n_in = sr.shape
        hidden = (kind == "dense" and key not in protect and n + 1 < len(keys)
                  and kinds[keys[n + 1]] == "dense")
        if permute and layout == "rows" and hidden:
            order = lane_assignment(kept.sum(axis=1), groups)
            perms[key] = order
            sr, kept = sr[order], kept[order]
        check_groups(groups, layout, n_out, n_in, f"Layer {key[0]}")
        m = np.zeros((n_out, n_in), dtype=bool)
        if layout == "rows":
            lanes = [np.flatnonzero(np.arange(n_out) % groups == g) for g in range(groups)]
            cap = min(len(rows) for rows in lanes) * n_in
            floor = max(len(r) for r in lanes) if keep_rows else 1
            K = min(max(int(round(total / groups)), floor), cap)
            for rows in lanes:
                sub = sr[rows]                                            # (rows in lane, n_in)
                pick = np.zeros(sub.shape, dtype=bool)
                if keep_rows:                                             # one per row first
                    pick[np.arange(len(rows)), np.argmax(sub, axis=1)] = True
                rest = np.where(pick, -np.inf, sub).ravel()
                extra = np.argsort(-rest, kind="stable")[:K - int(pick.sum())]
                pick.ravel()[extra] = True
                m[rows] = pick
        else:
            bank = input_banks.get(key)
            bank = bank_of(n_in, groups) if bank is None else np.asarray(bank)
            banks = [np.flatnonzero(bank == g) for g in range(groups)]
            cap = min(len(b) for b in banks)
            # S[o, k, g]: the k-th best score of bank g in row o; a "slice" k of row o is its
            # k-th best weight in every bank, worth v[o, k] = Σ_g S[o, k, g] (decreasing in k).
            S = np.stack([-np.sort(-sr[:, b], axis=1)[:, :cap] for b in banks], axis=2)
            v = S.sum(axis=2)                                             # (n_out, cap)
            n_slices = min(max(int(round(total / groups)), n_out if keep_rows else 0),
                           n_out * cap)
            take = np.zeros((n_out, cap), dtype=bool)
            if keep_rows:
                take[:, 0] = True
            rest = np.where(take, -np.inf, v).ravel()
            take.ravel()[np.argsort(-rest, kind="stable")[:n_slices - int(take.sum())]] = True
            for o in range(n_out):
                K = int(take[o].sum())                                    # a prefix of slices
                for cols in banks:
                    m[o, cols[np.argsort(-sr[o, cols], kind="stable")[:K]]] = True
        if permute and layout == "banks" and hidden:
            order = np.argsort(-m.sum(axis=1), kind="stable")
            perms[key] = order
            m = m[order]
        out[key] = from_rows(m, s.shape, kind).copy()
        dead = ~m.any(axis=1) if kind == "dense" else None
    if permute:
        return out, perms
    return out


def wasted(masks, kinds):
    """``{key: n}``: kept weights of each dense array whose input neuron the previous dense
    array left without weights (it feeds only its bias, a constant)."""
    keys, out = list(masks), {}
    for a, b in zip(keys, keys[1:]):
        if kinds[a] == kinds[b] == "dense":
            dead = ~masks[a].any(axis=0)                                  # (n_in of b,)
            out[b] = int(masks[b][dead].sum())
    return out


def reallocate(scores, budget_masks, kinds, groups, layout, *, protect=(), rounds=10,
               input_banks=None):
    """:func:`balance_masks` with ``permute``, and the layers' budgets moved (R): weights a
    layer would keep on dead inputs go to the layer before it, which then feeds more live
    neurons, until none is wasted or ``rounds`` are done. The total stays within ``groups``
    of the budget masks' (a row of the classifier keeps at least one weight, one per bank).
    Returns ``(masks, perms)`` of the round with the fewest wasted weights."""
    keys = list(scores)
    n_target = sum(int(budget_masks[k].sum()) for k in keys)
    budgets = {k: int(budget_masks[k].sum()) for k in keys}
    best = None
    for _ in range(rounds):
        masks, perms = balance_masks(scores, budget_masks, kinds, groups, layout,
                                     protect=protect, permute=True, budgets=budgets,
                                     input_banks=input_banks)
        waste = wasted(masks, kinds)
        total = sum(int(m.sum()) for m in masks.values())
        rank = (total > n_target + groups, sum(waste.values()), total)
        if best is None or rank < best[0]:
            best = (rank, masks, perms)
        if not any(waste.values()) and total <= n_target + groups:
            break
        for a, b in zip(keys, keys[1:]):
            if b in waste:
                budgets[b] -= waste[b]
                budgets[a] += waste[b]
        budgets[keys[0]] -= max(0, total - n_target)
    return best[1], best[2]


def permute_hidden(model, keys, perms):
    """Reorder the output neurons of the dense arrays in ``perms`` (W's columns and b) and the
    matching inputs of the next dense array (W's rows), in place; the function is unchanged."""
    for n, key in enumerate(keys):
        if key not in perms:
            continue
        order = perms[key]
        layer = model.layers[key[0]]
        layer.params["W"][...] = layer.params["W"][:, order]
        layer.params["b"][...] = layer.params["b"][order]
        nxt = model.layers[keys[n + 1][0]]
        nxt.params["W"][...] = nxt.params["W"][order, :]


def balanced_prune(model, data, config=BalancedConfig(), *, fit=FitConfig(), finetune=None,
                   keys=None, progress=False):
    """Train with the balance term and prune to exactly balanced groups, in place (method 5);
    returns a :class:`~.Compressed` whose ``info`` names the groups, the layout, the
    per-layer counts and ``input_order``: with banks and an ``input_order`` other than
    ``"natural"``, the order of the first (dense) layer's inputs (``order[position] = input``,
    position q in bank ``q mod G``; the hardware must store the layer in this order), else
    None (input i in bank ``i mod G``). With ``distill`` the model as it comes in is the
    teacher."""
    teacher = teacher_logits(model, data) if fit.distill or (finetune and finetune.distill) \
        else None
    p = config.prune
    keys = list(weight_keys(model) if keys is None else keys)
    kinds = {k: model.layers[k[0]].kind for k in keys}
    for k in keys:
        if kinds[k] not in ("dense", "conv1d", "conv2d"):
            raise ValueError(f"Balanced sparsity handles dense, conv1d and conv2d layers, not "
                             f"layer {k[0]} ({kinds[k]})")
    order, input_banks = None, {}
    first = keys[0]
    if config.layout == "banks" and config.input_order != "natural" and kinds[first] == "dense":
        w = get_param(model, first)                                       # (n_in, n_out)
        if config.input_order != "dealt":
            order = tile_inputs(w.shape[0], config.groups)
        if order is None:
            order = deal_inputs(input_importance(w, data.part("train")[0]), config.groups)
        input_banks[first] = bank_of(len(order), config.groups, order)
    fit = fit.replace(epochs=p.epochs, keep_best=False)
    steps = fit.epochs * -(-len(data.part("train")[1]) // fit.batch_size)
    tr = BalancedTransform(model, keys, groups=config.groups, layout=config.layout,
                           input_banks=input_banks,
                           lam_balance=config.lam_balance, lr_balance=config.lr_balance,
                           **p.transform_kwargs(), total_steps=steps)
    history = train_compressed(model, data, fit, transform=tr, progress=progress,
                               label=f"balance-{config.layout}", teacher=teacher)
    raw = {k: get_param(model, k) for k in keys}
    budget = tr.hard_masks(raw, p.target_sparsity)
    masks, perms = reallocate(tr.scores(raw), budget, kinds, config.groups, config.layout,
                              protect=keys[-1:], input_banks=input_banks)
    permute_hidden(model, keys, perms)
    for k, m in masks.items():
        raw[k][...] *= m
    if p.finetune_epochs:
        ft = (finetune or fit).replace(epochs=p.finetune_epochs, keep_best=True, seed=fit.seed + 1)
        history += train_compressed(model, data, ft, masks=masks, progress=progress,
                                    label="fine-tune", teacher=teacher)
    counts = {f"{i}.{n}": group_counts(as_rows(masks[(i, n)], kinds[(i, n)]).astype(float),
                                       config.groups, config.layout,
                                       input_banks.get((i, n))).astype(int).tolist()
              for i, n in keys}
    info = {"method": "balanced", "groups": config.groups, "layout": config.layout,
            "sparsity": sparsity(model, keys), "layers": layer_sparsity(model, keys),
            "group_counts": counts, "config": config.to_dict(),
            "input_order": None if order is None else [int(i) for i in order]}
    return Compressed(model, masks, info, history)
