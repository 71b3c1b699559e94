"""Method 6's threshold h(w) and every loss term's gradients against finite differences."""

import numpy as np
import pytest

from slimgen.sw.compress.balanced import BalancedTransform
from slimgen.sw.compress.joint_prune_quant import JointConfig, JointTransform
from slimgen.sw.compress.self_prune import SelfPruneConfig, SelfPruneTransform
from slimgen.sw.compress.threshold import Threshold, gated_grads, h, h_grads
from slimgen.sw.nn import build_model, mlp_spec


def _fd(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def test_h_shape_and_edges():
    w = np.array([-1.0, -0.3, 0.0, 0.3, 1.0])
    v = h(w, 0.05, 0.3)
    assert v[2] < 1e-6 and v[0] > 1 - 1e-6 and np.allclose(v[[1, 3]], 0.5)


def test_h_derivatives_match_finite_differences():
    rng = np.random.default_rng(0)
    w, a, b = rng.normal(0, 0.5, 50), 0.2, 0.3
    _, dw, da, db = h_grads(w, a, b)
    assert np.allclose(dw, _fd(lambda x: h(x, a, b), w), atol=1e-6)
    assert np.allclose(da, _fd(lambda x: h(w, x, b), a), atol=1e-6)
    assert np.allclose(db, _fd(lambda x: h(w, a, x), b), atol=1e-6)
    g, gw, ga, gb = gated_grads(w, a, b)
    assert np.allclose(gw, _fd(lambda x: x * h(x, a, b), w), atol=1e-6)
    assert np.allclose(ga, _fd(lambda x: w * h(w, x, b), a), atol=1e-6)
    assert np.allclose(gb, _fd(lambda x: w * h(w, a, x), b), atol=1e-6)


def test_threshold_rejects_bad_values():
    with pytest.raises(ValueError, match=r"^Threshold beta must be positive, not -1$"):
        Threshold(0.1, -1)


def test_clamp_holds_alpha_between_its_floor_and_ceiling_of_beta():
    t = Threshold(5.0, 2.0)                       # α far above β: h(0) = σ(−0.16) ≈ 0.46
    t.clamp(0.2)
    assert t.alpha == 5.0                         # no ceiling given: only the floor acts
    t.clamp(0.2, 1.0)
    assert t.alpha == 2.0 and t.beta == 2.0
    assert h(0.0, t.alpha, t.beta) <= 1 / (1 + np.e) + 1e-12  # h(0) ≤ σ(−1)
    t.params["alpha"][...] = 0.1
    t.clamp(0.2, 1.0)
    assert np.isclose(t.alpha, 0.4)               # the floor 0.2 β
    t.params["alpha"][...] = 3.0
    t.params["beta"][...] = -1.0                  # β below its floor: α follows the floored β
    t.clamp(0.2, 1.0)
    assert t.beta == 1e-6 and t.alpha == 1e-6


@pytest.mark.parametrize("cap, expect", [(1.0, 0.3), (None, 0.9)])
def test_self_prune_transform_applies_the_ceiling_after_every_step(cap, expect):
    model = _model()
    tr = SelfPruneTransform(model, alpha_max_ratio=cap)
    raw = {k: model.layers[k[0]].params[k[1]] for k in tr.keys}
    for t in tr.thresholds.values():
        t.params["beta"][...] = 0.3
        t.params["alpha"][...] = 0.9              # as if the loss had widened the edges
    tr.after_step(raw)
    assert all(np.isclose(t.alpha, expect) for t in tr.thresholds.values())


def _check_penalty(tr, raw):
    """dP/dW, dP/dα, dP/dβ of a transform's penalty against finite differences."""
    tr.zero_grad()
    _, grads = tr.penalty(raw)
    eps = 1e-6
    for key, w in raw.items():
        for idx in [(0, 0), (3, 1), (w.shape[0] - 1, w.shape[1] - 1)]:
            old = w[idx]
            w[idx] = old + eps
            p1 = tr.penalty(raw)[0]
            w[idx] = old - eps
            p0 = tr.penalty(raw)[0]
            w[idx] = old
            assert np.isclose(grads[key][idx], (p1 - p0) / (2 * eps), rtol=1e-4, atol=1e-8)
        t = tr.thresholds[key]
        tr.zero_grad()
        tr.penalty(raw)
        for name in ("alpha", "beta"):
            analytic = float(t.grads[name])
            old = float(t.params[name])
            t.params[name][...] = old + eps
            p1 = tr.penalty(raw)[0]
            t.params[name][...] = old - eps
            p0 = tr.penalty(raw)[0]
            t.params[name][...] = old
            tr.zero_grad()
            tr.penalty(raw)
            assert np.isclose(analytic, (p1 - p0) / (2 * eps), rtol=1e-4, atol=1e-8)


def _model():
    return build_model(mlp_spec((16, 12, 10)), np.random.default_rng(1))


def test_soft_l0_gradients():
    m = _model()
    tr = SelfPruneTransform(m, lam=0.7)
    _check_penalty(tr, {k: m.layers[k[0]].params[k[1]] for k in tr.keys})


@pytest.mark.parametrize("layout", ["rows", "banks"])
def test_balance_variance_gradients(layout):
    m = _model()
    tr = BalancedTransform(m, None, groups=4, layout=layout, lam_balance=3.0, lam=0.5)
    _check_penalty(tr, {k: m.layers[k[0]].params[k[1]] for k in tr.keys})


def test_gated_backward_matches_finite_differences():
    """The gradient the raw weights and thresholds get through w·h(w) (loss = Σ G ⊙ w_eff)."""
    m = _model()
    tr = SelfPruneTransform(m)
    key = tr.keys[0]
    w = m.layers[0].params["W"]
    G = np.random.default_rng(2).normal(size=w.shape)
    tr.zero_grad()
    dw = tr.backward(key, w, G)
    eps = 1e-6
    w[2, 3] += eps
    up = np.sum(G * tr.forward(key, w))
    w[2, 3] -= 2 * eps
    dn = np.sum(G * tr.forward(key, w))
    w[2, 3] += eps
    assert np.isclose(dw[2, 3], (up - dn) / (2 * eps), rtol=1e-5)


def test_joint_bit_width_gradients():
    """∂/∂θ of the weight- and feature-map-width terms and of w_q through the softmax."""
    m = _model()
    tr = JointTransform(m, None, JointConfig(target_bits=None, lam_bits=0.3, lam_act=0.2),
                        total_steps=1)
    raw = {k: m.layers[k[0]].params[k[1]] for k in tr.keys}
    key = tr.keys[0]
    th = tr.theta[key]
    th[...] = [0.1, -0.2, 0.3, 0.0, 0.5]
    tr.theta_a[1][...] = [0.2, -0.1, 0.4]
    tr.zero_grad()
    tr.penalty(raw)
    eps = 1e-6
    pairs = ((th, tr.theta_grad[key].copy()), (tr.theta_a[1], tr.theta_a_grad[1].copy()))
    for arr, grad in pairs:
        for j in range(len(arr)):
            arr[j] += eps
            p1 = tr.penalty(raw)[0]
            arr[j] -= 2 * eps
            p0 = tr.penalty(raw)[0]
            arr[j] += eps
            assert np.isclose(grad[j], (p1 - p0) / (2 * eps), rtol=1e-4, atol=1e-9)
    # w_q: loss Σ G ⊙ w_q(θ), rounding held fixed
    G = np.random.default_rng(3).normal(size=raw[key].shape)
    tr.zero_grad()
    tr.forward(key, raw[key])
    tr.backward(key, raw[key], G)
    g = tr.theta_grad[key].copy()
    for j in range(len(th)):
        th[j] += eps
        p1 = np.sum(G * tr.forward(key, raw[key]))
        th[j] -= 2 * eps
        p0 = np.sum(G * tr.forward(key, raw[key]))
        th[j] += eps
        assert np.isclose(g[j], (p1 - p0) / (2 * eps), rtol=1e-4, atol=1e-9)


def test_config_sets_every_threshold_argument_of_the_transform():
    """Self-prune, joint and balanced build their transform from ``transform_kwargs``: it must
    name every keyword of the transform but the step count, with the config's values."""
    import inspect
    params = inspect.signature(SelfPruneTransform.__init__).parameters
    names = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {"total_steps"}
    cfg = SelfPruneConfig(target_sparsity=0.8, lam=0.5, alpha_max_ratio=1.5)
    kw = cfg.transform_kwargs()
    assert set(kw) == names
    assert all(kw[n] == getattr(cfg, n) for n in names)
