"""Compression methods: masks held at zero, exact balance, sign-directed updates, LSTM gates,
determinism per seed, and error messages word for word."""

import numpy as np
import pytest

from slimgen.sw.compress.balanced import (BalancedConfig, as_rows, balance_masks,
                                          balanced_prune, group_counts, lane_assignment,
                                          permute_hidden, reallocate, wasted)
from slimgen.sw.compress.joint_prune_quant import FixedQuant, JointConfig, joint_prune_quantize
from slimgen.sw.compress.lstm_gate_prune import GatePruneConfig, lstm_gate_prune
from slimgen.sw.compress.magnitude import (MagnitudeConfig, magnitude_masks, magnitude_prune,
                                           quantize_dequantize)
from slimgen.sw.compress.masked_train import (FitConfig, distill_loss, sparsity,
                                              train_compressed, weight_keys)
from slimgen.sw.compress.self_prune import SelfPruneConfig, self_prune
from slimgen.sw.compress.sign_sparsify import (SignSparsifyConfig, sample_delta, sign_shrink,
                                               sign_sparsify)
from slimgen.sw.data import load_digits
from slimgen.sw.nn import build_model, lstm_spec, mlp_spec
from slimgen.sw.network import preset
from slimgen.sw.quantize import QuantConfig, quantize_network

FIT = FitConfig(epochs=2, batch_size=64, lr=1e-3, lr_threshold=1e-2)
SP = SelfPruneConfig(target_sparsity=0.9, epochs=3, finetune_epochs=2, lr_lambda=0.1)


@pytest.fixture(scope="module")
def digits():
    return load_digits(view="vector", seed=0)


def _mlp(seed=0, sizes=(64, 16, 10)):
    return build_model(mlp_spec(sizes), np.random.default_rng(seed))


def test_masks_held_at_zero_during_retraining(digits):
    m = _mlp()
    keys = weight_keys(m)
    masks = magnitude_masks({k: m.layers[k[0]].params[k[1]] for k in keys}, 0.8)
    train_compressed(m, digits, FIT.replace(weight_decay=0.1), masks=masks)
    for k, mask in masks.items():
        w = m.layers[k[0]].params[k[1]]
        assert np.all(w[~mask] == 0) and np.all(w[mask] != 0)


def test_keep_best_with_a_transform_restores_the_best_raw_weights(digits):
    from slimgen.sw.nn import evaluate
    m = _mlp()
    keys = weight_keys(m)
    masks = magnitude_masks({k: m.layers[k[0]].params[k[1]] for k in keys}, 0.8)
    fq = FixedQuant(keys, [3, 3], masks)
    h = train_compressed(m, digits, FIT.replace(epochs=6, lr=3e-2, keep_best=True), transform=fq)
    for k in keys:
        m.layers[k[0]].params[k[1]][...] = fq.forward(k, m.layers[k[0]].params[k[1]])
    assert evaluate(m, *digits.part("val")) == max(r["val_acc"] for r in h)


def test_gradual_magnitude_reaches_exact_sparsity(digits):
    for scope in ("layer", "global"):
        r = magnitude_prune(_mlp(), digits, MagnitudeConfig(target_sparsity=0.9, scope=scope,
                                                             epochs=2, finetune_epochs=1,
                                                             frequency=3), fit=FIT)
        assert abs(sparsity(r.model) - 0.9) < 1e-3


def test_self_prune_hits_target_and_keeps_masks(digits):
    r = self_prune(_mlp(), digits, SP, fit=FIT)
    assert abs(r.info["sparsity"] - 0.9) < 1e-3
    for k, mask in r.masks.items():
        assert np.all(r.model.layers[k[0]].params[k[1]][~mask] == 0)


@pytest.mark.parametrize("layout", ["rows", "banks"])
@pytest.mark.parametrize("groups", [4, 8])
def test_balance_masks_exact(layout, groups):
    """Random scores, including the small 10-output last layer: every group equal, no class
    without weights."""
    m = _mlp(sizes=(64, 24, 10))
    rng = np.random.default_rng(groups)
    keys = weight_keys(m)
    scores = {k: rng.random(m.layers[k[0]].params[k[1]].shape) for k in keys}
    budget = {k: s > 0.93 for k, s in scores.items()}
    kinds = {k: "dense" for k in keys}
    masks = balance_masks(scores, budget, kinds, groups, layout, protect=keys[-1:])
    for k in keys:
        c = group_counts(as_rows(masks[k], "dense").astype(float), groups, layout)
        if layout == "rows":
            assert len(set(c.tolist())) == 1
        else:
            assert all(len(set(row)) == 1 for row in c.tolist())
    last = as_rows(masks[keys[-1]], "dense")
    assert np.all(last.sum(axis=1) >= (groups if layout == "banks" else 1))


def test_lane_assignment_evens_the_lanes():
    counts = np.array([9, 9, 9, 9, 1, 1, 1, 1])                 # natural order: lanes 10 and 10
    order = lane_assignment(counts, 2)
    assert sorted(order.tolist()) == list(range(8))
    lanes = [counts[order[g::2]].sum() for g in range(2)]
    assert lanes == [20, 20]
    counts = np.array([5, 5, 0, 0, 0, 0])                       # both big rows in lane 0 before
    order = lane_assignment(counts, 2)
    assert [counts[order[g::2]].sum() for g in range(2)] == [5, 5]


@pytest.mark.parametrize("layout", ["rows", "banks"])
@pytest.mark.parametrize("groups", [4, 8])
def test_reallocate_exact_and_less_waste(layout, groups):
    """Permuted and re-budgeted masks stay exactly balanced, keep the budget's total (within
    one slice), and waste fewer weights on dead neurons than the first round."""
    m = _mlp(sizes=(64, 64, 10))
    rng = np.random.default_rng(groups)
    keys = weight_keys(m)
    scores = {k: rng.random(m.layers[k[0]].params[k[1]].shape) for k in keys}
    budget = {keys[0]: scores[keys[0]] > 0.995, keys[1]: scores[keys[1]] > 0.6}
    kinds = {k: "dense" for k in keys}
    first, _ = balance_masks(scores, budget, kinds, groups, layout, protect=keys[-1:],
                             permute=True)
    masks, perms = reallocate(scores, budget, kinds, groups, layout, protect=keys[-1:])
    for k in keys:
        c = group_counts(as_rows(masks[k], "dense").astype(float), groups, layout)
        assert (len(set(c.tolist())) == 1 if layout == "rows"
                else all(len(set(row)) == 1 for row in c.tolist()))
    n = sum(int(b.sum()) for b in budget.values())
    assert abs(sum(int(x.sum()) for x in masks.values()) - n) <= groups
    assert sum(wasted(masks, kinds).values()) < sum(wasted(first, kinds).values())
    assert sorted(perms[keys[0]].tolist()) == list(range(64))


def test_permute_hidden_keeps_the_function(digits):
    m = _mlp(sizes=(64, 16, 10))
    x = digits.part("test")[0]
    before = m.forward(x)
    keys = weight_keys(m)
    permute_hidden(m, keys, {keys[0]: np.random.default_rng(1).permutation(16)})
    assert np.allclose(m.forward(x), before)


def test_distill_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    z, t, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    _, g = distill_loss(z, y, t, 0.7, 3.0)
    eps, num = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = (distill_loss(zp, y, t, 0.7, 3.0)[0] - distill_loss(zm, y, t, 0.7, 3.0)[0]) \
            / (2 * eps)
    assert np.allclose(g, num, atol=1e-7)


@pytest.mark.parametrize("layout", ["rows", "banks"])
def test_balanced_prune_is_exact_after_training(digits, layout):
    r = balanced_prune(_mlp(), digits, BalancedConfig(groups=4, layout=layout, prune=SP), fit=FIT)
    for k in weight_keys(r.model):
        w = as_rows(r.model.layers[k[0]].params[k[1]], "dense")
        c = group_counts((w != 0).astype(float), 4, layout)
        assert (len(set(c.tolist())) == 1 if layout == "rows"
                else all(len(set(row)) == 1 for row in c.tolist()))
    assert r.info["groups"] == 4 and r.info["layout"] == layout


def test_sign_shrink_never_crosses_zero():
    rng = np.random.default_rng(0)
    for dist in ("halfnormal", "uniform", "exponential"):
        w = rng.normal(size=1000)
        before = np.sign(w)
        for _ in range(20):
            sign_shrink(w, sample_delta(rng, dist, 0.05, w.shape))
            s = np.sign(w)
            assert np.all((s == before) | (s == 0))
        assert np.all(np.abs(w) <= 1e9) and np.mean(w == 0) > 0.3


def test_sign_sparsify_runs_to_target(digits):
    cfg = SignSparsifyConfig(target_sparsity=0.8, epochs=3, finetune_epochs=1, lr_scale=0.2)
    r = sign_sparsify(_mlp(), digits, cfg, fit=FIT.replace(optimizer="sgd", lr=0.02))
    assert r.info["sparsity"] >= 0.8 - 1e-3


def test_sign_average_mask_keeps_the_largest_mean_magnitudes(digits):
    """With ``average`` the mask keeps exactly round((1 − target) · N) weights, the largest mean
    |w| over the final steps (a weight that hovers near zero loses to a steady one), and holds
    them through fine-tuning."""
    from slimgen.sw.compress import sign_sparsify as ss
    seen = []

    class Spy(ss.SignSparsifier):
        def after_step(self, state):
            super().after_step(state)
            if self.average_from is not None and state.step >= self.average_from:
                seen.append({k: np.abs(ss.get_param(state.model, k)).copy() for k in self.keys})

    cfg = SignSparsifyConfig(target_sparsity=0.8, epochs=3, finetune_epochs=1, lr_scale=0.2,
                             average=0.5)
    orig, ss.SignSparsifier = ss.SignSparsifier, Spy
    try:
        r = sign_sparsify(_mlp(), digits, cfg, fit=FIT.replace(optimizer="sgd", lr=0.02))
    finally:
        ss.SignSparsifier = orig
    n = sum(m.size for m in r.masks.values())
    assert sum(int(m.sum()) for m in r.masks.values()) == round(0.2 * n)
    assert len(seen) == round(0.5 * 3 * -(-len(digits.part("train")[1]) // 64))
    mean = {k: sum(s[k] for s in seen) / len(seen) for k in r.masks}
    assert all(np.array_equal(m, want) for m, want in
               zip(r.masks.values(), magnitude_masks(mean, 0.8, "global").values()))
    for k, m in r.masks.items():
        assert np.all(r.model.layers[k[0]].params[k[1]][~m] == 0)


def test_joint_golden_weights_are_exact(digits):
    """The artifact weights are on the chosen grid: the quantizer recovers them exactly."""
    cfg = JointConfig(target_bits=4.0, prune=SP)
    r = joint_prune_quantize(_mlp(), digits, cfg, fit=FIT)
    bits = r.info["layer_weight_bits"]
    sizes = [r.model.layers[0].n_in] + [l.n_out for l in r.model.layers if l.kind == "dense"]
    q = quantize_network(preset("mlp", sizes=tuple(sizes)), r.model, digits.part("train")[0],
                         input_scale=1 / 16, config=QuantConfig(act_bits=8),
                         layer_weight_bits=bits)
    for layer, ql, k in zip([l for l in r.model.layers if l.kind == "dense"], q.layers, bits):
        W = layer.params["W"]
        assert np.allclose(ql.W.T * ql.w_scale, W, atol=1e-12)
        assert np.all((W == 0) == (ql.W.T == 0))
        assert np.abs(ql.W).max() <= (1 << (k - 1)) - 1


def test_lstm_gate_prune_keeps_cell_dense():
    data = load_digits(view="sequence", seed=0)
    m = build_model(lstm_spec(n_hidden=8), np.random.default_rng(0))
    cfg = GatePruneConfig(gates="if", target_sparsity=0.9, steps=2, finetune_epochs=1)
    r = lstm_gate_prune(m, data, cfg, fit=FIT)
    p = m.layers[0].params
    for name in ("W_i", "W_f", "U_i", "U_f"):
        assert abs(np.mean(p[name] == 0) - 0.9) < 0.02
    for name in ("W_o", "W_c", "U_o", "U_c"):
        assert np.all(p[name] != 0)


def test_lstm_gate_threshold_is_q_times_std():
    data = load_digits(view="sequence", seed=0)
    m = build_model(lstm_spec(n_hidden=8), np.random.default_rng(0))
    W = m.layers[0].params["W_o"].copy()
    cfg = GatePruneConfig(gates="o", q=1.0, target_sparsity=None, steps=1, finetune_epochs=0)
    r = lstm_gate_prune(m, data, cfg, fit=FIT)
    assert np.array_equal(r.masks[(0, "W_o")], np.abs(W) >= np.std(W))


def test_same_seed_same_bits(digits):
    a = self_prune(_mlp(), digits, SP, fit=FIT)
    b = self_prune(_mlp(), digits, SP, fit=FIT)
    for (_, pa, _), (_, pb, _) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert np.array_equal(pa, pb)
    cfg = SignSparsifyConfig(target_sparsity=0.5, epochs=1, finetune_epochs=0)
    a = sign_sparsify(_mlp(), digits, cfg, fit=FIT)
    b = sign_sparsify(_mlp(), digits, cfg, fit=FIT)
    assert all(np.array_equal(pa, pb) for (_, pa, _), (_, pb, _)
               in zip(a.model.named_parameters(), b.model.named_parameters()))


@pytest.mark.parametrize("make, message", [
    (lambda: SelfPruneConfig(target_sparsity=1.0),
     "target_sparsity must be a number in [0, 1), not 1.0"),
    (lambda: SelfPruneConfig(ramp=0), "ramp must be in (0, 1], not 0"),
    (lambda: BalancedConfig(layout="cols"), "layout must be 'rows' or 'banks', not 'cols'"),
    (lambda: BalancedConfig(groups=0), "groups must be a positive integer, not 0"),
    (lambda: SignSparsifyConfig(distribution="gamma"),
     "distribution must be one of halfnormal, uniform, exponential, not 'gamma'"),
    (lambda: SignSparsifyConfig(scale=0), "scale must be positive, not 0"),
    (lambda: SignSparsifyConfig(average=1.5), "average must be in [0, 1], not 1.5"),
    (lambda: SignSparsifyConfig(average=0.1, target_sparsity=None),
     "average needs a target_sparsity"),
    (lambda: SelfPruneConfig(live=1), "live must be True or False, not 1"),
    (lambda: SelfPruneConfig(alpha_max_ratio=0.1),
     "alpha_max_ratio must be positive and at least alpha_min_ratio (0.2), not 0.1"),
    (lambda: SelfPruneConfig(alpha_max_ratio=0, alpha_min_ratio=0),
     "alpha_max_ratio must be positive and at least alpha_min_ratio (0), not 0"),
    (lambda: SelfPruneConfig(average=-0.1), "average must be in [0, 1], not -0.1"),
    (lambda: JointConfig(bits=(1, 4)), "bits must be distinct integers from 2 to 16, not (1, 4)"),
    (lambda: JointConfig(target_bits=9),
     "target_bits must lie between the smallest and largest candidate width (2..8), not 9"),
    (lambda: GatePruneConfig(gates="ic"),
     "gates must be a non-empty subset of 'ifo' (LSTM) and 'rz' (GRU); the candidate 'c' or 'n' stays dense; not 'ic'"),
    (lambda: GatePruneConfig(q=2.0), "Give exactly one of q and target_sparsity"),
    (lambda: MagnitudeConfig(scope="net"), "scope must be 'layer' or 'global', not 'net'"),
    (lambda: FitConfig(epochs=0), "epochs must be a positive integer, not 0"),
    (lambda: FitConfig(distill=1.5), "distill must be in [0, 1], not 1.5"),
    (lambda: quantize_dequantize(np.ones(3), 1), "bits must be an integer from 2 to 16, not 1"),
])
def test_bad_options(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert str(e.value) == message


def test_too_many_groups_for_last_layer(digits):
    cfg = BalancedConfig(groups=12, layout="rows", prune=SP)
    with pytest.raises(ValueError) as e:
        balanced_prune(_mlp(), digits, cfg, fit=FIT)
    assert str(e.value) == ("Layer 2 has 10 output neurons, fewer than the 12 row groups; "
                            "every lane must own at least one")
