"""The integer LSTM golden model: tables, state update, quantizer, pruning stand-in."""

import numpy as np
import pytest

from slimgen.sw.lstm_golden import (GATES, LstmFormat, lstm_forward_int, prune_gates_qstd,
                                    quantize_lstm_classifier, random_int_lstm, sigmoid_table,
                                    tanh_table)
from slimgen.sw.nn import LSTM, Dense, Sequential
from slimgen.sw.nn.lstm import lstm_loop


def test_tables():
    fmt = LstmFormat()
    S, T = sigmoid_table(fmt), tanh_table(fmt)
    assert S.shape == T.shape == (256,)
    assert S[128] == 128 and T[128] == 0                # σ(0) = ½, tanh(0) = 0, at 2^8
    assert S[0] == 0 and S[-1] == 256 and T[0] == -256 and T[-1] == 256   # ±8 and ±4
    assert np.all(np.diff(S) >= 0) and np.all(np.diff(T) >= 0)
    np.testing.assert_array_equal(T[1:], -T[1:][::-1])   # odd around index 128


def _float_classifier(rng, n_in=8, H=12):
    lstm, dense = LSTM(n_in, H, rng=rng), Dense(H, 10, rng=rng)
    for g in GATES:
        lstm.params[f"b_{g}"] = rng.normal(0, 0.5, H)
    return Sequential([lstm, dense])


def test_integer_lstm_tracks_the_float_lstm():
    rng = np.random.default_rng(0)
    model = _float_classifier(rng)
    q = quantize_lstm_classifier(model)
    x = rng.integers(0, 17, (50, 8, 8))
    h_int = lstm_forward_int(q.lstm, x) / 2 ** q.lstm.fmt.h_frac
    h_float = lstm_loop(x / 16, model.layers[0].params)[:, -1]
    assert np.abs(h_int - h_float).max() < 0.06
    logits = q(x.reshape(50, 64)) * 1.0
    ref = model.forward(x / 16)
    assert np.corrcoef(logits.ravel(), ref.ravel())[0, 1] > 0.99


def test_state_saturates_and_stays_in_range():
    fmt = LstmFormat(c_bits=10)   # c in [−2, 2): saturates within a few steps
    lstm = random_int_lstm(np.random.default_rng(1), 4, 6, fmt=fmt, spread=16)
    x = np.random.default_rng(2).integers(0, 32, (40, 8, 4))
    hs = lstm_forward_int(lstm, x, return_sequences=True)
    assert hs.min() >= -128 and hs.max() <= 127 and np.abs(hs).max() > 100
    h, c = np.zeros((40, 6), np.int64), np.zeros((40, 6), np.int64)
    seen = []
    for t in range(8):
        h, c = lstm.step(x[:, t], h, c)
        seen.append(c)
    c = np.stack(seen)
    assert c.min() >= -512 and c.max() <= 511 and (c == 511).any() | (c == -512).any()


def test_prune_gates_qstd():
    rng = np.random.default_rng(0)
    model = _float_classifier(rng)
    lstm = model.layers[0]
    before = {k: v.copy() for k, v in lstm.params.items()}
    masks = prune_gates_qstd(lstm, q=1.0)
    assert set(masks) == {f"{k}_{g}" for k in "WU" for g in "ifo"}
    for name, keep in masks.items():
        assert 0.2 < keep.mean() < 0.5
        np.testing.assert_array_equal(lstm.params[name][~keep], 0)
        assert np.all(np.abs(before[name][~keep]) < np.std(before[name]))
    np.testing.assert_array_equal(lstm.params["W_c"], before["W_c"])
    q = quantize_lstm_classifier(model)
    for g in "ifo":                               # pruned zeros stay zero after quantization
        assert np.count_nonzero(q.lstm.W[g]) <= masks[f"W_{g}"].sum() + masks[f"U_{g}"].sum()


def test_errors():
    with pytest.raises(ValueError, match=r"^tanh_frac \(9\) must be at most gate_frac \(8\)$"):
        LstmFormat(tanh_frac=9)
    with pytest.raises(ValueError, match=r"^h_frac must be an integer from 1 to 15, not 0$"):
        LstmFormat(h_frac=0)
    with pytest.raises(ValueError, match=r"^c_bits must be an integer from gate_frac \+ 2 = 10"):
        LstmFormat(c_bits=9)
    with pytest.raises(ValueError, match=r"^The model must be exactly an LSTM layer followed by"):
        quantize_lstm_classifier(Sequential([Dense(4, 2)]))
    q = quantize_lstm_classifier(_float_classifier(np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r"^Inputs must have shape \(n, 64\), not \(2, 63\)$"):
        q(np.zeros((2, 63), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^Input codes must lie in \[0, 31\]$"):
        q(np.full((1, 64), 32))
    with pytest.raises(ValueError, match=r"^Gate must be one of"):
        prune_gates_qstd(LSTM(2, 2), gates=("x",))
