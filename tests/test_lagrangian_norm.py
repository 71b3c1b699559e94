"""Method 1: penalty value and gradient against finite differences, multiplier ascent, target
variance descent, which layers are constrained, and that it trains down to batch size 1."""

import numpy as np
import pytest

from slimgen.sw.compress.lagrangian_norm import (LagrangianNorm, LagrangianNormConfig,
                                                 channel_stats, constrained_layers, data_init)
from slimgen.sw.data import load_digits
from slimgen.sw.nn import (TrainConfig, build_model, cnn_spec, deep_cnn_spec, evaluate,
                           insert_channel_affine, lstm_spec, mlp_spec, softmax_cross_entropy,
                           train)
from slimgen.sw.nn.gradcheck import max_rel_error, numerical_grad


def _total_loss(model, ln, x, y):
    loss, _ = softmax_cross_entropy(model.forward(x, train=True), y)
    value = loss + ln.penalty()
    ln._last = {}
    return value


def _check_gradients(model, ln, x, y):
    """The backward pass with the penalty's gradients against finite differences of the loss
    plus the penalty, for every parameter."""
    _, dLdz = softmax_cross_entropy(model.forward(x, train=True), y)
    model.backward(dLdz)
    analytic = {k: g.copy() for k, _, g in model.named_parameters()}
    ln._last = {}
    for key, p, _ in model.named_parameters():
        num = numerical_grad(lambda: _total_loss(model, ln, x, y), p)
        assert max_rel_error(analytic[key], num) < 1e-6, key


_MODELS = [
    (cnn_spec(in_shape=(1, 4, 4), channels=(2, 3)), (3, 1, 4, 4)),
    (cnn_spec(in_shape=(1, 4, 4), channels=(2, 3)), (1, 1, 4, 4)),   # batch 1: spatial stats
    (mlp_spec((5, 4, 3, 2)), (6, 5)),
    (lstm_spec(n_in=3, n_hidden=4, n_classes=2) + [], (3, 2, 3)),
]


# "post" constrains ReLU outputs: only the models that have a ReLU.
@pytest.mark.parametrize("spec,shape,where", [
    (spec, shape, where) for spec, shape in _MODELS for where in ("pre", "post")
    if where == "pre" or any(e["type"] == "relu" for e in spec)])
def test_penalty_gradient_matches_finite_differences(spec, shape, where):
    rng = np.random.default_rng(0)
    model = build_model(spec, rng)
    ln = LagrangianNorm(LagrangianNormConfig(where=where, target_var=0.5)).attach(model)
    x = rng.uniform(size=shape)
    y = rng.integers(0, spec[-1]["n_out"], size=shape[0])
    model.forward(x, train=True)
    for i in list(ln.lam1):  # distinct multipliers per channel
        ln.lam1[i] = rng.uniform(0.5, 2, ln.lam1[i].shape)
        ln.lam2[i] = rng.uniform(0.5, 2, ln.lam2[i].shape)
    _check_gradients(model, ln, x, y)


@pytest.mark.parametrize("spec,shape,running", [
    (spec, shape, running) for spec, shape in _MODELS for running in ("both", "ascent")])
def test_running_penalty_gradient_matches_finite_differences(spec, shape, running):
    # momentum ρ: the penalty uses μ̂ = ρ μ̂_prev + (1 − ρ) μ (and σ̂² alike), μ̂_prev a constant
    # (running="both"), or the batch's μ, σ² with the estimates kept for the ascent ("ascent")
    rng = np.random.default_rng(3)
    model = build_model(spec, rng)
    ln = LagrangianNorm(LagrangianNormConfig(target_var=0.5, momentum=0.7,
                                             running=running)).attach(model)
    x0 = rng.uniform(size=shape)            # an earlier batch starts the running estimates
    model.forward(x0, train=True)
    ln.step()
    assert ln.run_mean
    for i in list(ln.lam1):
        ln.lam1[i] = rng.uniform(0.5, 2, ln.lam1[i].shape)
        ln.lam2[i] = rng.uniform(0.5, 2, ln.lam2[i].shape)
        ln.run_mean[i] = rng.normal(size=ln.run_mean[i].shape)   # far from this batch's μ, σ²
        ln.run_var[i] = rng.uniform(0.1, 3, ln.run_var[i].shape)
    x = rng.uniform(size=shape)
    y = rng.integers(0, spec[-1]["n_out"], size=shape[0])
    _check_gradients(model, ln, x, y)


def test_running_estimates_value_and_ascent():
    rng = np.random.default_rng(4)
    model = build_model(mlp_spec((4, 3, 2)), rng)
    cfg = LagrangianNormConfig(lambda_init=0.1, lr_lambda=0.5, lambda_max=1e6, momentum=0.9)
    ln = LagrangianNorm(cfg).attach(model)
    x1, x2 = 3 + rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    mu1, var1, _, _ = channel_stats(model.layers[0].forward(x1))
    mu2, var2, _, _ = channel_stats(model.layers[0].forward(x2))
    model.forward(x1, train=True)   # the first batch starts the estimates at its own statistics
    assert ln.penalty() == pytest.approx(0.1 * np.sum(mu1 ** 2) + 0.1 * np.sum((var1 - 1) ** 2))
    ln.step()
    np.testing.assert_allclose(ln.run_mean[0], mu1)
    lam1, lam2 = ln.lam1[0].copy(), ln.lam2[0].copy()
    model.forward(x2, train=True)
    mu, var = 0.9 * mu1 + 0.1 * mu2, 0.9 * var1 + 0.1 * var2
    assert ln.penalty() == pytest.approx(np.sum(lam1 * mu ** 2) + np.sum(lam2 * (var - 1) ** 2))
    ln.step()                       # the multipliers ascend on the running estimates
    np.testing.assert_allclose(ln.lam1[0], lam1 + 0.5 * mu ** 2)
    np.testing.assert_allclose(ln.lam2[0], lam2 + 0.5 * (var - 1) ** 2)
    np.testing.assert_allclose(ln.run_var[0], var)


def test_running_estimates_in_the_ascent_only():
    rng = np.random.default_rng(6)
    model = build_model(mlp_spec((4, 3, 2)), rng)
    cfg = LagrangianNormConfig(lambda_init=0.1, lr_lambda=0.5, lambda_max=1e6, momentum=0.9,
                               running="ascent")
    ln = LagrangianNorm(cfg).attach(model)
    x1, x2 = 3 + rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    mu1, var1, _, _ = channel_stats(model.layers[0].forward(x1))
    mu2, var2, _, _ = channel_stats(model.layers[0].forward(x2))
    model.forward(x1, train=True)
    ln.step()
    lam1, lam2 = ln.lam1[0].copy(), ln.lam2[0].copy()
    model.forward(x2, train=True)   # the penalty: this batch's own statistics
    assert ln.penalty() == pytest.approx(np.sum(lam1 * mu2 ** 2) + np.sum(lam2 * (var2 - 1) ** 2))
    ln.step()                       # the ascent: the running estimates
    mu, var = 0.9 * mu1 + 0.1 * mu2, 0.9 * var1 + 0.1 * var2
    np.testing.assert_allclose(ln.lam1[0], lam1 + 0.5 * mu ** 2)
    np.testing.assert_allclose(ln.lam2[0], lam2 + 0.5 * (var - 1) ** 2)


@pytest.mark.parametrize("kwargs", [{"terms": "var"}, {"terms": "mean"}, {"warmup": 4}])
def test_terms_and_warmup_gradient_matches_finite_differences(kwargs):
    spec, shape = _MODELS[0]
    rng = np.random.default_rng(7)
    model = build_model(spec, rng)
    ln = LagrangianNorm(LagrangianNormConfig(target_var=0.5, lambda_init=0.5, lambda_max=2,
                                             **kwargs)).attach(model)
    for _ in range(3):              # warmup 4: the ramp stands at 3/4
        model.forward(rng.uniform(size=shape), train=True)
        ln.step()
    x = rng.uniform(size=shape)
    y = rng.integers(0, spec[-1]["n_out"], size=shape[0])
    _check_gradients(model, ln, x, y)


def test_terms_keep_one_multiplier_at_zero_and_warmup_ramps():
    rng = np.random.default_rng(8)
    x = 3 + rng.normal(size=(8, 4))
    for terms, zero in (("var", "lam1"), ("mean", "lam2")):
        model = build_model(mlp_spec((4, 3, 2)), np.random.default_rng(0))
        ln = LagrangianNorm(LagrangianNormConfig(terms=terms, lr_lambda=0.5)).attach(model)
        model.forward(x, train=True)
        mu, var, _, _ = channel_stats(model.layers[0].forward(x))
        kept = (mu ** 2).sum() if terms == "mean" else ((var - 1) ** 2).sum()
        assert ln.penalty() == pytest.approx(0.01 * kept)
        ln.step()
        assert np.all(getattr(ln, zero)[0] == 0)
    model = build_model(mlp_spec((4, 3, 2)), np.random.default_rng(0))
    ln = LagrangianNorm(LagrangianNormConfig(warmup=2, lr_lambda=0)).attach(model)
    values = []
    for _ in range(4):
        model.forward(x, train=True)
        values.append(ln.penalty())
        ln.step()
    assert values[0] == 0 and values[1] == pytest.approx(values[2] / 2) and values[2] == values[3]
    assert values[2] > 0


def test_running_estimates_train_deterministically():
    data = load_digits(view="image", seed=0)

    def once():
        model = build_model(cnn_spec(channels=(4,)), np.random.default_rng(5))
        ln = LagrangianNorm(LagrangianNormConfig(lambda_init=0.05, momentum=0.9))
        train(model, data, TrainConfig(epochs=1, batch_size=8, lr=1e-3, seed=5),
              progress=False, regularizers=[ln])
        return [p.copy() for _, p, _ in model.named_parameters()], ln.run_var

    (p1, v1), (p2, v2) = once(), once()
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))
    assert all(np.array_equal(v1[i], v2[i]) for i in v1) and v1


def test_penalty_value_is_the_formula():
    rng = np.random.default_rng(1)
    model = build_model(cnn_spec(in_shape=(1, 4, 4), channels=(3,)), rng)
    ln = LagrangianNorm(LagrangianNormConfig(lambda_init=0.5, target_var=2.0)).attach(model)
    x = rng.uniform(size=(4, 1, 4, 4))
    a = model.layers[0].forward(x)                         # conv output (4, 3, 4, 4)
    model.forward(x, train=True)
    mu, var = a.mean(axis=(0, 2, 3)), a.var(axis=(0, 2, 3))
    assert ln.penalty() == pytest.approx(0.5 * np.sum(mu ** 2) + 0.5 * np.sum((var - 2) ** 2))


def test_multipliers_ascend_and_variance_descends():
    rng = np.random.default_rng(2)
    model = build_model(mlp_spec((4, 3, 2)), rng)
    cfg = LagrangianNormConfig(lambda_init=0.1, lr_lambda=0.5, trainable_var=True, lr_var=0.1,
                               lambda_max=1e6)
    ln = LagrangianNorm(cfg).attach(model)
    x = 3 + rng.normal(size=(8, 4))
    model.forward(x, train=True)
    mu, var, _, _ = channel_stats(model.layers[0].forward(x))
    ln.step()
    np.testing.assert_allclose(ln.lam1[0], 0.1 + 0.5 * mu ** 2)
    np.testing.assert_allclose(ln.lam2[0], np.minimum(0.1 + 0.5 * (var - 1) ** 2, cfg.lambda_max))
    # v moves towards σ² by η_v · 2 λ2 (σ² − v), with the λ2 before its ascent
    expected_v = np.maximum(1 + 0.1 * 2 * 0.1 * (var - 1), cfg.min_var)
    np.testing.assert_allclose(ln.var[0], expected_v)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_variance_descends_on_the_ramped_penalty(momentum):
    """With a warm-up, v descends on the penalty the weights see, ``r_t·P``:
    ``Δv = −η_v · ∂(r_t·P)/∂v`` (finite differences of ``penalty()`` in v), not on P; only the
    multipliers' ascent is exempt from the ramp."""
    rng = np.random.default_rng(3)
    model = build_model(mlp_spec((4, 3, 2)), rng)
    cfg = LagrangianNormConfig(lambda_init=0.5, lr_lambda=0.5, trainable_var=True, lr_var=0.1,
                               lambda_max=100.0, warmup=4, momentum=momentum)
    ln = LagrangianNorm(cfg).attach(model)
    moves = []
    for t in range(6):                                 # ramp 0, 1/4, 2/4, 3/4, 1, 1
        model.forward(3 + rng.normal(size=(8, 4)), train=True)
        v = ln.var[0].copy()
        dPdv = numerical_grad(ln.penalty, ln.var[0])
        lam2 = ln.lam2[0].copy()
        ln.step()
        assert np.all(ln.var[0] > cfg.min_var)
        np.testing.assert_allclose(ln.var[0] - v, -0.1 * dPdv, rtol=1e-4, atol=1e-6)
        assert np.all(ln.lam2[0] > lam2)               # the ascent runs from the first step
        moves.append(np.abs(ln.var[0] - v).max())
    assert moves[0] == 0 and all(m > 0 for m in moves[1:])


def test_multipliers_are_clipped():
    model = build_model(mlp_spec((2, 2, 2)))
    ln = LagrangianNorm(LagrangianNormConfig(lr_lambda=1e6, lambda_max=3.0)).attach(model)
    model.forward(np.array([[10.0, -5], [20, 7]]), train=True)
    ln.step()
    assert np.all(ln.lam1[0] <= 3.0) and np.all(ln.lam2[0] == 3.0)


def test_constrained_layers():
    spec = deep_cnn_spec(depth=4)
    model = build_model(spec)
    kinds = [e["type"] for e in spec]
    assert [kinds[i] for i in constrained_layers(model, "pre")] == ["conv2d"] * 4
    assert [kinds[i] for i in constrained_layers(model, "post")] == ["relu"] * 4
    assert constrained_layers(build_model(lstm_spec()), "pre") == [0]
    with pytest.raises(ValueError, match="where must be 'pre' or 'post', not 'mid'"):
        constrained_layers(model, "mid")


def test_dense_batch_of_one_is_left_alone():
    model = build_model(mlp_spec((3, 2, 2)), np.random.default_rng(0))
    ln = LagrangianNorm().attach(model)
    model.forward(np.ones((1, 3)), train=True)
    assert ln.penalty() == 0.0
    assert ln.before_backward(0, np.ones((1, 2))).tolist() == [[1.0, 1.0]]
    ln.step()
    np.testing.assert_array_equal(ln.lam1[0], 0.01)


@pytest.mark.parametrize("kwargs,message", [
    ({"where": "mid"}, "where must be 'pre' or 'post', not 'mid'"),
    ({"target_var": 0.0}, "target_var must be positive, not 0.0"),
    ({"lr_lambda": -1.0}, "lr_lambda must be non-negative, not -1.0"),
    ({"lambda_init": 20.0}, "lambda_init (20.0) must not exceed lambda_max (1.0)"),
    ({"momentum": 1.0}, "momentum must be in [0, 1), not 1.0"),
    ({"momentum": -0.1}, "momentum must be in [0, 1), not -0.1"),
    ({"running": "penalty"}, "running must be 'both' or 'ascent', not 'penalty'"),
    ({"terms": "std"}, "terms must be 'both', 'mean' or 'var', not 'std'"),
    ({"warmup": -1}, "warmup must be a non-negative integer, not -1"),
    ({"warmup": 2.5}, "warmup must be a non-negative integer, not 2.5"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError) as e:
        LagrangianNormConfig(**kwargs)
    assert str(e.value) == message


def test_config_round_trip():
    cfg = LagrangianNormConfig(where="post", trainable_var=True, momentum=0.9,
                               running="ascent", terms="var", warmup=10, project=True)
    assert LagrangianNormConfig.from_dict(cfg.to_dict()) == cfg


def test_trains_at_batch_size_one_and_leaves_no_layer_behind():
    data = load_digits(view="image", seed=0)
    model = build_model(cnn_spec(channels=(4,)), np.random.default_rng(0))
    spec_before = model.spec()
    ln = LagrangianNorm(LagrangianNormConfig(lambda_init=0.05))
    hist = train(model, data, TrainConfig(epochs=1, batch_size=1, lr=1e-3, seed=0),
                 progress=False, regularizers=[ln])
    assert model.spec() == spec_before and model.hooks == []
    assert evaluate(model, *data.part("test")) > 0.75
    assert hist[0]["penalty"] > 0 and np.isfinite(hist[0]["ln_var"])
    assert np.all(ln.lam2[0] >= 0.05)


@pytest.mark.parametrize("spec,shape", _MODELS)
def test_projection_leaves_the_statistics_unmoved_and_keeps_the_penalty(spec, shape):
    # project=True: per channel, g − mean(g) − (Σ g·(a − μ) / Σ (a − μ)²)·(a − μ), then the
    # penalty's gradient is added unchanged
    rng = np.random.default_rng(9)
    model = build_model(spec, rng)
    plain = LagrangianNorm(LagrangianNormConfig(target_var=0.5)).attach(model)
    proj = LagrangianNorm(LagrangianNormConfig(target_var=0.5, project=True)).attach(model)
    model.forward(rng.uniform(size=shape), train=True)
    for i in plain.layers:
        a = plain._last[i][0]
        _, _, m, axes = channel_stats(a)
        if m < 2:
            continue
        for ln in (plain, proj):
            ln.lam1[i] = np.linspace(0.5, 2, len(ln.lam1[i]))
            ln.lam2[i] = np.linspace(2, 0.5, len(ln.lam2[i]))
        g = rng.normal(size=a.shape)
        pen = plain.before_backward(i, np.zeros_like(a))          # the penalty's gradient alone
        np.testing.assert_allclose(proj.before_backward(i, np.zeros_like(a)), pen)
        gp = proj.before_backward(i, g) - pen                      # the projected loss gradient
        ac = a - a.mean(axis=axes, keepdims=True)
        np.testing.assert_allclose(gp.sum(axis=axes), 0, atol=1e-10)
        np.testing.assert_allclose(np.sum(gp * ac, axis=axes), 0, atol=1e-10)
        # g − gp lies in the span of 1 and a − μ, per channel: the least-squares fit of g on them
        r = g - gp
        for c in range(a.shape[1] if a.ndim != 3 else a.shape[-1]):
            sel = (slice(None), c) if a.ndim != 3 else (slice(None), slice(None), c)
            basis = np.stack([np.ones(ac[sel].size), ac[sel].ravel()], axis=1)
            fit, *_ = np.linalg.lstsq(basis, g[sel].ravel(), rcond=None)
            np.testing.assert_allclose(r[sel].ravel(), basis @ fit, atol=1e-10)


def test_projection_is_off_by_default_and_checked():
    assert LagrangianNormConfig().project is False
    with pytest.raises(ValueError) as e:
        LagrangianNormConfig(project=1)
    assert str(e.value) == "project must be True or False, not 1"


def test_penalty_gradient_with_a_channel_affine_after_each_constrained_layer():
    # the penalty acts on the conv outputs, γ and β after them are free (folded at inference)
    rng = np.random.default_rng(10)
    base = build_model(cnn_spec(in_shape=(1, 4, 4), channels=(2, 3)), rng)
    model = insert_channel_affine(base, constrained_layers(base))
    for layer in model.layers:
        if layer.kind == "affine":
            layer.params["gamma"][:] = rng.uniform(0.5, 2, layer.n_channels)
            layer.params["beta"][:] = rng.normal(size=layer.n_channels)
    ln = LagrangianNorm(LagrangianNormConfig(target_var=0.5, lambda_init=0.5)).attach(model)
    assert [model.layers[i].kind for i in ln.layers] == ["conv2d", "conv2d"]
    x = rng.uniform(size=(3, 1, 4, 4))
    _check_gradients(model, ln, x, rng.integers(0, 10, size=3))


@pytest.mark.parametrize("spec,shape,target", [
    (deep_cnn_spec(depth=4, width=5), (40, 1, 8, 8), 1.0),
    (mlp_spec((5, 7, 6, 3)), (50, 5), 2.0),
])
def test_data_init_sets_each_constrained_output(spec, shape, target):
    """After data_init every constrained layer's output has, on the batch it saw, mean 0 and
    variance ``target_var`` per channel (the layers before it already set); before, it had not."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 2.0, shape)
    model = build_model(spec, np.random.default_rng(4))
    layers = constrained_layers(model, "pre")

    def stats():
        out, a = [], x
        for i, layer in enumerate(model.layers):
            a = layer.forward(a)
            if i in layers:
                mu, var, _, _ = channel_stats(a)
                out.append((mu, var))
        return out

    before = stats()
    assert max(np.max(np.abs(v - target)) for _, v in before) > 0.1
    assert data_init(model, x, target_var=target) is model
    for mu, var in stats():
        np.testing.assert_allclose(mu, 0.0, atol=1e-9)
        np.testing.assert_allclose(var, target, rtol=1e-9)
    # the last layer (the logits) is not touched: same weights as a fresh build of the seed
    fresh = build_model(spec, np.random.default_rng(4))
    np.testing.assert_array_equal(model.layers[-1].params["W"], fresh.layers[-1].params["W"])


def test_data_init_with_channel_affine_and_dead_channel():
    """With γ, β after each conv (the bench's layout) the convs are set and γ, β stay 1, 0; a
    channel that is constant on the batch is only shifted, not scaled by a huge factor; the
    result is deterministic."""
    x = np.random.default_rng(0).normal(size=(16, 1, 8, 8))
    models = []
    for _ in range(2):
        m = build_model(deep_cnn_spec(depth=3, width=4), np.random.default_rng(1))
        m.layers[0].params["W"][2] = 0.0   # channel 2 of the first conv: constant (its bias)
        m = insert_channel_affine(m, constrained_layers(m, "pre"))
        data_init(m, x)
        models.append(m)
    a, b = models
    for la, lb in zip(a.layers, b.layers):
        for k in la.params:
            np.testing.assert_array_equal(la.params[k], lb.params[k])
    conv0 = a.layers[0]
    assert np.all(conv0.params["W"][2] == 0.0) and conv0.params["b"][2] == pytest.approx(0.0)
    mu, var, _, _ = channel_stats(conv0.forward(x))
    np.testing.assert_allclose(np.delete(var, 2), 1.0, rtol=1e-9)
    for layer in a.layers:
        if layer.kind == "affine":
            np.testing.assert_array_equal(layer.params["gamma"], 1.0)
            np.testing.assert_array_equal(layer.params["beta"], 0.0)


def test_data_init_refuses():
    model = build_model(cnn_spec(in_shape=(1, 4, 4), channels=(2, 3)), np.random.default_rng(0))
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(ValueError, match="where"):
        data_init(model, x, where="post")
    with pytest.raises(ValueError, match="target_var"):
        data_init(model, x, target_var=0.0)
    with pytest.raises(ValueError, match="lstm"):
        data_init(build_model(lstm_spec(n_in=3, n_hidden=4, n_classes=2),
                              np.random.default_rng(0)), np.zeros((2, 2, 3)))
