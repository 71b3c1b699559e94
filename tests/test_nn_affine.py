"""ChannelAffine: gradients against finite differences, insertion, and folding."""

import numpy as np
import pytest

from slimgen.sw.nn import (ChannelAffine, build_model, cnn_spec, deep_cnn_spec,
                           fold_channel_affine, insert_channel_affine, mlp_spec, predict)
from slimgen.sw.nn.gradcheck import layer_gradients, max_rel_error


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 4)])
def test_gradients_match_finite_differences(shape):
    rng = np.random.default_rng(0)
    layer = ChannelAffine(3)
    layer.params["gamma"][:] = rng.uniform(0.5, 2, 3)
    layer.params["beta"][:] = rng.normal(size=3)
    for name, (analytic, numerical) in layer_gradients(layer, rng.normal(size=shape),
                                                       rng).items():
        assert max_rel_error(analytic, numerical) < 1e-7, name


def test_forward_is_the_formula():
    layer = ChannelAffine(2)
    layer.params["gamma"][:] = [2.0, -1.0]
    layer.params["beta"][:] = [0.5, 3.0]
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(layer.forward(x)[0, 0], 2 * x[0, 0] + 0.5)
    np.testing.assert_array_equal(layer.forward(x)[0, 1], -x[0, 1] + 3)


def _trained_like(model, rng):
    for layer in model.layers:
        for p in layer.params.values():
            p += 0.3 * rng.normal(size=p.shape)
    return model


@pytest.mark.parametrize("spec,shape", [(deep_cnn_spec(depth=4), (6, 1, 8, 8)),
                                        (mlp_spec((6, 5, 4, 3)), (6, 6))])
def test_insertion_keeps_the_function_and_folding_removes_it(spec, shape):
    rng = np.random.default_rng(1)
    base = build_model(spec, rng)
    linear = [i for i, layer in enumerate(base.layers) if layer.kind in ("dense", "conv2d")][:-1]
    x = rng.uniform(size=shape)
    model = insert_channel_affine(base, linear)
    assert sum(layer.kind == "affine" for layer in model.layers) == len(linear)
    np.testing.assert_array_equal(predict(model, x), predict(base, x))  # γ = 1, β = 0
    _trained_like(model, rng)
    folded = fold_channel_affine(model)
    assert folded.spec() == base.spec()
    np.testing.assert_allclose(predict(folded, x), predict(model, x), rtol=1e-10, atol=1e-10)


def test_errors():
    model = build_model(cnn_spec(channels=(2,)))
    with pytest.raises(ValueError) as e:
        insert_channel_affine(model, [1])
    assert str(e.value) == ("ChannelAffine can follow only dense or conv2d layers, "
                            "not layer 1 (relu)")
    with pytest.raises(ValueError) as e:
        ChannelAffine(0)
    assert str(e.value) == "ChannelAffine n_channels must be a positive integer, not 0"
    with pytest.raises(ValueError) as e:
        ChannelAffine(2).forward(np.ones((1, 3)))
    assert str(e.value) == "ChannelAffine expects 2 channels, got 3"
