"""BatchNorm statistics, running averages, and folding into the preceding layer."""

import numpy as np
import pytest

from slimgen.sw.nn import BatchNorm, build_model, cnn_spec, fold_batchnorm, mlp_spec, predict


def test_batchnorm_normalizes_per_channel_in_training():
    rng = np.random.default_rng(0)
    bn = BatchNorm(3)
    x = 5 + 3 * rng.normal(size=(8, 3, 4, 4))
    y = bn.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-4)
    # running averages moved 10 % of the way to the batch statistics
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)))


def test_batchnorm_inference_uses_running_statistics():
    bn = BatchNorm(2)
    bn.buffers["running_mean"][:] = [1.0, -1.0]
    bn.buffers["running_var"][:] = [4.0, 0.25]
    y = bn.forward(np.array([[3.0, 0.0]]))
    np.testing.assert_allclose(y, [[2 / np.sqrt(4 + 1e-5), 1 / np.sqrt(0.25 + 1e-5)]])


def _trained_like(spec, x):
    rng = np.random.default_rng(1)
    model = build_model(spec, rng)
    for layer in model.layers:
        for p in layer.params.values():
            p += 0.2 * rng.normal(size=p.shape)
    for _ in range(5):  # give the running statistics non-trivial values
        model.forward(x[rng.permutation(len(x))[:16]], train=True)
    return model


@pytest.mark.parametrize("spec,shape", [
    (cnn_spec(batchnorm=True), (20, 1, 8, 8)),
    ([{"type": "dense", "n_in": 6, "n_out": 5}, {"type": "batchnorm", "n_channels": 5},
      {"type": "relu"}, {"type": "dense", "n_in": 5, "n_out": 3}], (20, 6)),
])
def test_folding_gives_the_same_inference_function(spec, shape):
    x = np.random.default_rng(2).uniform(size=shape)
    model = _trained_like(spec, x)
    folded = fold_batchnorm(model)
    assert not any(layer.kind == "batchnorm" for layer in folded.layers)
    assert len(folded.layers) == len(model.layers) - sum(e["type"] == "batchnorm" for e in spec)
    np.testing.assert_allclose(predict(folded, x), predict(model, x), rtol=1e-10, atol=1e-10)


def test_folding_a_model_without_batchnorm_copies_it():
    model = build_model(mlp_spec((4, 3, 2)))
    folded = fold_batchnorm(model)
    assert folded.spec() == model.spec() and folded is not model
    np.testing.assert_array_equal(folded.layers[0].params["W"], model.layers[0].params["W"])


def test_folding_rejects_batchnorm_after_a_nonlinearity():
    model = build_model([{"type": "dense", "n_in": 3, "n_out": 2}, {"type": "relu"},
                         {"type": "batchnorm", "n_channels": 2}])
    with pytest.raises(ValueError, match="BatchNorm at layer 2 follows a relu layer"):
        fold_batchnorm(model)


def test_state_includes_running_statistics():
    model = build_model(cnn_spec(batchnorm=True))
    state = model.state()
    assert "1.running_mean" in state and "1.gamma" in state
    model.layers[1].buffers["running_var"][:] = 7
    model.load_state(state)
    np.testing.assert_array_equal(model.layers[1].buffers["running_var"], 1)
