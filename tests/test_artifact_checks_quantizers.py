"""The quantizers refuse float models they cannot turn into integers (issue 21): a non-finite
weight, calibration input or scale is one clear error naming the layer, never an integer model
with −2^63 in an 8-bit layer."""

import numpy as np
import pytest

from slimgen.sw.cnn_quant import quantize_cnn
from slimgen.sw.conv_golden import quantize_conv
from slimgen.sw.lstm_golden import quantize_lstm_classifier
from slimgen.sw.nn import build_model, cnn_spec, lstm_spec, mlp_spec
from slimgen.sw.fixed import multiplier_shift
from slimgen.sw.quant import quantize_mlp

HINT = "float weights must be finite numbers; retrain the model"


def _mlp():
    return build_model(mlp_spec((16, 8, 3)), np.random.default_rng(0))


def _calib(n=20, features=16):
    return np.random.default_rng(1).random((n, features))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_mlp_non_finite_weight(bad):
    model = _mlp()
    model.layers[2].params["W"][3, 1] = bad
    with pytest.raises(ValueError) as e:
        quantize_mlp(model, _calib(), input_scale=1 / 16)
    assert str(e.value) == (f"Cannot quantize dense layer 1 (model layer 2): its W holds {bad} "
                            f"at index (3, 1); {HINT}")


def test_mlp_non_finite_bias():
    model = _mlp()
    model.layers[0].params["b"][5] = np.nan
    with pytest.raises(ValueError, match=r"^Cannot quantize dense layer 0 \(model layer 0\): its "
                                         r"b holds nan at index 5; float weights must be finite"):
        quantize_mlp(model, _calib(), input_scale=1 / 16)


def test_mlp_non_finite_calibration_and_scale():
    x = _calib()
    x[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"^Cannot quantize: the calibration inputs hold nan at "
                                         r"index \(2, 7\); they must be finite numbers$"):
        quantize_mlp(_mlp(), x, input_scale=1 / 16)
    for scale in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match=rf"^input_scale must be a positive finite number, "
                                             rf"not {scale}$"):
            quantize_mlp(_mlp(), _calib(), input_scale=scale)


@pytest.mark.parametrize("ratio", [0.0, -2.0, np.nan, np.inf])
def test_multiplier_shift_needs_a_positive_finite_ratio(ratio):
    with pytest.raises(ValueError, match=rf"^Requantization ratio must be a positive finite "
                                         rf"number, not {ratio}$"):
        multiplier_shift(ratio, 16)


def test_cnn_non_finite_weights():
    model = build_model(cnn_spec((1, 6, 6), channels=(2, 3), n_classes=3),
                        np.random.default_rng(0))
    x = np.random.default_rng(1).random((10, 1, 6, 6))
    conv1 = model.layers[2]
    conv1.params["W"][1, 0, 2, 2] = np.inf
    with pytest.raises(ValueError) as e:
        quantize_cnn(model, x, 1 / 16)
    assert str(e.value) == (f"Cannot quantize convolution 1 (model layer 2): its W holds inf at "
                            f"index (1, 0, 2, 2); {HINT}")
    conv1.params["W"][1, 0, 2, 2] = 0.0
    model.layers[-1].params["b"][0] = np.nan
    with pytest.raises(ValueError, match=r"^Cannot quantize dense layer 0 \(model layer 6\): its "
                                         r"b holds nan at index 0; "):
        quantize_cnn(model, x, 1 / 16)
    model.layers[-1].params["b"][0] = 0.0
    x[0, 0, 1, 1] = -np.inf
    with pytest.raises(ValueError, match=r"^Cannot quantize: the calibration inputs hold -inf at "
                                         r"index \(0, 0, 1, 1\)"):
        quantize_cnn(model, x, 1 / 16)


def test_quantize_conv_non_finite():
    W = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    W[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^Cannot quantize the convolution: its W holds nan at "
                                         r"index \(0, 0, 0, 0\); float weights must be finite"):
        quantize_conv(W, np.zeros(2), in_scale=1.0, out_scale=1.0)
    with pytest.raises(ValueError, match=r"^out_scale must be a positive finite number, not inf$"):
        quantize_conv(np.ones((2, 1, 3, 3)), np.zeros(2), in_scale=1.0, out_scale=np.inf)


def test_lstm_non_finite_weights():
    model = build_model(lstm_spec(4, 5, 3), np.random.default_rng(0))
    model.layers[0].params["U_f"][2, 4] = np.inf
    with pytest.raises(ValueError) as e:
        quantize_lstm_classifier(model, steps=3)
    assert str(e.value) == (f"Cannot quantize the LSTM (model layer 0): its U_f holds inf at "
                            f"index (2, 4); {HINT}")
    model.layers[0].params["U_f"][2, 4] = 0.0
    model.layers[1].params["W"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^Cannot quantize the head \(model layer 1\): its W "
                                         r"holds nan at index \(0, 0\)"):
        quantize_lstm_classifier(model, steps=3)
    model.layers[1].params["W"][0, 0] = 0.0
    with pytest.raises(ValueError, match=r"^input_scale must be a positive finite number, "
                                         r"not 0$"):
        quantize_lstm_classifier(model, steps=3, input_scale=0)
