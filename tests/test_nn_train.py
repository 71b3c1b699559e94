"""The trainer: config validation, determinism, early stopping, schedules, gradient clipping,
regularizer protocol, and the MLP accuracy the flow relies on (slow)."""

import io

import numpy as np
import pytest

from slimgen.sw.data import load_digits
from slimgen.sw.nn import (TrainConfig, build_model, cnn_spec, evaluate, lstm_spec, mlp_spec,
                           softmax_cross_entropy, train)
from slimgen.sw.nn.augment import shift_images
from slimgen.sw.nn.gradcheck import max_rel_error, numerical_grad
from slimgen.sw.nn.train import ProgressBar, clip_gradients, smoothed_cross_entropy


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.mark.parametrize("kwargs,message", [
    ({"epochs": 0}, "epochs must be a positive integer, not 0"),
    ({"batch_size": 2.0}, "batch_size must be a positive integer, not 2.0"),
    ({"lr": 0.0}, "lr must be positive, not 0.0"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam, not 'rmsprop'"),
    ({"schedule": "exp"}, "schedule must be one of constant, cosine, step, linear, not 'exp'"),
    ({"patience": -1}, "patience must be a non-negative integer, not -1"),
    ({"momentum": 1.0}, "momentum must be in [0, 1), not 1.0"),
    ({"grad_clip": -1.0}, "grad_clip must be non-negative, not -1.0"),
    ({"augment_shift": -1}, "augment_shift must be a non-negative integer, not -1"),
    ({"augment_shift": 1.5}, "augment_shift must be a non-negative integer, not 1.5"),
    ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1), not 1.0"),
    ({"label_smoothing": -0.1}, "label_smoothing must be in [0, 1), not -0.1"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError) as e:
        TrainConfig(**kwargs)
    assert str(e.value) == message


def test_config_round_trip():
    cfg = TrainConfig(optimizer="sgd", schedule="cosine", patience=3, augment_shift=1,
                      label_smoothing=0.1)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_config_new_options_default_off():
    """A config written before the options existed reads back as before: both off."""
    d = TrainConfig().to_dict()
    del d["augment_shift"], d["label_smoothing"]
    cfg = TrainConfig.from_dict(d)
    assert cfg.augment_shift == 0 and cfg.label_smoothing == 0.0


def test_smoothed_cross_entropy():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
    for a, b in zip(smoothed_cross_entropy(z, y, 0.0), softmax_cross_entropy(z, y)):
        np.testing.assert_array_equal(a, b)
    eps = 0.2
    loss, dLdz = smoothed_cross_entropy(z, y, eps)
    q = np.full((5, 4), eps / 4)
    q[np.arange(5), y] += 1 - eps
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert loss == pytest.approx(-np.sum(q * logp) / 5)
    num = numerical_grad(lambda: smoothed_cross_entropy(z, y, eps)[0], z)
    assert max_rel_error(dLdz, num) < 1e-6


def _recorded_inputs(model):
    seen = []
    forward = model.forward

    def recording(x, train=False):
        if train:
            seen.append(x.copy())
        return forward(x, train=train)
    model.forward = recording
    return seen


def test_augment_shift_feeds_shifted_samples(digits):
    """Same shuffling with and without the option; with it, samples are shifted copies."""
    cfg = TrainConfig(epochs=1, batch_size=256, seed=2)
    plain = build_model(mlp_spec(), np.random.default_rng(0))
    shifted = build_model(mlp_spec(), np.random.default_rng(0))
    a, b = _recorded_inputs(plain), _recorded_inputs(shifted)
    train(plain, digits, cfg, progress=False)
    train(shifted, digits, TrainConfig(**{**cfg.to_dict(), "augment_shift": 1}), progress=False)
    assert len(a) == len(b) == 6
    xa, xb = np.concatenate(a).reshape(-1, 8, 8), np.concatenate(b).reshape(-1, 8, 8)
    moved = same = 0
    for u, v in zip(xa, xb):
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                  if np.array_equal(shift_images(u[None], [dy], [dx])[0], v)]
        assert shifts, "an augmented sample is not a ≤1-pixel shift of the plain one"
        moved += (0, 0) not in shifts
        same += np.array_equal(u, v)
    assert moved > 0.7 * len(xa) and same > 0   # 8 of 9 shifts move a sample


@pytest.mark.parametrize("options", [{"augment_shift": 1}, {"label_smoothing": 0.1},
                                     {"augment_shift": 2, "label_smoothing": 0.05}])
def test_new_options_same_seed_same_bits(digits, options):
    cfg = TrainConfig(epochs=2, batch_size=32, seed=1, **options)
    a, b, c = (build_model(mlp_spec(), np.random.default_rng(0)) for _ in range(3))
    ha, hb = train(a, digits, cfg, progress=False), train(b, digits, cfg, progress=False)
    hc = train(c, digits, TrainConfig(epochs=2, batch_size=32, seed=1), progress=False)
    assert ha == hb and ha != hc
    for k, v in a.state().items():
        np.testing.assert_array_equal(v, b.state()[k])


def test_augmented_training_learns_every_view():
    for view, spec, epochs in (("vector", mlp_spec(), 2), ("image", cnn_spec(channels=(4, 8)), 2),
                               ("sequence", lstm_spec(n_hidden=16), 4)):
        data = load_digits(view=view, seed=0)
        model = build_model(spec, np.random.default_rng(0))
        train(model, data, TrainConfig(epochs=epochs, batch_size=16, lr=3e-3, augment_shift=1,
                                       label_smoothing=0.1), progress=False)
        assert evaluate(model, *data.part("test")) > 0.5, view


def test_same_seed_same_bits(digits):
    cfg = TrainConfig(epochs=2, seed=3)
    a, b = (build_model(mlp_spec(), np.random.default_rng(0)) for _ in range(2))
    ha, hb = train(a, digits, cfg, progress=False), train(b, digits, cfg, progress=False)
    assert ha == hb
    for k, v in a.state().items():
        np.testing.assert_array_equal(v, b.state()[k])


def test_early_stopping_and_best_epoch(digits):
    model = build_model(mlp_spec(), np.random.default_rng(0))
    hist = train(model, digits, TrainConfig(epochs=200, lr=3e-3, patience=3), progress=False)
    assert len(hist) < 200
    best = max(h["val_acc"] for h in hist)
    assert evaluate(model, *digits.part("val")) == best


def test_sgd_cosine_with_warmup_learns(digits):
    model = build_model(mlp_spec(), np.random.default_rng(0))
    cfg = TrainConfig(epochs=8, batch_size=16, lr=0.05, optimizer="sgd", nesterov=True,
                      schedule="cosine", warmup_epochs=1, weight_decay=1e-4, grad_clip=5.0)
    hist = train(model, digits, cfg, progress=False)
    assert hist[-1]["lr"] < 1e-3 < hist[1]["lr"]
    assert evaluate(model, *digits.part("test")) > 0.9


def test_cnn_and_lstm_learn_quickly():
    for view, spec in (("image", cnn_spec(channels=(4, 8))), ("sequence", lstm_spec(n_hidden=16))):
        data = load_digits(view=view, seed=0)
        model = build_model(spec, np.random.default_rng(0))
        train(model, data, TrainConfig(epochs=2, batch_size=16, lr=3e-3), progress=False)
        assert evaluate(model, *data.part("test")) > 0.5, view


def test_clip_gradients():
    model = build_model(mlp_spec((2, 2)))
    model.layers[0].grads["W"] = np.full((2, 2), 3.0)
    model.layers[0].grads["b"] = np.full(2, 4.0)
    norm = clip_gradients(model, 1.0)
    assert norm == pytest.approx(np.sqrt(4 * 9 + 2 * 16))
    total = sum(np.sum(g * g) for _, _, g in model.named_parameters())
    assert total == pytest.approx(1.0)


def test_regularizer_protocol(digits):
    calls = []

    class Counting:
        def attach(self, model):
            calls.append("attach")

        def detach(self):
            calls.append("detach")

        def penalty(self):
            return 0.5

        def step(self):
            calls.append("step")

        def epoch_end(self):
            return {"extra": 1.0}

    model = build_model(mlp_spec(), np.random.default_rng(0))
    hist = train(model, digits, TrainConfig(epochs=1, batch_size=512), progress=False,
                 regularizers=[Counting()])
    assert calls == ["attach", "step", "step", "step", "detach"]  # 1,293 samples: 3 batches
    assert hist[0]["penalty"] == pytest.approx(0.5) and hist[0]["extra"] == 1.0


def test_progress_bar_shows_loss_and_accuracy():
    out = io.StringIO()
    bar = ProgressBar(2, "train", stream=out)
    bar.update(loss=0.5, acc=0.9)
    bar.update(loss=0.25, acc=0.95)
    text = out.getvalue()
    assert "2/2" in text and "loss 0.2500" in text and "acc 0.9500" in text and text.endswith("\n")


@pytest.mark.slow
def test_default_mlp_contract(digits):
    """The flow's contract: the default config gives ≥ 96 % MLP test accuracy for seeds 0..4."""
    for seed in range(5):
        model = build_model(mlp_spec((64, 32, 10)), np.random.default_rng(seed))
        train(model, digits, TrainConfig(seed=seed), progress=False)
        assert evaluate(model, *digits.part("test")) >= 0.96, seed
